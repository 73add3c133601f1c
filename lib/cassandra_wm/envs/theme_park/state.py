"""The park's JSON state: the game's agent-facing observation, plus what the game keeps unseen.

The top level follows the observation the Mini Amusement Parks game hands its agents (names and
nesting as the game's observation model): ``step``, ``horizon``, ``value``, ``money``, ``revenue``,
``expenses``, ``profit``, ``park_rating``, ``guests{...}``, ``guest_survey_results{...}``,
``rides{..., ride_list[]}``, ``shops{..., shop_list[]}``, ``staff{..., staff_list[]}``, the research
fields (inert in easy mode), ``entrance``, ``exit``, ``paths[]``, ``waters[]``, ``min_cleanliness``.

Beyond that schema a state carries what the game keeps on its server between days, so that the
state alone fixes the next day's distribution (a Markov state):

* in each ride: ``remaining_repair_time`` and ``unnorm_uptime`` (the game's raw ride fields);
* in each shop: ``services_attempted`` (the game's raw shop field);
* in each staff member: ``target``, the tile it is heading for (``[x, y]`` or ``None``);
* ``hidden``: the parameter set, the layout name, yesterday's mean guest happiness, and exact
  tile cleanliness (``cleanliness[x][y]``; the observation rounds it to two decimals);
* ``bankrupt`` and ``game_over`` flags for the pipeline.

Money is in whole dollars, as in the game.
"""
from __future__ import annotations

import json

from .layouts import Layout
from .params import (COLOURS, GRID_SIZE, HORIZON, RIDE_TYPES, SHOP_TYPES, START_GUEST_HAPPINESS, START_MONEY,
                     START_RATING, STAFF_TYPES, Params, get_params)

EXIT_REASONS = ("No specific reason for exit", "Day ended", "Too unhappy", "Ran out of energy",
                "Spent all their money", "Too thirsty", "Too hungry", "Too few food shops", "Too few drink shops",
                "Too few rides", "Too few unique drink shops", "Too few unique food shops", "Too few unique rides",
                "Too few unique attractions", "Walked by the exit")
SUCCESS_METRIC = {"janitor": "amount_cleaned", "mechanic": "repair_steps_performed",
                  ("specialist", "yellow"): "guests_entertained", ("specialist", "blue"): "items_restocked",
                  ("specialist", "green"): "guests_informed", ("specialist", "red"): "guests_served"}


def r2(v: float) -> float:
    """The game's two-decimal rounding (half away from zero is close enough for display)."""
    return round(float(v) + 0.0, 2)


def empty_guest_stats() -> dict:
    return {"total_guests": 0, "avg_money_spent": 0.0, "avg_time_in_park": 0.0, "avg_rides_visited": 0.0,
            "avg_food_shops_visited": 0.0, "avg_drink_shops_visited": 0.0, "avg_specialty_shops_visited": 0.0}


def initial_state(layout: Layout, params: str | Params = "paper", horizon: int = HORIZON,
                  start_money: int = START_MONEY) -> dict:
    """The state before day 1: an empty park on ``layout``."""
    p = get_params(params)
    n = GRID_SIZE
    state = {
        "step": 0, "horizon": int(horizon), "value": int(start_money), "money": int(start_money),
        "revenue": 0, "expenses": 0, "profit": 0, "park_rating": START_RATING,
        "guests": empty_guest_stats(),
        "guest_survey_results": {"age_of_results": 0, "list_of_results": []},
        "rides": {"ride_list": []}, "shops": {"shop_list": []}, "staff": {"staff_list": []},
        "research_speed": "none", "research_topics": list(RIDE_TYPES + SHOP_TYPES + STAFF_TYPES),
        "research_operating_cost": 0, "available_entities": p.available(),
        "fast_days_since_last_new_entity": 0, "medium_days_since_last_new_entity": 0,
        "slow_days_since_last_new_entity": 0, "new_entity_available": False,
        "entrance": list(layout.entrance), "exit": list(layout.exit),
        "paths": [{"x": x, "y": y, "cleanliness": 1.0} for x, y in layout.paths],
        "waters": [{"x": x, "y": y} for x, y in layout.waters],
        "min_cleanliness": 1.0,
        "hidden": {"parameters": p.name, "layout": layout.name, "prev_guest_happiness": START_GUEST_HAPPINESS,
                   "cleanliness": [[1.0] * n for _ in range(n)], "survey_pending": 0,
                   "parse_error": False},
        "bankrupt": False, "game_over": False,
    }
    refresh(state, p)
    return state


