"""The WALL-E-MAPs planning agents of table 2, as a roster of :class:`~cassandra_wm.planning.roster.AgentSpec`.

A WALL-E agent is a ``"custom"`` spec whose builder, :func:`build_walle_agent`, rebuilds the
WALL-E-MAPs model inside whatever process plays the episode, from artifacts on disk: the learned
rules (``walle_rules.json`` of notebook 06), the training split it retrieves few-shot examples
from, and the LLM named by an ``--llm`` spec.  The spec's ``config`` holds paths plus the content
hashes of those files, the LLM's name, the baselines' code version and the planner's settings, so
the roster is plain data, :func:`~cassandra_wm.planning.episodes.play_agents` stores and resumes
its episodes like any other, and a changed model, LLM or rule set never reuses stale runs (the
builder refuses artifacts whose hashes no longer match).

* ``MPC+WALL-E-MAPs`` (appendix A.1): a few distinct first actions, each rolled out for 4 days
  with the heuristic agent (planning's ``"heuristic"`` rollout policy, seeded per episode), and the
  action whose best rollout ends with the most money is played (:func:`walle_mpc_config`);
* ``MCTS+WALL-E-MAPs`` (appendix C.4's reduced budget for WALL-E): 2 iterations, a horizon of 2
  actions (tree depth = look-ahead = 2, waiting beyond the tree), 4 rollouts per expanded node
  (:func:`walle_mcts_config`).

:func:`walle_roster` also adds the reference rows every planning table shows: the same two planners
with the real simulator as model (same budgets) and the heuristic agent.

The LLM dominates the cost, and the bundled model serves one request at a time, so notebook 06
plays these episodes with the ``"serial"`` executor; the builder works in worker processes too
(each rebuilds its own retrieval index and sandbox, and talks to the same LLM endpoint).
"""
from __future__ import annotations

import atexit
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from .common import Budget, code_version

BUILDER = "cassandra_wm.baselines.agents:build_walle_agent"
MODEL_NAME = "WALL-E-MAPs"
STAGE = "06_baselines"
# appendix C.4: WALL-E's search budget had to be cut to 2 iterations and a horizon of 2 actions;
# the 4 rollouts per node were kept
MCTS_ITERATIONS = 2
MCTS_HORIZON = 2
MCTS_ROLLOUTS = 4
MPC_FIRST_ACTIONS = 4  # "several distinct initial actions" (the appendix gives no number)


def walle_mpc_config(**overrides: Any) -> Any:
    """Appendix A.1's MPC: ``n_first`` distinct first actions, one 4-day rollout each with the
    heuristic agent, the best single rollout decides (``score="max"``)."""
    from ..planning.mpc import MPCConfig
    base = {"n_first": MPC_FIRST_ACTIONS, "rollouts": 1, "rollout_policy": "heuristic"}
    return MPCConfig.appendix_a1(**{**base, **overrides})


def walle_mcts_config(**overrides: Any) -> Any:
    """Appendix C.4's reduced MCTS budget for WALL-E: 2 iterations, horizon 2 actions, 4 rollouts."""
    from ..planning.mcts import MCTSConfig
    base = {"iterations": MCTS_ITERATIONS, "rollouts": MCTS_ROLLOUTS, "tree_depth": MCTS_HORIZON,
            "lookahead": MCTS_HORIZON}
    return MCTSConfig.appendix_c4(**{**base, **overrides})


# -- artifacts --------------------------------------------------------------------------------

def file_sha(path: str | Path) -> str:
    """Short SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def ruleset_sha(rules: dict) -> str:
    """Short SHA-256 of a rule set's ``to_dict()`` (canonical JSON)."""
    return hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:12]


def load_rules_file(path: str | Path) -> dict:
    """The rule set stored in a ``walle_rules.json`` (with or without the report's provenance wrapper)."""
    obj = json.loads(Path(path).read_text())
    obj = obj.get("data", obj) if isinstance(obj, dict) else obj
    if not isinstance(obj, dict) or not isinstance(obj.get("rules"), dict):
        raise ValueError(f"{path}: not a WALL-E rules file (expected a 'rules' object)")
    return obj["rules"]


def _portable(path: str | Path) -> str:
    """``path`` relative to the output folder when it lies inside it (so settings keys do not depend on
    where the checkout is), else absolute."""
    from .. import paths
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path(paths.OUT).resolve()))
    except ValueError:
        return str(p)


def _resolve(path: str) -> Path:
    from .. import paths
    p = Path(path)
    return p if p.is_absolute() else Path(paths.OUT) / p


# -- the roster ---------------------------------------------------------------------------------

