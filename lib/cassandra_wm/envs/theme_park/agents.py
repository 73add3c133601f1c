"""Agents for the theme park: a rule-based heuristic and a random agent, both with optional invalid actions.

Both follow :class:`~cassandra_wm.envs.agent_base.Agent` (``act(state, rng) -> action dict`` in the
game's grammar); with probability ``invalid_rate`` they send an action that breaks one rule of the
game (:func:`make_invalid`).  ``AGENTS`` maps kinds to classes for the registry's ``make_agent``.

* :class:`HeuristicAgent` grows a park it can afford: a carousel, then a drink and a food shop, a
  janitor once the paths get dirty, a mechanic once a ride breaks, then better rides of kinds it
  does not have yet, always keeping a reserve of a few days of fixed costs.  Prices are at the
  maximum.  With some randomness it also re-prices (``modify``), re-stocks, moves staff to the
  dirtiest path (``move``), sells a shop that sells nothing (``remove``) and waits while it saves.
* :class:`RandomAgent` picks a random valid action (checked against the rules without running a day).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..agent_base import Agent
from ..base import EnvSpec
from .actions import apply_action
from .params import RIDE_TYPES, SHOP_TYPES, get_params
from .state import free_sites

WAIT = {"name": "wait", "args": {}}


def place(x: int, y: int, kind: str, subtype: str, subclass: str, price: int | None = None,
          order_quantity: int | None = None) -> dict:
    args: dict[str, Any] = {"x": int(x), "y": int(y), "type": kind, "subtype": subtype, "subclass": subclass}
    if price is not None:
        args["price"] = int(price)
    if order_quantity is not None:
        args["order_quantity"] = int(order_quantity)
    return {"name": "place", "args": args}


def _params(state: dict):
    return get_params(state.get("hidden", {}).get("parameters", "paper"))


def _path_next_to(state: dict, x: int, y: int) -> tuple[int, int] | None:
    paths = {(t["x"], t["y"]) for t in state["paths"]}
    for dx, dy in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        if (x + dx, y + dy) in paths:
            return x + dx, y + dy
    return None


def _dirtiest_path(state: dict) -> tuple[int, int]:
    t = min(state["paths"], key=lambda t: (t["cleanliness"], t["x"], t["y"]))
    return t["x"], t["y"]


def daily_fixed_costs(state: dict) -> int:
    """What the park pays every day whatever happens: salaries and (paper parameters) shop stocking."""
    p = _params(state)
    cost = sum(s["salary"] for s in state["staff"]["staff_list"])
    for s in state["shops"]["shop_list"]:
        if p.shop_costs == "fixed":
            cost += p.shops[s["subtype"]][s["subclass"]]["operating_cost"] if s["order_quantity"] > 0 else 0
        else:
            cost += s["item_cost"] * s["order_quantity"]
    return int(cost)


class _ParkAgent(Agent):
    """Shared parts: a default spec and rule-breaking invalid actions."""

    def __init__(self, spec: EnvSpec | None = None, invalid_rate: float = 0.0, seed: int | None = None):
        if spec is None:
            from .spec import build_spec
            spec = build_spec()
        super().__init__(spec, invalid_rate, seed)
        self._rng = np.random.default_rng(seed)

    def act(self, state: dict, rng: np.random.Generator | None = None) -> dict:
        return super().act(state, rng if rng is not None else self._rng)

    def invalid_action(self, state: dict, rng: np.random.Generator, tries: int = 20) -> dict:
        for _ in range(tries):
            kind = INVALID_KINDS[int(rng.integers(len(INVALID_KINDS)))]
            a = make_invalid(state, kind, rng)
            if a is not None and not apply_action(state, a)[1]:
                return a
        return {"name": "wait", "args": {"x": 1}}


class HeuristicAgent(_ParkAgent):
    """A careful park builder (see the module docstring); ``reserve_days`` of fixed costs are kept."""

    name = "heuristic"
    ride_plan = (("carousel", "yellow"), ("ferris_wheel", "yellow"), ("roller_coaster", "yellow"),
                 ("carousel", "blue"), ("ferris_wheel", "blue"), ("roller_coaster", "blue"),
                 ("carousel", "red"), ("carousel", "green"), ("ferris_wheel", "red"), ("roller_coaster", "green"))

    def __init__(self, spec: EnvSpec | None = None, invalid_rate: float = 0.0, seed: int | None = None,
                 reserve_days: float = 2.5, explore: float = 0.05, order_quantity: int = 60):
        super().__init__(spec, invalid_rate, seed)
        self.reserve_days = float(reserve_days)
        self.explore = float(explore)
        self.order_quantity = int(order_quantity)

    def describe(self) -> dict:
        return {**super().describe(), "reserve_days": self.reserve_days, "explore": self.explore}

    def choose(self, state: dict, rng: np.random.Generator) -> dict:
        p = _params(state)
        money = state["money"]
        rides, shops = state["rides"]["ride_list"], state["shops"]["shop_list"]
        staff = state["staff"]["staff_list"]
        sites = free_sites(state)
        fixed = daily_fixed_costs(state)
        jan = [s for s in staff if s["subtype"] == "janitor"]
        mech = [s for s in staff if s["subtype"] == "mechanic"]
        n_of = {t: sum(1 for s in shops if s["subtype"] == t) for t in SHOP_TYPES}
        # 1. safety: when money no longer covers a few days of fixed costs, cut the largest one
        if fixed and money < self.reserve_days * fixed:
            cut = self._cut_costs(state, p)
            if cut is not None:
                return cut
        if rng.random() < self.explore:
            a = self._explore(state, rng)
            if a is not None and apply_action(state, a)[1]:
                return a
        if not rides:
            return self._ride(p, sites, "carousel", "yellow") if sites else WAIT
        reserve = self.reserve_days * max(fixed, 25)
        # 2. a janitor once the park gets dirty (dirt drives guests and the rating away), then a drink
        #    shop (thirsty guests leave a park without one); a mechanic once a ride breaks
        salary = p.staff["janitor"]["yellow"]["salary"]
        if state["min_cleanliness"] < 0.85 and len(jan) < 1 + len(rides) // 5 and money >= 50 + 2 * (fixed + salary):
            return place(*_dirtiest_path(state), "staff", "janitor", "yellow")
        if n_of["drink"] == 0 and sites and money >= p.shops["drink"]["yellow"]["building_cost"] + reserve:
            return self._shop(p, sites, "drink", "yellow")
        broken = [r for r in rides if r["out_of_service"]]
        if broken and not mech:
            xy = _path_next_to(state, broken[0]["x"], broken[0]["y"])
            if xy and money > 2 * (fixed + p.staff["mechanic"]["yellow"]["salary"]) + 50:
                return place(*xy, "staff", "mechanic", "yellow")
        # 4. re-open a shop closed to save money, once money allows
        closed = [s for s in shops if s["order_quantity"] == 0]
        if closed and money > 2 * reserve + 200:
            s = closed[0]
            return {"name": "modify", "args": {"type": "shop", "x": s["x"], "y": s["y"], "price": s["item_price"],
                                               "order_quantity": self.order_quantity}}
        if jan and state["min_cleanliness"] < 0.6 and rng.random() < 0.3:
            x, y = _dirtiest_path(state)
            j = jan[int(rng.integers(len(jan)))]
            if (j["x"], j["y"]) != (x, y):
                return {"name": "move", "args": {"type": "staff", "subtype": "janitor", "subclass": j["subclass"],
                                                 "x": j["x"], "y": j["y"], "new_x": x, "new_y": y}}
        if not sites:
            return WAIT
        # 5. the next ride of the plan, saving up for it
        have = {(r["subtype"], r["subclass"]) for r in rides}
        for sub, col in self.ride_plan:
            if (sub, col) in have or col not in p.rides[sub]:
                continue
            if money >= p.rides[sub][col]["building_cost"] + reserve:
                return self._ride(p, sites, sub, col)
            break
        # 6. shops follow the rides, towards drink : food : specialty = 4 : 3 : 2
        want = {"drink": 4, "food": 3, "specialty": 2}
        n_shops = sum(n_of.values())
        if n_shops < len(rides) and len(rides) >= 2:
            t = max(want, key=lambda k: want[k] / 9 - n_of[k] / max(n_shops, 1))
            t = "food" if n_of["food"] == 0 else t
            cost = p.shops[t]["yellow"]["building_cost"] + 10 * p.shops[t]["yellow"].get("operating_cost", 0)
            if money >= cost + reserve:
                return self._shop(p, sites, t, "yellow")
        return WAIT

    def _cut_costs(self, state: dict, p) -> dict | None:
        """Dismiss a janitor, else close (order nothing for) the shop that costs most to stock."""
        jan = [s for s in state["staff"]["staff_list"] if s["subtype"] == "janitor"]
        if jan:
            j = jan[0]
            return {"name": "remove", "args": {"type": "staff", "subtype": "janitor", "subclass": j["subclass"],
                                               "x": j["x"], "y": j["y"]}}
        open_shops = [s for s in state["shops"]["shop_list"] if s["order_quantity"] > 0]
        if not open_shops:
            return None

        def stock_cost(s: dict) -> float:
            t = p.shops[s["subtype"]][s["subclass"]]
            return t.get("operating_cost", 0) if p.shop_costs == "fixed" else s["item_cost"] * s["order_quantity"]
        s = max(open_shops, key=stock_cost)
        if stock_cost(s) <= 0:
            return None
        return {"name": "modify", "args": {"type": "shop", "x": s["x"], "y": s["y"], "price": s["item_price"],
                                           "order_quantity": 0}}

    def _ride(self, p, sites, sub: str, col: str) -> dict:
        x, y = sites[0]
        return place(x, y, "ride", sub, col, p.max_price("ride", sub, col))

    def _shop(self, p, sites, sub: str, col: str) -> dict:
        x, y = sites[0]
        return place(x, y, "shop", sub, col, p.max_price("shop", sub, col), self.order_quantity)

    def _explore(self, state: dict, rng: np.random.Generator) -> dict | None:
        """Now and then another kind of action, so the data shows each of them."""
        p = _params(state)
        shops = state["shops"]["shop_list"]
        rides = state["rides"]["ride_list"]
        pick = rng.random()
        if pick < 0.4 and (rides or shops):
            kind, a = (("ride", rides[int(rng.integers(len(rides)))]) if rides and (not shops or rng.random() < 0.5)
                       else ("shop", shops[int(rng.integers(len(shops)))]))
            top = p.max_price(kind, a["subtype"], a["subclass"])
            price = int(round(top * float(rng.choice([1.0, 0.75, 0.5]))))
            args = {"type": kind, "x": a["x"], "y": a["y"], "price": price}
            if kind == "shop":
                args["order_quantity"] = int(rng.choice([30, 60, 90]))
            return {"name": "modify", "args": args}
        if pick < 0.6 and shops:
            idle = [s for s in shops if s["guests_served"] == 0 and s["order_quantity"] > 0]
            if idle and state["step"] > 5:
                s = idle[0]
                return {"name": "remove", "args": {"type": "shop", "subtype": s["subtype"], "subclass": s["subclass"],
                                                   "x": s["x"], "y": s["y"]}}
        return None


class RandomAgent(_ParkAgent):
    """A random valid action each morning (from a broad set of candidates); ``wait()`` when none is valid."""

    name = "random"

    def choose(self, state: dict, rng: np.random.Generator, tries: int = 20) -> dict:
        for _ in range(tries):
            a = self._propose(state, rng)
            if a is not None and apply_action(state, a)[1]:
                return a
        return WAIT

    def _propose(self, state: dict, rng: np.random.Generator) -> dict | None:
        p = _params(state)
        what = int(rng.integers(7))
        sites = free_sites(state)
        if what == 0:
            return WAIT
        if what in (1, 2) and sites:
            x, y = sites[int(rng.integers(min(len(sites), 10)))]
            if what == 1:
                sub = RIDE_TYPES[int(rng.integers(3))]
                col = list(p.rides[sub])[int(rng.integers(len(p.rides[sub])))]
                return place(x, y, "ride", sub, col, int(rng.integers(p.max_price("ride", sub, col) + 1)))
            sub = SHOP_TYPES[int(rng.integers(3))]
            col = list(p.shops[sub])[int(rng.integers(len(p.shops[sub])))]
            return place(x, y, "shop", sub, col, int(rng.integers(p.max_price("shop", sub, col) + 1)),
                         int(rng.integers(10, 100)))
        if what == 3:
            t = state["paths"][int(rng.integers(len(state["paths"])))]
            kinds = [k for k, v in p.staff.items() if v]
            sub = kinds[int(rng.integers(len(kinds)))]
            col = list(p.staff[sub])[int(rng.integers(len(p.staff[sub])))]
            return place(t["x"], t["y"], "staff", sub, col)
        pool = ([("ride", a) for a in state["rides"]["ride_list"]] + [("shop", a) for a in state["shops"]["shop_list"]]
                + [("staff", a) for a in state["staff"]["staff_list"]])
        if not pool:
            return None
        kind, a = pool[int(rng.integers(len(pool)))]
        base = {"type": kind, "subtype": a["subtype"], "subclass": a["subclass"], "x": a["x"], "y": a["y"]}
        if what == 4:
            return {"name": "remove", "args": base}
        if what == 5 and kind != "staff":
            top = p.max_price(kind, a["subtype"], a["subclass"])
            args = {"type": kind, "x": a["x"], "y": a["y"], "price": int(rng.integers(top + 1))}
            if kind == "shop":
                args["order_quantity"] = int(rng.integers(0, 100))
            return {"name": "modify", "args": args}
        targets = ([(t["x"], t["y"]) for t in state["paths"]] if kind == "staff" else sites)
        if not targets:
            return None
        nx, ny = targets[int(rng.integers(len(targets)))]
        return {"name": "move", "args": {**base, "new_x": int(nx), "new_y": int(ny)}}


class HeedlessBuilder(_ParkAgent):
    """Builds the dearest ride or shop it can afford every morning, at the maximum price, and hires a
    janitor and a mechanic; it never looks at running costs (a foil for the survival table)."""

    name = "heedless"

    def choose(self, state: dict, rng: np.random.Generator) -> dict:
        p = _params(state)
        sites = free_sites(state)
        staff = {s["subtype"] for s in state["staff"]["staff_list"]}
        for sub in ("janitor", "mechanic"):
            if sub not in staff and "yellow" in p.staff[sub]:
                t = state["paths"][int(rng.integers(len(state["paths"])))]
                return place(t["x"], t["y"], "staff", sub, "yellow")
        if not sites:
            return WAIT
        options = [(p.building_cost(k, s, c), k, s, c) for k, table in (("ride", p.rides), ("shop", p.shops))
                   for s in table for c in table[s] if p.building_cost(k, s, c) <= state["money"]]
        if not options:
            return WAIT
        _, k, s, c = max(options)
        return place(*sites[0], k, s, c, p.max_price(k, s, c), 60 if k == "shop" else None)


class WaitAgent(_ParkAgent):
    """Waits every morning (the reference that cannot lose money)."""

    name = "wait"

    def choose(self, state: dict, rng: np.random.Generator) -> dict:
        return WAIT


INVALID_KINDS = ("not_affordable", "out_of_bounds", "occupied", "not_adjacent_to_path", "price_above_max",
                 "negative_price", "unknown_kind", "wrong_type_at_tile", "no_staff", "bad_staff_tile",
                 "missing_argument", "extra_argument", "bad_argument_type", "malformed", "unknown_action")


def make_invalid(state: dict, kind: str, rng: np.random.Generator) -> dict | str | None:
    """An action that breaks the rule ``kind`` (one of :data:`INVALID_KINDS`) in ``state``, or None."""
    p = _params(state)
    sites = free_sites(state)
    x, y = sites[int(rng.integers(len(sites)))] if sites else (0, 0)
    paths = state["paths"]
    t = paths[int(rng.integers(len(paths)))]
    ride = ("carousel", "yellow")
    if kind == "not_affordable":
        options = [(s, c) for s in RIDE_TYPES for c in p.rides[s] if p.rides[s][c]["building_cost"] > state["money"]]
        if not options:
            return None
        s, c = options[int(rng.integers(len(options)))]
        return place(x, y, "ride", s, c, 1)
    if kind == "out_of_bounds":
        bad = [(-1, y), (20, y), (x, 25)][int(rng.integers(3))]
        return place(*bad, "ride", *ride, 1)
    if kind == "occupied":
        return place(t["x"], t["y"], "shop", "drink", "yellow", 1, 10)
    if kind == "not_adjacent_to_path":
        pts = {(q["x"], q["y"]) for q in paths}
        far = [(a, b) for a in range(20) for b in range(20)
               if all((a + dx, b + dy) not in pts for dx, dy in ((0, 1), (1, 0), (0, -1), (-1, 0)))]
        if not far:
            return None
        return place(*far[int(rng.integers(len(far)))], "ride", *ride, 1)
    if kind == "price_above_max":
        return place(x, y, "ride", *ride, p.max_price("ride", *ride) + int(rng.integers(1, 10)))
    if kind == "negative_price":
        return place(x, y, "shop", "food", "yellow", -int(rng.integers(1, 5)), 10)
    if kind == "unknown_kind":
        return [place(x, y, "ride", "ferris wheel", "yellow", 1), place(x, y, "ride", "carousel", "purple", 1),
                place(t["x"], t["y"], "staff", "cleaner", "yellow")][int(rng.integers(3))]
    if kind == "wrong_type_at_tile":
        return {"name": "remove", "args": {"type": "ride", "subtype": "carousel", "subclass": "yellow",
                                           "x": t["x"], "y": t["y"]}}
    if kind == "no_staff":
        return {"name": "remove", "args": {"type": "staff", "subtype": "mechanic", "subclass": "yellow",
                                           "x": x, "y": y}}
    if kind == "bad_staff_tile":
        return place(x, y, "staff", "janitor", "yellow")
    if kind == "missing_argument":
        return {"name": "place", "args": {"x": x, "y": y, "type": "ride", "subtype": "carousel", "subclass": "yellow"}}
    if kind == "extra_argument":
        return {"name": "wait", "args": {"days": 2}}
    if kind == "bad_argument_type":
        return place(x, y, "ride", *ride, 1) | {"args": {"x": x, "y": y, "type": "ride", "subtype": "carousel",
                                                         "subclass": "yellow", "price": 2.5}}
    if kind == "malformed":
        return ["wait", "place(x=1, y=", "build a ride please"][int(rng.integers(3))]
    if kind == "unknown_action":
        return {"name": ["build", "hire", "noop"][int(rng.integers(3))], "args": {}}
    raise ValueError(f"unknown invalid kind {kind!r}; known: {list(INVALID_KINDS)}")


AGENTS = {"heuristic": HeuristicAgent, "random": RandomAgent, "heedless": HeedlessBuilder, "wait": WaitAgent}

__all__ = ["HeuristicAgent", "RandomAgent", "HeedlessBuilder", "WaitAgent", "AGENTS", "make_invalid", "INVALID_KINDS", "place", "daily_fixed_costs"]
