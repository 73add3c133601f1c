"""The agents of a planning table, as data.

A roster is a list of :class:`AgentSpec`: plain, JSON-ready descriptions of agents (a planner
kind, the model it plans with, its settings).  :func:`build_agent` turns one into an agent inside
whatever process plays the episode, so the same roster runs in this process, in local worker
processes or on a cluster (:mod:`.executor`), and the theme-park stage or a baseline can write its
own roster without new code paths.

Kinds:

* ``"mcts"`` / ``"mpc"``: :class:`~.mcts.MCTSAgent` / :class:`~.mpc.SampledMPCAgent` with the
  settings in ``config``; ``model`` is ``"oracle"`` (the real simulator) or the name of a fitted
  network (a graph), fitted with seed ``fit_seed``.  Learned models use the simulator's
  deterministic step (appendix C.2).  ``guard`` says how the model is kept inside its training
  data (:mod:`.support`): ``"on"`` (proposals and rollout actions outside the data are dropped,
  sampled values outside it clipped), ``"count"`` (nothing is changed, the out-of-support samples
  are only counted) or ``"off"``.
* ``"agent"``: an agent of the environment's kit (``agent``: ``"heuristic"``, ``"steady"``, ...).
* ``"wait"``: always waits.
* ``"custom"``: ``builder`` names a function ``"module:function"`` called as
  ``f(env=..., network=..., support=..., seed=..., **config)``.
"""
from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..paper import GRAPH_NAMES

KINDS = ("mcts", "mpc", "agent", "wait", "custom")
GUARDS = ("on", "count", "off")


class MissingNetworkError(FileNotFoundError):
    """A fitted network that notebook 04 should have saved is not there."""


@dataclass(frozen=True)
class AgentSpec:
    """One agent of a roster (see the module docstring)."""

    label: str                   # the row of the table, e.g. "MCTS+CASSANDRA"
    kind: str
    model: str | None = None     # "oracle" or a graph name, for planners
    fit_seed: int | None = None  # which fitted network of the graph
    config: dict = field(default_factory=dict)
    agent: str | None = None     # the kit's agent kind, for kind "agent"
    guard: str = "off"
    builder: str | None = None   # "module:function", for kind "custom"
    note: str = ""               # what the row is, for captions and the README

    @property
    def learned(self) -> bool:
        return self.kind in ("mcts", "mpc") and self.model not in (None, "oracle")

    def planner_config(self) -> Any:
        """The validated MCTSConfig / MPCConfig of a planner."""
        from .mcts import MCTSConfig, config_from
        from .mpc import MPCConfig
        cls = MCTSConfig if self.kind == "mcts" else MPCConfig
        return config_from(cls, dict(self.config), cls.__name__).validate()

    def validate(self, env_name: str | None = None) -> "AgentSpec":
        """Clear errors for a spec that cannot be built (called before any episode runs)."""
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"an agent needs a non-empty label, got {self.label!r}")
        if self.kind not in KINDS:
            raise ValueError(f"{self.label}: unknown agent kind {self.kind!r}; choose one of {KINDS}")
        if self.guard not in GUARDS:
            raise ValueError(f"{self.label}: guard must be one of {GUARDS}, got {self.guard!r}")
        if self.kind in ("mcts", "mpc"):
            if not self.model:
                raise ValueError(f"{self.label}: a planner needs a model ('oracle' or a graph name)")
            self.planner_config()
        if self.kind == "agent":
            if not self.agent:
                raise ValueError(f"{self.label}: kind 'agent' needs the kit's agent kind in `agent`")
            if env_name is not None:
                from ..envs.registry import get_kit
                known = set(get_kit(env_name).agent_classes()) | {"random"}
                if self.agent not in known:
                    raise ValueError(f"{self.label}: {env_name} has no agent {self.agent!r}; known: {sorted(known)}")
        if self.kind == "custom":
            resolve_builder(self.builder, self.label)
        return self

    def settings(self) -> dict:
        """What identifies this agent's behaviour (the results cache key is built from it)."""
        d = asdict(self)
        d.pop("note")
        return d


def resolve_builder(ref: Any, label: str = "custom") -> Any:
    """The function a ``"module:function"`` reference names; a clear error otherwise."""
    if not isinstance(ref, str) or ":" not in ref:
        raise ValueError(f"{label}: builder must be 'module:function', got {ref!r}")
    mod, _, attr = ref.partition(":")
    try:
        fn = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"{label}: cannot import builder {ref!r}: {e}") from None
    if not callable(fn):
        raise ValueError(f"{label}: builder {ref!r} is not callable")
    return fn


