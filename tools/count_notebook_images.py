"""Count the figures each executed notebook shows, next to the figures it saved.

    python tools/count_notebook_images.py [NOTEBOOK_OR_FOLDER ...] [--profile quick] [--strict]

With no path it reads the executed copies ``run_all.py`` writes, ``$CASSANDRA_OUT/runs/<profile>/*.ipynb``
(``CASSANDRA_OUT`` defaults to the repository).  For every notebook it prints

* ``images``: image outputs (PNG, JPEG or SVG) stored in the notebook, i.e. what a reader sees
  when opening it;
* ``saved``: PNGs the notebook wrote to ``figures/<profile>/<env>/`` during that run (names taken from
  its ``save_figure(fig, "name", ...)`` calls, a file counted when it was written between the run's
  start and end as papermill recorded them);
* ``text-only``: outputs that are a figure's text stand-in (``<Figure size ...>``), a figure that
  was made but not drawn.

A notebook passes when it shows at least as many images as it saved and has no text stand-in.
``--strict`` makes the exit status 1 when one does not.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path

IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
FIGURE_TEXT = re.compile(r"^<Figure size \d+(\.\d+)?x\d+(\.\d+)? with \d+ Axes>$")
SAVE_CALL = re.compile(r"save_figure\(\s*[^,]+,\s*(?:f?)[\"']([^\"'{}]+)[\"']")
ROOT = Path(__file__).resolve().parents[1]


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _time(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def count(path: Path) -> dict:
    """The counts of one executed notebook (see the module docstring)."""
    nb = json.loads(Path(path).read_text())
    images = text_only = 0
    names: list[str] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        names += SAVE_CALL.findall(_text(cell.get("source", "")))
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if any(k in data for k in IMAGE_TYPES):
                images += 1
            elif FIGURE_TEXT.match(_text(data.get("text/plain", "")).strip()):
                text_only += 1
    meta = nb.get("metadata", {}).get("papermill", {})
    params = meta.get("parameters", {}) or {}
    start, end = _time(meta.get("start_time")), _time(meta.get("end_time"))
    saved = None
    if start is not None and end is not None:
        out_root = Path(path).resolve().parents[2]  # <out>/runs/<profile>/<stage>.ipynb
        fig_dir = out_root / "figures" / str(params.get("profile", "quick")) / str(params.get("env_name", "coffee_shop"))
        saved = 0
        for name in sorted(set(names)):
            png = fig_dir / f"{name}.png"
            if png.exists() and start - 1 <= png.stat().st_mtime <= end + 1:
                saved += 1
    ok = text_only == 0 and images >= (saved or 0)
    return {"notebook": Path(path).name, "images": images, "saved": saved, "text_only": text_only, "ok": ok}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", type=Path, help="executed notebooks or folders of them")
    ap.add_argument("--profile", default="quick", help="with no path: read runs/<profile>/ (default quick)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a notebook shows fewer images than it saved")
    a = ap.parse_args(argv)
    paths = a.paths or [Path(os.environ.get("CASSANDRA_OUT", ROOT)) / "runs" / a.profile]
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(p.glob("*.ipynb"))
        elif p.exists():
            files.append(p)
        else:
            print(f"no such notebook or folder: {p}", file=sys.stderr)
            return 2
    if not files:
        print(f"no executed notebooks under {', '.join(map(str, paths))}; run `python run_all.py` first",
              file=sys.stderr)
        return 2
    rows = [count(f) for f in files]
    width = max(len(r["notebook"]) for r in rows)
    print(f"{'notebook':<{width}}  images  saved  text-only  shows its figures")
    for r in rows:
        saved = "?" if r["saved"] is None else str(r["saved"])
        print(f"{r['notebook']:<{width}}  {r['images']:>6}  {saved:>5}  {r['text_only']:>9}  {'yes' if r['ok'] else 'NO'}")
    bad = [r["notebook"] for r in rows if not r["ok"]]
    print(f"{len(rows) - len(bad)} of {len(rows)} notebooks show their figures"
          + (f"; not: {', '.join(bad)}" if bad else ""))
    return 1 if (bad and a.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
