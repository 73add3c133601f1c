"""The coffee shop's action proposer (appendix C.4 rules plus the shop's own sampling).

Action kinds uniform (set a price, buy beans, buy milk, upgrade, clean); purchase sizes from a
coarse grid (10 sizes over the argument's range) so the branching factor stays small; a new price
is the current one moved by a multiple of ``price_step`` within ``max_price_change``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..base import EnvSpec
from ..proposer_base import Proposer, grid_values


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
                self.sizes[name] = grid_values(lo, hi, n_sizes, integer=True)
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


__all__ = ["CoffeeShopProposer"]
