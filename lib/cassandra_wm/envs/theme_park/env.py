"""ThemeParkEnv: the Environment wrapper around the day engine."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..base import Environment
from .actions import apply_action
from .layouts import Layout, get_layout, layout_for_seed
from .params import HORIZON, START_MONEY
from .sim import simulate_day, transition
from .spec import BN_VARIABLES, TRUE_GRAPH, build_spec
from .state import copy_park_state, initial_state


class ThemeParkEnv(Environment):
    """Mini-Amusement-Parks-style theme park, easy mode (all attractions, no research, no water).

    Args:
        layout: a layout name or index (see ``layouts.LAYOUTS``); ``None`` picks one from
            ``split`` by the episode seed (seed modulo the number of layouts in the split).
        split: "train", "test" or "all"; which layouts a seed chooses from.
        horizon: days per episode (50 in easy mode).
        start_money: starting budget in dollars (500 in easy mode).
        seed: default seed for :meth:`reset`.

    ``step(action)`` accepts an action dict ``{"name": ..., "args": {...}}`` or its text form and
    never raises on bad input: invalid actions return ``valid=False`` with ``info["error"]`` and
    ``info["reason"]``, and the day runs anyway.
    """

    def __init__(self, layout: str | int | Layout | None = None, split: str = "train",
                 horizon: int = HORIZON, start_money: float = START_MONEY, seed: int | None = None):
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        if int(horizon) < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon!r}")
        if layout is not None:
            get_layout(layout)  # fail early on unknown layouts
        self.layout = layout
        self.split = split
        self.horizon = int(horizon)
        self.start_money = float(start_money)
        self.seed = seed
        self.spec = build_spec(self.horizon, self.start_money)
        self.state: dict | None = None
        self.rng = np.random.default_rng(seed)

    # -- protocol -----------------------------------------------------------------
    def reset(self, seed: int | None = None) -> dict:
        """Start an episode: an empty park on the chosen layout; returns the first state."""
        seed = self.seed if seed is None else seed
        seed = 0 if seed is None else int(seed)
        lay = get_layout(self.layout) if self.layout is not None else layout_for_seed(seed, self.split)
        self.rng = np.random.default_rng(seed)
        self.state = initial_state(lay, self.horizon, self.start_money)
        return copy_park_state(self.state)

    def step(self, action: dict | str) -> tuple[dict, bool, dict]:
        """Apply the morning action (if valid) and run one day."""
        if self.state is None:
            self.reset()
        nxt, valid, info = transition(self.state, action, self.rng)
        self.state = nxt
        return copy_park_state(nxt), valid, info

    def true_graph(self) -> list[tuple[str, str]]:
        """Same-day edges among the six BN variables implied by the engine. Evaluation only."""
        return list(TRUE_GRAPH)

    # -- simulator as a function ----------------------------------------------------
    @staticmethod
    def transition(state: dict, action: Any, rng: np.random.Generator) -> tuple[dict, bool, dict]:
        """Pure-ish step from any state: returns (next_state, valid, info); ``state`` is untouched."""
        return transition(state, action, rng)

    @staticmethod
    def deterministic_step(state: dict, action: Any) -> tuple[dict, bool, str | None]:
        """The deterministic part of a step: placements, prices, staff, action costs and totals.

        Returns ``(state_after_action, valid, error)``; stochastic figures are left as they were.
        """
        new, valid, error, _ = apply_action(state, action)
        return new, valid, error

    @staticmethod
    def simulate_day(state: dict, rng: np.random.Generator) -> dict:
        """Run the day from a state whose action has already been applied."""
        return simulate_day(state, rng)

    def render(self, ax=None, state: dict | None = None):
        """Draw the park (see :func:`render.render_park`)."""
        from .render import render_park
        return render_park(state if state is not None else self.state, ax=ax)


__all__ = ["ThemeParkEnv"]
