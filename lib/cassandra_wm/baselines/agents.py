"""The WALL-E-MAPs planning agents of table 2, as a roster (label -> factory and settings).

The roster plugs into :func:`cassandra_wm.planning.evaluate.evaluate` like the planning stage's
own agents: ``factory(seed)`` builds a fresh agent for one run, ``settings`` identify the run in
the resumable results file (they include the LLM, the learned rules and the baselines' code
version, so a changed model never reuses stale runs).

* ``MPC+WALL-E-MAPs`` (appendix A.1): a few distinct first actions, each rolled out ``steps`` (4)
  days with the environment's heuristic agent, the action whose best rollout ends with the most
  money is played;
* ``MCTS+WALL-E-MAPs`` (appendix C.4's reduced budget for WALL-E): 2 iterations, horizon 2,
  4 rollouts per expanded node.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from .common import code_version


def walle_agents(model: Any, proposer: Any, llm: str, mpc: dict | None = None, mcts: dict | None = None,
                 include: tuple[str, ...] = ("MPC", "MCTS")) -> dict[str, tuple]:
    """``{label: (factory, settings)}`` for the WALL-E-MAPs agents planning with ``model``.

    ``mpc``: keyword arguments of :class:`~cassandra_wm.planning.mpc.SampledMPCAgent` (defaults:
    4 first actions, 4 steps, 1 rollout each, heuristic rollouts, best rollout); ``mcts``: fields of
    :class:`~cassandra_wm.planning.mcts.MCTSConfig` (defaults: 2 iterations, horizon 2, 4 rollouts).
    """
    from ..envs.registry import make_agent
    from ..planning.mcts import MCTSAgent, MCTSConfig
    from ..planning.mpc import SampledMPCAgent
    from ..planning.rollouts import AgentRollout

    rules = json.dumps(model.rules.to_dict(), sort_keys=True)
    base = {"model": getattr(model, "name", "WALL-E-MAPs"), "llm": llm, "code": code_version(),
            "rules": hashlib.sha256(rules.encode()).hexdigest()[:12],
            "predictor": {"k": model.predictor.k, "temperature": model.predictor.temperature,
                          "include_manual": model.predictor.include_manual}}
    out: dict[str, tuple] = {}
    if "MPC" in include:
        kw = {"n_first": 4, "steps": 4, "rollouts": 1, "score": "max", **(mpc or {})}

        def mpc_agent(seed: int) -> SampledMPCAgent:
            # the heuristic rollout agent gets the run's seed: its own traits are drawn from it, so a rerun
            # asks the LLM exactly the same questions (and the record/replay cache answers them)
            rollout = AgentRollout(make_agent(model.spec, "heuristic", invalid_rate=0.0, seed=seed))
            return SampledMPCAgent(model, proposer, seed=seed, name="MPC+WALL-E-MAPs", rollout_policy=rollout, **kw)

        out["MPC+WALL-E-MAPs"] = (mpc_agent, {"kind": "sampled_mpc", **base,
                                              "config": {**kw, "rollout_policy": "heuristic (seeded per run)"}})
    if "MCTS" in include:
        cfg = MCTSConfig(**{"iterations": 2, "horizon": 2, "rollouts": 4, **(mcts or {})})
        out["MCTS+WALL-E-MAPs"] = (lambda seed: MCTSAgent(model, proposer, cfg, seed=seed, name="MCTS+WALL-E-MAPs"),
                                   {"kind": "mcts", **base, "config": dict(mcts or {}) | {"iterations": cfg.iterations,
                                    "horizon": cfg.horizon, "rollouts": cfg.rollouts}})
    return out


__all__ = ["walle_agents"]
