"""Saving tables, figures and JSON artifacts, each stamped with the LLM that made it.

Tables under figures/ are tracked by git, and a rerun that reproduces the results must leave them
byte-identical.  So :func:`save_table` keeps machine-dependent columns (seconds, times) out of them: the
whole table, timings included, goes to an untracked copy under runs/tables/ instead.  And a table or
figure whose content differs from the file already there only by floating-point noise (another CPU sums
in another order: digits beyond the 6th, or beyond the 3rd while the Markdown table shows the same
numbers; a few shades of anti-aliasing in every pixel) keeps the file there; any real change rewrites it.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterable

from . import paths
from .paths import ROOT

# column names that hold wall-clock measurements: "seconds / loop", "Time (s)", "seconds_per_decision", "ms"
TIMING_COLUMN = re.compile(r"(^|[^a-z])(seconds?|secs?|ms|msec|time|elapsed|wall|runtime)([^a-z]|$)|\((s|ms)\)",
                           re.IGNORECASE)


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
        with os.fdopen(fd, "w", encoding="utf-8") as f:
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


def timing_columns(columns: Iterable[Any]) -> list:
    """The columns whose names say they hold wall-clock measurements (see :data:`TIMING_COLUMN`)."""
    return [c for c in columns if TIMING_COLUMN.search(str(c))]


def untracked_copy_dir(out_dir: Path) -> Path:
    """Where the full copy of a table saved in ``out_dir`` goes: runs/tables/<same relative path>."""
    out_dir = Path(out_dir).resolve()
    try:
        rel = out_dir.relative_to(paths.OUT.resolve())
    except ValueError:  # a folder outside the output tree: keep the copy beside it
        return out_dir / "untracked"
    return paths.RUNS / "tables" / rel


def save_table(df, name: str, out_dir: Path, llm: str, caption: str = "", floatfmt: str = ".3f",
               timing: Iterable[Any] | None = None) -> dict:
    """Write ``name.csv`` (with an ``llm`` column) and ``name.md`` (with a caption naming the LLM).

    Timing columns (``timing``, by default those :func:`timing_columns` finds) are left out of these two
    files, which are tracked, and the full table goes to :func:`untracked_copy_dir` (``full_csv`` and
    ``full_md`` in the returned dict) so that a rerun with the same numbers rewrites identical files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timing = list(timing_columns(df.columns) if timing is None else timing)
    missing = [c for c in timing if c not in df.columns]
    if missing:
        raise KeyError(f"save_table({name!r}): timing columns {missing} are not in the table")
    note = f"*{caption + ' ' if caption else ''}LLM: {llm}.*"
    written = {}
    kept = df.drop(columns=timing) if timing else df
    if timing:
        full_dir = untracked_copy_dir(out_dir)
        written.update(_write_table(df, name, full_dir, llm, note, floatfmt, prefix="full_"))
        shown = ", ".join(f"`{c}`" for c in timing)
        note += (f"\n\n*Machine-dependent columns ({shown}) are left out of this tracked file; "
                 f"the full table is under `runs/tables/` (not tracked).*")
    written.update(_write_table(kept, name, out_dir, llm, note, floatfmt))
    return written


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _close_number(a: str, b: str, flips: bool, rtol: float = 1e-6) -> bool:
    """Two printed numbers that differ only by float noise: within a relative ``rtol`` or, with ``flips``, by
    one unit of the last printed digit (a rounding that flipped)."""
    x, y = float(a), float(b)
    if x == y or abs(x - y) <= rtol * max(abs(x), abs(y)):
        return True
    decimals = max(len(t.lower().split("e")[0].partition(".")[2]) for t in (a, b))
    return flips and decimals >= 2 and "e" not in (a + b).lower() and abs(x - y) <= 1.0001 * 10.0 ** -decimals


def same_text_but_noise(old: str, new: str, flips: bool = False, rtol: float = 1e-6) -> bool:
    """True when ``new`` equals ``old`` except for numbers that differ only by float noise."""
    if old == new:
        return True
    a, b = _NUMBER.split(old), _NUMBER.split(new)
    if a != b:  # the text between the numbers differs (or their count)
        return False
    return all(_close_number(x, y, flips, rtol) for x, y in zip(_NUMBER.findall(old), _NUMBER.findall(new)))


def _same_file(path: Path, text: str, **kw: Any) -> bool:
    try:
        return path.exists() and same_text_but_noise(path.read_text(encoding="utf-8"), text, **kw)
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def write_unless_noise(path: Path, text: str, flips: bool = False, rtol: float = 1e-6) -> bool:
    """Write ``text`` to ``path`` unless the file there differs from it only by float noise; True if written."""
    path = Path(path)
    if _same_file(path, text, flips=flips, rtol=rtol):
        return False
    atomic_write_text(path, text)
    return True


def _write_table(df, name: str, out_dir: Path, llm: str, note: str, floatfmt: str, prefix: str = "") -> dict:
    csv = df.copy()
    csv["llm"] = llm
    md = df.to_markdown(index=False, floatfmt=floatfmt) + "\n\n" + note + "\n"
    # The Markdown shows what a reader sees: while it shows the same numbers, CSV digits beyond the 3rd
    # significant one may move (networks trained in float32 on another CPU) without a rewrite.
    rtol = 1e-3 if _same_file(out_dir / f"{name}.md", md, flips=True) else 1e-6
    if write_unless_noise(out_dir / f"{name}.csv", csv.to_csv(index=False), rtol=rtol):
        atomic_write_text(out_dir / f"{name}.md", md)
    else:  # the same numbers: a rounded one in the Markdown may still have flipped by one unit
        write_unless_noise(out_dir / f"{name}.md", md, flips=True)
    return {f"{prefix}csv": out_dir / f"{name}.csv", f"{prefix}md": out_dir / f"{name}.md"}


def save_figure(fig, name: str, out_dir: Path, llm: str, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG with a footer that names the LLM."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.text(0.995, 0.005, f"LLM: {llm}", ha="right", va="bottom", fontsize=7, color="0.4")
    path = out_dir / f"{name}.png"
    tmp = out_dir / f".{name}.tmp.png"
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    if path.exists() and same_image_but_noise(path, tmp):
        os.unlink(tmp)  # the same picture: keep the file (and its bytes) already there
    else:
        os.replace(tmp, path)
    return path


def same_image_but_noise(a: Path, b: Path, max_shade: float = 3 / 255) -> bool:
    """True when two PNGs have the same size and no pixel channel differs by more than ``max_shade`` (the
    anti-aliasing noise of float sums in another order; a line that moved or a changed label is more)."""
    import numpy as np
    from matplotlib import image as mpimg
    try:
        x, y = mpimg.imread(str(a)), mpimg.imread(str(b))
    except Exception:  # noqa: BLE001 - an unreadable old file is simply replaced
        return False
    if x.shape != y.shape:
        return False
    d = np.abs(x.astype(np.float32) - y.astype(np.float32)).max(axis=-1) if x.ndim == 3 else np.abs(x - y)
    return bool(d.max() <= max_shade)
