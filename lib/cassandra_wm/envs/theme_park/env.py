"""ThemeParkEnv: the Environment around the day engine."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..base import Environment
from .actions import apply_action
from .layouts import Layout, get_layout, layout_for_seed
from .params import HORIZON, PARAMETER_SETS, START_MONEY, get_params
from .sim import simulate_day, transition
from .spec import TRUE_GRAPH, build_spec
from .state import copy_park_state, initial_state, park_excitement


class ThemeParkEnv(Environment):
    """Mini Amusement Parks, easy mode, in Python (the game's rules, action text and observation JSON).

    Args:
        layout: a layout name (the game's names, see ``layouts.LAYOUTS``) or index; ``None`` picks
            one from ``split`` by the episode seed (seed modulo the number of layouts in the split).
        split: "train" (7 layouts), "test" (3 held out) or "all".
        parameters: "paper" (appendix F tables, the default; matches the manual) or "game" (the
            public game's current configuration).
        horizon: days per episode (50 in easy mode).
        start_money: starting money in dollars (500 in easy mode).
        seed: default seed for :meth:`reset`.

    ``step`` accepts the game's action text (``place(x=3, y=4, type='ride', ...)``) or an action
    dict and never raises on bad input: invalid actions return ``valid=False`` with the game's
    message in ``info["error"]`` and a code in ``info["reason"]``, and the day runs anyway.
    """

    def __init__(self, layout: str | int | Layout | None = None, split: str = "train", parameters: str = "paper",
                 horizon: int = HORIZON, start_money: int = START_MONEY, seed: int | None = None):
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        if parameters not in PARAMETER_SETS:
            raise ValueError(f"parameters must be one of {list(PARAMETER_SETS)}, got {parameters!r}")
        if int(horizon) < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon!r}")
        if layout is not None:
            get_layout(layout)  # fail early on unknown layouts
        self.layout = layout
        self.split = split
        self.parameters = parameters
        self.params = get_params(parameters)
        self.horizon = int(horizon)
        self.start_money = int(start_money)
        self.seed = seed
        self.spec = build_spec(self.horizon, self.start_money, parameters)
        self.state: dict | None = None
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> dict:
        """Start an episode: an empty park on the chosen layout; returns the first state."""
        seed = self.seed if seed is None else seed
        seed = 0 if seed is None else int(seed)
        lay = get_layout(self.layout) if self.layout is not None else layout_for_seed(seed, self.split)
        self.rng = np.random.default_rng(seed)
        self.state = initial_state(lay, self.params, self.horizon, self.start_money)
        return copy_park_state(self.state)

    def step(self, action: dict | str) -> tuple[dict, bool, dict]:
        """Apply the morning action (if valid) and run one day."""
        if self.state is None:
            self.reset()
        nxt, valid, info = transition(self.state, action, self.rng)
        self.state = nxt
        return copy_park_state(nxt), valid, info

    def true_graph(self) -> list[tuple[str, str]]:
        """Same-day edges among the six network variables implied by the engine. Evaluation only."""
        return list(TRUE_GRAPH)

    def is_done(self, state: dict) -> bool:
        if state.get("bankrupt") or state.get("game_over"):
            return True
        try:
            return int(state["step"]) >= int(state.get("horizon", self.horizon))
        except (KeyError, TypeError, ValueError):
            return False

    @staticmethod
    def transition(state: dict, action: Any, rng: np.random.Generator) -> tuple[dict, bool, dict]:
        """One day from any state: returns (next_state, valid, info); ``state`` is untouched."""
        return transition(state, action, rng)

    @staticmethod
    def deterministic_step(state: dict, action: Any) -> tuple[dict, bool, str | None]:
        """What the morning action and the calendar fix: placements, prices, staff, money after the
        action, the day count and the rating's excitement term.  Returns ``(state, valid, error)``;
        the day's stochastic figures are left as they were."""
        new, valid, error, _ = apply_action(state, action)
        if not state.get("game_over"):
            new["step"] = int(state["step"]) + 1
            p = get_params(new["hidden"]["parameters"])
            new["rides"]["total_excitement"] = round(park_excitement(new["rides"]["ride_list"], p.rules), 2)
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
