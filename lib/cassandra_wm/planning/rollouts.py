"""Rollout policies: how a simulation fills the horizon after its last tree action.

A rollout policy is a callable ``policy(states, rng) -> list[action]`` giving one
action per row.

* :class:`WaitRollout` (default): every row waits.  Cheap and unbiased towards any
  action, so a prefix is judged by what it does on its own.
* :class:`RandomProposalRollout`: each row plays an action drawn uniformly from
  the proposer's list for the first row's state (one proposer call per step; an
  action that is invalid in another row is counted as invalid by the model and
  leaves that row to the day's own dynamics).
* :class:`AgentRollout` (``"heuristic"``): each row asks an agent (the
  environment's heuristic data-collection agent) for its action, so the shop
  keeps being run sensibly over a longer horizon (restocking, cleaning), which
  lets investments with a slow payoff show their value.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

RolloutPolicy = Callable[[list, np.random.Generator], list]


class WaitRollout:
    """Every row plays the proposer's wait action."""

    def __init__(self, proposer: Any):
        self.action = proposer.wait_action()

    def __call__(self, states: list[dict], rng: np.random.Generator) -> list[dict]:
        return [self.action] * len(states)


class RandomProposalRollout:
    """Rows draw uniformly from the proposals made for the first row's state."""

    def __init__(self, proposer: Any, n_proposals: int = 100):
        self.proposer = proposer
        self.n_proposals = n_proposals

    def __call__(self, states: list[dict], rng: np.random.Generator) -> list[dict]:
        pool = self.proposer.propose(states[0], rng, self.n_proposals) or [self.proposer.wait_action()]
        idx = rng.integers(0, len(pool), size=len(states))
        return [pool[i] for i in idx]


class AgentRollout:
    """Rows ask an agent for their actions: ``agent.act(state, rng)`` (the data-collection
    agents' interface) or, for a plain function, ``agent(state, rng)``."""

    def __init__(self, agent: Any):
        self.agent = agent

    def __call__(self, states: list[dict], rng: np.random.Generator) -> list[dict]:
        act = self.agent.act if hasattr(self.agent, "act") else self.agent
        return [act(s, rng) for s in states]


ROLLOUT_POLICIES = ("wait", "random", "heuristic")


def make_rollout_policy(name: str, proposer: Any, n_proposals: int = 100) -> RolloutPolicy:
    """Build a rollout policy by name: ``"wait"``, ``"random"`` or ``"heuristic"`` (the
    environment's own heuristic agent, without deliberate invalid actions)."""
    if name == "wait":
        return WaitRollout(proposer)
    if name == "random":
        return RandomProposalRollout(proposer, n_proposals)
    if name == "heuristic":
        from ..agents import make_agent
        return AgentRollout(make_agent(proposer.spec, "heuristic", invalid_rate=0.0))
    raise ValueError(f"unknown rollout policy {name!r}; choose one of {ROLLOUT_POLICIES}")


__all__ = ["ROLLOUT_POLICIES", "RolloutPolicy", "WaitRollout", "RandomProposalRollout", "AgentRollout", "make_rollout_policy"]
