"""Sampled-rollout model-predictive control (the non-tree planner of appendix A.1).

Every day: draw up to ``n_first`` distinct first actions from the proposer, roll
each out ``rollouts`` times for ``lookahead`` days in the model (the first action,
then the rollout policy), score each first action by its rollouts' predicted money
at the end, and play the best.  All ``n_first * rollouts`` rows go through the model
together, one ``sample_next`` call per day of the look-ahead.

The appendix rolls out for k = 4 steps and keeps the action whose rollout scored
highest (:meth:`MPCConfig.appendix_a1`: ``lookahead=4``, ``score="max"``);
``score="mean"`` averages a first action's rollouts, which is less swayed by one
lucky sample.  The same scoring (:func:`score_actions`) serves the planning
diagnostics, which compare a network's scores of proposed actions with the oracle's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..envs.base import format_action
from ..paper import MCTS_PROPOSALS, MCTS_ROLLOUTS, MPC_SCORE, MPC_STEPS
from .mcts import _positive_int, config_from, final_values, simulation_values
from .rollouts import RolloutPolicy, check_rollout_policy, make_rollout_policy


@dataclass
class MPCConfig:
    """Settings of the sampled-rollout MPC agent (defaults: appendix A.1 where it says, else ours)."""

    n_first: int = 10                 # distinct first actions scored per day
    rollouts: int = MCTS_ROLLOUTS     # rollouts per first action
    n_proposals: int = MCTS_PROPOSALS
    lookahead: int = MPC_STEPS
    rollout_policy: str = "heuristic"
    score: str = MPC_SCORE            # "max" (the appendix) or "mean" over a first action's rollouts
    discount: float = 1.0
    terminal_penalty: float = 0.0
    support_penalty: float = 0.0

    def validate(self) -> "MPCConfig":
        for name in ("n_first", "rollouts", "n_proposals", "lookahead"):
            _positive_int("MPCConfig", name, getattr(self, name))
        if self.score not in ("mean", "max"):
            raise ValueError(f"MPCConfig.score must be 'mean' or 'max', got {self.score!r}")
        if not (0.0 < self.discount <= 1.0):
            raise ValueError(f"MPCConfig.discount must be in (0, 1], got {self.discount!r}")
        for name in ("terminal_penalty", "support_penalty"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0):
                raise ValueError(f"MPCConfig.{name} must be a number >= 0, got {v!r}")
        check_rollout_policy(self.rollout_policy)
        return self

    @classmethod
    def appendix_a1(cls, **overrides: Any) -> "MPCConfig":
        """Appendix A.1: roll out k = 4 steps, keep the first action of the best-scoring rollout."""
        base = {"lookahead": MPC_STEPS, "score": MPC_SCORE}
        return config_from(cls, {**base, **overrides}, "MPCConfig").validate()

    @classmethod
    def for_env(cls, env_name: str, **overrides: Any) -> "MPCConfig":
        """The environment kit's MPC defaults (``defaults["mpc"]``), then ``overrides``."""
        from ..envs.registry import get_kit
        base = dict(get_kit(env_name).default("mpc", {}) or {})
        return config_from(cls, {**base, **overrides}, "MPCConfig").validate()


def score_actions(model: Any, state: dict, actions: list[dict], rollout: RolloutPolicy, lookahead: int,
                  rollouts: int, rng: np.random.Generator, discount: float = 1.0, terminal_penalty: float = 0.0,
                  support_penalty: float = 0.0) -> np.ndarray:
    """Values (len(actions), rollouts) of playing each action, then ``rollout``, for ``lookahead`` days."""
    k, m = len(actions), rollouts
    states = [state] * (k * m)
    first = [a for a in actions for _ in range(m)]
    r_prev = np.asarray(model.reward(states), dtype=float)
    value = r_prev.copy()
    oos = np.zeros(k * m)
    disc = 1.0
    for d in range(lookahead):
        acts = first if d == 0 else rollout(states, rng)
        states, _ = model.sample_next(states, acts, 1, rng)
        r_prev, value, disc = simulation_values(model, states, r_prev, value, oos, disc, discount)
    value = final_values(model, states, value, oos, terminal_penalty, support_penalty)
    return value.reshape(k, m)


class SampledMPCAgent:
    """Pick the first action whose sampled rollouts end with the most money."""

    def __init__(self, model: Any, proposer: Any, config: MPCConfig | None = None, seed: int | None = None,
                 rollout_policy: RolloutPolicy | None = None, name: str = "MPC"):
        self.config = (config or MPCConfig()).validate()
        self.model = model
        self.proposer = proposer
        self.rollout = rollout_policy or make_rollout_policy(self.config.rollout_policy, proposer,
                                                             self.config.n_proposals, seed=0 if seed is None else seed)
        self.rng = np.random.default_rng(seed)
        self.name = name
        self.last: dict | None = None

    def act(self, state: dict, rng: np.random.Generator | None = None) -> dict:
        """Score sampled first actions from ``state`` and return the best one."""
        rng = rng if rng is not None else self.rng
        cfg = self.config
        t0 = time.perf_counter()
        if bool(self.model.is_terminal([state])[0]):
            self.last = {"action": format_action(self.proposer.wait_action()), "candidates": [], "seconds": 0.0}
            return self.proposer.wait_action()
        props = self.proposer.propose(state, rng, cfg.n_proposals) or [self.proposer.wait_action()]
        if len(props) > cfg.n_first:
            keep = rng.choice(len(props), size=cfg.n_first, replace=False)
            props = [props[i] for i in sorted(keep)]
        values = score_actions(self.model, state, props, self.rollout, cfg.lookahead, cfg.rollouts, rng,
                               cfg.discount, cfg.terminal_penalty, cfg.support_penalty)
        scores = values.mean(axis=1) if cfg.score == "mean" else values.max(axis=1)
        best = int(np.argmax(scores))
        order = np.argsort(-scores)
        self.last = {
            "action": format_action(props[best]),
            "candidates": [{"action": format_action(props[i]), "visits": cfg.rollouts,
                            "mean": float(values[i].mean()), "std": float(values[i].std()),
                            "min": float(values[i].min()), "max": float(values[i].max())} for i in order],
            "seconds": time.perf_counter() - t0,
            "transitions": len(props) * cfg.rollouts * cfg.lookahead,
        }
        return props[best]

    def diagnostics(self, top: int = 5) -> dict:
        """The latest decision's candidates (top few) and timing, JSON-ready."""
        if self.last is None:
            return {}
        d = dict(self.last)
        d["candidates"] = d["candidates"][:top]
        return d


__all__ = ["MPCConfig", "SampledMPCAgent", "score_actions"]
