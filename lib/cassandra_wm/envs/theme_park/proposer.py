"""The theme park's action proposer (the appendix C.4 heuristics; see the class docstring)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..base import EnvSpec, format_action
from ..proposer_base import Proposer
from .params import COLOURS, RIDE_TYPES, get_params
from .state import free_sites


class ThemeParkProposer(Proposer):
    """Candidates for the theme park, after the heuristics listed in appendix C.4.

    * kinds drawn uniformly: build a ride, build a shop, hire staff, remove an attraction or a
      staff member, change one price; staff moves and guest surveys are never proposed;
    * builds go on one of the ``n_sites`` free tiles next to a (reachable) path nearest the
      entrance, at the maximum price of what they build (shops stock ``order_quantity`` items);
    * the shop type is drawn towards a drink : food : specialty composition of 4 : 3 : 2;
    * candidates that differ only in their tile are duplicates, so at most one hire per staff
      kind and one removal per removed kind survive;
    * a price change sets an existing attraction to 100%, 75% or 50% of its maximum price.

    The parameter tables (maximum prices) are game rules stated in the manual, which a
    hand-written heuristic may use; the set is the one named in the state.
    """

    price_actions = ("modify",)
    shop_ratio = {"drink": 4.0, "food": 3.0, "specialty": 2.0}
    kinds_drawn = ("ride", "shop", "staff", "remove", "modify")

    def __init__(self, spec: EnvSpec, validity: Any, n_sites: int = 5, order_quantity: int = 60):
        super().__init__(spec, validity)
        self.n_sites = int(n_sites)
        self.order_quantity = int(order_quantity)
        self.parameters = spec.notes.get("parameters", "paper")
        p = get_params(self.parameters)
        self.max_price = {("ride", t): {c: p.max_price("ride", t, c) for c in p.rides[t]} for t in p.rides}
        self.max_price.update({("shop", t): {c: p.max_price("shop", t, c) for c in p.shops[t]} for t in p.shops})
        self.staff_kinds = [(k, c) for k, v in p.staff.items() for c in v if k in ("janitor", "mechanic")]

    def key(self, action: dict) -> str:
        if action["name"] in ("place", "remove"):
            args = {k: v for k, v in action["args"].items() if k not in ("x", "y")}
            return format_action({"name": action["name"], "args": args})
        return format_action(action)

    def sites(self, state: dict) -> list[tuple[int, int]]:
        """The free tiles next to a path nearest the entrance (at most ``n_sites``)."""
        return free_sites(state)[:self.n_sites]

    def _shop_type(self, state: dict, rng: np.random.Generator) -> str:
        shops = state["shops"]["shop_list"]
        counts = {t: float(sum(1 for s in shops if s["subtype"] == t)) for t in self.shop_ratio}
        total = sum(counts.values()) + 1.0
        share = sum(self.shop_ratio.values())
        deficit = np.array([max(self.shop_ratio[t] / share - counts[t] / total, 0.0) + 0.05 for t in self.shop_ratio])
        types = list(self.shop_ratio)
        return types[int(rng.choice(len(types), p=deficit / deficit.sum()))]

    def _draw(self, state: dict, rng: np.random.Generator) -> dict | None:
        kind = self.kinds_drawn[int(rng.integers(len(self.kinds_drawn)))]
        if kind in ("ride", "shop"):
            sites = self.sites(state)
            if not sites:
                return None
            x, y = sites[int(rng.integers(len(sites)))]
            sub = RIDE_TYPES[int(rng.integers(len(RIDE_TYPES)))] if kind == "ride" else self._shop_type(state, rng)
            cols = [c for c in COLOURS if c in self.max_price[(kind, sub)]]
            col = cols[int(rng.integers(len(cols)))]
            args = {"x": x, "y": y, "type": kind, "subtype": sub, "subclass": col,
                    "price": self.max_price[(kind, sub)][col]}
            if kind == "shop":
                args["order_quantity"] = self.order_quantity
            return {"name": "place", "args": args}
        if kind == "staff":
            paths = state["paths"]
            if not paths or not self.staff_kinds:
                return None
            t = paths[int(rng.integers(len(paths)))]
            sub, col = self.staff_kinds[int(rng.integers(len(self.staff_kinds)))]
            return {"name": "place", "args": {"x": int(t["x"]), "y": int(t["y"]), "type": "staff", "subtype": sub,
                                              "subclass": col}}
        if kind == "remove":
            pool = ([("ride", a) for a in state["rides"]["ride_list"]] + [("shop", a) for a in state["shops"]["shop_list"]]
                    + [("staff", a) for a in state["staff"]["staff_list"]])
            if not pool:
                return None
            what, a = pool[int(rng.integers(len(pool)))]
            return {"name": "remove", "args": {"x": int(a["x"]), "y": int(a["y"]), "type": what,
                                               "subtype": a["subtype"], "subclass": a["subclass"]}}
        pool = [("ride", a) for a in state["rides"]["ride_list"]] + [("shop", a) for a in state["shops"]["shop_list"]]
        if not pool:
            return None
        what, a = pool[int(rng.integers(len(pool)))]
        top = self.max_price.get((what, a["subtype"]), {}).get(a["subclass"])
        if top is None:
            return None
        price = int(round(top * float(rng.choice([1.0, 0.75, 0.5]))))
        current = a.get("ticket_price", a.get("item_price"))
        if price == current:
            return None
        args = {"x": int(a["x"]), "y": int(a["y"]), "type": what, "price": price}
        if what == "shop":
            args["order_quantity"] = int(a["order_quantity"])
        return {"name": "modify", "args": args}


__all__ = ["ThemeParkProposer"]
