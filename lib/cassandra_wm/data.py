"""Trajectory collection, storage, splits and loaders.

A dataset is a JSON Lines file of transition records plus a small JSON sidecar
(``<name>.meta.json``).  One record per line (schema version 1, see data/README.md)::

    {"traj_id": 3, "t": 0, "state": {...}, "action": {"name": "buy_beans", "args": {"units": 20}},
     "action_text": "buy_beans(units=20)", "valid": true, "error": null,
     "next_state": {...}, "done": false}

The sidecar holds the schema version, environment, agent, seed, counts, the
train/val/test assignment of trajectories and the data file's sha256.  Splits are by
trajectory, never by transition, so no trajectory leaks across splits.

Loading validates every line against a declared schema (:class:`TransitionRecord` and
:class:`Sidecar`, pydantic models in strict mode, so ``"3"`` is not an int and ``1`` is
not a bool) and every model variable of both states against the environment's spec
(present, a finite number or a declared category).  A bad file fails with
:class:`DataFileError` naming the file, the line and the field; nothing becomes NaN.
pydantic is already installed with the ``openai`` client, its compiled core keeps
validation cheap (thousands of records per second), and its errors carry the field path.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Iterable, Literal, Optional, Union

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import paths
from .envs import make_env
from .envs.base import EnvSpec, Environment, copy_state, format_action, get_path
from .report import atomic_write_text, provenance

SCHEMA_VERSION = 1
RECORD_KEYS = ("traj_id", "t", "state", "action", "action_text", "valid", "error", "next_state", "done")
SPLITS = ("train", "val", "test")


class DataFileError(ValueError):
    """A data file is missing, corrupt, truncated or does not match its sidecar."""


# -- declared schema -------------------------------------------------------------

class ActionRecord(BaseModel):
    """An action as the agent sent it."""
    model_config = ConfigDict(strict=True, extra="forbid")
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class TransitionRecord(BaseModel):
    """One line of ``transitions.jsonl`` (schema version 1; see data/README.md)."""
    model_config = ConfigDict(strict=True, extra="forbid")
    traj_id: int = Field(ge=0)
    t: int = Field(ge=0)
    state: dict[str, Any]
    action: Union[ActionRecord, str]
    action_text: str
    valid: bool
    error: Optional[str]
    next_state: dict[str, Any]
    done: bool


class Counts(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    records: int = Field(ge=0)
    trajectories: int = Field(ge=0)
    invalid: int = Field(ge=0)
    bankrupt_trajectories: int = Field(default=0, ge=0)


class Splits(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    train: list[int]
    val: list[int]
    test: list[int]


class Sidecar(BaseModel):
    """``transitions.meta.json``: required keys are checked, other keys (agent, seed, ...) pass through."""
    model_config = ConfigDict(strict=True, extra="allow")
    schema_version: Literal[1]
    file: str
    counts: Counts
    splits: Splits
    env: Optional[str] = None
    sha256: Optional[str] = None


def _field(loc: tuple) -> str:
    """A pydantic error location as a dotted field name (``state.money``, ``splits.train.3``)."""
    parts = [str(p) for p in loc if p not in ("ActionRecord", "str")]
    return ".".join(parts) if parts else "(record)"


def _schema_error(where: str, err: ValidationError) -> DataFileError:
    errors = err.errors()
    missing = [_field(e["loc"]) for e in errors if e["type"] == "missing"]
    if missing:
        return DataFileError(f"{where}: record lacks field{'s' if len(missing) > 1 else ''} "
                             + ", ".join(f"'{m}'" for m in missing))
    first = errors[0]
    more = len(errors) - 1
    return DataFileError(f"{where}: field '{_field(first['loc'])}': {first['msg'].lower()}, got "
                         f"{_short(first.get('input'))}"
                         + (f" (and {more} more problem{'s' if more > 1 else ''} in this record)" if more else ""))


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_variables(rec: dict, spec: EnvSpec, where: str) -> None:
    """Every model variable of both states is present and of its declared type."""
    for key in ("state", "next_state"):
        st = rec[key]
        for v in spec.variables:
            try:
                value = get_path(st, v.path)
            except (KeyError, IndexError, TypeError, ValueError):
                raise DataFileError(f"{where}: field '{key}{v.path.replace('/', '.')}': missing "
                                    f"(variable {v.name!r} of {spec.name})") from None
            if v.type == "numeric":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                if not ok:
                    raise DataFileError(f"{where}: field '{key}{v.path.replace('/', '.')}': expected a finite "
                                        f"number (variable {v.name!r}), got {_short(value)}")
            elif value is None or isinstance(value, (dict, list)) or (
                    v.categories is not None and value not in v.categories):
                allowed = f" (one of {list(v.categories)})" if v.categories is not None else ""
                raise DataFileError(f"{where}: field '{key}{v.path.replace('/', '.')}': expected a category"
                                    f"{allowed} (variable {v.name!r}), got {_short(value)}")


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


def collect_on_layouts(env_name: str, agent: Any, n_trajectories: int, horizon: int, seed: int,
                       val_fraction: float, test_fraction: float, n_test_trajectories: int = 0,
                       **env_kwargs: Any) -> dict:
    """Collection for an environment with named layouts (``spec.notes["train_layouts"]`` and
    ``["test_layouts"]``, e.g. the theme park).

    The ``n_trajectories`` training trajectories are spread evenly over the training layouts and split
    into train and validation (and test by ``test_fraction``); with ``n_test_trajectories > 0`` the test
    split is new trajectories on the held-out layouts instead.  Every layout's episodes are seeded from
    ``(seed, split, layout index)`` alone.  Returns ``{"records", "splits", "meta", "n_total",
    "layout_of"}`` (``layout_of``: trajectory id -> layout name).
    """
    from tqdm.auto import tqdm

    if not isinstance(n_trajectories, int) or n_trajectories < 1:
        raise ValueError(f"n_trajectories must be a positive integer, got {n_trajectories!r}")
    if not isinstance(n_test_trajectories, int) or n_test_trajectories < 0:
        raise ValueError(f"n_test_trajectories must be a non-negative integer, got {n_test_trajectories!r}")
    notes = make_env(env_name).spec.notes
    train_layouts, test_layouts = list(notes.get("train_layouts") or []), list(notes.get("test_layouts") or [])
    if not train_layouts:
        raise ValueError(f"{env_name} names no training layouts (spec.notes['train_layouts']); use collect()")
    if n_test_trajectories and not test_layouts:
        raise ValueError(f"n_test_trajectories={n_test_trajectories} needs held-out layouts; {env_name} has none")

    def on_layouts(layouts, n, first_id, tag):
        out, layout_of, next_id = [], {}, first_id
        bar = tqdm(total=n, desc=f"collect {env_name} ({'held-out' if tag else 'training'} layouts)", unit="traj")
        for k, name in enumerate(layouts):
            n_k = n // len(layouts) + (1 if k < n % len(layouts) else 0)
            if n_k == 0:
                continue
            env_k = make_env(env_name, layout=name, horizon=horizon, **env_kwargs)
            sub_seed = int(np.random.SeedSequence([seed, tag, k]).generate_state(1)[0])  # fixed by seed alone
            try:
                recs = collect(env_k, agent, n_trajectories=n_k, horizon=horizon, seed=sub_seed, progress=False)
            finally:
                close = getattr(env_k, "close", None)
                if callable(close):
                    close()
            for r in recs:
                r["traj_id"] += next_id
            layout_of.update({next_id + j: name for j in range(n_k)})
            out += recs
            next_id += n_k
            bar.update(n_k)
        bar.close()
        return out, layout_of

    records, layout_of = on_layouts(train_layouts, n_trajectories, 0, tag=0)
    if n_test_trajectories:
        test_records, test_layout_of = on_layouts(test_layouts, n_test_trajectories, n_trajectories, tag=1)
        splits = split_trajectories(range(n_trajectories), seed=seed, val_fraction=val_fraction, test_fraction=0.0)
        splits["test"] = sorted(test_layout_of)
        records += test_records
        layout_of.update(test_layout_of)
    else:
        splits = split_trajectories(range(n_trajectories), seed=seed, val_fraction=val_fraction,
                                    test_fraction=test_fraction)
    meta = {"n_test_trajectories": n_test_trajectories,
            "layouts": {"train": train_layouts, "test": test_layouts if n_test_trajectories else []},
            "trajectory_layout": {str(i): name for i, name in sorted(layout_of.items())}}
    return {"records": records, "splits": splits, "meta": meta,
            "n_total": n_trajectories + n_test_trajectories, "layout_of": layout_of}


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
    text = "\n".join(lines) + ("\n" if lines else "")
    side["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    # Data first, sidecar last: a sidecar always describes a complete data file.
    atomic_write_text(path, text)
    atomic_write_text(meta_path(path), json.dumps(side, indent=1))
    return side


def load_meta(path: str | Path) -> dict:
    """The sidecar of a dataset, validated against :class:`Sidecar`; a clear error when missing or bad."""
    mp = meta_path(path)
    if not mp.exists():
        raise DataFileError(f"{mp}: sidecar not found (was {Path(path).name} written by save_transitions?)")
    try:
        side = json.loads(mp.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DataFileError(f"{mp}: not UTF-8 (byte {e.object[e.start]:#04x} at offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise DataFileError(f"{mp}:{e.lineno}: corrupt sidecar JSON ({e.msg})") from None
    if not isinstance(side, dict):
        raise DataFileError(f"{mp}: the sidecar must be a JSON object, got {type(side).__name__}")
    if side.get("schema_version") != SCHEMA_VERSION:
        raise DataFileError(f"{mp}: unsupported schema version {side.get('schema_version')!r}"
                            f" (expected {SCHEMA_VERSION})")
    try:
        Sidecar.model_validate(side)
    except ValidationError as e:
        raise _schema_error(str(mp), e) from None
    seen: dict[int, str] = {}
    for name in SPLITS:
        for i in side["splits"][name]:
            if i in seen:
                raise DataFileError(f"{mp}: field 'splits': trajectory {i} is in both {seen[i]!r} and {name!r}")
            seen[i] = name
    return side


def _spec_for(side: dict | None) -> EnvSpec | None:
    """The spec of the sidecar's environment, or None when the environment is not known here."""
    from .envs.registry import env_names
    name = side.get("env") if side else None
    if not isinstance(name, str) or name not in env_names():
        return None
    return make_env(name).spec


