"""Rollout policies: how a simulation fills the look-ahead after its last tree action.

A rollout policy is a callable ``policy(states, rng) -> list[action]`` giving one
action per row.  By name (:func:`make_rollout_policy`):

* ``"heuristic"``: each row asks the environment's rollout agent (the kit's
  ``defaults["rollout_agent"]``, else its ``"heuristic"`` data-collection agent) for
  its action, so the business keeps being run sensibly over a long look-ahead
  (restocking, cleaning) and investments with a slow payoff can show their value.
  The agent is built with a seed (the planner's, else 0), so an agent that draws its
  own traits (a style per episode) draws the same ones on a rerun: a planner over an
  LLM-backed model then asks the same questions and a record/replay cache answers them.
* ``"wait"``: every row waits (appendix C.4's setting, where the look-ahead is all tree).
* ``"random"``: each row plays an action drawn uniformly from the proposer's list for
  the first row's state (one proposer call per step; an action that is invalid in
  another row is counted as invalid by the model and leaves that row to the day's
  own dynamics).
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


class PolicyProposer:
    """A proposer that also offers the rollout policy's action for the state (right after wait, when it is valid
    and not already drawn), so a search can weigh what its rollout policy would do against random proposals."""

    def __init__(self, proposer: Any, policy: RolloutPolicy, seed: int = 0):
        self.proposer = proposer
        self.policy = policy
        self.rng = np.random.default_rng(seed)
        self.stats_policy = {"offered": 0, "invalid": 0}
        self.last_own: str | None = None  # the text of the policy's action in the latest proposal set

    def wait_action(self) -> dict:
        return self.proposer.wait_action()

    def propose(self, state: dict, rng: np.random.Generator, n: int = 100) -> list[dict]:
        from ..envs.base import format_action
        acts = self.proposer.propose(state, rng, n)
        self.last_own = None
        try:
            own = self.policy([state], self.rng)[0]
        except Exception:  # noqa: BLE001 - a policy that fails offers nothing
            return acts
        if isinstance(own, str):
            from ..envs.base import coerce_action
            own = coerce_action(own)
        texts = [format_action(a) for a in acts]
        if format_action(own) in texts:
            self.last_own = format_action(own)
            return acts
        check = getattr(self.proposer, "check", None)
        if check is not None and not check(state, own)[0]:
            self.stats_policy["invalid"] += 1
            return acts
        self.stats_policy["offered"] += 1
        self.last_own = format_action(own)
        return acts[:1] + [own] + acts[1:]

    def __getattr__(self, name: str) -> Any:  # check, stats, spec ... of the wrapped proposer
        if name in ("proposer", "policy", "rng", "stats_policy", "last_own"):
            raise AttributeError(name)
        return getattr(self.proposer, name)


ROLLOUT_POLICIES = ("heuristic", "wait", "random")


def check_rollout_policy(name: Any) -> str:
    """``name`` if it names a rollout policy, else a ValueError listing them."""
    if name not in ROLLOUT_POLICIES:
        raise ValueError(f"unknown rollout policy {name!r}; choose one of {ROLLOUT_POLICIES}")
    return name


def rollout_agent(spec: Any, seed: int | None = 0) -> Any:
    """The environment's rollout agent (kit default ``rollout_agent``, else ``heuristic``), never
    sending deliberately invalid actions; ``seed`` fixes any traits it draws for itself."""
    from ..envs.registry import get_kit, make_agent
    kind = get_kit(spec.name).default("rollout_agent", "heuristic")
    return make_agent(spec, kind, invalid_rate=0.0, seed=seed)


def make_rollout_policy(name: str, proposer: Any, n_proposals: int = 100, seed: int | None = 0) -> RolloutPolicy:
    """Build a rollout policy by name: ``"heuristic"``, ``"wait"`` or ``"random"`` (module docstring);
    ``seed`` seeds the heuristic rollout agent."""
    check_rollout_policy(name)
    if name == "wait":
        return WaitRollout(proposer)
    if name == "random":
        return RandomProposalRollout(proposer, n_proposals)
    return AgentRollout(rollout_agent(proposer.spec, seed=seed))


__all__ = ["PolicyProposer", "ROLLOUT_POLICIES", "RolloutPolicy", "WaitRollout", "RandomProposalRollout", "AgentRollout",
           "check_rollout_policy", "rollout_agent", "make_rollout_policy"]
