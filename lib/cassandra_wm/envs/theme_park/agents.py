"""Agents for the theme park: a rule-based heuristic and a random agent with invalid actions.

Both have ``act(state, rng=None) -> action dict``; :func:`make_agent` builds either by name.

* :class:`HeuristicAgent` grows the park sensibly: a carousel first, then a drink and a food
  shop, then ever better rides while keeping a cash reserve, a drink:food:specialty shop mix
  near 4:3:2 (the ratio the paper's planners were biased toward), a mechanic once rides break
  and janitors when the park gets dirty.
* :class:`RandomAgent` picks a random valid action (checked against the rules without running
  a day); with probability ``invalid_rate`` it instead makes one that breaks a rule
  (unaffordable, out of bounds, occupied tile, not next to a path, price above the maximum,
  unknown kind, nothing to remove, staff off the paths, or malformed text), as the paper's
  rule-learning data did with rate 0.2.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .actions import apply_action
from .params import COLOURS, GRID_SIZE, RIDE_TYPES, RIDES, SHOP_TYPES, SHOPS, STAFF, STAFF_TYPES


def free_spots(state: dict) -> list[tuple[int, int]]:
    """Empty tiles that touch a path, nearest the entrance first."""
    paths = {tuple(p) for p in state["paths"]}
    taken = {(a["x"], a["y"]) for a in state["rides"] + state["shops"]}
    ex, ey = state["entrance"]
    spots = set()
    for x, y in paths:
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            t = (x + dx, y + dy)
            if 0 <= t[0] < GRID_SIZE and 0 <= t[1] < GRID_SIZE and t not in paths and t not in taken:
                spots.add(t)
    return sorted(spots, key=lambda t: (abs(t[0] - ex) + abs(t[1] - ey), t))


def _place(x: int, y: int, kind: str, subtype: str, subclass: str | None = None,
           price: float | None = None) -> dict:
    args: dict[str, Any] = {"x": int(x), "y": int(y), "type": kind, "subtype": subtype}
    if subclass is not None:
        args["subclass"] = subclass
    if price is not None:
        args["price"] = price
    return {"name": "place", "args": args}


WAIT = {"name": "wait", "args": {}}


class HeuristicAgent:
    """A sensible rule-based park manager (see the module docstring).

    Args:
        price_cap: never charge more than this (guests carry limited money).
        reserve_days: keep this many days of fixed costs (shops, salaries) in cash, at least $150.
        seed: for its own random generator, used only when ``act`` gets no ``rng``.
    """

    name = "heuristic"

    def __init__(self, price_cap: float = 15.0, reserve_days: float = 3.0, seed: int = 0):
        self.price_cap = float(price_cap)
        self.reserve_days = float(reserve_days)
        self.rng = np.random.default_rng(seed)

    def _price(self, table: dict, sub: str, col: str) -> float:
        return float(min(table[sub][col]["max_price"], self.price_cap))

    def act(self, state: dict, rng: np.random.Generator | None = None) -> dict:
        money = float(state["money"])
        reserve = max(150.0, self.reserve_days * float(state["daily_fixed_costs"]))
        spots = free_spots(state)
        rides, shops, staff = state["rides"], state["shops"], state["staff"]
        n_mech = sum(1 for s in staff if s["subtype"] == "mechanic")
        n_jan = sum(1 for s in staff if s["subtype"] == "janitor")
        # a mechanic as soon as something breaks
        broken = [r for r in rides if r["broken"]]
        if broken and n_mech < 1 + len(rides) // 10 and money >= STAFF["mechanic"]["salary"] + reserve:
            x, y = _nearest_path(state, broken[0]["x"], broken[0]["y"])
            return _place(x, y, "staff", "mechanic")
        # a janitor when the park gets dirty and can pay for one
        if (state["min_cleanliness"] < 0.5 and n_jan < 1 + len(rides) // 6
                and money >= STAFF["janitor"]["salary"] * 3 + reserve and state["profit"] > 100):
            x, y = _dirtiest_path(state)
            return _place(x, y, "staff", "janitor")
        if not spots:
            return WAIT
        x, y = spots[0]
        if not rides:
            if money >= RIDES["carousel"]["yellow"]["building_cost"]:
                return _place(x, y, "ride", "carousel", "yellow", self._price(RIDES, "carousel", "yellow"))
            return WAIT
        counts = {sub: sum(1 for s in shops if s["subtype"] == sub) for sub in SHOP_TYPES}
        # keep a drink:food:specialty mix near 4:3:2, one shop for every two rides
        want = {"drink": 4, "food": 3, "specialty": 2}
        if len(shops) * 2 < len(rides) + 1:
            sub = min(want, key=lambda k: (counts[k] / want[k], -want[k]))
            col = "yellow"
            if money - SHOPS[sub]["blue"]["building_cost"] > 10 * reserve and sub != "specialty":
                col = "blue"
            if money - SHOPS[sub][col]["building_cost"] >= reserve:
                return _place(x, y, "shop", sub, col, self._price(SHOPS, sub, col))
        # the best ride we can afford while keeping the reserve, pulling mean intensity toward 5
        best = None
        n = len(rides)
        mean_int = sum(r["intensity"] for r in rides) / n
        for sub in RIDE_TYPES:
            for col in COLOURS:
                p = RIDES[sub][col]
                if money - p["building_cost"] < reserve:
                    continue
                new_int = (mean_int * n + p["intensity"]) / (n + 1)
                score = p["excitement"] * 2 + p["capacity"] / 5 - abs(new_int - 5.0) - p["breakdown_rate"] * 50
                if best is None or score > best[0]:
                    best = (score, sub, col)
        if best is not None:
            _, sub, col = best
            return _place(x, y, "ride", sub, col, self._price(RIDES, sub, col))
        return WAIT


def _nearest_path(state: dict, x: int, y: int) -> tuple[int, int]:
    return min((tuple(p) for p in state["paths"]), key=lambda p: (abs(p[0] - x) + abs(p[1] - y), p))


def _dirtiest_path(state: dict) -> tuple[int, int]:
    clean = state["cleanliness"]
    return min((tuple(p) for p in state["paths"]), key=lambda p: (clean[p[1]][p[0]], p))


class RandomAgent:
    """Random valid actions, or (with probability ``invalid_rate``) an action that breaks a rule.

    Valid actions are checked with the deterministic action rules (no day is simulated).
    ``text_rate`` is the share of actions returned in text form instead of dicts.
    """

    name = "random"
    INVALID_KINDS = ("not_affordable", "out_of_bounds", "occupied", "not_adjacent_to_path",
                     "price_above_max", "unknown_kind", "no_attraction", "not_on_path", "malformed")

    def __init__(self, invalid_rate: float = 0.0, seed: int = 0, text_rate: float = 0.0,
                 wait_weight: float = 0.3):
        if not 0.0 <= invalid_rate <= 1.0:
            raise ValueError(f"invalid_rate must be in [0, 1], got {invalid_rate!r}")
        self.invalid_rate = float(invalid_rate)
        self.text_rate = float(text_rate)
        self.wait_weight = float(wait_weight)
        self.rng = np.random.default_rng(seed)

    def act(self, state: dict, rng: np.random.Generator | None = None) -> dict | str:
        rng = self.rng if rng is None else rng
        if rng.random() < self.invalid_rate:
            action = self.invalid_action(state, rng)
        else:
            action = self.valid_action(state, rng)
        if isinstance(action, dict) and rng.random() < self.text_rate:
            from ..base import format_action
            return format_action(action)
        return action

    # -- valid ---------------------------------------------------------------------------
    def valid_action(self, state: dict, rng: np.random.Generator, tries: int = 20) -> dict:
        for _ in range(tries):
            a = self._propose(state, rng)
            if a is WAIT:
                return WAIT
            _, ok, _, _ = apply_action(state, a)
            if ok:
                return a
        return WAIT

    def _propose(self, state: dict, rng: np.random.Generator) -> dict:
        kinds = ["wait", "ride", "shop", "staff", "remove", "modify", "move"]
        w = np.array([self.wait_weight, 0.25, 0.2, 0.08, 0.04, 0.08, 0.05])
        k = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
        if k == "wait":
            return WAIT
        spots = free_spots(state)
        paths = state["paths"]
        if k in ("ride", "shop"):
            if not spots:
                return WAIT
            x, y = spots[int(rng.integers(len(spots)))]
            table = RIDES if k == "ride" else SHOPS
            sub = list(table)[int(rng.integers(len(table)))]
            col = COLOURS[int(rng.integers(4))]
            mx = table[sub][col]["max_price"]
            price = float(rng.integers(0, int(mx) + 1))
            return _place(x, y, k, sub, col, price)
        if k == "staff":
            x, y = paths[int(rng.integers(len(paths)))]
            return _place(x, y, "staff", STAFF_TYPES[int(rng.integers(2))])
        atts = [("ride", a) for a in state["rides"]] + [("shop", a) for a in state["shops"]]
        if k == "remove":
            if state["staff"] and rng.random() < 0.4:
                s = state["staff"][int(rng.integers(len(state["staff"])))]
                return {"name": "remove", "args": {"x": s["x"], "y": s["y"], "type": "staff",
                                                   "subtype": s["subtype"]}}
            if not atts:
                return WAIT
            kind, a = atts[int(rng.integers(len(atts)))]
            return {"name": "remove", "args": {"x": a["x"], "y": a["y"], "type": kind}}
        if k == "modify":
            if not atts:
                return WAIT
            kind, a = atts[int(rng.integers(len(atts)))]
            mx = (RIDES if kind == "ride" else SHOPS)[a["subtype"]][a["subclass"]]["max_price"]
            return {"name": "modify", "args": {"x": a["x"], "y": a["y"], "price": float(rng.integers(0, int(mx) + 1))}}
        if not state["staff"]:
            return WAIT
        s = state["staff"][int(rng.integers(len(state["staff"])))]
        nx, ny = paths[int(rng.integers(len(paths)))]
        return {"name": "move", "args": {"x": s["x"], "y": s["y"], "new_x": nx, "new_y": ny,
                                         "subtype": s["subtype"]}}

    # -- invalid -------------------------------------------------------------------------
    def invalid_action(self, state: dict, rng: np.random.Generator, tries: int = 20) -> dict | str:
        """An action that the rules refuse (checked); falls back to malformed text."""
        for _ in range(tries):
            kind = self.INVALID_KINDS[int(rng.integers(len(self.INVALID_KINDS)))]
            a = self.make_invalid(state, kind, rng)
            if a is None:
                continue
            _, ok, _, _ = apply_action(state, a)
            if not ok:
                return a
        return "place(x=1, y="

    def make_invalid(self, state: dict, kind: str, rng: np.random.Generator) -> dict | str | None:
        """One action meant to fail for reason ``kind`` (None when the park makes that impossible)."""
        spots = free_spots(state)
        money = float(state["money"])
        if kind == "malformed":
            return ["place(x=1, y=", "build a ride please", "wait(", "place(1, 2)",
                    "remove(x=one, y=2, type='ride')"][int(rng.integers(5))]
        if kind == "not_affordable":
            if not spots:
                return None
            options = [(sub, col) for sub in RIDE_TYPES for col in COLOURS
                       if RIDES[sub][col]["building_cost"] > money]
            if not options:
                return None
            sub, col = options[int(rng.integers(len(options)))]
            x, y = spots[int(rng.integers(len(spots)))]
            return _place(x, y, "ride", sub, col, RIDES[sub][col]["max_price"])
        if kind == "out_of_bounds":
            x = int(rng.choice([-1, GRID_SIZE, GRID_SIZE + 3]))
            return _place(x, int(rng.integers(GRID_SIZE)), "ride", "carousel", "yellow", 1)
        if kind == "occupied":
            taken = state["paths"] + [[a["x"], a["y"]] for a in state["rides"] + state["shops"]]
            x, y = taken[int(rng.integers(len(taken)))]
            return _place(x, y, "shop", "drink", "yellow", 1)
        if kind == "not_adjacent_to_path":
            paths = {tuple(p) for p in state["paths"]}
            far = [(x, y) for x in range(GRID_SIZE) for y in range(GRID_SIZE)
                   if all((x + dx, y + dy) not in paths for dx in (-1, 0, 1) for dy in (-1, 0, 1))]
            if not far:
                return None
            x, y = far[int(rng.integers(len(far)))]
            return _place(x, y, "shop", "food", "yellow", 1)
        if kind == "price_above_max":
            if not spots:
                return None
            x, y = spots[int(rng.integers(len(spots)))]
            return _place(x, y, "ride", "carousel", "yellow", RIDES["carousel"]["yellow"]["max_price"] + 1 +
                          int(rng.integers(10)))
        if kind == "unknown_kind":
            if not spots:
                return None
            x, y = spots[int(rng.integers(len(spots)))]
            return [_place(x, y, "ride", "bumper_cars", "yellow", 1), _place(x, y, "shop", "drink", "purple", 1),
                    _place(x, y, "hotel", "carousel", "yellow", 1)][int(rng.integers(3))]
        if kind == "no_attraction":
            x, y = spots[0] if spots else (0, 0)
            return {"name": "remove", "args": {"x": x, "y": y, "type": "ride"}}
        if kind == "not_on_path":
            if not spots:
                return None
            x, y = spots[int(rng.integers(len(spots)))]
            return _place(x, y, "staff", "janitor")
        return None


def make_agent(kind: str, spec_or_env: Any = None, invalid_rate: float = 0.0, seed: int = 0):
    """Build an agent by name: "heuristic" or "random" (``spec_or_env`` is accepted and unused)."""
    if kind == "heuristic":
        return HeuristicAgent(seed=seed)
    if kind == "random":
        return RandomAgent(invalid_rate=invalid_rate, seed=seed)
    raise ValueError(f"unknown theme_park agent {kind!r}; choose 'heuristic' or 'random'")


__all__ = ["HeuristicAgent", "RandomAgent", "make_agent", "free_spots"]