def _check_record(rec: Any, path: Path, lineno: int, spec: EnvSpec | None = None) -> None:
    where = f"{path}:{lineno}"
    if not isinstance(rec, dict):
        raise DataFileError(f"{where}: a record must be a JSON object, got {type(rec).__name__}")
    try:
        TransitionRecord.model_validate(rec)
    except ValidationError as e:
        raise _schema_error(where, e) from None
    if spec is not None:
        _check_variables(rec, spec, where)


def load_records(path: str | Path, split: str | None = None, spec: EnvSpec | None = None) -> list[dict]:
    """Read a dataset as a list of record dicts, optionally one split ("train", "val", "test").

    Every line is validated (see the module docstring); the model variables are checked against
    ``spec``, or against the spec of the sidecar's environment when ``spec`` is None and the
    environment is registered.  Raises :class:`DataFileError` naming the file, line and field on
    corrupt, truncated, mistyped or non-UTF-8 data, and when the file does not match its sidecar.
    """
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path}: data file not found (run notebook 01 to collect it)")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    side = load_meta(path) if meta_path(path).exists() or split is not None else None
    if spec is None:
        spec = _spec_for(side)
    keep: set[int] | None = set(side["splits"][split]) if split is not None else None
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        # The last line has no newline: the writer was interrupted mid-record.
        try:
            json.loads(lines[-1])
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataFileError(f"{path}:{len(lines)}: truncated record "
                                f"({getattr(e, 'msg', 'not UTF-8')})") from None
    records = []
    ids: set[int] = set()
    for lineno, blob in enumerate(lines, start=1):
        try:
            line = blob.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataFileError(f"{path}:{lineno}: not UTF-8 (byte {blob[e.start]:#04x} at column "
                                f"{e.start + 1})") from None
        if not line.strip():
            raise DataFileError(f"{path}:{lineno}: empty line")
        try:
            rec = json.loads(line, parse_constant=_reject_constant)
        except json.JSONDecodeError as e:
            raise DataFileError(f"{path}:{lineno}: corrupt JSON at column {e.colno} ({e.msg})") from None
        except ValueError as e:
            raise DataFileError(f"{path}:{lineno}: {e}") from None
        _check_record(rec, path, lineno, spec)
        ids.add(rec["traj_id"])
        if keep is None or rec["traj_id"] in keep:
            records.append(rec)
    if side is not None:
        where = f"{path}:{len(lines)}"
        expected = side["counts"]["records"]
        if expected != len(lines):
            raise DataFileError(f"{where}: file has {len(lines)} records but its sidecar "
                                f"{meta_path(path).name} says {expected} (truncated or mixed files?)")
        unknown = sorted(i for name in SPLITS for i in side["splits"][name] if i not in ids)
        if unknown:
            raise DataFileError(f"{meta_path(path)}: field 'splits' names trajectories that are not in "
                                f"{path.name}: {unknown[:5]}")
        digest = side.get("sha256")
        if digest is not None and hashlib.sha256(raw).hexdigest() != digest:
            raise DataFileError(f"{path}: content differs from the sha256 in its sidecar "
                                f"{meta_path(path).name} (edited or partly rewritten? rerun notebook 01)")
    return records


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (JSON has no NaN or Infinity)")


def load_transitions(path: str | Path, split: str | None = None, spec: EnvSpec | None = None) -> pd.DataFrame:
    """Read a dataset into a DataFrame, one row per transition (validated as :func:`load_records` does).

    Columns follow the record schema; ``state``, ``action`` and ``next_state`` hold
    dicts.  A ``split`` column says where each trajectory belongs.
    """
    records = load_records(path, split=split, spec=spec)
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


__all__ = ["collect", "collect_on_layouts", "split_trajectories", "save_transitions", "load_transitions", "load_records",
           "load_meta", "flatten", "dataset_path", "meta_path", "summarize_counts", "DataFileError",
           "SCHEMA_VERSION", "RECORD_KEYS", "TransitionRecord", "Sidecar"]
