"""The stage table (``notebooks/stages.toml``): which notebooks run, in what order, with which parameters.

``run_all.py`` reads it to run the bundle; notebooks can read their own defaults from it, so the
quick-profile values live in one place::

    from cassandra_wm.stages import stage_params
    globals().update(stage_params("01_data_collection", "quick"))

A ``[[stage]]`` entry has ``name`` and ``notebook``, and optionally

* ``[stage.quick]`` / ``[stage.full]`` (and ``[stage.common]``): the notebook's parameters per profile;
* ``needs``: stages whose outputs this one reads; ``outputs``: files (or folders) it must leave behind,
  ``{profile}`` and ``{env}`` filled in; ``profiles``: the profiles that run it (default both);
* ``uses_llm``: whether it asks an LLM; ``results`` / ``figures``: headline tables and PNGs for the README;
* ``reads``: library parts it reads beyond what its imports show (``"codewm"``, ``"metrics.py"``);
* ``timeout``: seconds the whole notebook may take, a number or ``{quick = ..., full = ...}``.

A top-level ``[defaults]`` table may hold a ``timeout`` used by stages that set none.
$CASSANDRA_STAGES points at another table (tests use small ones); its notebooks sit beside it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .paths import NOTEBOOKS

PROFILES = ("quick", "full")
# keys of a [[stage]] entry; anything else is a typo and an error
STAGE_KEYS = {"name", "notebook", "needs", "outputs", "profiles", "uses_llm", "results", "figures", "reads",
              "timeout", "common", *PROFILES}
# without a timeout in the table: generous for the bundled model on 2 busy cores, finite for a hung cell
DEFAULT_TIMEOUT = {"quick": 3600.0, "full": 12 * 3600.0}


class StageError(RuntimeError):
    """The stage table is malformed, or names a stage that does not exist."""


def stages_file() -> Path:
    """$CASSANDRA_STAGES, else notebooks/stages.toml of this checkout."""
    return Path(os.environ.get("CASSANDRA_STAGES") or NOTEBOOKS / "stages.toml")


def read_table(path: Path | None = None) -> dict:
    path = Path(path) if path is not None else stages_file()
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise StageError(f"{path}: stage table not found") from None
    except tomllib.TOMLDecodeError as e:
        raise StageError(f"{path}: not valid TOML ({e})") from None


def _timeout_ok(value: Any) -> bool:
    if isinstance(value, dict):
        return all(k in PROFILES and _timeout_ok(v) for k, v in value.items())
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def load_stages(path: Path | None = None) -> list[dict]:
    """Every ``[[stage]]`` of the table, checked, each with ``path`` (its notebook) added."""
    path = Path(path) if path is not None else stages_file()
    table = read_table(path)
    defaults = table.get("defaults", {})
    if "timeout" in defaults and not _timeout_ok(defaults["timeout"]):
        raise StageError(f"{path}: [defaults] timeout must be seconds > 0 or {{quick = ..., full = ...}}")
    stages = table.get("stage", [])
    names: set[str] = set()
    for st in stages:
        for key in ("name", "notebook"):
            if key not in st:
                raise StageError(f"{path}: a [[stage]] entry lacks '{key}': {st}")
        unknown = set(st) - STAGE_KEYS
        if unknown:
            raise StageError(f"{path}: stage {st['name']!r} has unknown keys {sorted(unknown)} "
                             f"(known: {sorted(STAGE_KEYS)})")
        if st["name"] in names:
            raise StageError(f"{path}: stage {st['name']!r} is listed twice")
        names.add(st["name"])
        for dep in st.get("needs", []):
            if dep not in names:
                raise StageError(f"{path}: stage {st['name']!r} needs {dep!r}, which is not listed before it")
        if "timeout" in st and not _timeout_ok(st["timeout"]):
            raise StageError(f"{path}: stage {st['name']!r}: timeout must be seconds > 0 or "
                             f"{{quick = ..., full = ...}}, got {st['timeout']!r}")
        bad = [p for p in st.get("profiles", []) if p not in PROFILES]
        if bad:
            raise StageError(f"{path}: stage {st['name']!r}: unknown profiles {bad} (known: {list(PROFILES)})")
        nb = path.parent / st["notebook"]
        st["path"] = nb
        if not nb.exists():
            raise StageError(f"{path}: stage {st['name']!r} points at missing notebook {nb}")
        st.setdefault("_default_timeout", defaults.get("timeout"))
    return stages


def for_profile(stages: list[dict], profile: str) -> list[dict]:
    """The stages a profile runs (a stage may list ``profiles = ["full"]`` to stay out of quick runs)."""
    return [s for s in stages if profile in s.get("profiles", PROFILES)]


def match_stages(stages: list[dict], key: str) -> list[dict]:
    """Every stage a key names: the exact name, else all stages that start with it."""
    exact = [s for s in stages if s["name"] == key]
    hits = exact or [s for s in stages if s["name"].startswith(key)]
    if not hits:
        raise StageError(f"no stage matches {key!r}; stages: {', '.join(s['name'] for s in stages)}")
    return hits


def select(stages: list[dict], only: list[str] | None, start: str | None) -> list[dict]:
    """``only`` keys select every stage they match; ``start`` starts at the first match."""
    if only:
        wanted = {s["name"] for k in only for s in match_stages(stages, k)}
        return [s for s in stages if s["name"] in wanted]
    if start:
        first = match_stages(stages, start)[0]["name"]
        idx = [s["name"] for s in stages].index(first)
        return stages[idx:]
    return list(stages)


def upstream(stages: list[dict], names: set[str]) -> list[str]:
    """Every stage the named ones need, directly or through others, in table order (names excluded)."""
    by_name = {s["name"]: s for s in stages}
    seen: set[str] = set()
    todo = [d for n in names for d in by_name[n].get("needs", [])]
    while todo:
        d = todo.pop()
        if d not in seen and d in by_name:
            seen.add(d)
            todo.extend(by_name[d].get("needs", []))
    return [s["name"] for s in stages if s["name"] in seen and s["name"] not in names]


def stage_parameters(stage: dict, profile: str, seed: int = 0, llm: str = "local") -> dict:
    """What a run injects into the notebook: profile, seed, llm, env_name and the profile's table."""
    params: dict[str, Any] = {"profile": profile, "seed": seed, "llm": llm}
    params.update(stage.get("common", {}))
    params.update(stage.get(profile, {}))
    params.setdefault("env_name", "coffee_shop")
    return params