class WaitAgent:
    """Always plays the wait action."""

    name = "wait"

    def __init__(self, wait_name: str = "wait"):
        self.wait_name = wait_name

    def act(self, state: dict, rng: Any) -> dict:
        return {"name": self.wait_name, "args": {}}


def build_agent(spec: AgentSpec, env: Any, network: Any = None, support: Any = None, seed: int | None = None) -> Any:
    """The agent ``spec`` describes, for ``env``; ``network`` is its fitted network (learned models),
    ``support`` the training data's support (guards)."""
    from ..envs.registry import make_agent, make_proposer
    from ..world_model import OracleModel, SimulatorDeterministic, WorldModel
    from .mcts import MCTSAgent
    from .mpc import SampledMPCAgent
    from .rollouts import make_rollout_policy
    from .support import GuardedProposer, GuardedRollout, SupportGuard

    if spec.kind == "wait":
        return WaitAgent()
    if spec.kind == "agent":
        return make_agent(env, spec.agent, invalid_rate=0.0, seed=seed)
    if spec.kind == "custom":
        return resolve_builder(spec.builder, spec.label)(env=env, network=network, support=support, seed=seed,
                                                         **spec.config)
    cfg = spec.planner_config()
    det = SimulatorDeterministic(env)
    if spec.model == "oracle":
        model = OracleModel(env)
    else:
        if network is None:
            raise MissingNetworkError(f"{spec.label}: no fitted network {spec.model!r} (fit seed {spec.fit_seed})")
        use = support if spec.guard in ("on", "count") else None
        if spec.guard != "off" and support is None:
            raise ValueError(f"{spec.label}: guard={spec.guard!r} needs the training data's support")
        model = WorldModel(env.spec, det, network, name=spec.model, support=use,
                           support_mode="clip" if spec.guard == "on" else "count")
    if getattr(cfg, "value", ""):
        model.use_value(resolve_builder(cfg.value, spec.label))
    proposer = make_proposer(env.spec, det)
    rollout = None
    if spec.guard == "on" and spec.learned:
        guard = SupportGuard(support, det, env.spec, model.counters)
        proposer = GuardedProposer(proposer, guard)
        rollout = GuardedRollout(make_rollout_policy(cfg.rollout_policy, proposer, cfg.n_proposals,
                                                     seed=0 if seed is None else seed), guard,
                                 proposer.wait_action())
    if spec.kind == "mcts":
        return MCTSAgent(model, proposer, cfg, seed=seed, rollout_policy=rollout, name=spec.label)
    return SampledMPCAgent(model, proposer, cfg, seed=seed, rollout_policy=rollout, name=spec.label)