def walle_roster(env_name: str, rules_path: str | Path, dataset_path: str | Path, llm: str, llm_name: str,
                 mpc: dict | None = None, mcts: dict | None = None, k: int = 5, temperature: float = 0.0,
                 max_tokens: int = 256, predictor_seed: int | None = 0, include_manual: bool = False,
                 call_timeout: float = 0.5, max_calls: int = 0, include: Sequence[str] = ("MPC", "MCTS"),
                 references: bool = True) -> list:
    """The WALL-E agents (and, with ``references``, the oracle and heuristic rows) as AgentSpecs.

    ``rules_path``: the rules notebook 06 learned; ``dataset_path``: the transitions file whose
    training split is the retrieval pool; ``llm``: the ``--llm`` spec the builder opens
    (:func:`cassandra_wm.llm.get_chat`), ``llm_name`` the model name that chat reports (checked by
    the builder, recorded with every episode).  ``mpc`` / ``mcts`` override
    :func:`walle_mpc_config` / :func:`walle_mcts_config`; ``k``, ``temperature``, ``max_tokens``,
    ``predictor_seed`` and ``include_manual`` are the state predictor's settings, ``call_timeout`` the
    seconds one rule may run in the sandbox; ``max_calls``
    caps the LLM calls of one episode (0: no cap; a spent cap fails that episode, reported by
    ``play_agents``).  Files are checked and hashed here, before any episode runs.
    """
    from ..planning.roster import AgentSpec
    unknown = sorted(set(include) - {"MPC", "MCTS"})
    if unknown:
        raise ValueError(f"include lists unknown WALL-E agents {unknown}; choose from ['MPC', 'MCTS']")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    if isinstance(max_calls, bool) or not isinstance(max_calls, int) or max_calls < 0:
        raise ValueError(f"max_calls must be a non-negative integer, got {max_calls!r}")
    for what, p in (("rules", rules_path), ("dataset", dataset_path)):
        if not Path(p).exists():
            raise FileNotFoundError(f"WALL-E {what} file {p} does not exist (notebook 06 writes the rules; "
                                    "notebook 01 the data)")
    mpc_cfg, mcts_cfg = walle_mpc_config(**(mpc or {})), walle_mcts_config(**(mcts or {}))
    base = {"rules": _portable(rules_path), "rules_sha": ruleset_sha(load_rules_file(rules_path)),
            "dataset": _portable(dataset_path), "dataset_sha": file_sha(dataset_path), "llm": llm,
            "llm_name": llm_name, "k": k, "temperature": float(temperature), "max_tokens": int(max_tokens),
            "predictor_seed": predictor_seed, "include_manual": bool(include_manual), "call_timeout": float(call_timeout),
            "max_calls": max_calls,
            "code": code_version()}
    roster = []
    if "MPC" in include:
        roster.append(AgentSpec("MPC+WALL-E-MAPs", "custom", MODEL_NAME, builder=BUILDER,
                                config={**base, "planner": "mpc", "planner_config": asdict(mpc_cfg)},
                                note=f"sampled-rollout MPC (appendix A.1) on WALL-E-MAPs ({llm_name})"))
    if "MCTS" in include:
        roster.append(AgentSpec("MCTS+WALL-E-MAPs", "custom", MODEL_NAME, builder=BUILDER,
                                config={**base, "planner": "mcts", "planner_config": asdict(mcts_cfg)},
                                note=f"MCTS with WALL-E's reduced budget (appendix C.4) on WALL-E-MAPs ({llm_name})"))
    if references:
        if "MPC" in include:
            roster.append(AgentSpec("MPC+oracle (WALL-E budget)", "mpc", "oracle", config=asdict(mpc_cfg),
                                    note="the same MPC with the real simulator as model"))
        if "MCTS" in include:
            roster.append(AgentSpec("MCTS+oracle (WALL-E budget)", "mcts", "oracle", config=asdict(mcts_cfg),
                                    note="the same reduced MCTS with the real simulator as model"))
        roster.append(AgentSpec("heuristic", "agent", agent="heuristic",
                                note="the data-collection agent (its style varies by episode)"))
    for s in roster:
        s.validate(env_name)
    return roster


# -- the builder ----------------------------------------------------------------------------------

_RESOURCES: dict[tuple, Any] = {}


def make_chat(llm: str, stage: str) -> Any:
    """The chat client the builder asks (tests replace this function with a scripted one)."""
    from ..llm import get_chat
    return get_chat(llm, stage=stage)


def make_encoder() -> Any:
    """The sentence encoder of the retrieval index (tests replace this function with a toy one)."""
    from .embedding import default_encoder
    return default_encoder()


def clear_resources() -> None:
    """Forget this process's cached training data, indexes and sandboxes (closing the sandboxes)."""
    for key, obj in list(_RESOURCES.items()):
        if key[0] == "sandbox":
            obj.close()
    _RESOURCES.clear()


atexit.register(clear_resources)


def _resource(key: tuple, make: Any) -> Any:
    if key not in _RESOURCES:
        _RESOURCES[key] = make()
    return _RESOURCES[key]


