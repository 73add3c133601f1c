"""Token and time accounting for every chat call in this process.

Each live call, cache hit and replay miss appends one record; notebooks print
:func:`usage_summary` (one row per stage plus a total), save :func:`usage_log`, and call
:func:`check_stage_health` before writing tables, so a stage whose LLM calls mostly failed stops
with a message naming the endpoint instead of writing numbers that look like results.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from collections import Counter
from typing import Any

from .base import LLMError

_LOCK = threading.Lock()
_LOG: list[dict] = []

# Columns of the summary, in order.
SUMMARY_COLUMNS = ["stage", "calls", "cache_hits", "prompt_tokens", "completion_tokens", "seconds", "retries",
                   "errors"]


# Calls made by the endpoint check: kept in the log, left out of the stage-health check.
CHECK_STAGE = "endpoint_check"


def record_usage(stage: str | None, model: str, prompt_tokens: int = 0, completion_tokens: int = 0,
                 seconds: float = 0.0, retries: int = 0, cached: bool = False, error: str | None = None,
                 endpoint: str = "") -> dict:
    """Append one call record (used by the backends and the cache; rarely needed elsewhere)."""
    rec = {"time": time.time(), "stage": stage or "unspecified", "model": model, "endpoint": endpoint or "",
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

    ``calls`` counts live requests that returned (or failed after retries) and replay misses;
    cache hits are counted separately and add no tokens or seconds, since nothing was paid for them.
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


class StageHealthError(LLMError):
    """Too many of a stage's LLM requests failed for its outputs to count as results."""


def stage_health(stage: str | None = None, records: list[dict] | None = None) -> dict:
    """Requests, failures and their share for the calls whose stage starts with ``stage`` (all when None).

    Requests are live calls, cache hits and replay misses; the endpoint check's own calls are left out.
    Returns ``{"stage", "requests", "errors", "error_share", "endpoints", "models", "top_errors"}``.
    """
    recs = usage_log() if records is None else records
    mine = [r for r in recs if r.get("stage") != CHECK_STAGE
            and (stage is None or str(r.get("stage", "")).startswith(stage))]
    errors = [r for r in mine if r.get("error")]
    short = Counter(str(r["error"]).split("\n")[0][:240] for r in errors)
    return {"stage": stage or "all", "requests": len(mine), "errors": len(errors),
            "error_share": (len(errors) / len(mine)) if mine else 0.0,
            "endpoints": sorted({r.get("endpoint") or "?" for r in mine}),
            "models": sorted({r.get("model") or "?" for r in mine}),
            "top_errors": short.most_common(3)}


def check_stage_health(stage: str | None = None, max_error_share: float = 0.5, min_requests: int = 0,
                       records: list[dict] | None = None) -> dict:
    """Raise :class:`StageHealthError` when a stage's LLM requests mostly failed; else return :func:`stage_health`.

    ``stage`` selects the calls whose stage tag starts with it (None: every call in this process, i.e.
    the notebook's).  The stage fails when more than ``max_error_share`` of its requests failed, or when
    it made fewer than ``min_requests``.  Call it after a stage's LLM calls and before it writes tables:
    the message names the endpoint and the commonest errors, so a dead or misconfigured endpoint can
    never pass for results.
    """
    if not 0.0 <= float(max_error_share) <= 1.0:
        raise ValueError(f"max_error_share must be between 0 and 1, not {max_error_share!r}")
    h = stage_health(stage, records)
    where = ", ".join(h["endpoints"]) or "no endpoint"
    name = h["stage"]
    if h["requests"] < int(min_requests):
        raise StageHealthError(f"stage {name!r} made {h['requests']} LLM requests, fewer than the {min_requests} "
                               f"it needs (endpoint {where}); its tables would not be results")
    if h["requests"] and h["error_share"] > float(max_error_share):
        top = "; ".join(f"{n}x {msg}" for msg, n in h["top_errors"])
        raise StageHealthError(
            f"stage {name!r}: {h['errors']} of {h['requests']} LLM requests failed "
            f"({h['error_share']:.0%}, more than the {float(max_error_share):.0%} allowed) at endpoint {where} "
            f"(model {', '.join(h['models'])}). Commonest errors: {top}. Not writing tables that would look like "
            "results: fix the endpoint (see the README's 'LLMs' section, or run "
            "cassandra_wm.llm.check_endpoint) and rerun the stage")
    return h
