"""Playing a roster of agents in the real simulator, resumably and in parallel.

* :func:`heldout_seeds` gives episode seeds that data collection never uses
  (collection seeds episodes with 32-bit seeds; these are all >= 2**32).
* :func:`play_episode` plays one agent for ``days`` days from one seed and
  returns a JSON-ready record: final money, bankruptcy, the money curve, the
  actions and their validity, decision times, the model's guard-rail counters,
  (for planners) each day's top candidate actions and, with ``keep_states``, the
  states visited.
* :func:`play_agents` plays every agent of a roster (:mod:`.roster`) on every seed
  through an executor (:mod:`.executor`), appending each finished episode to a JSON
  Lines file as it comes; rerunning it skips episodes already in the file (same
  agent, fit seed, settings key, days and seed), so an interrupted run resumes
  instead of restarting.  Every agent plays the same seeds (paired episodes).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

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


def layout_seeds(n: int, seed: int = 0, n_layouts: int = 3) -> list[int]:
    """``n`` consecutive held-out episode seeds starting at a multiple of ``n_layouts``: an environment that picks
    its layout as the seed modulo the number of layouts (the theme park's held-out split) plays episode ``k`` on
    layout ``k mod n_layouts``, so every layout gets the same number of episodes (``n`` a multiple of it)."""
    if isinstance(n_layouts, bool) or not isinstance(n_layouts, int) or n_layouts < 1:
        raise ValueError(f"n_layouts must be a positive integer, got {n_layouts!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    base = heldout_seeds(1, seed)[0] // n_layouts * n_layouts
    if base < 2 ** 32:  # stay clear of the collection seeds
        base += n_layouts
    return [base + k for k in range(n)]


def agent_seed(seed: int, run: int) -> int:
    """The seed of the generator an agent acts with in episode ``run`` (episode seed ``seed``)."""
    return int(seed) + 7919 * (int(run) + 1)


# -- one episode -----------------------------------------------------------------

def _money(spec: Any, state: dict) -> float:
    return float(get_path(state, spec.variable(spec.reward_variable).path))


def play_episode(env: Any, agent: Any, seed: int, days: int, agent_seed: int | None = None,
                 top: int = 5, progress: Any = None, keep_states: bool = False) -> dict:
    """Play ``agent`` in ``env`` for at most ``days`` days from ``env.reset(seed)``.

    Returns a JSON-ready record (see the module docstring).  ``agent_seed`` seeds
    the generator handed to ``agent.act`` (and ``agent.start_episode``, when the agent
    draws a style per episode); ``top`` candidate actions per day are kept for
    planners.  ``progress``: an optional tqdm bar advanced once per day.
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive integer, got {days!r}")
    spec = env.spec
    rng = np.random.default_rng(agent_seed if agent_seed is not None else seed)
    model = getattr(agent, "model", None)
    if model is not None and hasattr(model, "reset_counters"):
        model.reset_counters()
    if callable(getattr(agent, "start_episode", None)):
        agent.start_episode(rng)
    state = env.reset(seed)
    money = [_money(spec, state)]
    states = [state] if keep_states else None
    actions, valid, errors, seconds, cpu, decisions = [], [], [], [], [], []
    for day in range(days):
        t0, c0 = time.perf_counter(), time.process_time()
        action = agent.act(state, rng)
        seconds.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if hasattr(agent, "diagnostics"):
            d = agent.diagnostics(top)
            if d:
                decisions.append({"day": day, "candidates": d.get("candidates", []), "plan": d.get("plan")})
        state, ok, info = env.step(action)
        actions.append(format_action(action) if isinstance(action, dict) else str(action))
        valid.append(bool(ok))
        errors.append(None if ok else str(info.get("error")))
        money.append(_money(spec, state))
        if states is not None:
            states.append(state)
        if progress is not None:
            progress.update(1)
        if bool(info.get("done")) or bool(getattr(env, "is_done", lambda s: False)(state)):
            break
    if progress is not None and len(actions) < days:
        progress.update(days - len(actions))
    counters = model.counters_dict() if model is not None and hasattr(model, "counters_dict") else {}
    rec = {
        "seed": int(seed), "days": len(actions), "final_money": money[-1],
        "bankrupt": bool(state.get("bankrupt", False)), "money": money, "actions": actions,
        "valid": valid, "errors": errors, "invalid_actions": int(sum(1 for v in valid if not v)),
        "seconds_per_decision": float(np.mean(seconds)) if seconds else 0.0,
        "cpu_seconds_per_decision": float(np.mean(cpu)) if cpu else 0.0,
        "seconds_total": float(np.sum(seconds)), "model_counters": counters, "decisions": decisions,
    }
    if states is not None:
        rec["states"] = states
    return rec


TIMING_FIELDS = ("seconds_per_decision", "cpu_seconds_per_decision", "seconds_total")


# -- the results file ------------------------------------------------------------------

def code_version() -> str:
    """Hash of the sources an episode's outcome depends on: everything the planners import (the
    world model, the networks' code, the simulators), found by following imports; planning never
    reads the code stream's output, so ``codewm`` is not in it."""
    from ..fingerprint import code_hash
    return code_hash(["cassandra_wm.planning.episodes", "cassandra_wm.planning.roster"])


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


def _key(label: str, fit_seed: Any, key: str, days: int, seed: int) -> tuple:
    return (label, None if fit_seed is None else int(fit_seed), key, int(days), int(seed))


# -- a roster on many seeds --------------------------------------------------------------

class EpisodeFailures(RuntimeError):
    """Some episodes failed (their messages are in ``failures``); the others' records are kept."""

    def __init__(self, failures: list[dict]):
        self.failures = failures
        first = failures[0]
        super().__init__(f"{len(failures)} episode(s) failed, e.g. {first['agent']} seed {first['seed']}: "
                         f"{first['error'].splitlines()[0]}")


def agent_settings(spec: Any, network: Any = None, support: Any = None) -> dict:
    """What identifies one agent's episodes in the results file: its spec, its network's provenance
    and, for guarded models, the support it is kept in."""
    s = {"spec": spec.settings()}
    if network is not None:
        prov = getattr(network, "provenance", {}) or {}
        s["network"] = {k: prov.get(k) for k in ("created", "data", "llm", "commit")}
    if support is not None and spec.guard != "off" and spec.learned:
        s["support"] = support.fingerprint()
    return s


def play_agents(env_name: str, roster: Sequence[Any], seeds: Sequence[int], days: int,
                networks: dict | None = None, support: Any = None, executor: Any = None,
                results_path: str | Path | None = None, env_kwargs: dict | None = None, top: int = 5,
                keep_states: bool = False, progress: bool = True, on_failure: str = "warn") -> list[dict]:
    """Play every agent of ``roster`` (a list of :class:`~.roster.AgentSpec`) on every seed; all records.

    ``networks`` maps ``(graph, fit_seed)`` to fitted networks (see :func:`~.roster.load_networks`);
    ``support`` is the training data's :class:`~.support.DataSupport` (needed by guarded agents);
    ``executor`` is an executor or a name for :func:`~.executor.make_executor` (default ``"local"``:
    all cores).  Every spec, the executor and the results file are checked before any episode runs.
    With ``results_path`` each finished episode is appended at once and episodes already there are
    reused.  Failed episodes are reported (``on_failure="warn"``: a warning, and the failures are
    appended to ``<results>.failures.jsonl``; ``"raise"``: :class:`EpisodeFailures` after the others
    finished); the records of the others are returned either way.
    """
    from ..envs.registry import make_env
    from .executor import EXECUTORS, EpisodeTask, make_executor
    if not roster:
        raise ValueError("no agents to play")
    if on_failure not in ("warn", "raise"):
        raise ValueError(f"on_failure must be 'warn' or 'raise', got {on_failure!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive integer, got {days!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("no seeds to play")
    labels = [(s.label, s.fit_seed) for s in roster]
    dup = sorted({x for x in labels if labels.count(x) > 1}, key=str)
    if dup:
        raise ValueError(f"the roster lists the same agent and fit seed twice: {dup}")
    make_env(env_name, **(env_kwargs or {}))  # a bad environment name fails here
    networks = networks or {}
    for spec in roster:
        spec.validate(env_name)
        if spec.learned and (spec.model, spec.fit_seed) not in networks:
            raise ValueError(f"{spec.label}: no network for graph {spec.model!r}, fit seed {spec.fit_seed} "
                             f"(loaded: {sorted(networks)})")
        if spec.learned and spec.guard != "off" and support is None:
            raise ValueError(f"{spec.label}: guard={spec.guard!r} needs the training data's support")
    path = Path(results_path) if results_path is not None else None
    done: dict[tuple, dict] = {}
    if path is not None:
        for r in load_results(path):
            done[_key(r["agent"], r.get("fit_seed"), r.get("settings_key"), r.get("days_budget", -1),
                      r["seed"])] = r
    out: list[dict] = []
    tasks: list[EpisodeTask] = []
    for spec in roster:
        net = networks.get((spec.model, spec.fit_seed)) if spec.learned else None
        sup = support if spec.learned and spec.guard != "off" else None
        key = settings_key(agent_settings(spec, net, sup))
        for run, s in enumerate(seeds):
            hit = done.get(_key(spec.label, spec.fit_seed, key, days, s))
            if hit is not None:
                out.append(hit)
                continue
            tasks.append(EpisodeTask(spec, env_name, s, run, days, dict(env_kwargs or {}), net, sup, top, keep_states,
                                     {"settings_key": key, "settings": agent_settings(spec, net, sup)}))
    own = not hasattr(executor, "run")
    if own and (executor or "local") not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
    if not tasks:
        return _sorted(out, roster)
    ex = make_executor(executor or "local") if own else executor
    bar = None
    if progress and tasks:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(tasks), desc=f"{env_name}: {len(tasks)} episodes on {ex.describe()}", unit="episode")

    def finished(i: int, rec: dict) -> None:
        if path is not None:
            _append(path, rec)
        out.append(rec)
        if bar is not None:
            bar.set_postfix_str(f"{rec['agent']} ${rec['final_money']:,.0f}")
            bar.update(1)

    try:
        failed = ex.run(tasks, finished)
    finally:
        if bar is not None:
            bar.close()
        if own:
            ex.close()
    failures = [{"agent": tasks[i].spec.label, "fit_seed": tasks[i].spec.fit_seed, "seed": tasks[i].seed,
                 "run": tasks[i].run, "error": msg} for i, msg in sorted(failed.items())]
    if failures:
        if path is not None:
            for f in failures:
                _append(path.with_suffix(".failures.jsonl"), {**f, "time": time.time()})
        if on_failure == "raise":
            raise EpisodeFailures(failures)
        warnings.warn(str(EpisodeFailures(failures)), RuntimeWarning, stacklevel=2)
    return _sorted(out, roster)


def _sorted(records: list[dict], roster: Sequence[Any]) -> list[dict]:
    order = {(s.label, s.fit_seed): i for i, s in enumerate(roster)}
    return sorted(records, key=lambda r: (order.get((r["agent"], r.get("fit_seed")), 10 ** 6), r["run"]))


__all__ = ["heldout_seeds", "layout_seeds", "agent_seed", "play_episode", "play_agents", "settings_key", "agent_settings",
           "code_version", "load_results", "EpisodeFailures", "TIMING_FIELDS", "EVAL_TAG"]
