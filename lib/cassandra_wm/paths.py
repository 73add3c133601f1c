"""Where the bundle keeps its inputs and outputs."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
NOTEBOOKS = ROOT / "notebooks"
# Outputs go under CASSANDRA_OUT when set (tests point it at a temporary folder).
OUT = Path(os.environ.get("CASSANDRA_OUT", ROOT))
DATA = OUT / "data"
FIGURES = OUT / "figures"
# LLM answers: recorded ones are read from and appended to LLM_CACHE ($CASSANDRA_LLM_CACHE_DIR, else under
# the output folder); the answers shipped with the bundle (the repository's data/llm_cache) are read
# whatever the output folder is.
SHIPPED_LLM_CACHE = ROOT / "data" / "llm_cache"
LLM_CACHE = Path(os.environ.get("CASSANDRA_LLM_CACHE_DIR") or DATA / "llm_cache")
RUNS = OUT / "runs"  # executed notebooks and run state (ignored by git)


def data_dir(env_name: str, profile: str = "quick", create: bool = True) -> Path:
    """Artifacts of one environment and profile: ``data/<profile>/<env>/``."""
    p = DATA / profile / env_name
    if create:
        p.mkdir(parents=True, exist_ok=True)
    return p


def figures_dir(env_name: str, profile: str = "quick", create: bool = True) -> Path:
    """Tables and figures of one environment and profile: ``figures/<profile>/<env>/``."""
    p = FIGURES / profile / env_name
    if create:
        p.mkdir(parents=True, exist_ok=True)
    return p


def llm_cache_dirs() -> list[Path]:
    """Folders the LLM record/replay cache reads, the one it writes first: LLM_CACHE, then SHIPPED_LLM_CACHE."""
    out: list[Path] = []
    for d in (LLM_CACHE, SHIPPED_LLM_CACHE):
        if Path(d).resolve() not in [x.resolve() for x in out]:
            out.append(Path(d))
    return out
