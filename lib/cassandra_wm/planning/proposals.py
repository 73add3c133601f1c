"""Action-proposal heuristics: which actions the planners consider in a state.

Appendix C.4 samples a set of candidate actions per tree node (100 draws before
de-duplication) from a hand-written heuristic.  The rules kept for every
environment here:

* the wait action is always proposed, exactly once (it comes first);
* at most one price change is proposed per set;
* invalid actions are never proposed: each candidate is checked with the
  validity test of the deterministic source the planner uses (the simulator's
  preconditions, or the learned code model's);
* candidates are de-duplicated by their text form.

Per-environment proposers add their own sampling rules:

* :class:`CoffeeShopProposer`: uniform over the action kinds (set a price, buy
  beans, buy milk, upgrade, clean); purchase sizes from a coarse grid (10 sizes
  over the argument's range) so the branching factor stays small; a new price
  is the current one moved by a multiple of ``price_step`` within
  ``max_price_change``.
* :class:`SpecProposer`: a fallback for any environment, sampling action kinds
  uniformly and numeric arguments from a grid over their declared ranges.

* :class:`ThemeParkProposer`: the theme-park rules of appendix C.4 (see its
  docstring).

Add a proposer for a new environment by subclassing :class:`Proposer`,
implementing ``_draw(state, rng)`` (one random candidate), optionally ``key``
(what counts as a duplicate), and registering it in ``PROPOSERS``.
"""
from __future__ import annotations

import abc
from typing import Any, Callable

import numpy as np

from ..envs.base import EnvSpec, format_action

Checker = Callable[[dict, dict], tuple[bool, Any]]


def _checker_from(source: Any) -> Checker:
    """A ``(state, action) -> (ok, reason)`` test from a deterministic source, an env or a function."""
    if callable(getattr(source, "check", None)):
        return source.check
    if callable(getattr(source, "check_action", None)):
        def check_env(state: dict, action: dict) -> tuple[bool, Any]:
            _, err = source.check_action(state, action)
            return err is None, err
        return check_env
    if callable(getattr(source, "deterministic_step", None)):
        def check_det(state: dict, action: dict) -> tuple[bool, Any]:
            _, ok, err = source.deterministic_step(state, action)
            return bool(ok), err
        return check_det
    if callable(source):
        return source
    raise TypeError(f"cannot test action validity with a {type(source).__name__}")


class Proposer(abc.ABC):
    """Base class: draws candidates with ``_draw`` and applies the shared rules."""

    price_actions: tuple[str, ...] = ("set_price",)

    def __init__(self, spec: EnvSpec, validity: Any, wait_name: str = "wait"):
        self.spec = spec
        self.check = _checker_from(validity)
        try:
            spec.action(wait_name)
        except KeyError:
            raise ValueError(f"{spec.name} has no {wait_name!r} action for the proposer to keep") from None
        self._wait = {"name": wait_name, "args": {}}
        self.stats = {"drawn": 0, "duplicates": 0, "invalid": 0, "extra_price_changes": 0}

    def wait_action(self) -> dict:
        """The do-nothing action (a fresh dict each call)."""
        return {"name": self._wait["name"], "args": {}}

    def key(self, action: dict) -> str:
        """What makes two candidates duplicates (default: the same text form)."""
        return format_action(action)

    @abc.abstractmethod
    def _draw(self, state: dict, rng: np.random.Generator) -> dict | None:
        """One random candidate action (or None to skip this draw)."""

    def propose(self, state: dict, rng: np.random.Generator, n: int = 100) -> list[dict]:
        """Draw ``n`` candidates and return the distinct valid ones, wait first."""
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        wait = self.wait_action()
        out = [wait]
        seen = {self.key(wait)}
        price_taken = False
        for _ in range(int(n)):
            act = self._draw(state, rng)
            self.stats["drawn"] += 1
            if act is None:
                continue
            key = self.key(act)
            if key in seen:
                self.stats["duplicates"] += 1
                continue
            seen.add(key)
            is_price = act["name"] in self.price_actions
            if is_price and price_taken:
                self.stats["extra_price_changes"] += 1
                continue
            ok, _ = self.check(state, act)
            if not ok:
                self.stats["invalid"] += 1
                continue
            price_taken = price_taken or is_price
            out.append(act)
        return out


def _grid(low: float, high: float, k: int, integer: bool) -> list:
    if integer:
        vals = np.unique(np.round(np.linspace(max(low, high / k), high, k)).astype(int))
        return [int(v) for v in vals if low <= v <= high]
    return [float(v) for v in np.linspace(low, high, k)]