def new_ride(p: Params, x: int, y: int, subtype: str, subclass: str, price: int, water_adjacent: int) -> dict:
    t = p.rides[subtype][subclass]
    return {"subtype": subtype, "subclass": subclass, "x": int(x), "y": int(y), "out_of_service": False,
            "uptime": 0.0, "cleanliness": 1.0, "ticket_price": int(price), "operating_cost": 0,
            "revenue_generated": 0, "capacity": int(t["capacity"]), "intensity": int(t["intensity"]),
            "excitement": int(t["excitement"]) + int(water_adjacent), "guests_entertained": 0, "times_operated": 0,
            "cost_per_operation": int(t["cost_per_operation"]), "avg_wait_time": 0.0,
            "avg_guests_per_operation": 0.0, "breakdown_rate": float(t["breakdown_rate"]),
            "remaining_repair_time": 0, "unnorm_uptime": 1.0, "water_adjacent": int(water_adjacent)}


def new_shop(p: Params, x: int, y: int, subtype: str, subclass: str, price: int, order_quantity: int) -> dict:
    t = p.shops[subtype][subclass]
    return {"subtype": subtype, "subclass": subclass, "x": int(x), "y": int(y), "item_price": int(price),
            "item_cost": int(t.get("item_cost", 0)), "operating_cost": 0, "uptime": 1.0, "number_of_restocks": 0,
            "order_quantity": int(order_quantity), "inventory": 0, "revenue_generated": 0, "cleanliness": 1.0,
            "guests_served": 0, "out_of_service": False, "services_attempted": 0}


def new_staff(p: Params, x: int, y: int, subtype: str, subclass: str) -> dict:
    metric = SUCCESS_METRIC.get(subtype) or SUCCESS_METRIC[(subtype, subclass)]
    return {"subtype": subtype, "subclass": subclass, "x": int(x), "y": int(y),
            "salary": int(p.staff[subtype][subclass]["salary"]), "operating_cost": 0, "success_metric": metric,
            "success_metric_value": 0.0, "tiles_traversed": 0, "target": None}


def park_excitement(rides: list, rules: dict) -> float:
    """The rating's excitement term (also shown as ``rides.total_excitement``): repeated rides of one
    kind count half as much each time, water adds a little, scaled by 0.8 and capped at 60."""
    seen: dict = {}
    total, water = 0.0, 0
    for r in rides:
        key = (r["subtype"], r["subclass"])
        k = seen.get(key, 0)
        total += (r["excitement"] - r.get("water_adjacent", 0)) / (2 ** k)
        water += r.get("water_adjacent", 0)
        seen[key] = k + 1
    total += min(rules["rating_water_max"], water * rules["rating_water_factor"])
    return min(rules["rating_excitement_max"], total * rules["rating_excitement_factor"])


def asset_value(state: dict, p: Params) -> float:
    share = p.rules["sell_share"]
    return (sum(p.rides[r["subtype"]][r["subclass"]]["building_cost"] * share for r in state["rides"]["ride_list"])
            + sum(p.shops[s["subtype"]][s["subclass"]]["building_cost"] * share for s in state["shops"]["shop_list"]))


def sort_attractions(state: dict) -> None:
    """Rides and shops are listed by (x, y), as the game keeps them."""
    state["rides"]["ride_list"].sort(key=lambda a: (a["x"], a["y"]))
    state["shops"]["shop_list"].sort(key=lambda a: (a["x"], a["y"]))