def standard_roster(env_name: str, graphs: Sequence[str] = GRAPH_NAMES, fit_seeds: Sequence[int] = (0,),
                    mcts: dict | None = None, mpc: dict | None = None, guard: str = "on",
                    support_penalty: float = 0.0, include_mpc: bool = True, include_c4: bool = True,
                    include_wait: bool = True, include_unguarded: Sequence[str] = ()) -> list[AgentSpec]:
    """The planning table's agents: MCTS and MPC on every graph and fit seed, the same planners on the
    real simulator (``MCTS+oracle``, ``MPC+oracle``), the paper's appendix C.4 setting on the oracle,
    and the reference agents (``heuristic``: the data-collection agent; ``steady heuristic``: the
    planners' rollout policy played alone; ``wait only``).

    ``mcts`` / ``mpc`` override the kit's planner defaults; ``include_unguarded`` lists graphs that
    also get an MCTS row without the support guard (``guard="count"``), to measure the guard's effect.
    """
    from .mcts import MCTSConfig
    from .mpc import MPCConfig
    mcts_cfg = MCTSConfig.for_env(env_name, **(mcts or {}))
    mpc_cfg = MPCConfig.for_env(env_name, **(mpc or {}))
    learned_mcts = {**_plain(mcts_cfg), "support_penalty": float(support_penalty)}
    learned_mpc = {**_plain(mpc_cfg), "support_penalty": float(support_penalty)}
    oracle_mcts = {**_plain(mcts_cfg), "support_penalty": 0.0}
    oracle_mpc = {**_plain(mpc_cfg), "support_penalty": 0.0}
    roster: list[AgentSpec] = []
    for g in graphs:
        for k in fit_seeds:
            roster.append(AgentSpec(f"MCTS+{g}", "mcts", g, int(k), learned_mcts, guard=guard,
                                    note=f"MCTS on the {g} network"))
    for g in include_unguarded:
        for k in fit_seeds:
            roster.append(AgentSpec(f"MCTS+{g} (no guard)", "mcts", g, int(k), {**learned_mcts, "support_penalty": 0.0},
                                    guard="count", note=f"MCTS on the {g} network without the support guard"))
    if include_mpc:
        for g in graphs:
            for k in fit_seeds:
                roster.append(AgentSpec(f"MPC+{g}", "mpc", g, int(k), learned_mpc, guard=guard,
                                        note=f"sampled-rollout MPC (appendix A.1) on the {g} network"))
    roster.append(AgentSpec("MCTS+oracle", "mcts", "oracle", None, oracle_mcts,
                            note="MCTS with the real simulator as its model (same planner and budget)"))
    if include_mpc:
        roster.append(AgentSpec("MPC+oracle", "mpc", "oracle", None, oracle_mpc,
                                note="sampled-rollout MPC with the real simulator as its model"))
    if include_c4:
        c4 = _plain(MCTSConfig.appendix_c4(iterations=mcts_cfg.iterations, rollouts=mcts_cfg.rollouts,
                                           n_proposals=mcts_cfg.n_proposals))
        roster.append(AgentSpec("MCTS+oracle (C.4: 3 days, wait)", "mcts", "oracle", None, c4,
                                note="the paper's appendix C.4 setting (horizon 3 actions, nothing beyond) "
                                     "with the real simulator as model"))
    roster.append(AgentSpec("heuristic", "agent", agent="heuristic",
                            note="the data-collection agent (its style varies by episode)"))
    from ..envs.registry import get_kit
    steady = get_kit(env_name).default("rollout_agent", None)
    if steady and steady != "heuristic":
        roster.append(AgentSpec("steady heuristic", "agent", agent=steady,
                                note="the planners' rollout policy, played on its own"))
    if include_wait:
        roster.append(AgentSpec("wait only", "wait", note="always waits"))
    return roster


def _plain(cfg: Any) -> dict:
    # settings added later are left out at their defaults, so rosters that never set them keep their results keys
    return {k: v for k, v in asdict(cfg).items() if not (k in _OPTIONAL and v == _OPTIONAL[k])}


_OPTIONAL = {"value": "", "propose_policy": False}  # settings added later: left out at their defaults


# -- fitted networks -------------------------------------------------------------------------

def network_dir(env_name: str, profile: str, graph: str, fit_seed: int = 0) -> Path:
    """Where notebook 04 saves the network of ``graph``: ``data/<profile>/<env>/bn/<graph>/seed<k>/``."""
    from .. import paths
    return paths.data_dir(env_name, profile, create=False) / "bn" / graph / f"seed{int(fit_seed)}"


def load_networks(env_name: str, profile: str, graphs: Sequence[str] = GRAPH_NAMES, fit_seeds: Sequence[int] = (0,),
                  spec: Any = None) -> dict[tuple[str, int], Any]:
    """The fitted networks ``{(graph, fit_seed): BayesNet}``; a clear error names any that is missing."""
    from ..structure.bn import BayesNet
    missing = [(g, k) for g in graphs for k in fit_seeds
               if not (network_dir(env_name, profile, g, k) / "bn.json").exists()]
    if missing:
        g, k = missing[0]
        raise MissingNetworkError(
            f"no fitted network for {missing} (looked for {network_dir(env_name, profile, g, k)}/bn.json). "
            f"Run notebook 04 first: python run_all.py --profile {profile} --only 04  (or run "
            f"notebooks/04_fitting.ipynb with env_name={env_name!r}, profile={profile!r}); every fit seed "
            f"planned with must be one of its `seeds`.")
    return {(g, int(k)): BayesNet.load(network_dir(env_name, profile, g, k), spec=spec)
            for g in graphs for k in fit_seeds}


def network_llm(net: Any) -> str:
    """The LLM named in a network's provenance (the structure came from it)."""
    llm = (getattr(net, "provenance", None) or {}).get("llm")
    return str(llm) if llm else "unknown (not recorded with the network)"


__all__ = ["AgentSpec", "KINDS", "GUARDS", "WaitAgent", "build_agent", "standard_roster", "resolve_builder",
           "MissingNetworkError", "network_dir", "load_networks", "network_llm"]