class CoffeeShopProposer(Proposer):
    """Candidates for the coffee shop (see the module docstring)."""

    def __init__(self, spec: EnvSpec, validity: Any, n_sizes: int = 10, price_step: float = 0.25,
                 max_price_change: float = 2.0, kinds: tuple[str, ...] | None = None):
        super().__init__(spec, validity)
        self.kinds = tuple(kinds or [a.name for a in spec.actions if a.name != "wait"])
        for k in self.kinds:
            spec.action(k)  # KeyError naming the unknown action
        self.sizes: dict[str, list] = {}
        for name in ("buy_beans", "buy_milk"):
            if name in self.kinds:
                arg = spec.action(name).arg("units")
                lo = arg.low if arg.low is not None else 1
                hi = arg.high if arg.high is not None else 100
                self.sizes[name] = _grid(lo, hi, n_sizes, integer=True)
        self.price_step = float(price_step)
        self.max_price_change = float(max_price_change)
        parg = spec.action("set_price").arg("price") if "set_price" in self.kinds else None
        self.price_bounds = ((parg.low if parg and parg.low is not None else 0.0),
                             (parg.high if parg and parg.high is not None else np.inf))

    def _draw(self, state: dict, rng: np.random.Generator) -> dict | None:
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        if kind in self.sizes:
            sizes = self.sizes[kind]
            return {"name": kind, "args": {"units": sizes[int(rng.integers(len(sizes)))]}}
        if kind == "set_price":
            steps = int(round(self.max_price_change / self.price_step))
            k = int(rng.integers(1, steps + 1)) * (1 if rng.random() < 0.5 else -1)
            new = round(float(state.get("price", 0.0)) + k * self.price_step, 2)
            lo, hi = self.price_bounds
            if not lo <= new <= hi:
                return None
            return {"name": "set_price", "args": {"price": new}}
        spec = self.spec.action(kind)
        if spec.args:
            return None
        return {"name": kind, "args": {}}


class SpecProposer(Proposer):
    """Fallback for any environment: kinds uniform, numeric arguments from a grid over their ranges."""

    def __init__(self, spec: EnvSpec, validity: Any, n_grid: int = 10, wait_name: str = "wait"):
        super().__init__(spec, validity, wait_name)
        self.kinds = [a for a in spec.actions if a.name != wait_name]
        self.grids: dict[tuple[str, str], list] = {}
        for a in self.kinds:
            for arg in a.args:
                if arg.choices:
                    self.grids[(a.name, arg.name)] = list(arg.choices)
                elif arg.type in ("int", "float") and arg.low is not None and arg.high is not None:
                    self.grids[(a.name, arg.name)] = _grid(arg.low, arg.high, n_grid, arg.type == "int")
        self.kinds = [a for a in self.kinds if all((a.name, x.name) in self.grids for x in a.args)]

    def _draw(self, state: dict, rng: np.random.Generator) -> dict | None:
        if not self.kinds:
            return None
        a = self.kinds[int(rng.integers(len(self.kinds)))]
        args = {}
        for x in a.args:
            g = self.grids[(a.name, x.name)]
            args[x.name] = g[int(rng.integers(len(g)))]
        return {"name": a.name, "args": args}