def stage_timeout(stage: dict, profile: str) -> float:
    """Seconds the whole notebook may run: the stage's, else the table's default, else DEFAULT_TIMEOUT."""
    for value in (stage.get("timeout"), stage.get("_default_timeout")):
        if isinstance(value, dict):
            value = value.get(profile)
        if value is not None:
            return float(value)
    return DEFAULT_TIMEOUT[profile]


def get_stage(name: str, path: Path | None = None) -> dict:
    """One stage by its exact name."""
    stages = load_stages(path)
    for st in stages:
        if st["name"] == name:
            return st
    raise StageError(f"no stage named {name!r}; stages: {', '.join(s['name'] for s in stages)}")


def stage_params(stage_name: str, profile: str = "quick", path: Path | None = None) -> dict:
    """A stage's notebook parameters of ``profile`` as stages.toml lists them (plus ``env_name``).

    For a notebook's parameter cell, so that the quick-profile values are written once, in stages.toml.
    ``profile``, ``seed`` and ``llm`` are not included: those come from the run.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    st = get_stage(stage_name, path)
    if profile not in st.get("profiles", PROFILES):
        raise StageError(f"stage {stage_name!r} does not run in the {profile} profile "
                         f"(profiles = {st.get('profiles')})")
    params = stage_parameters(st, profile)
    for key in ("profile", "seed", "llm"):
        params.pop(key)
    return params


__all__ = ["StageError", "PROFILES", "DEFAULT_TIMEOUT", "stages_file", "read_table", "load_stages", "for_profile",
           "match_stages", "select", "upstream", "stage_parameters", "stage_timeout", "get_stage", "stage_params"]
