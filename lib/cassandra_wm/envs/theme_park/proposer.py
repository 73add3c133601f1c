"""The theme park's action proposer (the appendix C.4 heuristics; see the class docstring)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..base import EnvSpec, format_action
from ..proposer_base import Proposer


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
        from .params import COLOURS, RIDE_TYPES, RIDES, SHOPS, STAFF_TYPES
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


__all__ = ["ThemeParkProposer"]
