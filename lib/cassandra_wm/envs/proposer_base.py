"""Action proposers: which actions a planner considers in a state (appendix C.4).

The rules every proposer keeps:

* the wait action is always proposed, exactly once (it comes first);
* at most one price change is proposed per set;
* invalid actions are never proposed: each candidate is checked with the
  validity test of the deterministic source the planner uses (the simulator's
  preconditions, or the learned code model's);
* candidates are de-duplicated by their text form.

An environment's own proposer lives in its kit (``envs/<name>/proposer.py``) and
subclasses :class:`Proposer`, implementing ``_draw(state, rng)`` (one random
candidate) and optionally ``key`` (what counts as a duplicate).  :class:`SpecProposer`
is the fallback for an environment without one: action kinds uniform, numeric
arguments from a grid over their declared ranges.
"""
from __future__ import annotations

import abc
from typing import Any, Callable

import numpy as np

from .base import EnvSpec, format_action

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


def grid_values(low: float, high: float, k: int, integer: bool) -> list:
    if integer:
        vals = np.unique(np.round(np.linspace(max(low, high / k), high, k)).astype(int))
        return [int(v) for v in vals if low <= v <= high]
    return [float(v) for v in np.linspace(low, high, k)]


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
                    self.grids[(a.name, arg.name)] = grid_values(arg.low, arg.high, n_grid, arg.type == "int")
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


__all__ = ["Proposer", "SpecProposer", "Checker", "grid_values"]
