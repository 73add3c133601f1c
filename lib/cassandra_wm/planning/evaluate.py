"""Playing agents in the real simulator and summarising their final budgets.

* :func:`heldout_seeds` gives episode seeds that data collection never uses
  (collection seeds episodes with 32-bit seeds; these are all >= 2**32).
* :func:`play_episode` plays one agent for ``days`` days from one seed and
  returns a JSON-ready record: final money, bankruptcy, the money curve, the
  actions and their validity, decision times, the model's guard-rail counters
  and (for planners) each day's top candidate actions.
* :func:`evaluate` plays every agent on every seed, appending each finished run
  to a JSON Lines file as it goes; rerunning it skips runs already in the file
  (same agent label, settings key and seed), so an interrupted evaluation
  resumes instead of restarting.
* :func:`summary_table` (mean final money, t-based 95% confidence interval,
  bankruptcy rate) and :func:`money_curves` turn records into frames.

Agents answer ``act(state, rng) -> action``; planners may also have
``diagnostics(top)`` and a ``model`` with ``counters_dict()``/``reset_counters()``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..envs import make_env
from ..envs.base import format_action, get_path

EVAL_TAG = 0x5EED_E7A1  # mixed into the seed sequence of evaluation episodes


# -- seeds -----------------------------------------------------------------------

def heldout_seeds(n: int, seed: int = 0) -> list[int]:
    """``n`` episode seeds for evaluation, fixed by ``seed`` and disjoint from collection seeds.

    Data collection (``cassandra_wm.data.collect``) seeds episodes with 32-bit
    integers; these seeds are ``2**32 + k`` for 32-bit ``k``, so they never coincide.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    children = np.random.SeedSequence([int(seed), EVAL_TAG]).spawn(n)
    return [2 ** 32 + int(c.generate_state(1)[0]) for c in children]


# -- statistics ------------------------------------------------------------------