def refresh(state: dict, p: Params | None = None, excitement: float | None = None) -> dict:
    """Recompute the summary blocks of ``rides``, ``shops`` and ``staff`` and ``min_cleanliness`` (in place)."""
    p = p or get_params(state["hidden"]["parameters"])
    rides, shops, staff = state["rides"]["ride_list"], state["shops"]["shop_list"], state["staff"]["staff_list"]
    exc = park_excitement(rides, p.rules) if excitement is None else excitement
    state["rides"] = {
        "total_rides": len(rides),
        "min_uptime": min((r2(r["uptime"]) for r in rides), default=1.0),
        "total_operating_cost": int(sum(r["operating_cost"] for r in rides)),
        "total_revenue_generated": int(sum(r["revenue_generated"] for r in rides)),
        "total_excitement": r2(exc),
        "avg_intensity": r2(sum(r2(r["intensity"]) for r in rides) / len(rides)) if rides else 0.0,
        "total_capacity": int(sum(r["capacity"] for r in rides)),
        "ride_list": rides,
    }
    state["shops"] = {
        "total_shops": len(shops),
        "total_revenue_generated": int(sum(s["revenue_generated"] for s in shops)),
        "total_operating_cost": int(sum(s["operating_cost"] for s in shops)),
        "min_uptime": min((r2(s["uptime"]) for s in shops), default=1.0),
        "shop_list": shops,
    }
    counts = {t: [0, 0, 0, 0] for t in STAFF_TYPES}
    for s in staff:
        counts[s["subtype"]][COLOURS.index(s["subclass"])] += 1
    old = state.get("staff", {})
    state["staff"] = {
        "total_janitors": counts["janitor"], "total_mechanics": counts["mechanic"],
        "total_specialists": counts["specialist"],
        "total_salary_paid": int(old.get("total_salary_paid", 0)),
        "total_operating_cost": int(sum(s["operating_cost"] for s in staff)),
        "staff_list": staff,
    }
    cl = [r["cleanliness"] for r in rides] + [s["cleanliness"] for s in shops] + [t["cleanliness"]
                                                                                  for t in state["paths"]]
    state["min_cleanliness"] = r2(min(cl)) if cl else 1.0
    return state


def occupant(state: dict, x: int, y: int) -> str:
    """What stands on tile (x, y): "entrance", "exit", "path", "water", "ride", "shop" or "empty"."""
    if [x, y] == list(state["entrance"]):
        return "entrance"
    if [x, y] == list(state["exit"]):
        return "exit"
    for r in state["rides"]["ride_list"]:
        if r["x"] == x and r["y"] == y:
            return "ride"
    for s in state["shops"]["shop_list"]:
        if s["x"] == x and s["y"] == y:
            return "shop"
    for t in state["paths"]:
        if t["x"] == x and t["y"] == y:
            return "path"
    for t in state["waters"]:
        if t["x"] == x and t["y"] == y:
            return "water"
    return "empty"


def path_set(state: dict) -> set[tuple[int, int]]:
    return {(t["x"], t["y"]) for t in state["paths"]}


_REACH: dict = {}


def reachable_paths(state: dict) -> frozenset:
    """Path tiles guests can reach from the entrance (some layouts have path islands)."""
    paths = path_set(state)
    key = (frozenset(paths), tuple(state["entrance"]), tuple(state["exit"]))
    hit = _REACH.get(key)
    if hit is None:
        walk = set(paths) | {tuple(state["entrance"]), tuple(state["exit"])}
        seen, todo = {tuple(state["entrance"])}, [tuple(state["entrance"])]
        while todo:
            x, y = todo.pop()
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                t = (x + dx, y + dy)
                if t in walk and t not in seen:
                    seen.add(t)
                    todo.append(t)
        hit = _REACH[key] = frozenset(seen & paths)
    return hit


def free_sites(state: dict, reachable_only: bool = True) -> list[tuple[int, int]]:
    """Empty tiles next to a path (a path guests can reach, by default), nearest the entrance first.

    The one home of "free tiles next to a path": the proposer, the agents and the benchmark use it."""
    n = GRID_SIZE
    paths = reachable_paths(state) if reachable_only else path_set(state)
    blocked = path_set(state) | {(t["x"], t["y"]) for t in state["waters"]}
    blocked |= {(a["x"], a["y"]) for a in state["rides"]["ride_list"] + state["shops"]["shop_list"]}
    blocked |= {tuple(state["entrance"]), tuple(state["exit"])}
    out = set()
    for (px, py) in paths:
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            x, y = px + dx, py + dy
            if 0 <= x < n and 0 <= y < n and (x, y) not in blocked:
                out.add((x, y))
    ex, ey = state["entrance"]
    return sorted(out, key=lambda t: (abs(t[0] - ex) + abs(t[1] - ey), t))


def copy_park_state(state: dict) -> dict:
    """A deep copy (the state is plain JSON)."""
    return json.loads(json.dumps(state))


__all__ = ["initial_state", "refresh", "new_ride", "new_shop", "new_staff", "park_excitement", "asset_value",
           "sort_attractions", "occupant", "path_set", "free_sites", "reachable_paths", "copy_park_state", "EXIT_REASONS", "r2",
           "empty_guest_stats"]
