"""The JSON state of the park and the figures derived from it without randomness.

A state is a plain dict (JSON-serialisable).  Park-level figures sit at the top
level so each has a short JSON pointer (``/money``, ``/park_rating`` ...); rides,
shops and staff are lists of dicts; ``cleanliness`` is a 20 x 20 grid indexed
``[y][x]`` (1 = spotless, 0 = filthy).  Nothing about guests is carried from one
day to the next: the park opens empty every morning, so the state plus the fixed
constructor settings determine the next day's distribution.
"""
from __future__ import annotations

from .layouts import Layout
from .params import CHOICES, GRID_SIZE, HORIZON, RIDES, SHOPS, STAFF, START_MONEY

LEAVE_REASONS = ("money", "energy", "hunger", "thirst", "unhappy", "patience", "nothing_to_do",
                 "closing")

# Figures recomputed by :func:`refresh_totals`; they depend only on what is built and hired.
DETERMINISTIC_TOTALS = ("num_rides", "num_shops", "num_drink_shops", "num_food_shops",
                        "num_specialty_shops", "num_staff", "num_janitors", "num_mechanics",
                        "total_capacity", "total_excitement", "avg_intensity", "park_value",
                        "daily_fixed_costs")


def cents(dollars: float) -> int:
    """Dollars to whole cents (money is kept to the cent)."""
    return int(round(float(dollars) * 100))


def dollars(c: int) -> float:
    return round(int(c) / 100.0, 2)


def initial_state(layout: Layout, horizon: int = HORIZON, start_money: float = START_MONEY) -> dict:
    """The state on the morning of day 0: an empty park on the given layout."""
    n = GRID_SIZE
    state = {
        "day": 0,
        "horizon": int(horizon),
        "layout": layout.name,
        "grid_size": n,
        "entrance": list(layout.entrance),
        "exit": list(layout.exit),
        "paths": [list(p) for p in layout.paths],
        "money": dollars(cents(start_money)),
        "park_rating": float(CHOICES["start_rating"]),
        "action_cost": 0.0,
        "revenue": 0.0, "ride_revenue": 0.0, "shop_revenue": 0.0,
        "expenses": 0.0, "ride_operating_costs": 0.0, "shop_operating_costs": 0.0, "salaries": 0.0,
        "profit": 0.0,
        "guests_today": 0, "happy_departures": 0, "avg_happiness": 0.0, "peak_guests": 0,
        "turned_away": 0,
        "guests_left": {r: 0 for r in LEAVE_REASONS},
        "uptime": 1.0, "broken_rides": 0,
        "min_cleanliness": 1.0, "mean_cleanliness": 1.0,
        "rides": [], "shops": [], "staff": [],
        "cleanliness": [[1.0] * n for _ in range(n)],
        "next_id": 1,
        "game_over": False, "bankrupt": False,
    }
    refresh_totals(state)
    return state


def ride_record(id_: int, x: int, y: int, subtype: str, subclass: str, price: float) -> dict:
    p = RIDES[subtype][subclass]
    return {"id": id_, "x": x, "y": y, "subtype": subtype, "subclass": subclass,
            "price": float(price), "capacity": int(p["capacity"]), "excitement": float(p["excitement"]),
            "intensity": float(p["intensity"]), "cost_per_operation": float(p["cost_per_operation"]),
            "breakdown_rate": float(p["breakdown_rate"]), "building_cost": float(p["building_cost"]),
            "broken": False, "repair_progress": 0.0, "operations_today": 0, "riders_today": 0,
            "revenue_today": 0.0, "uptime_today": 1.0}


def shop_record(id_: int, x: int, y: int, subtype: str, subclass: str, price: float) -> dict:
    p = SHOPS[subtype][subclass]
    return {"id": id_, "x": x, "y": y, "subtype": subtype, "subclass": subclass,
            "price": float(price), "operating_cost": float(p["operating_cost"]),
            "building_cost": float(p["building_cost"]), "customers_today": 0, "revenue_today": 0.0}


def staff_record(id_: int, x: int, y: int, subtype: str) -> dict:
    return {"id": id_, "x": x, "y": y, "subtype": subtype, "salary": float(STAFF[subtype]["salary"])}


def refresh_totals(state: dict) -> dict:
    """Recompute the counts and sums that follow from the rides, shops and staff (in place)."""
    rides, shops, staff = state["rides"], state["shops"], state["staff"]
    state["num_rides"] = len(rides)
    state["num_shops"] = len(shops)
    for sub in ("drink", "food", "specialty"):
        state[f"num_{sub}_shops"] = sum(1 for s in shops if s["subtype"] == sub)
    state["num_staff"] = len(staff)
    state["num_janitors"] = sum(1 for s in staff if s["subtype"] == "janitor")
    state["num_mechanics"] = sum(1 for s in staff if s["subtype"] == "mechanic")
    state["total_capacity"] = int(sum(r["capacity"] for r in rides))
    state["total_excitement"] = float(sum(r["excitement"] for r in rides))
    state["avg_intensity"] = round(sum(r["intensity"] for r in rides) / len(rides), 4) if rides else 0.0
    state["park_value"] = dollars(sum(cents(a["building_cost"]) for a in rides + shops))
    fixed = sum(cents(s["operating_cost"]) for s in shops) + sum(cents(s["salary"]) for s in staff)
    state["daily_fixed_costs"] = dollars(fixed)
    return state


def copy_park_state(state: dict) -> dict:
    """A deep copy of a park state (faster than ``copy.deepcopy`` for this known shape)."""
    new = dict(state)
    for key in ("rides", "shops", "staff"):
        new[key] = [dict(r) for r in state.get(key, [])]
    new["cleanliness"] = [list(row) for row in state["cleanliness"]]
    new["paths"] = [list(p) for p in state["paths"]]
    new["entrance"], new["exit"] = list(state["entrance"]), list(state["exit"])
    if isinstance(state.get("guests_left"), dict):
        new["guests_left"] = dict(state["guests_left"])
    return new


def tile_of(state: dict, x: int, y: int) -> tuple[str, dict | None]:
    """What stands on tile (x, y): ("path"|"ride"|"shop"|"empty", record or None)."""
    for r in state["rides"]:
        if r["x"] == x and r["y"] == y:
            return "ride", r
    for s in state["shops"]:
        if s["x"] == x and s["y"] == y:
            return "shop", s
    if [x, y] in state["paths"]:
        return "path", None
    return "empty", None


__all__ = ["initial_state", "refresh_totals", "ride_record", "shop_record", "staff_record", "cents",
           "dollars", "tile_of", "copy_park_state", "LEAVE_REASONS", "DETERMINISTIC_TOTALS"]