def _t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer ``df`` (closed form, Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    c, s = math.cos(theta), math.sin(theta)
    if df % 2 == 1:
        term, total = c, 0.0
        if df > 1:
            total = term
            for k in range(3, df - 1, 2):
                term *= c * c * (k - 1) / k
                total += term
        return 2.0 / math.pi * (theta + s * total)
    term, total = 1.0, 1.0
    for k in range(2, df - 1, 2):
        term *= c * c * (k - 1) / k
        total += term
    return s * total


def t_quantile(p: float, df: int) -> float:
    """Quantile ``p`` (> 0.5) of Student's t with integer ``df`` >= 1, by bisection on the exact CDF."""
    if not 0.5 < p < 1.0:
        raise ValueError(f"p must be in (0.5, 1), got {p!r}")
    if isinstance(df, bool) or int(df) != df or df < 1:
        raise ValueError(f"df must be a positive integer, got {df!r}")
    df = int(df)
    target = 2.0 * p - 1.0
    lo, hi = 0.0, 1.0
    while _t_two_sided_mass(hi, df) < target:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_two_sided_mass(mid, df) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the half-width and standard deviation behind a t-based ``level`` confidence interval.

    Returns ``(mean, half_width, std)``; the half-width is NaN with fewer than 2 values.
    """
    x = np.asarray([float(v) for v in values], dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    sd = float(x.std(ddof=1))
    half = t_quantile(0.5 + level / 2.0, x.size - 1) * sd / math.sqrt(x.size)
    return mean, half, sd


# -- one episode -----------------------------------------------------------------

def _money(spec: Any, state: dict) -> float:
    return float(get_path(state, spec.variable(spec.reward_variable).path))


def play_episode(env: Any, agent: Any, seed: int, days: int, agent_seed: int | None = None,
                 top: int = 5, progress: Any = None) -> dict:
    """Play ``agent`` in ``env`` for at most ``days`` days from ``env.reset(seed)``.

    Returns a JSON-ready record (see the module docstring).  ``agent_seed`` seeds
    the generator handed to ``agent.act``; ``top`` candidate actions per day are kept
    for planners.  ``progress``: an optional tqdm bar advanced once per day.
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive integer, got {days!r}")
    spec = env.spec
    rng = np.random.default_rng(agent_seed if agent_seed is not None else seed)
    model = getattr(agent, "model", None)
    if model is not None and hasattr(model, "reset_counters"):
        model.reset_counters()
    state = env.reset(seed)
    money = [_money(spec, state)]
    actions, valid, errors, seconds, decisions = [], [], [], [], []
    done = False
    for day in range(days):
        t0 = time.perf_counter()
        action = agent.act(state, rng)
        seconds.append(time.perf_counter() - t0)
        if hasattr(agent, "diagnostics"):
            d = agent.diagnostics(top)
            if d:
                decisions.append({"day": day, "candidates": d.get("candidates", []), "plan": d.get("plan")})
        state, ok, info = env.step(action)
        actions.append(format_action(action) if isinstance(action, dict) else str(action))
        valid.append(bool(ok))
        errors.append(None if ok else str(info.get("error")))
        money.append(_money(spec, state))
        if progress is not None:
            progress.update(1)
        done = bool(info.get("done")) or bool(getattr(env, "is_done", lambda s: False)(state))
        if done:
            break
    if progress is not None and len(actions) < days:
        progress.update(days - len(actions))
    counters = model.counters_dict() if model is not None and hasattr(model, "counters_dict") else {}
    return {
        "seed": int(seed), "days": len(actions), "final_money": money[-1],
        "bankrupt": bool(state.get("bankrupt", False)), "money": money, "actions": actions,
        "valid": valid, "errors": errors, "invalid_actions": int(sum(1 for v in valid if not v)),
        "seconds_per_decision": float(np.mean(seconds)) if seconds else 0.0,
        "seconds_total": float(np.sum(seconds)), "model_counters": counters, "decisions": decisions,
    }


# -- many episodes, resumable --------------------------------------------------------

_CODE_PARTS = ("planning", "world_model.py", "structure", "envs", "codewm")


def code_version() -> str:
    """Hash of the sources an episode's outcome depends on (planner, models, simulators)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for part in _CODE_PARTS:
        p = root / part
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def settings_key(settings: Any) -> str:
    """A short stable hash of an agent's settings and of the code that plays them: a stored run is
    reused only when both match, so a changed planner or simulator never serves stale results."""
    blob = json.dumps({"settings": settings, "code": code_version()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def load_results(path: str | Path) -> list[dict]:
    """Records of a results file; a torn last line (interrupted write) is dropped and the file repaired."""
    path = Path(path)
    if not path.exists():
        return []
    good, bad = [], 0
    raw = path.read_text()
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(rec, dict) and "agent" in rec and "seed" in rec:
            good.append(rec)
        else:
            bad += 1
    if bad or (raw and not raw.endswith("\n")):
        from ..report import atomic_write_text
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in good))
    return good


def _append(path: Path, rec: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(rec, default=_jsonable) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


AgentFactory = Callable[[int], Any]  # run seed -> fresh agent


def evaluate(env_name: str, agents: dict[str, tuple[AgentFactory, Any]], seeds: Sequence[int], days: int,
             results_path: str | Path | None = None, env_kwargs: dict | None = None, top: int = 5,
             progress: bool = True) -> list[dict]:
    """Play every agent on every seed in the real simulator; returns all records.

    ``agents`` maps a label to ``(factory, settings)``: ``factory(seed)`` builds a
    fresh agent for one run, ``settings`` (JSON-serialisable) identify its
    configuration.  With ``results_path`` each finished run is appended at once, and
    runs already there with the same label, settings key, days and seed are reused.
    """
    if not agents:
        raise ValueError("no agents to evaluate")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("no seeds to evaluate on")
    env = make_env(env_name, **(env_kwargs or {}))
    path = Path(results_path) if results_path is not None else None
    done = {}
    if path is not None:
        for r in load_results(path):
            done[(r["agent"], r.get("settings_key"), r.get("days_budget"), int(r["seed"]))] = r
    todo = []
    out: list[dict] = []
    for label, (factory, settings) in agents.items():
        key = settings_key(settings)
        for run, s in enumerate(seeds):
            hit = done.get((label, key, days, s))
            if hit is not None:
                out.append(hit)
            else:
                todo.append((label, factory, settings, key, run, s))
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(todo) * days, desc=f"evaluate {env_name} ({len(todo)} runs)", unit="day")
    try:
        for label, factory, settings, key, run, s in todo:
            if bar is not None:
                bar.set_postfix_str(f"{label} run {run}")
            agent = factory(s)
            rec = play_episode(env, agent, s, days, agent_seed=s + 7919 * (run + 1), top=top, progress=bar)
            rec.update({"agent": label, "run": run, "settings_key": key, "settings": settings,
                        "days_budget": days, "env": env_name})
            if path is not None:
                _append(path, rec)
            out.append(rec)
    finally:
        if bar is not None:
            bar.close()
    order = {label: i for i, label in enumerate(agents)}
    out.sort(key=lambda r: (order.get(r["agent"], 99), r["run"]))
    return out


# -- tables and curves --------------------------------------------------------------

def summary_table(records: Iterable[dict], level: float = 0.95):
    """Per agent: runs, mean final money, CI half-width and bounds, std, bankruptcy rate, seconds per decision."""
    import pandas as pd
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["agent"], []).append(r)
    rows = []
    for agent, rs in by.items():
        final = [r["final_money"] for r in rs]
        mean, half, sd = mean_ci(final, level)
        rows.append({"agent": agent, "runs": len(rs), "final_money_mean": mean,
                     "ci95_half_width": half, "ci95_low": mean - half, "ci95_high": mean + half, "std": sd,
                     "bankruptcy_rate": float(np.mean([bool(r["bankrupt"]) for r in rs])),
                     "mean_days": float(np.mean([r["days"] for r in rs])),
                     "invalid_actions_per_run": float(np.mean([r.get("invalid_actions", 0) for r in rs])),
                     "seconds_per_decision": float(np.mean([r.get("seconds_per_decision", 0.0) for r in rs]))})
    return pd.DataFrame(rows)


def money_curves(records: Iterable[dict], days: int | None = None):
    """Long frame (agent, run, day, money); a run that ended early keeps its last money afterwards."""
    import pandas as pd
    rows = []
    recs = list(records)
    horizon = days if days is not None else max((len(r["money"]) - 1 for r in recs), default=0)
    for r in recs:
        m = list(r["money"])
        m = m + [m[-1]] * max(0, horizon + 1 - len(m))
        for d, v in enumerate(m[:horizon + 1]):
            rows.append({"agent": r["agent"], "run": r["run"], "day": d, "money": float(v)})
    return pd.DataFrame(rows)


def counters_table(records: Iterable[dict]):
    """Model guard-rail counters summed per agent (clipped values, invalid actions, ...)."""
    import pandas as pd
    tot: dict[str, dict[str, int]] = {}
    for r in records:
        if not r.get("model_counters"):  # agents without a world model
            continue
        t = tot.setdefault(r["agent"], {})
        for k, v in r["model_counters"].items():
            t[k] = t.get(k, 0) + int(v)
    rows = [{"agent": a, **dict(sorted(c.items()))} for a, c in tot.items()]
    df = pd.DataFrame(rows).fillna(0)
    for col in df.columns[1:]:
        df[col] = df[col].astype(int)
    return df


__all__ = ["heldout_seeds", "t_quantile", "mean_ci", "play_episode", "evaluate", "settings_key", "load_results",
           "summary_table", "money_curves", "counters_table", "EVAL_TAG"]


# -- the agents of the planning table ---------------------------------------------------

from ..paper import GRAPH_NAMES as GRAPHS  # noqa: E402


class MissingNetworkError(FileNotFoundError):
    """A fitted network that notebook 04 should have saved is not there."""


def network_dir(env_name: str, profile: str, graph: str, bn_seed: int = 0) -> Path:
    """Where notebook 04 saves the network of ``graph``: ``data/<profile>/<env>/bn/<graph>/seed<k>/``."""
    from .. import paths
    return paths.data_dir(env_name, profile, create=False) / "bn" / graph / f"seed{int(bn_seed)}"


def load_networks(env_name: str, profile: str, graphs: Sequence[str] = GRAPHS, bn_seed: int = 0,
                  spec: Any = None) -> dict[str, Any]:
    """Load the fitted Bayesian networks of ``graphs``; a clear error names any that is missing."""
    from ..structure.bn import BayesNet
    missing = [g for g in graphs if not (network_dir(env_name, profile, g, bn_seed) / "bn.json").exists()]
    if missing:
        where = network_dir(env_name, profile, missing[0], bn_seed)
        raise MissingNetworkError(
            f"no fitted network for {missing} (looked for {where}/bn.json). Run notebook 04 first: "
            f"python run_all.py --profile {profile} --only 04  (or run notebooks/04_fitting.ipynb with "
            f"env_name={env_name!r}, profile={profile!r}); bn_seed={bn_seed} must be one of its seeds.")
    return {g: BayesNet.load(network_dir(env_name, profile, g, bn_seed), spec=spec) for g in graphs}


def network_llm(net: Any) -> str:
    """The LLM named in a network's provenance (the structure came from it)."""
    llm = (getattr(net, "provenance", None) or {}).get("llm")
    return str(llm) if llm else "unknown (not recorded with the network)"


def standard_agents(env: Any, networks: dict[str, Any], config: Any, include_oracle: bool = True,
                    include_heuristic: bool = True, include_mpc: bool = False,
                    mpc_kwargs: dict | None = None) -> tuple[dict[str, tuple[AgentFactory, dict]], dict[str, Any]]:
    """The agents of the planning table and their world models.

    Returns ``(agents, models)``: ``agents`` maps labels (``MCTS+<graph>``, ``MCTS+oracle``,
    ``heuristic``, optionally ``MPC+CASSANDRA``) to ``(factory, settings)`` for :func:`evaluate`;
    ``models`` maps the same labels to the world model an agent plans with (None for the heuristic).
    Every model uses the simulator's deterministic step (appendix C.2) and its own network.
    """
    from dataclasses import asdict

    from ..agents import make_agent
    from ..world_model import OracleModel, SimulatorDeterministic, WorldModel
    from .mcts import MCTSAgent
    from .mpc import SampledMPCAgent
    from .proposals import make_proposer

    det = SimulatorDeterministic(env)
    proposer = make_proposer(env.spec, det)
    cfg = asdict(config)
    agents: dict[str, tuple[AgentFactory, dict]] = {}
    models: dict[str, Any] = {}

    def mcts_factory(model: Any, label: str) -> AgentFactory:
        return lambda seed: MCTSAgent(model, proposer, config, seed=seed, name=label)

    for graph, net in networks.items():
        label = f"MCTS+{graph}"
        model = WorldModel(env.spec, det, net, name=graph)
        prov = getattr(net, "provenance", {}) or {}
        settings = {"kind": "mcts", "model": graph, "config": cfg,
                    "network": {k: prov.get(k) for k in ("created", "data", "llm", "commit")}}
        agents[label] = (mcts_factory(model, label), settings)
        models[label] = model
    if include_oracle:
        model = OracleModel(env)
        agents["MCTS+oracle"] = (mcts_factory(model, "MCTS+oracle"), {"kind": "mcts", "model": "oracle",
                                                                      "config": cfg})
        models["MCTS+oracle"] = model
    if include_mpc and "CASSANDRA" in networks:
        kw = dict(mpc_kwargs or {})
        model = WorldModel(env.spec, det, networks["CASSANDRA"], name="CASSANDRA")
        agents["MPC+CASSANDRA"] = (lambda seed: SampledMPCAgent(model, proposer, seed=seed, **kw),
                                   {"kind": "sampled_mpc", "model": "CASSANDRA", "config": kw})
        models["MPC+CASSANDRA"] = model
    if include_heuristic:
        agents["heuristic"] = (lambda seed: make_agent(env, "heuristic", invalid_rate=0.0, seed=seed),
                               {"kind": "heuristic", "invalid_rate": 0.0})
        models["heuristic"] = None
    return agents, models


def annotated_episode(record: dict, top: int = 3):
    """One run as a per-day frame: money, the chosen action, and the top candidates the planner weighed."""
    import pandas as pd
    by_day = {d["day"]: d for d in record.get("decisions", [])}
    rows = []
    for day, act in enumerate(record["actions"]):
        row = {"day": day, "money_before": record["money"][day], "money_after": record["money"][day + 1],
               "chosen": act, "valid": record["valid"][day]}
        cands = by_day.get(day, {}).get("candidates", [])
        for k, c in enumerate(cands[:top], 1):
            row[f"cand{k}"] = c["action"]
            row[f"cand{k}_visits"] = c["visits"]
            row[f"cand{k}_predicted"] = c["mean"]
        rows.append(row)
    return pd.DataFrame(rows)


__all__ += ["GRAPHS", "MissingNetworkError", "network_dir", "load_networks", "network_llm", "standard_agents",
            "annotated_episode"]
