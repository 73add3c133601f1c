"""Sampled-rollout model-predictive control (the non-tree planner of appendix A.1).

Every day: draw up to ``n_first`` distinct first actions from the proposer, roll
each out ``rollouts`` times for ``steps`` days in the model (the first action, then
the rollout policy), score each first action by its rollouts' predicted money at
the end, and play the best.  All ``n_first * rollouts`` rows go through the model
together, one ``sample_next`` call per day of the look-ahead.

The appendix keeps the action whose rollout scored highest; ``score="max"`` does
that, ``score="mean"`` (default) averages a first action's rollouts, which is less
swayed by one lucky sample.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..envs.base import format_action
from .rollouts import RolloutPolicy, make_rollout_policy


class SampledMPCAgent:
    """Pick the first action whose sampled rollouts end with the most money."""

    def __init__(self, model: Any, proposer: Any, n_first: int = 10, steps: int = 4, rollouts: int = 4,
                 n_proposals: int = 100, rollout_policy: str | RolloutPolicy = "random", score: str = "mean",
                 seed: int | None = None, name: str = "MPC"):
        for key, v in (("n_first", n_first), ("steps", steps), ("rollouts", rollouts), ("n_proposals", n_proposals)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"SampledMPCAgent: {key} must be a positive integer, got {v!r}")
        if score not in ("mean", "max"):
            raise ValueError(f"SampledMPCAgent: score must be 'mean' or 'max', got {score!r}")
        self.model = model
        self.proposer = proposer
        self.n_first, self.steps, self.rollouts, self.n_proposals = n_first, steps, rollouts, n_proposals
        self.rollout = (make_rollout_policy(rollout_policy, proposer, n_proposals)
                        if isinstance(rollout_policy, str) else rollout_policy)
        self.score = score
        self.rng = np.random.default_rng(seed)
        self.name = name
        self.last: dict | None = None

    def act(self, state: dict, rng: np.random.Generator | None = None) -> dict:
        """Score sampled first actions from ``state`` and return the best one."""
        rng = rng if rng is not None else self.rng
        t0 = time.perf_counter()
        if bool(self.model.is_terminal([state])[0]):
            self.last = {"action": format_action(self.proposer.wait_action()), "candidates": [], "seconds": 0.0}
            return self.proposer.wait_action()
        props = self.proposer.propose(state, rng, self.n_proposals) or [self.proposer.wait_action()]
        if len(props) > self.n_first:
            keep = rng.choice(len(props), size=self.n_first, replace=False)
            props = [props[i] for i in sorted(keep)]
        k, m = len(props), self.rollouts
        states = [state] * (k * m)
        actions = [a for a in props for _ in range(m)]
        states, _ = self.model.sample_next(states, actions, 1, rng)
        for _ in range(self.steps - 1):
            states, _ = self.model.sample_next(states, self.rollout(states, rng), 1, rng)
        values = np.asarray(self.model.reward(states), dtype=float).reshape(k, m)
        scores = values.mean(axis=1) if self.score == "mean" else values.max(axis=1)
        best = int(np.argmax(scores))
        order = np.argsort(-scores)
        self.last = {
            "action": format_action(props[best]),
            "candidates": [{"action": format_action(props[i]), "visits": m, "mean": float(values[i].mean()),
                            "std": float(values[i].std()), "min": float(values[i].min()),
                            "max": float(values[i].max())} for i in order],
            "seconds": time.perf_counter() - t0,
            "transitions": k * m * self.steps,
        }
        return props[best]

    def diagnostics(self, top: int = 5) -> dict:
        """The latest decision's candidates (top few) and timing, JSON-ready."""
        if self.last is None:
            return {}
        d = dict(self.last)
        d["candidates"] = d["candidates"][:top]
        return d


__all__ = ["SampledMPCAgent"]
