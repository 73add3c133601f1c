"""Pieces both baselines share: LLM budgets and calls, state views, reply parsing, value repair.

* :class:`Budget` caps calls, tokens and seconds of LLM use.  It is charged with the usage each
  reply *records* (a reply served from the record/replay cache carries the tokens and seconds of
  the call that produced it), so a replayed run stops exactly where the recorded run stopped.
* :func:`ask` sends one chat request through the bundle's chat layer and never raises for a bad
  or failed reply: the caller gets ``(reply or None, error or None, usage)``.
* :func:`state_view` is the state as the baselines' prompts show it: ``{variable: value}``.
* :func:`parse_values` reads an LLM's predicted variables from a reply and says what was wrong.
* :func:`repair_value` turns a predicted value into one a planner can use (the previous value
  when missing or unusable, clipped into bounds), counting what it did.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..envs.base import EnvSpec, VariableSpec, get_path
from ..llm.base import Reply, parse_json_reply


class BudgetExhausted(RuntimeError):
    """An LLM budget (calls, tokens or seconds) is spent."""


@dataclass
class Budget:
    """Limits on LLM use; 0 or None means no limit on that quantity.

    ``seconds`` counts the LLM seconds recorded with each reply (answers replayed from the cache
    count what they cost when recorded), so a budget ends a replayed run where it ended the
    recorded one.
    """

    calls: int | None = None
    tokens: int | None = None
    seconds: float | None = None
    used: dict = field(default_factory=lambda: {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                                "seconds": 0.0, "cache_hits": 0, "errors": 0})

    def __post_init__(self) -> None:
        for name in ("calls", "tokens", "seconds"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f"Budget.{name} must be a non-negative number or None, got {v!r}")

    def exhausted(self) -> str | None:
        """Why the budget is spent (None while it is not)."""
        u = self.used
        if self.calls and u["calls"] >= self.calls:
            return f"call budget of {self.calls} spent"
        if self.tokens and u["prompt_tokens"] + u["completion_tokens"] >= self.tokens:
            return f"token budget of {self.tokens} spent"
        if self.seconds and u["seconds"] >= self.seconds:
            return f"LLM-seconds budget of {self.seconds:g} spent"
        return None

    def check(self) -> None:
        why = self.exhausted()
        if why:
            raise BudgetExhausted(why)

    def charge(self, usage: dict, cached: bool = False, error: bool = False) -> None:
        u = self.used
        u["calls"] += 1
        u["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
        u["completion_tokens"] += int(usage.get("completion_tokens") or 0)
        u["seconds"] += float(usage.get("seconds") or 0.0)
        u["cache_hits"] += int(bool(cached))
        u["errors"] += int(bool(error))

    def summary(self) -> dict:
        return {"limits": {"calls": self.calls, "tokens": self.tokens, "seconds": self.seconds},
                **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.used.items()}}


def usage_of(reply: Reply | None, seconds: float) -> dict:
    """Tokens and seconds of a reply as recorded (wall time of the call when none was recorded)."""
    u = dict(reply.usage) if reply is not None and reply.usage else {}
    rec = u.get("seconds")
    return {"prompt_tokens": int(u.get("prompt_tokens") or 0),
            "completion_tokens": int(u.get("completion_tokens") or 0),
            "seconds": float(rec) if rec is not None else float(seconds)}


def ask(chat: Any, messages: list[dict], budget: Budget | None = None, schema: dict | None = None,
        max_tokens: int = 256, temperature: float = 0.0, seed: int | None = 0, sample_index: int = 0,
        stage: str | None = None) -> tuple[Reply | None, str | None, dict]:
    """One chat request.  Raises only :class:`BudgetExhausted` (checked before the call).

    Returns ``(reply, None, usage)`` or ``(None, "why it failed", usage)``.
    """
    if budget is not None:
        budget.check()
    t0 = time.perf_counter()
    try:
        reply = chat.chat(messages, schema=schema, temperature=temperature, seed=seed, max_tokens=max_tokens,
                          sample_index=sample_index, stage=stage)
        err = None
    except Exception as e:  # noqa: BLE001 - a failed call is an error of this prediction, not a crash
        reply, err = None, f"LLM call failed: {type(e).__name__}: {str(e)[:300]}"
    use = usage_of(reply, time.perf_counter() - t0)
    if budget is not None:
        budget.charge(use, cached=bool(getattr(reply, "cached", False)), error=err is not None)
    return reply, err, use


def reply_json(reply: Reply) -> tuple[Any, str | None]:
    """The JSON value of a reply (parsed by the backend or here), or ``(None, reason)``."""
    if isinstance(reply.parsed, (dict, list)):
        return reply.parsed, None
    obj, err = parse_json_reply(reply.text or "")
    if obj is None:
        s = (reply.text or "").strip()
        start = s.find("{")
        if start >= 0:  # small models often put raw newlines inside strings
            try:
                obj, _ = json.JSONDecoder(strict=False).raw_decode(s[start:])
                err = None
            except ValueError:
                pass
    return obj, (None if obj is not None else (reply.parse_error or err or "no JSON in the reply"))


# -- states as the prompts show them ----------------------------------------------------

def state_view(spec: EnvSpec, state: dict, variables: Sequence[VariableSpec] | None = None) -> dict:
    """``{variable name: value}`` for the spec's variables (None where the state lacks one)."""
    out = {}
    for v in (variables if variables is not None else spec.variables):
        try:
            out[v.name] = get_path(state, v.path)
        except (KeyError, IndexError, TypeError, ValueError):
            out[v.name] = None
    return out


