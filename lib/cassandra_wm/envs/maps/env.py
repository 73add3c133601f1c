"""MapsEnv: the Environment interface driving the real Mini Amusement Parks game.

Same states (the game's observation JSON plus raw carry-over fields), same action text and the
same spec as ``theme_park`` with the game's parameters, so every notebook can run on the real game
by choosing the environment ``maps``.  The game is the user's own installation (see
:data:`~cassandra_wm.envs.maps.client.INSTALL_HINT`); its Node server is started on 127.0.0.1 on the
first :meth:`reset` and stopped by :meth:`close` (or when the process ends).

What the real game cannot do: start from an arbitrary state.  :meth:`transition` therefore
refuses; planners use ``theme_park`` with ``parameters="game"`` as their oracle instead.
:meth:`deterministic_step` is the Python port's (the same rules).
"""
from __future__ import annotations

import atexit
import dataclasses
from typing import Any

import numpy as np

from ..base import Environment
from ..theme_park.actions import reason_of
from ..theme_park.env import ThemeParkEnv
from ..theme_park.layouts import get_layout, layout_for_seed
from ..theme_park.params import HORIZON, START_MONEY
from ..theme_park.spec import TRUE_GRAPH, build_spec
from ..theme_park.state import copy_park_state
from .client import GameClient, GameError, GameServer, http_transport, observation_from_raw


class MapsEnv(Environment):
    """The real game behind the Environment interface (easy mode, the game's own parameters).

    Args:
        layout, split, horizon, start_money, seed: as :class:`~cassandra_wm.envs.theme_park.ThemeParkEnv`.
        game_dir: the game's checkout (default ``$MAPS_GAME_DIR``).
        transport: ``(method, endpoint, payload) -> (status, json)`` to talk to a game without
            starting a server (tests replay recorded exchanges through it).
        record: a list that receives every exchange with the game (to record fixtures).
    """

    def __init__(self, layout: Any = None, split: str = "train", horizon: int = HORIZON,
                 start_money: int = START_MONEY, seed: int | None = None, game_dir: str | None = None,
                 transport: Any = None, record: list | None = None, parameters: str = "game"):
        if parameters != "game":
            raise ValueError("the real game runs its own configuration: parameters must be 'game'")
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        if layout is not None:
            get_layout(layout)
        self.layout, self.split, self.horizon, self.start_money, self.seed = layout, split, int(horizon), \
            int(start_money), seed
        self.game_dir = game_dir
        self.spec = dataclasses.replace(build_spec(self.horizon, self.start_money, "game"), name="maps")
        self._transport = transport
        self._record = record
        self.server: GameServer | None = None
        self.client: GameClient | None = None
        self.state: dict | None = None
        self.layout_name: str | None = None
        self._python = ThemeParkEnv(parameters="game", horizon=self.horizon, start_money=self.start_money)

    # -- the game ------------------------------------------------------------------------
    def _connect(self) -> GameClient:
        if self.client is not None:
            if self.server is not None and not self.server.alive():
                raise GameError(f"the game's server has died: {self.server.log_tail()}")
            return self.client
        transport = self._transport
        if transport is None:
            self.server = GameServer(self.game_dir).start()
            atexit.register(self.close)
            transport = http_transport(self.server.url)
        self.client = GameClient(transport, record=self._record)
        return self.client

    def _guard(self, what: str, fn, *args):
        try:
            return fn(*args)
        except GameError as e:
            if self.server is not None and not self.server.alive():
                raise GameError(f"the game's server died while it {what}: {self.server.log_tail()}") from None
            raise GameError(f"the game failed while it {what}: {e}") from None

    def reset(self, seed: int | None = None) -> dict:
        seed = self.seed if seed is None else seed
        seed = 0 if seed is None else int(seed)
        lay = get_layout(self.layout) if self.layout is not None else layout_for_seed(seed, self.split)
        client = self._connect()
        raw = self._guard("reset the park", client.reset, lay.name, seed + 1, "easy", self.start_money, self.horizon)
        self.layout_name = lay.name
        self.state = observation_from_raw(raw, lay.name)
        return copy_park_state(self.state)

    def step(self, action: Any) -> tuple[dict, bool, dict]:
        if self.state is None:
            self.reset()
        if self.state.get("game_over"):
            return copy_park_state(self.state), False, {"error": "The game has ended", "reason": "game_over",
                                                        "done": True}
        client = self._connect()
        valid, message, reason = self._guard("took the action", client.act, action)
        result = self._guard("ran the day", client.proceed)
        raw = self._guard("reported its state", client.raw_state)
        self.state = observation_from_raw(raw, self.layout_name)
        if result.get("terminated"):
            self.state["game_over"] = True
        info = {"error": None if valid else message, "reason": reason if not valid else None, "message": message,
                "done": bool(self.state["game_over"]), "reward": result.get("reward"),
                "truncated": bool(result.get("truncated"))}
        return copy_park_state(self.state), bool(valid), info

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except GameError:
                pass
            self.client = None
        if self.server is not None:
            self.server.stop()
            self.server = None

    # -- what the real game cannot do --------------------------------------------------
    def transition(self, state: dict, action: Any, rng: np.random.Generator) -> tuple[dict, bool, dict]:
        raise GameError("the real game cannot start a day from an arbitrary state; plan with the Python port "
                        "(make_env('theme_park', parameters='game')) as the oracle")

    def deterministic_step(self, state: dict, action: Any) -> tuple[dict, bool, str | None]:
        """The Python port's deterministic step (the game's rules with the game's parameters)."""
        return self._python.deterministic_step(state, action)

    def check_action(self, state: dict, action: Any) -> tuple[dict | None, str | None]:
        _, ok, err = self.deterministic_step(state, action)
        return (action if isinstance(action, dict) else None), (None if ok else err)

    def is_done(self, state: dict) -> bool:
        return self._python.is_done(state)

    def true_graph(self) -> list[tuple[str, str]]:
        return list(TRUE_GRAPH)

    def render(self, ax=None, state: dict | None = None):
        from ..theme_park.render import render_park
        return render_park(state if state is not None else self.state, ax=ax)

    def __del__(self):  # pragma: no cover - best effort
        try:
            if self.server is not None:
                self.server.stop()
        except Exception:
            pass


__all__ = ["MapsEnv", "GameError", "reason_of"]