class ThemeParkProposer(Proposer):
    """Candidates for the theme park, after the heuristics listed in appendix C.4.

    * kinds drawn uniformly: build a ride, build a shop, hire staff, remove an attraction or a
      staff member, change one price; staff moves are never proposed (nor guest surveys, which this
      park does not have);
    * builds are placed on one of the ``n_sites`` free tiles next to a path that lie nearest the
      entrance, and charge the published maximum price of what they build;
    * the shop type is drawn towards a drink : food : specialty composition of 4 : 3 : 2 (types
      below their share of the current shops are favoured);
    * candidates that differ only in their tile are duplicates, so at most one hire per staff type
      and one removal per removed kind survive;
    * a price change sets an existing attraction to 100%, 75% or 50% of its maximum price.

    The published parameter tables (maximum prices) are game rules stated in the manual, which
    a hand-written heuristic may use.
    """

    price_actions = ("modify",)
    shop_ratio = {"drink": 4.0, "food": 3.0, "specialty": 2.0}
    kinds_drawn = ("ride", "shop", "staff", "remove", "modify")

    def __init__(self, spec: EnvSpec, validity: Any, n_sites: int = 5):
        super().__init__(spec, validity)
        from ..envs.theme_park.params import COLOURS, RIDE_TYPES, RIDES, SHOPS, STAFF_TYPES
        self.colours, self.ride_types, self.staff_types = COLOURS, RIDE_TYPES, STAFF_TYPES
        self.max_price = {("ride", t): {c: float(p["max_price"]) for c, p in RIDES[t].items()} for t in RIDES}
        self.max_price.update({("shop", t): {c: float(p["max_price"]) for c, p in SHOPS[t].items()}
                               for t in SHOPS})
        self.n_sites = int(n_sites)
        self._sites_cache: tuple[Any, list] | None = None

    def key(self, action: dict) -> str:
        if action["name"] in ("place", "remove"):
            args = {k: v for k, v in action["args"].items() if k not in ("x", "y")}
            return format_action({"name": action["name"], "args": args})
        return format_action(action)

    def sites(self, state: dict) -> list[tuple[int, int]]:
        """The free tiles next to a path nearest the entrance (at most ``n_sites``)."""
        taken = {(a["x"], a["y"]) for a in state.get("rides", []) + state.get("shops", [])}
        paths = {tuple(p) for p in state.get("paths", [])}
        sig = (len(taken), tuple(sorted(taken)), len(paths), tuple(state.get("entrance", ())))
        if self._sites_cache is not None and self._sites_cache[0] == sig:
            return self._sites_cache[1]
        n = int(state.get("grid_size", 20))
        ex, ey = state.get("entrance", (0, 0))
        cands = set()
        for (px, py) in paths:
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                x, y = px + dx, py + dy
                if 0 <= x < n and 0 <= y < n and (x, y) not in paths and (x, y) not in taken:
                    cands.add((x, y))
        out = sorted(cands, key=lambda t: (abs(t[0] - ex) + abs(t[1] - ey), t))[:self.n_sites]
        self._sites_cache = (sig, out)
        return out

    def _shop_type(self, state: dict, rng: np.random.Generator) -> str:
        counts = {t: float(state.get(f"num_{t}_shops", 0)) for t in self.shop_ratio}
        total = sum(counts.values()) + 1.0
        share = sum(self.shop_ratio.values())
        deficit = np.array([max(self.shop_ratio[t] / share - counts[t] / total, 0.0) + 0.05
                            for t in self.shop_ratio])
        types = list(self.shop_ratio)
        return types[int(rng.choice(len(types), p=deficit / deficit.sum()))]

    def _draw(self, state: dict, rng: np.random.Generator) -> dict | None:
        kind = self.kinds_drawn[int(rng.integers(len(self.kinds_drawn)))]
        if kind in ("ride", "shop"):
            sites = self.sites(state)
            if not sites:
                return None
            x, y = sites[int(rng.integers(len(sites)))]
            sub = (self.ride_types[int(rng.integers(len(self.ride_types)))] if kind == "ride"
                   else self._shop_type(state, rng))
            colour = self.colours[int(rng.integers(len(self.colours)))]
            return {"name": "place", "args": {"x": x, "y": y, "type": kind, "subtype": sub, "subclass": colour,
                                              "price": self.max_price[(kind, sub)][colour]}}
        if kind == "staff":
            paths = state.get("paths", [])
            if not paths:
                return None
            x, y = paths[int(rng.integers(len(paths)))]
            sub = self.staff_types[int(rng.integers(len(self.staff_types)))]
            return {"name": "place", "args": {"x": int(x), "y": int(y), "type": "staff", "subtype": sub}}
        if kind == "remove":
            pool = ([("ride", a) for a in state.get("rides", [])] + [("shop", a) for a in state.get("shops", [])]
                    + [("staff", a) for a in state.get("staff", [])])
            if not pool:
                return None
            what, a = pool[int(rng.integers(len(pool)))]
            args = {"x": int(a["x"]), "y": int(a["y"]), "type": what}
            if what == "staff":
                args["subtype"] = a["subtype"]
            return {"name": "remove", "args": args}
        pool = [("ride", a) for a in state.get("rides", [])] + [("shop", a) for a in state.get("shops", [])]
        if not pool:
            return None
        what, a = pool[int(rng.integers(len(pool)))]
        top = self.max_price.get((what, a["subtype"]), {}).get(a["subclass"])
        if top is None:
            return None
        price = round(top * float(rng.choice([1.0, 0.75, 0.5])), 2)
        if abs(price - float(a.get("price", -1))) < 1e-9:
            return None
        return {"name": "modify", "args": {"x": int(a["x"]), "y": int(a["y"]), "price": price, "type": what}}


PROPOSERS: dict[str, type[Proposer]] = {"coffee_shop": CoffeeShopProposer, "theme_park": ThemeParkProposer}


def make_proposer(spec: EnvSpec, validity: Any, **kwargs: Any) -> Proposer:
    """The registered proposer for ``spec.name``, else :class:`SpecProposer`."""
    cls = PROPOSERS.get(spec.name, SpecProposer)
    return cls(spec, validity, **kwargs)


__all__ = ["Proposer", "CoffeeShopProposer", "ThemeParkProposer", "SpecProposer", "PROPOSERS", "make_proposer"]
