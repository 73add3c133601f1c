"""Agents for the theme park: a rule-based heuristic and a random agent with invalid actions.

Both follow :class:`cassandra_wm.agents.Agent`: ``act(state, rng) -> action dict`` (``rng`` may
be left out; the agent's own seeded generator is used then), and with probability
``invalid_rate`` they send an action that breaks a rule.  ``AGENTS`` maps kinds to classes for
:func:`cassandra_wm.agents.make_agent`; :func:`make_agent` here builds them directly.

* :class:`HeuristicAgent` grows the park sensibly: a carousel first, then a drink and a food
  shop, then ever better rides while keeping a cash reserve, a drink:food:specialty shop mix
  near 4:3:2 (the ratio the paper's planners were biased toward), a mechanic once rides break
  and janitors when the park gets dirty.
* :class:`RandomAgent` picks a random valid action (checked against the rules without running
  a day).

Invalid actions (either agent) break one rule of the park: unaffordable, out of bounds,
occupied tile, not next to a path, price above the maximum, unknown kind, nothing to remove,
staff off the paths, or a malformed action (unknown name, bad or missing argument); the paper's rule-learning data used a rate of 0.2.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...agents import Agent
from ..base import EnvSpec
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


class _ParkAgent(Agent):
    """Shared parts: optional spec and rng, rule-breaking invalid actions."""

    def __init__(self, spec: EnvSpec | None = None, invalid_rate: float = 0.0, seed: int | None = None):
        if spec is None:
            from .spec import build_spec
            spec = build_spec()
        super().__init__(spec, invalid_rate=invalid_rate, seed=seed)
        self.rng = np.random.default_rng(seed)

    def act(self, state: dict, rng: np.random.Generator | None = None) -> dict:
        """The next action (an invalid one with probability ``invalid_rate``)."""
        return super().act(state, self.rng if rng is None else rng)

    def invalid_action(self, state: dict, rng: np.random.Generator, tries: int = 20) -> dict:
        """An action dict that the park's rules refuse (checked); falls back to an unknown action."""
        for _ in range(tries):
            kind = INVALID_KINDS[int(rng.integers(len(INVALID_KINDS)))]
            a = make_invalid(state, kind, rng)
            if a is None:
                continue
            _, ok, _, _ = apply_action(state, a)
            if not ok:
                return a
        return {"name": "build", "args": {}}


class HeuristicAgent(_ParkAgent):
    """A sensible rule-based park manager (see the module docstring).

    Args:
        spec: the environment's spec (optional; accepted for :func:`cassandra_wm.agents.make_agent`).
        invalid_rate: share of days on which it sends a rule-breaking action instead.
        seed: for its own random generator, used when ``act`` gets no ``rng``.
        price_cap: never charge more than this (guests carry limited money).
        reserve_days: keep this many days of fixed costs (shops, salaries) in cash, at least $150.
    """

    name = "heuristic"

    def __init__(self, spec: EnvSpec | None = None, invalid_rate: float = 0.0, seed: int | None = None,
                 price_cap: float = 15.0, reserve_days: float = 3.0):
        super().__init__(spec, invalid_rate=invalid_rate, seed=seed)
        self.price_cap = float(price_cap)
        self.reserve_days = float(reserve_days)

    def describe(self) -> dict:
        d = super().describe()
        d.update(price_cap=self.price_cap, reserve_days=self.reserve_days)
        return d

    def _price(self, table: dict, sub: str, col: str) -> float:
        return float(min(table[sub][col]["max_price"], self.price_cap))

    def choose(self, state: dict, rng: np.random.Generator) -> dict:
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


class RandomAgent(_ParkAgent):
    """Random valid actions (checked with the action rules, no day simulated), or with
    probability ``invalid_rate`` an action that breaks a rule.

    ``wait_weight`` is the relative weight of waiting among the kinds of action it draws.
    """

    name = "random"

    def __init__(self, spec: EnvSpec | None = None, invalid_rate: float = 0.0, seed: int | None = None,
                 wait_weight: float = 0.3):
        super().__init__(spec, invalid_rate=invalid_rate, seed=seed)
        self.wait_weight = float(wait_weight)

    def choose(self, state: dict, rng: np.random.Generator) -> dict:
        return self.valid_action(state, rng)

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



INVALID_KINDS = ("not_affordable", "out_of_bounds", "occupied", "not_adjacent_to_path",
                 "price_above_max", "unknown_kind", "no_attraction", "not_on_path", "malformed")


def make_invalid(state: dict, kind: str, rng: np.random.Generator) -> dict | None:
    """One action meant to fail for reason ``kind`` (None when the park makes that impossible)."""
    spots = free_spots(state)
    money = float(state["money"])
    if kind == "malformed":   # kept as dicts, so stored trajectories hold only action dicts
        return [{"name": "build", "args": {"x": 1, "y": 2}},
                {"name": "place", "args": {"x": "one", "y": 2, "type": "ride", "subtype": "carousel",
                                           "subclass": "yellow", "price": 1}},
                {"name": "modify", "args": {"x": 1, "y": 2}},
                {"name": "wait", "args": {"days": 2}}][int(rng.integers(4))]
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


AGENTS = {"heuristic": HeuristicAgent, "random": RandomAgent}


def make_agent(kind: str, spec_or_env: Any = None, invalid_rate: float = 0.0, seed: int | None = 0) -> Agent:
    """Build a theme-park agent by name: "heuristic" or "random"."""
    if kind not in AGENTS:
        raise ValueError(f"unknown theme_park agent {kind!r}; choose from {sorted(AGENTS)}")
    spec = getattr(spec_or_env, "spec", spec_or_env)
    return AGENTS[kind](spec if isinstance(spec, EnvSpec) else None, invalid_rate=invalid_rate, seed=seed)


__all__ = ["HeuristicAgent", "RandomAgent", "AGENTS", "make_agent", "make_invalid", "free_spots", "INVALID_KINDS"]