def training_index(train: Sequence[Any], encoder: Any = None) -> Any:
    """The retrieval index over the action strings of ``train`` (the notebook and the builder share it,
    so both retrieve the same examples)."""
    from .embedding import ActionIndex
    from .walle import action_text
    return ActionIndex([action_text(t.action) for t in train], encoder=encoder)


def build_walle_agent(env: Any, network: Any = None, support: Any = None, seed: int | None = None, *,
                      planner: str, planner_config: dict, rules: str, rules_sha: str, dataset: str,
                      dataset_sha: str, llm: str, llm_name: str, k: int = 5, temperature: float = 0.0,
                      max_tokens: int = 256, predictor_seed: int | None = 0, include_manual: bool = False,
                      call_timeout: float = 0.5, max_calls: int = 0, code: str = "", stage: str = STAGE) -> Any:
    """A WALL-E agent for one episode, rebuilt from its artifacts (see the module docstring).

    Called by :func:`cassandra_wm.planning.roster.build_agent` for the specs of :func:`walle_roster`;
    ``seed`` (the episode's) seeds the planner and its heuristic rollout agent, so a rerun asks the
    LLM the same questions.  Raises a clear error when an artifact changed since the roster was made.
    """
    from .. import data
    from ..codewm.errors import Transition
    from ..codewm.sandbox import Sandbox
    from ..envs.registry import make_proposer
    from ..planning.mcts import MCTSAgent, MCTSConfig, config_from
    from ..planning.mpc import MPCConfig, SampledMPCAgent
    from .walle import RuleSet, StatePredictor, WallEModel

    if planner not in ("mpc", "mcts"):
        raise ValueError(f"WALL-E planner must be 'mpc' or 'mcts', got {planner!r}")
    if code and code != code_version():
        raise ValueError(f"the baselines' code changed since this WALL-E roster was made ({code} -> {code_version()}); "
                         "make the roster again")
    cls = MPCConfig if planner == "mpc" else MCTSConfig
    cfg = config_from(cls, dict(planner_config), cls.__name__).validate()
    spec = env.spec
    rules_file, ds_file = _resolve(rules), _resolve(dataset)
    rule_dict = load_rules_file(rules_file)
    if ruleset_sha(rule_dict) != rules_sha:
        raise ValueError(f"{rules_file}: the rules changed since this WALL-E roster was made; make the roster again")
    ds_key = (str(ds_file.resolve()), ds_file.stat().st_mtime_ns, ds_file.stat().st_size)
    if _resource(("sha",) + ds_key, lambda: file_sha(ds_file)) != dataset_sha:
        raise ValueError(f"{ds_file}: the data changed since this WALL-E roster was made; make the roster again")
    train = _resource(("train",) + ds_key, lambda: [Transition.from_record(r)
                                                    for r in data.load_records(ds_file, split="train")])
    index = _resource(("index",) + ds_key, lambda: training_index(train, make_encoder())) if k else None
    sandbox = _resource(("sandbox", spec.name, float(call_timeout)), lambda: Sandbox(spec, call_timeout=call_timeout))
    chat = make_chat(llm, stage)
    if getattr(chat, "model", llm_name) != llm_name:
        raise ValueError(f"the LLM spec {llm!r} now answers as {chat.model!r}, but this WALL-E roster was made for "
                         f"{llm_name!r}; make the roster again")
    predictor = StatePredictor(chat, spec, train, k=k, index=index, temperature=temperature, max_tokens=max_tokens,
                               seed=predictor_seed, include_manual=include_manual,
                               budget=Budget(calls=max_calls or None), stage=stage)
    model = WallEModel(spec, predictor, RuleSet.from_dict(rule_dict, spec, sandbox), env=env, name=MODEL_NAME)
    proposer = make_proposer(spec, model)
    if planner == "mpc":
        return SampledMPCAgent(model, proposer, cfg, seed=seed, name="MPC+WALL-E-MAPs")
    return MCTSAgent(model, proposer, cfg, seed=seed, name="MCTS+WALL-E-MAPs")


def llm_usage(records: Sequence[dict]) -> dict:
    """LLM use of WALL-E episodes from their model counters: calls, tokens and seconds as recorded."""
    tot = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}
    for r in records:
        c = r.get("model_counters") or {}
        tot["calls"] += int(c.get("llm_calls", 0))
        tot["prompt_tokens"] += int(c.get("llm_prompt_tokens", 0))
        tot["completion_tokens"] += int(c.get("llm_completion_tokens", 0))
        tot["seconds"] += int(c.get("llm_ms", 0)) / 1000.0
    return tot


__all__ = ["walle_roster", "walle_mpc_config", "walle_mcts_config", "build_walle_agent", "training_index",
           "make_chat", "make_encoder", "clear_resources", "load_rules_file", "ruleset_sha", "file_sha", "llm_usage",
           "BUILDER", "MODEL_NAME"]
