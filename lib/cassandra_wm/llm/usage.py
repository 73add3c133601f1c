"""Token and time accounting for every chat call in this process.

Each live call and each cache hit appends one record; notebooks print
:func:`usage_summary` (one row per stage plus a total) and save :func:`usage_log`.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()
_LOG: list[dict] = []

# Columns of the summary, in order.
SUMMARY_COLUMNS = ["stage", "calls", "cache_hits", "prompt_tokens", "completion_tokens", "seconds", "retries",
                   "errors"]


def record_usage(stage: str | None, model: str, prompt_tokens: int = 0, completion_tokens: int = 0,
                 seconds: float = 0.0, retries: int = 0, cached: bool = False, error: str | None = None) -> dict:
    """Append one call record (used by the backends and the cache; rarely needed elsewhere)."""
    rec = {"time": time.time(), "stage": stage or "unspecified", "model": model,
           "prompt_tokens": int(prompt_tokens or 0), "completion_tokens": int(completion_tokens or 0),
           "seconds": float(seconds or 0.0), "retries": int(retries or 0), "cached": bool(cached),
           "error": error}
    with _LOCK:
        _LOG.append(rec)
    return rec


def usage_log() -> list[dict]:
    """A copy of every call record so far: time, stage, model, tokens, seconds, retries, cached, error."""
    with _LOCK:
        return [dict(r) for r in _LOG]


def reset_usage() -> None:
    """Forget all records (e.g. at the start of a notebook)."""
    with _LOCK:
        _LOG.clear()


def usage_totals(records: list[dict] | None = None) -> dict[str, dict]:
    """Per-stage totals as plain dicts, plus a ``"total"`` entry.

    ``calls`` counts live requests that returned (or failed after retries); cache hits are
    counted separately and add no tokens or seconds, since nothing was paid for them.
    """
    recs = usage_log() if records is None else records
    out: dict[str, dict] = {}

    def add(key: str, r: dict) -> None:
        t = out.setdefault(key, {c: 0 for c in SUMMARY_COLUMNS if c != "stage"})
        if r["cached"]:
            t["cache_hits"] += 1
            return
        t["calls"] += 1
        t["prompt_tokens"] += r["prompt_tokens"]
        t["completion_tokens"] += r["completion_tokens"]
        t["seconds"] += r["seconds"]
        t["retries"] += r["retries"]
        t["errors"] += 1 if r.get("error") else 0

    for r in recs:
        add(r["stage"], r)
    if recs:
        for r in recs:
            add("total", r)
    for t in out.values():
        t["seconds"] = round(t["seconds"], 3)
    return out


def usage_summary(records: list[dict] | None = None):
    """A pandas DataFrame with one row per stage and a final ``total`` row (empty frame if no calls)."""
    import pandas as pd

    totals = usage_totals(records)
    rows = [{"stage": k, **v} for k, v in totals.items() if k != "total"]
    if "total" in totals:
        rows.append({"stage": "total", **totals["total"]})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def save_usage(path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the log and per-stage totals as JSON (atomically) and return the path."""
    from ..report import atomic_write_text

    path = Path(path)
    payload = {"totals": usage_totals(), "calls": usage_log()}
    if extra:
        payload.update(extra)
    atomic_write_text(path, json.dumps(payload, indent=1))
    return path
