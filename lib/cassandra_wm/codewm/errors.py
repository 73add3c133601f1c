"""Error typing of a code-model prediction against an observed transition (section 3.2.2).

* ``E_exec``: some function failed to run (static check, exception, time-out, bad return value,
  forbidden patch path, dead worker);
* ``E_pf``: the preconditions are too strict (predicted invalid, observed valid);
* ``E_ps``: the preconditions are too permissive (predicted valid, observed invalid);
* ``E_od``: the deterministic part of the next observation is wrong.

When several apply, the first in this order is reported: execution problems hide everything
else, and a wrong validity usually explains a wrong observation (the action patch was or was not
applied).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..envs.base import EnvSpec, coerce_action, get_path
from .sandbox import ExecResult

E_EXEC, E_PF, E_PS, E_OD = "E_exec", "E_pf", "E_ps", "E_od"
ERROR_TYPES = (E_EXEC, E_PF, E_PS, E_OD)
ERROR_MEANING = {
    E_EXEC: "a function could not be executed or returned something unusable",
    E_PF: "the preconditions rejected an action that was actually valid (too strict)",
    E_PS: "the preconditions accepted an action that was actually invalid (too permissive)",
    E_OD: "the predicted deterministic variables of the next state are wrong",
}


@dataclass(frozen=True)
class Transition:
    """One observed transition as the code stream uses it."""

    state: dict
    action: dict
    valid: bool
    next_state: dict
    error: str = ""
    traj_id: Any = None
    t: Any = None

    @classmethod
    def from_record(cls, rec: dict) -> "Transition":
        """Build from a data.py record ``{traj_id, t, state, action, action_text, valid, error, next_state}``."""
        missing = [k for k in ("state", "action", "valid", "next_state") if k not in rec]
        if missing:
            raise ValueError(f"transition record lacks {missing}; has {sorted(rec)}")
        action = rec["action"]
        if not isinstance(action, dict):
            action = coerce_action(action if action is not None else rec.get("action_text", ""))
        return cls(state=rec["state"], action=coerce_action(action), valid=bool(rec["valid"]),
                   next_state=rec["next_state"], error=str(rec.get("error") or ""),
                   traj_id=rec.get("traj_id"), t=rec.get("t"))

    def key(self) -> tuple:
        return (self.traj_id, self.t)


def true_det(spec: EnvSpec, state: dict) -> dict[str, Any]:
    """Observed deterministic values of ``state`` by variable name (None where absent)."""
    out = {}
    for v in spec.deterministic:
        try:
            out[v.name] = get_path(state, v.path)
        except (KeyError, IndexError, ValueError, TypeError):
            out[v.name] = None
    return out


def numbers_close(a: int | float, b: int | float, tol: float = 1e-6) -> bool:
    """``|a - b| <= max(tol, 1e-9 * max(|a|, |b|))`` without overflow (ints of any size, NaN, inf)."""
    if isinstance(a, int) and isinstance(b, int):  # exact integer arithmetic
        diff = abs(a - b)
        return diff <= tol or diff * 10**9 <= max(abs(a), abs(b))
    try:
        fa, fb = float(a), float(b)
    except OverflowError:  # an int beyond float range is close to no float
        return False
    if math.isnan(fa) or math.isnan(fb):
        return False
    return math.isclose(fa, fb, rel_tol=1e-9, abs_tol=tol)


def values_equal(a: Any, b: Any, tol: float = 1e-6, _depth: int = 0) -> bool:
    """Equality with a small tolerance for numbers (bools compare exactly), recursive for JSON data.

    Never raises: numbers of any size compare without overflow, and data nested deeper than 100
    levels counts as unequal.
    """
    if _depth > 100:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return numbers_close(a, b, tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k], tol, _depth + 1) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y, tol, _depth + 1) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:
        return False


def wrong_variables(spec: EnvSpec, result: ExecResult, tr: Transition) -> list[str]:
    """Deterministic variables whose predicted next value differs from the observed one."""
    truth = true_det(spec, tr.next_state)
    return [n for n, v in truth.items()
            if n in result.missing or not values_equal(result.det.get(n), v)]


def error_type(spec: EnvSpec, result: ExecResult, tr: Transition) -> str | None:
    """The error type of a prediction, or None when it matches the transition."""
    if result.exec_error:
        return E_EXEC
    if not result.valid and tr.valid:
        return E_PF
    if result.valid and not tr.valid:
        return E_PS
    if wrong_variables(spec, result, tr):
        return E_OD
    return None


def culprit_functions(model, result: ExecResult, tr: Transition, etype: str) -> list[str]:
    """Function ids most likely responsible for an error (shown to the LLM as context)."""
    aname = tr.action.get("name")
    if etype == E_EXEC:
        ids = [fid for fid, _ in result.errors if fid in model]
        return list(dict.fromkeys(ids)) or [f.fid for f in model.for_action(aname)]
    if etype == E_PF:
        return list(result.failed) or [f.fid for f in model.preconditions(aname)]
    if etype == E_PS:
        return [f.fid for f in model.preconditions(aname)]
    af = model.action_function(aname)
    ids = ([af.fid] if af is not None and tr.valid else []) + [f.fid for f in model.dynamics()]
    return ids


__all__ = ["E_EXEC", "E_PF", "E_PS", "E_OD", "ERROR_TYPES", "ERROR_MEANING", "Transition", "true_det",
           "values_equal", "numbers_close", "wrong_variables", "error_type", "culprit_functions"]