def compact_json(obj: Any) -> str:
    return json.dumps(obj, separators=(", ", ": "), default=str)


def value_schema(spec: EnvSpec, variables: Sequence[VariableSpec] | None = None) -> dict:
    """A JSON schema for a ``{variable: value}`` object: types only, no bounds, so out-of-range
    predictions stay possible (and are scored as invalid values, not prevented)."""
    props = {}
    for v in (variables if variables is not None else spec.variables):
        if v.type == "categorical":
            cats = list(v.categories or [])
            if cats and all(isinstance(c, bool) for c in cats):
                props[v.name] = {"type": "boolean"}
            elif cats and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in cats):
                props[v.name] = {"type": "number"}
            else:
                props[v.name] = {"type": "string"}
        else:
            props[v.name] = {"type": "integer" if v.integer else "number"}
    return {"type": "object", "properties": props, "required": list(props)}


def parse_values(spec: EnvSpec, reply: Reply | None, variables: Sequence[VariableSpec] | None = None
                 ) -> tuple[dict[str, Any], str]:
    """Predicted values per variable from a reply, and a status.

    Status ``ok``; ``not_json`` (every value None); ``not_an_object``; ``missing: a, b`` (those
    None).  Numbers written as strings are read as numbers; anything else is kept as given, so a
    wrong type or an out-of-range value is scored as an invalid value later.
    """
    variables = list(variables if variables is not None else spec.variables)
    empty = {v.name: None for v in variables}
    if reply is None:
        return empty, "no_reply"
    obj, err = reply_json(reply)
    if obj is None:
        return empty, "not_json"
    if not isinstance(obj, dict):
        return empty, "not_an_object"
    vals, missing = {}, []
    for v in variables:
        if v.name not in obj or obj[v.name] is None:
            vals[v.name] = None
            missing.append(v.name)
            continue
        x = obj[v.name]
        if v.type == "numeric" and isinstance(x, str):
            try:
                x = float(x.strip().replace(",", ""))
            except ValueError:
                pass
        vals[v.name] = x
    return vals, ("ok" if not missing else "missing: " + ", ".join(missing))


def repair_value(v: VariableSpec, x: Any, prev: Any, counters: Counter) -> Any:
    """A usable value for ``v``: ``prev`` when ``x`` is missing, not a number or an unknown
    category; clipped into the bounds; rounded for integer variables.  Counts each repair."""
    if x is None:
        counters[f"missing:{v.name}"] += 1
        return prev
    if v.type == "categorical":
        if v.categories is not None and x not in v.categories:
            counters[f"bad_category:{v.name}"] += 1
            return prev
        return x
    if isinstance(x, bool):
        counters[f"nonnumeric:{v.name}"] += 1
        return prev
    try:
        f = float(x)
    except (TypeError, ValueError, OverflowError):
        counters[f"nonnumeric:{v.name}"] += 1
        return prev
    if not math.isfinite(f):
        counters[f"nonfinite:{v.name}"] += 1
        return prev
    lo = -math.inf if v.low is None else v.low
    hi = math.inf if v.high is None else v.high
    if f < lo or f > hi:
        counters[f"clipped:{v.name}"] += 1
        f = min(max(f, lo), hi)
    return int(round(f)) if v.integer else f


def code_version() -> str:
    """Hash of the baselines' own sources (enters the settings key of stored planning runs)."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


__all__ = ["Budget", "BudgetExhausted", "ask", "usage_of", "reply_json", "state_view", "compact_json",
           "value_schema", "parse_values", "repair_value", "code_version"]
