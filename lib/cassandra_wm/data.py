"""Trajectory collection, storage, splits and loaders.

A dataset is a JSON Lines file of transition records plus a small JSON sidecar
(``<name>.meta.json``).  One record per line (schema version 1, see data/README.md)::

    {"traj_id": 3, "t": 0, "state": {...}, "action": {"name": "buy_beans", "args": {"units": 20}},
     "action_text": "buy_beans(units=20)", "valid": true, "error": null,
     "next_state": {...}, "done": false}

The sidecar holds the schema version, environment, agent, seed, counts and the
train/val/test assignment of trajectories.  Splits are by trajectory, never by
transition, so no trajectory leaks across splits.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from . import paths
from .envs import make_env
from .envs.base import EnvSpec, Environment, copy_state, format_action, get_path
from .report import atomic_write_text, provenance

SCHEMA_VERSION = 1
RECORD_KEYS = ("traj_id", "t", "state", "action", "action_text", "valid", "error", "next_state", "done")
SPLITS = ("train", "val", "test")


class DataFileError(ValueError):
    """A data file is missing, corrupt, truncated or does not match its sidecar."""


# -- collection ------------------------------------------------------------------

def _build_env(env: str | Environment, horizon: int) -> Environment:
    if isinstance(env, Environment):
        return env
    if not isinstance(env, str):
        raise TypeError(f"env must be an environment name or an Environment, got {type(env).__name__}")
    try:
        return make_env(env, horizon=horizon)
    except TypeError:  # an environment without a horizon argument
        return make_env(env)


def _action_text(action: Any) -> str:
    if isinstance(action, dict) and isinstance(action.get("name"), str):
        try:
            return format_action(action)
        except Exception:
            pass
    return str(action)


def collect(env: str | Environment, agent: Any, n_trajectories: int, horizon: int, seed: int = 0,
            progress: bool = True, invalid_rate: float = 0.0) -> list[dict]:
    """Run ``n_trajectories`` episodes of at most ``horizon`` steps and return transition records.

    ``env`` is a name for :func:`~cassandra_wm.envs.make_env` or an Environment;
    ``agent`` an object with ``act(state, rng)`` or a kind for
    :func:`~cassandra_wm.agents.make_agent` (then ``invalid_rate`` applies).  Episode
    ``i`` is seeded from ``(seed, i)`` alone, so the result is fixed by ``seed``.
    """
    if not isinstance(n_trajectories, int) or n_trajectories < 1:
        raise ValueError(f"n_trajectories must be a positive integer, got {n_trajectories!r}")
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    env_obj = _build_env(env, horizon)
    if isinstance(agent, str):
        from .agents import make_agent
        agent = make_agent(env_obj, agent, invalid_rate=invalid_rate, seed=seed)
    if not callable(getattr(agent, "act", None)):
        raise TypeError(f"agent must have an act(state, rng) method, got {type(agent).__name__}")

    children = np.random.SeedSequence(seed).spawn(n_trajectories)
    records: list[dict] = []
    it: Iterable[int] = range(n_trajectories)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"collect {env_obj.spec.name}", unit="traj")
    for i in it:
        env_seed, agent_seed = (int(x) for x in children[i].generate_state(2))
        rng = np.random.default_rng(agent_seed)
        state = copy_state(env_obj.reset(seed=env_seed))
        if callable(getattr(agent, "start_episode", None)):
            agent.start_episode(rng)
        for t in range(horizon):
            action = agent.act(state, rng)
            nxt, valid, info = env_obj.step(action)
            nxt = copy_state(nxt)  # detached from the simulator, and proven JSON-serialisable
            done = bool(info.get("done", False)) or t == horizon - 1
            records.append({
                "traj_id": i, "t": t, "state": state, "action": action,
                "action_text": _action_text(action), "valid": bool(valid),
                "error": None if valid else str(info.get("error") or "invalid action"),
                "next_state": nxt, "done": done,
            })
            state = nxt
            if done:
                break
    return records


# -- splits -------------------------------------------------------------------

def split_trajectories(ids: Iterable[int], seed: int = 0, val_fraction: float = 0.05,
                       test_fraction: float = 0.05) -> dict[str, list[int]]:
    """Assign whole trajectories to train/val/test (100 ids -> 90/5/5 by default).

    Each non-zero fraction gets at least one trajectory when there are three or more.
    """
    ids = sorted(set(int(i) for i in ids))
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"bad split fractions val={val_fraction}, test={test_fraction}")
    n = len(ids)
    n_val = int(round(n * val_fraction))
    n_test = int(round(n * test_fraction))
    if n >= 3:
        n_val = max(n_val, 1 if val_fraction > 0 else 0)
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
    if n_val + n_test >= n:
        n_val, n_test = 0, 0
    order = np.random.default_rng(seed).permutation(n)
    shuffled = [ids[j] for j in order]
    return {"train": sorted(shuffled[n_val + n_test:]), "val": sorted(shuffled[:n_val]),
            "test": sorted(shuffled[n_val:n_val + n_test])}


# -- storage ------------------------------------------------------------------

def dataset_path(env_name: str, profile: str = "quick") -> Path:
    """Where notebook 01 stores the transitions of ``env_name`` in ``profile``."""
    return paths.data_dir(env_name, profile) / "transitions.jsonl"


def meta_path(path: str | Path) -> Path:
    """The sidecar of a dataset: ``transitions.jsonl`` -> ``transitions.meta.json``."""
    path = Path(path)
    return path.with_name(path.stem + ".meta.json")


def summarize_counts(records: list[dict]) -> dict:
    """Record, trajectory, invalid and termination counts of a record list."""
    trajs = sorted({int(r["traj_id"]) for r in records})
    last = {}
    for r in records:
        last[int(r["traj_id"])] = r
    bankrupt = sum(1 for r in last.values() if isinstance(r["next_state"], dict)
                   and r["next_state"].get("bankrupt"))
    return {"records": len(records), "trajectories": len(trajs),
            "invalid": sum(1 for r in records if not r["valid"]), "bankrupt_trajectories": bankrupt}


def save_transitions(records: list[dict], path: str | Path, meta: dict | None = None,
                     splits: dict[str, list[int]] | None = None, seed: int = 0) -> dict:
    """Write ``records`` as JSON Lines and the sidecar, each atomically; returns the sidecar dict.

    ``splits`` defaults to :func:`split_trajectories` of the trajectory ids with ``seed``.
    """
    path = Path(path)
    lines = []
    for n, r in enumerate(records):
        missing = [k for k in RECORD_KEYS if k not in r]
        if missing:
            raise ValueError(f"record {n} lacks {missing}")
        lines.append(json.dumps({k: r[k] for k in RECORD_KEYS}, separators=(",", ":"), allow_nan=False))
    ids = sorted({int(r["traj_id"]) for r in records})
    splits = splits if splits is not None else split_trajectories(ids, seed=seed)
    unknown = set().union(*[set(v) for v in splits.values()]) - set(ids) if splits else set()
    if unknown:
        raise ValueError(f"splits name trajectories that are not in the records: {sorted(unknown)[:5]}")
    side = {"schema_version": SCHEMA_VERSION, "file": path.name}
    side.update(meta or {})
    side["counts"] = summarize_counts(records)
    side["splits"] = {k: sorted(int(i) for i in splits.get(k, [])) for k in SPLITS}
    side.setdefault("provenance", provenance("none (no LLM used in this stage)"))
    # Data first, sidecar last: a sidecar always describes a complete data file.
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    atomic_write_text(meta_path(path), json.dumps(side, indent=1))
    return side


def load_meta(path: str | Path) -> dict:
    """The sidecar of a dataset, with a clear error when missing or corrupt."""
    mp = meta_path(path)
    if not mp.exists():
        raise DataFileError(f"{mp}: sidecar not found (was {Path(path).name} written by save_transitions?)")
    try:
        side = json.loads(mp.read_text())
    except json.JSONDecodeError as e:
        raise DataFileError(f"{mp}:{e.lineno}: corrupt sidecar JSON ({e.msg})") from None
    if not isinstance(side, dict) or side.get("schema_version") != SCHEMA_VERSION:
        raise DataFileError(f"{mp}: unsupported schema version {side.get('schema_version') if isinstance(side, dict) else None!r}"
                            f" (expected {SCHEMA_VERSION})")
    return side


def _check_record(rec: Any, path: Path, lineno: int) -> None:
    if not isinstance(rec, dict):
        raise DataFileError(f"{path}:{lineno}: a record must be a JSON object, got {type(rec).__name__}")
    missing = [k for k in RECORD_KEYS if k not in rec]
    if missing:
        raise DataFileError(f"{path}:{lineno}: record lacks {missing}")
    if not isinstance(rec["state"], dict) or not isinstance(rec["next_state"], dict):
        raise DataFileError(f"{path}:{lineno}: state and next_state must be JSON objects")
    if not isinstance(rec["valid"], bool):
        raise DataFileError(f"{path}:{lineno}: 'valid' must be true or false, got {rec['valid']!r}")


def load_records(path: str | Path, split: str | None = None) -> list[dict]:
    """Read a dataset as a list of record dicts, optionally one split ("train", "val", "test").

    Raises :class:`DataFileError` naming the file and line on corrupt or truncated data.
    """
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path}: data file not found (run notebook 01 to collect it)")
    side = load_meta(path) if meta_path(path).exists() or split is not None else None
    keep: set[int] | None = None
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        keep = set(side["splits"][split])
    records = []
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        # The last line has no newline: the writer was interrupted mid-record.
        try:
            json.loads(lines[-1])
        except json.JSONDecodeError as e:
            raise DataFileError(f"{path}:{len(lines)}: truncated record ({e.msg})") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataFileError(f"{path}:{lineno}: empty line")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFileError(f"{path}:{lineno}: corrupt JSON at column {e.colno} ({e.msg})") from None
        _check_record(rec, path, lineno)
        if keep is None or int(rec["traj_id"]) in keep:
            records.append(rec)
    if side is not None:
        expected = side.get("counts", {}).get("records")
        if expected is not None and expected != len(lines):
            raise DataFileError(f"{path}:{len(lines)}: file has {len(lines)} records but its sidecar "
                                f"{meta_path(path).name} says {expected} (truncated or mixed files?)")
    return records


def load_transitions(path: str | Path, split: str | None = None) -> pd.DataFrame:
    """Read a dataset into a DataFrame, one row per transition.

    Columns follow the record schema; ``state``, ``action`` and ``next_state`` hold
    dicts.  A ``split`` column says where each trajectory belongs.
    """
    records = load_records(path, split=split)
    df = pd.DataFrame.from_records(records, columns=list(RECORD_KEYS))
    where = {}
    if meta_path(path).exists():
        for name, ids in load_meta(path)["splits"].items():
            for i in ids:
                where[int(i)] = name
    df["split"] = [where.get(int(i), "unassigned") for i in df["traj_id"]]
    return df


def flatten(df: pd.DataFrame, spec: EnvSpec) -> pd.DataFrame:
    """One column per variable: ``<name>`` before and ``next_<name>`` after each step.

    Also keeps ``traj_id``, ``t``, ``action_name``, ``action_text``, ``valid``,
    ``error``, ``done`` (and ``split`` when present).
    """
    out = pd.DataFrame({"traj_id": df["traj_id"].to_numpy(), "t": df["t"].to_numpy()})
    out["action_name"] = [a.get("name") if isinstance(a, dict) else str(a) for a in df["action"]]
    for col in ("action_text", "valid", "error", "done", "split"):
        if col in df:
            out[col] = df[col].to_numpy()
    for prefix, col in (("", "state"), ("next_", "next_state")):
        for v in spec.variables:
            vals = []
            for s in df[col]:
                try:
                    vals.append(get_path(s, v.path))
                except (KeyError, IndexError, TypeError, ValueError):
                    vals.append(math.nan if v.type == "numeric" else None)
            out[prefix + v.name] = vals
    return out


__all__ = ["collect", "split_trajectories", "save_transitions", "load_transitions", "load_records",
           "load_meta", "flatten", "dataset_path", "meta_path", "summarize_counts", "DataFileError",
           "SCHEMA_VERSION", "RECORD_KEYS"]
