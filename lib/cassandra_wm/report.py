"""Saving tables, figures and JSON artifacts, each stamped with the LLM that made it."""
from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .paths import ROOT


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def provenance(llm: str, **extra: Any) -> dict:
    """A small dict that says who and what produced an artifact."""
    d = {"llm": llm, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
         "commit": git_commit()}
    d.update(extra)
    return d


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so an interrupted run never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; these are ordinary outputs
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_json(obj: Any, path: Path, llm: str | None = None, **prov: Any) -> Path:
    """Save ``obj`` as JSON; with ``llm`` given it is wrapped as {"provenance":..., "data": obj}."""
    payload = obj if llm is None else {"provenance": provenance(llm, **prov), "data": obj}
    atomic_write_text(Path(path), json.dumps(payload, indent=1, default=_json_default))
    return Path(path)


def load_json(path: Path) -> Any:
    with open(path) as f:
        obj = json.load(f)
    if isinstance(obj, dict) and set(obj) == {"provenance", "data"}:
        return obj["data"]
    return obj


def _json_default(o: Any) -> Any:
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def save_table(df, name: str, out_dir: Path, llm: str, caption: str = "", floatfmt: str = ".3f") -> dict:
    """Write ``name.csv`` (with an ``llm`` column) and ``name.md`` (with a caption naming the LLM)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = df.copy()
    csv["llm"] = llm
    atomic_write_text(out_dir / f"{name}.csv", csv.to_csv(index=False))
    md = df.to_markdown(index=False, floatfmt=floatfmt)
    note = f"*{caption + ' ' if caption else ''}LLM: {llm}.*"
    atomic_write_text(out_dir / f"{name}.md", md + "\n\n" + note + "\n")
    return {"csv": out_dir / f"{name}.csv", "md": out_dir / f"{name}.md"}


def save_figure(fig, name: str, out_dir: Path, llm: str, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG with a footer that names the LLM."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.text(0.995, 0.005, f"LLM: {llm}", ha="right", va="bottom", fontsize=7, color="0.4")
    path = out_dir / f"{name}.png"
    tmp = out_dir / f".{name}.tmp.png"
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    os.replace(tmp, path)
    return path
