"""Agents for the theme park: a rule-based heuristic and a random agent with invalid actions.

Both follow :class:`cassandra_wm.agents.Agent`: ``act(state, rng) -> action dict`` (``rng`` may
be left out; the agent's own seeded generator is used then), and with probability
``invalid_rate`` they send an action that breaks a rule.  ``AGENTS`` maps kinds to classes for
:func:`cassandra_wm.agents.make_agent`; :func:`make_agent` here builds them directly.

* :class:`HeuristicAgent` grows the park sensibly: a carousel first, then a drink and a food
  shop, then ever better rides while keeping a cash reserve, a drink:food:specialty shop mix
  near 4:3:2 (the ratio the paper's planners were biased toward), a mechanic once rides break
  and janitors when the park gets dirty.  It also uses every other action, with some
  randomness, so that its data shows each of them succeed: it moves prices with demand
  (``modify``), sells attractions that lose money or make room for better rides (``remove``),
  sends staff where they are needed (``move``) and waits while it saves up for a ride or has
  nothing worth doing (``wait``).
* :class:`RandomAgent` picks a random valid action (checked against the rules without running
  a day).

Invalid actions (either agent) break one rule of the park: unaffordable, out of bounds,
occupied tile, not next to a path, price above the maximum or negative, unknown kind, nothing
to remove or re-price, no staff to move or dismiss, staff off the paths, or a malformed action
(unknown name, bad or missing argument); the rule is carried by ``place``, ``modify``,
``remove`` and ``move`` actions alike.  The paper's rule-learning data used a rate of 0.2.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..agent_base import Agent
from ..base import EnvSpec
from .actions import apply_action
from .params import CHOICES, COLOURS, GRID_SIZE, RIDE_TYPES, RIDES, SHOP_TYPES, SHOPS, STAFF, STAFF_TYPES


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
    """A sensible rule-based park manager with some randomness (see the module docstring).

    Each day it goes down a list of priorities and takes the first that applies:

    1. hire a mechanic when a ride is broken, a janitor when the park gets dirty (as money allows);
    2. send a mechanic to a broken ride that no mechanic stands near (``move``);
    3. when cash is below the reserve after a losing day: sell one of the (up to three)
       attractions that lost the most (``remove``), else dismiss a janitor, else wait;
    4. on a share ``tweak_rate`` of days, look after the park instead of building: a price change
       driven by yesterday's demand (``modify``), a staff member sent to where the dirt or the
       breakdown risk is (``move``), the sale of an attraction that lost money or the dismissal
       of a janitor the clean park does not need (``remove``);
    5. build: shops in a drink:food:specialty mix near 4:3:2 (one shop for every two rides), else
       the best ride it can afford within ``save_days`` days of yesterday's profit while keeping
       the reserve; when that ride is not affordable yet, it waits (saves up).  New attractions
       open at the price ceiling or, on 40% of builds, a little below it;
    6. a full park: now and then sell its weakest ride to make room for a better one, adjust a
       price, or wait.

    Args:
        spec: the environment's spec (optional; accepted for :func:`cassandra_wm.agents.make_agent`).
        invalid_rate: share of days on which it sends a rule-breaking action instead.
        seed: for its own random generator, used when ``act`` gets no ``rng``.
        price_cap: never charge more than this (guests carry limited money).
        reserve_days: keep this many days of fixed costs (shops, salaries) in cash, at least $150.
        tweak_rate: share of days spent on prices, staff moves or sales instead of building.
        save_days: how many days of yesterday's profit it is willing to wait for a better ride.
    """

    name = "heuristic"

    def __init__(self, spec: EnvSpec | None = None, invalid_rate: float = 0.0, seed: int | None = None,
                 price_cap: float = 15.0, reserve_days: float = 3.0, tweak_rate: float = 0.2,
                 save_days: float = 0.5):
        super().__init__(spec, invalid_rate=invalid_rate, seed=seed)
        if not 0.0 <= float(tweak_rate) <= 1.0:
            raise ValueError(f"tweak_rate must be in [0, 1], got {tweak_rate!r}")
        if float(save_days) < 0 or float(reserve_days) < 0 or float(price_cap) <= 0:
            raise ValueError(f"need save_days >= 0, reserve_days >= 0 and price_cap > 0; got "
                             f"{save_days!r}, {reserve_days!r}, {price_cap!r}")
        self.price_cap = float(price_cap)
        self.reserve_days = float(reserve_days)
        self.tweak_rate = float(tweak_rate)
        self.save_days = float(save_days)

    def describe(self) -> dict:
        d = super().describe()
        d.update(price_cap=self.price_cap, reserve_days=self.reserve_days, tweak_rate=self.tweak_rate,
                 save_days=self.save_days)
        return d

    def _price(self, table: dict, sub: str, col: str) -> float:
        return float(min(table[sub][col]["max_price"], self.price_cap))

    def _opening_price(self, table: dict, sub: str, col: str, rng: np.random.Generator) -> float:
        """The price a new attraction opens at: the ceiling (``price_cap`` or the published maximum)
        on 60% of builds, else 60-100% of it in half dollars, so later price changes go both ways."""
        cap = self._price(table, sub, col)
        if cap <= 0 or rng.random() < 0.6:
            return cap
        return float(min(cap, max(0.5, round(rng.uniform(0.6, 1.0) * cap * 2) / 2)))

    def _reserve(self, state: dict) -> float:
        return max(150.0, self.reserve_days * float(state["daily_fixed_costs"]))

    def choose(self, state: dict, rng: np.random.Generator) -> dict:
        if state.get("game_over"):
            return WAIT
        money = float(state["money"])
        reserve = self._reserve(state)
        rides, staff = state["rides"], state["staff"]
        n_mech = sum(1 for s in staff if s["subtype"] == "mechanic")
        n_jan = sum(1 for s in staff if s["subtype"] == "janitor")
        # 1. a mechanic as soon as something breaks, a janitor when the park gets dirty
        broken = [r for r in rides if r["broken"]]
        if broken and n_mech < 1 + len(rides) // 10 and money >= STAFF["mechanic"]["salary"] + reserve:
            x, y = _nearest_path(state, broken[0]["x"], broken[0]["y"])
            return _place(x, y, "staff", "mechanic")
        if (state["min_cleanliness"] < 0.5 and n_jan < 1 + len(rides) // 6
                and money >= STAFF["janitor"]["salary"] * 3 + reserve and state["profit"] > 100):
            x, y = _dirtiest_path(state)
            return _place(x, y, "staff", "janitor")
        # 2. a mechanic to a broken ride nobody is near
        if broken and rng.random() < 0.7:
            a = _mechanic_to_broken(state, broken)
            if a is not None:
                return a
        # 3. short of cash after a losing day
        if money < reserve and float(state["profit"]) < 0:
            a = _sell_loser(state, rng, keep_rides=1)
            if a is None and n_jan:
                jan = next(s for s in staff if s["subtype"] == "janitor")
                a = {"name": "remove", "args": {"x": jan["x"], "y": jan["y"], "type": "staff", "subtype": "janitor"}}
            return a if a is not None else WAIT
        # 4. look after the park instead of building, now and then
        if rides and rng.random() < self.tweak_rate:
            for kind in rng.permutation(["modify", "modify", "modify", "move", "move", "remove", "remove", "dismiss"]):
                if kind == "modify":
                    a = self._price_change(state, rng)
                elif kind == "move":
                    a = _reposition_staff(state, rng)
                elif kind == "remove":
                    a = _sell_loser(state, rng, keep_rides=3)
                else:
                    a = _dismiss_janitor(state, rng)
                if a is not None:
                    return a
        # 5. build, or save up for something better
        spots = free_spots(state)
        if spots:
            return self._build(state, spots, money, reserve, rng)
        # 6. the park is full
        u = rng.random()
        if u < 0.25:
            a = self._make_room(state, money, reserve)
            if a is not None:
                return a
        elif u < 0.5:
            a = self._price_change(state, rng)
            if a is not None:
                return a
        return WAIT

    def _build(self, state: dict, spots: list[tuple[int, int]], money: float, reserve: float,
               rng: np.random.Generator) -> dict:
        x, y = spots[0]
        rides, shops = state["rides"], state["shops"]
        if not rides:
            if money >= RIDES["carousel"]["yellow"]["building_cost"]:
                return _place(x, y, "ride", "carousel", "yellow", self._opening_price(RIDES, "carousel", "yellow", rng))
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
                return _place(x, y, "shop", sub, col, self._opening_price(SHOPS, sub, col, rng))
        # the best ride within reach (now, or after saving up to save_days of yesterday's profit)
        reach = money - reserve + self.save_days * max(float(state["profit"]), 0.0)
        best = self._best_ride(rides, reach)
        if best is None:
            return WAIT
        _, sub, col = best
        if money - RIDES[sub][col]["building_cost"] < reserve:
            return WAIT   # saving up for it
        return _place(x, y, "ride", sub, col, self._opening_price(RIDES, sub, col, rng))

    @staticmethod
    def _best_ride(rides: list[dict], budget: float) -> tuple[float, str, str] | None:
        """The best-scoring ride costing at most ``budget``: excitement and capacity, mean intensity near 5,
        few breakdowns."""
        best = None
        n = len(rides)
        mean_int = sum(r["intensity"] for r in rides) / n if n else 5.0
        for sub in RIDE_TYPES:
            for col in COLOURS:
                p = RIDES[sub][col]
                if p["building_cost"] > budget:
                    continue
                score = _ride_score(p, mean_int, n)
                if best is None or score > best[0]:
                    best = (score, sub, col)
        return best

    def _make_room(self, state: dict, money: float, reserve: float) -> dict | None:
        """In a full park, sell the weakest ride when a clearly better one is affordable."""
        rides = state["rides"]
        if len(rides) < 2:
            return None
        n = len(rides)
        mean_int = sum(r["intensity"] for r in rides) / n
        worst = min(rides, key=lambda r: (_ride_score(RIDES[r["subtype"]][r["subclass"]], mean_int, n),
                                          r["revenue_today"], r["id"]))
        refund = CHOICES["sell_back_fraction"] * worst["building_cost"]
        best = self._best_ride([r for r in rides if r is not worst], money + refund - reserve)
        if best is None:
            return None
        worst_score = _ride_score(RIDES[worst["subtype"]][worst["subclass"]], mean_int, n)
        if best[0] < worst_score + 2.0:
            return None
        return {"name": "remove", "args": {"x": worst["x"], "y": worst["y"], "type": "ride",
                                           "subtype": worst["subtype"]}}

    def _price_change(self, state: dict, rng: np.random.Generator) -> dict | None:
        """A price step for one attraction, in the direction yesterday's demand suggests.

        Rides: raise when runs were at least 45% full, lower below 15%. Shops: raise when at
        least a fifth of the guests bought there, lower below 3%. Steps are 10-30% of the
        price ceiling (at least $0.50); prices stay between half the ceiling and the ceiling.
        """
        guests = int(state["guests_today"])
        options = []
        for kind, recs in (("ride", state["rides"]), ("shop", state["shops"])):
            table = RIDES if kind == "ride" else SHOPS
            for a in recs:
                cap = self._price(table, a["subtype"], a["subclass"])
                if cap <= 0:
                    continue
                if kind == "ride":
                    if a["broken"] or guests < 10:
                        continue
                    load = a["riders_today"] / max(1, a["operations_today"] * a["capacity"])
                    direction = 1 if load >= 0.45 else (-1 if load < 0.15 else 0)
                else:
                    if guests < 10:
                        continue
                    share = a["customers_today"] / guests
                    direction = 1 if share >= 0.2 else (-1 if share < 0.03 else 0)
                price, floor = float(a["price"]), round(max(0.5, 0.5 * cap), 2)
                if direction == 0 or (direction > 0 and price >= cap) or (direction < 0 and price <= floor):
                    continue
                options.append((kind, a, cap, floor, direction))
        if not options:
            return None
        kind, a, cap, floor, direction = options[int(rng.integers(len(options)))]
        step = max(0.5, round(float(rng.choice([0.1, 0.2, 0.3])) * cap * 2) / 2)
        new = round(min(cap, max(floor, float(a["price"]) + direction * step)), 2)
        return {"name": "modify", "args": {"x": a["x"], "y": a["y"], "price": new, "type": kind}}


def _ride_score(p: dict, mean_int: float, n: int) -> float:
    """How much the heuristic wants a ride with published parameters ``p`` added to ``n`` rides."""
    new_int = (mean_int * n + p["intensity"]) / (n + 1)
    return p["excitement"] * 2 + p["capacity"] / 5 - abs(new_int - 5.0) - p["breakdown_rate"] * 50


def _daily_result(kind: str, a: dict) -> float:
    """What an attraction earned yesterday after its own running costs."""
    if kind == "ride":
        return float(a["revenue_today"]) - a["operations_today"] * float(a["cost_per_operation"])
    return float(a["revenue_today"]) - float(a["operating_cost"])


def _sell_loser(state: dict, rng: np.random.Generator, keep_rides: int) -> dict | None:
    """Sell one of the (up to three) attractions that lost the most money yesterday; rides only while
    more than ``keep_rides`` stay, broken rides never (they earn nothing until repaired)."""
    losers = []
    if len(state["rides"]) > keep_rides:
        losers += [(_daily_result("ride", r), "ride", r) for r in state["rides"] if not r["broken"]]
    losers += [(_daily_result("shop", s), "shop", s) for s in state["shops"]]
    losers = sorted((t for t in losers if t[0] < 0), key=lambda t: (t[0], t[2]["id"]))[:3]
    if not losers:
        return None
    _, kind, a = losers[int(rng.integers(len(losers)))]
    return {"name": "remove", "args": {"x": a["x"], "y": a["y"], "type": kind, "subtype": a["subtype"]}}


def _dismiss_janitor(state: dict, rng: np.random.Generator) -> dict | None:
    """Dismiss one of several janitors when even the dirtiest tile is fairly clean (>= 0.8)."""
    jans = [s for s in state["staff"] if s["subtype"] == "janitor"]
    if len(jans) < 2 or float(state["min_cleanliness"]) < 0.8:
        return None
    j = jans[int(rng.integers(len(jans)))]
    return {"name": "remove", "args": {"x": j["x"], "y": j["y"], "type": "staff", "subtype": "janitor"}}


def _access_path(state: dict, x: int, y: int) -> tuple[int, int]:
    """The path tile touching (x, y), or the nearest path tile when none touches it."""
    paths = {tuple(p) for p in state["paths"]}
    for dx, dy in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        if (x + dx, y + dy) in paths:
            return x + dx, y + dy
    return _nearest_path(state, x, y)


def _move(s: dict, to: tuple[int, int]) -> dict:
    return {"name": "move", "args": {"x": s["x"], "y": s["y"], "new_x": int(to[0]), "new_y": int(to[1]),
                                     "subtype": s["subtype"]}}


def _dist(a: dict, t: tuple[int, int]) -> int:
    return abs(a["x"] - t[0]) + abs(a["y"] - t[1])


def _mechanic_to_broken(state: dict, broken: list[dict]) -> dict | None:
    """Move the nearest mechanic to a broken ride that has no mechanic within 3 tiles."""
    mechs = [s for s in state["staff"] if s["subtype"] == "mechanic"]
    for r in broken:
        target = _access_path(state, r["x"], r["y"])
        if mechs and all(_dist(m, target) > 3 for m in mechs):
            m = min(mechs, key=lambda m: (_dist(m, target), m["id"]))
            return _move(m, target)
    return None


def _reposition_staff(state: dict, rng: np.random.Generator) -> dict | None:
    """Send a janitor to the dirtiest path tile, or a mechanic next to the ride most likely to break,
    when no one of that kind stands within 3 tiles of it."""
    options = []
    jans = [s for s in state["staff"] if s["subtype"] == "janitor"]
    if jans:
        target = _dirtiest_path(state)
        if state["cleanliness"][target[1]][target[0]] < 0.9 and all(_dist(j, target) > 3 for j in jans):
            options.append(_move(jans[int(rng.integers(len(jans)))], target))
    mechs = [s for s in state["staff"] if s["subtype"] == "mechanic"]
    if mechs and state["rides"]:
        risky = max(state["rides"], key=lambda r: (r["breakdown_rate"] * r["operations_today"], -r["id"]))
        target = _access_path(state, risky["x"], risky["y"])
        if risky["operations_today"] > 0 and all(_dist(m, target) > 3 for m in mechs):
            options.append(_move(mechs[int(rng.integers(len(mechs)))], target))
    if not options:
        return None
    return options[int(rng.integers(len(options)))]


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
                 "price_above_max", "negative_price", "unknown_kind", "no_attraction", "no_staff",
                 "not_on_path", "malformed")


def _attraction(state: dict, rng: np.random.Generator) -> tuple[str, dict] | None:
    """A random ride or shop of the park with a price to set, with its kind."""
    atts = [("ride", a) for a in state["rides"]] + [("shop", a) for a in state["shops"]
                                                     if SHOPS[a["subtype"]][a["subclass"]]["max_price"] > 0]
    return atts[int(rng.integers(len(atts)))] if atts else None


def make_invalid(state: dict, kind: str, rng: np.random.Generator) -> dict | None:
    """One action meant to fail for reason ``kind`` (None when the park makes that impossible).

    The broken rule is carried by varied actions: prices by ``place`` or ``modify``, missing
    targets by ``remove``, ``modify`` or ``move``, staff positions by ``place`` or ``move``.
    """
    spots = free_spots(state)
    money = float(state["money"])
    staff = state["staff"]
    coin = rng.random()   # which action carries the broken rule, where several can
    if kind == "malformed":   # kept as dicts, so stored trajectories hold only action dicts
        return [{"name": "build", "args": {"x": 1, "y": 2}},
                {"name": "place", "args": {"x": "one", "y": 2, "type": "ride", "subtype": "carousel",
                                           "subclass": "yellow", "price": 1}},
                {"name": "modify", "args": {"x": 1, "y": 2}},
                {"name": "move", "args": {"x": 1, "y": 2, "new_x": 3}},
                {"name": "wait", "args": {"days": 2}}][int(rng.integers(5))]
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
        if staff and coin < 0.3:
            return _move(staff[int(rng.integers(len(staff)))], (x, int(rng.integers(GRID_SIZE))))
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
    if kind in ("price_above_max", "negative_price"):
        target = _attraction(state, rng)
        if target is not None and coin < 0.5:
            k, a = target
            mx = (RIDES if k == "ride" else SHOPS)[a["subtype"]][a["subclass"]]["max_price"]
            price = (mx + 1 + int(rng.integers(10))) if kind == "price_above_max" else -1.0 - int(rng.integers(5))
            return {"name": "modify", "args": {"x": a["x"], "y": a["y"], "price": float(price), "type": k}}
        if not spots:
            return None
        x, y = spots[int(rng.integers(len(spots)))]
        mx = RIDES["carousel"]["yellow"]["max_price"]
        price = (mx + 1 + int(rng.integers(10))) if kind == "price_above_max" else -1.0 - int(rng.integers(5))
        return _place(x, y, "ride", "carousel", "yellow", price)
    if kind == "unknown_kind":
        if not spots:
            return None
        x, y = spots[int(rng.integers(len(spots)))]
        return [_place(x, y, "ride", "bumper_cars", "yellow", 1), _place(x, y, "shop", "drink", "purple", 1),
                _place(x, y, "hotel", "carousel", "yellow", 1)][int(rng.integers(3))]
    if kind == "no_attraction":
        x, y = spots[int(rng.integers(len(spots)))] if spots else (0, 0)
        if coin < 0.35:
            return {"name": "modify", "args": {"x": x, "y": y, "price": 1.0}}
        return {"name": "remove", "args": {"x": x, "y": y, "type": ["ride", "shop"][int(rng.integers(2))]}}
    if kind == "no_staff":
        manned = {(s["x"], s["y"]) for s in staff}
        empty = [tuple(p) for p in state["paths"] if tuple(p) not in manned]
        if not empty:
            return None
        x, y = empty[int(rng.integers(len(empty)))]
        sub = STAFF_TYPES[int(rng.integers(len(STAFF_TYPES)))]
        if coin < 0.5:
            nx, ny = state["paths"][int(rng.integers(len(state["paths"])))]
            return {"name": "move", "args": {"x": x, "y": y, "new_x": nx, "new_y": ny, "subtype": sub}}
        return {"name": "remove", "args": {"x": x, "y": y, "type": "staff", "subtype": sub}}
    if kind == "not_on_path":
        if not spots:
            return None
        x, y = spots[int(rng.integers(len(spots)))]
        if staff and coin < 0.5:
            return _move(staff[int(rng.integers(len(staff)))], (x, y))
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
