"""Metrics shared by both streams: action validity (table 3) and observation predictions (table 4).

* :func:`accuracy`, :func:`f1_score` for action validity (the positive class is "valid");
* :func:`categorical_accuracy` for categorical variables;
* :func:`minmax_rmse` for numeric variables, after min-max scaling (by default the range of the
  observed values, so the number is comparable across variables);
* :func:`invalid_rate`: share of predictions out of a variable's declared bounds or categories
  (or not a number at all);
* :func:`observation_metrics`: all of the above for a set of variables, per variable and averaged
  the way the paper's table 4 averages them (Cat_acc over categorical variables, Num_rmse over
  numeric ones, Inv over all).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

import numpy as np


def _as_list(x: Iterable) -> list:
    return list(x)


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """Share of positions where prediction equals truth (NaN for empty input)."""
    y_true, y_pred = _as_list(y_true), _as_list(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"accuracy: {len(y_true)} true values but {len(y_pred)} predictions")
    if not y_true:
        return float("nan")
    return sum(a == b for a, b in zip(y_true, y_pred)) / len(y_true)


def confusion(y_true: Sequence[bool], y_pred: Sequence[bool], positive: Any = True) -> dict:
    """Counts tp, fp, fn, tn for a binary task."""
    y_true, y_pred = _as_list(y_true), _as_list(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"confusion: {len(y_true)} true values but {len(y_pred)} predictions")
    c = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for t, p in zip(y_true, y_pred):
        t, p = t == positive, p == positive
        c["tp" if t and p else "fp" if p else "fn" if t else "tn"] += 1
    return c


def f1_score(y_true: Sequence, y_pred: Sequence, positive: Any = True) -> float:
    """F1 of the positive class; 0 when there are no true or predicted positives, NaN for empty input."""
    c = confusion(y_true, y_pred, positive)
    if sum(c.values()) == 0:
        return float("nan")
    denom = 2 * c["tp"] + c["fp"] + c["fn"]
    return 2 * c["tp"] / denom if denom else 0.0


_FLOAT_MAX = 1.7976931348623157e308


def is_number(x: Any) -> bool:
    """A finite real number that converts to float (never raises: ``10**400`` is not one)."""
    if isinstance(x, (bool, np.bool_)):
        return False
    if isinstance(x, (int, np.integer)):
        return -_FLOAT_MAX <= x <= _FLOAT_MAX  # exact comparison, no conversion
    if isinstance(x, (float, np.floating)):
        return math.isfinite(x)
    return False


def categorical_accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    return accuracy(y_true, y_pred)


def minmax_range(y_true: Sequence, low: float | None = None, high: float | None = None) -> tuple[float, float]:
    """The scaling range: the observed range of ``y_true``; the declared bounds when that is empty."""
    vals = [float(v) for v in y_true if is_number(v)]
    if vals and max(vals) > min(vals):
        return min(vals), max(vals)
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high) and high > low:
        return float(low), float(high)
    centre = vals[0] if vals else 0.0
    return centre, centre + 1.0  # degenerate: plain RMSE


def minmax_rmse(y_true: Sequence, y_pred: Sequence, low: float | None = None, high: float | None = None,
                scale: tuple[float, float] | None = None) -> float:
    """RMSE after min-max scaling both sides with the range of ``y_true`` (or ``scale``).

    Pairs whose prediction is not a finite number are left out (they count as invalid values
    instead); NaN when nothing is left.
    """
    y_true, y_pred = _as_list(y_true), _as_list(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"minmax_rmse: {len(y_true)} true values but {len(y_pred)} predictions")
    lo, hi = scale if scale is not None else minmax_range(y_true, low, high)
    width = hi - lo
    pairs = [(float(t), float(p)) for t, p in zip(y_true, y_pred) if is_number(t) and is_number(p)]
    if not pairs:
        return float("nan")
    with np.errstate(over="ignore", invalid="ignore"):
        t = (np.array([a for a, _ in pairs]) - lo) / width
        p = (np.array([b for _, b in pairs]) - lo) / width
        d = np.abs(t - p)
        big = float(np.max(d))
        if big == 0.0 or not math.isfinite(big):
            return big  # 0, or inf when a scaled error is beyond float range
        return float(big * np.sqrt(np.mean((d / big) ** 2)))  # scaled: no overflow in the squares


def invalid_rate(values: Sequence, is_valid: Callable[[Any], bool]) -> float:
    """Share of ``values`` for which ``is_valid`` is False (NaN for empty input)."""
    values = _as_list(values)
    if not values:
        return float("nan")
    bad = 0
    for v in values:
        try:
            ok = bool(is_valid(v))
        except Exception:
            ok = False
        bad += not ok
    return bad / len(values)


def value_is_valid(var, value: Any) -> bool:
    """A value is valid when it is present, of the variable's type and within its bounds or categories."""
    if value is None:
        return False
    if var.type == "numeric" and not is_number(value):
        return False
    if var.type == "numeric" and getattr(var, "integer", False) and float(value) != int(float(value)):
        return False
    return bool(var.in_bounds(value))


def observation_metrics(variables: Sequence, y_true: dict[str, Sequence], y_pred: dict[str, Sequence]
                        ) -> tuple[list[dict], dict]:
    """Per-variable rows and the table-4 summary for ``variables`` (VariableSpec-like objects).

    ``y_true[name]`` and ``y_pred[name]`` are aligned lists of values.  Returns
    ``(rows, {"cat_acc", "num_rmse", "inv", "n_categorical", "n_numeric"})``; a mean over no
    variables is NaN.
    """
    rows = []
    for var in variables:
        t, p = list(y_true[var.name]), list(y_pred[var.name])
        if len(t) != len(p):
            raise ValueError(f"{var.name}: {len(t)} true values but {len(p)} predictions")
        row = {"variable": var.name, "type": var.type, "n": len(t),
               "inv": invalid_rate(p, lambda v, var=var: value_is_valid(var, v))}
        if var.type == "categorical":
            row["cat_acc"] = categorical_accuracy(t, p)
            row["num_rmse"] = float("nan")
        else:
            row["cat_acc"] = float("nan")
            row["num_rmse"] = minmax_rmse(t, p, getattr(var, "low", None), getattr(var, "high", None))
            row["exact"] = accuracy([round(float(a), 9) if is_number(a) else a for a in t],
                                    [round(float(b), 9) if is_number(b) else b for b in p])
        rows.append(row)

    def mean(key: str, typ: str | None) -> float:
        vals = [r[key] for r in rows if (typ is None or r["type"] == typ) and not _isnan(r[key])]
        return float(np.mean(vals)) if vals else float("nan")

    summary = {"cat_acc": mean("cat_acc", "categorical"), "num_rmse": mean("num_rmse", "numeric"),
               "inv": mean("inv", None),
               "n_categorical": sum(r["type"] == "categorical" for r in rows),
               "n_numeric": sum(r["type"] == "numeric" for r in rows)}
    return rows, summary


def _isnan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


__all__ = ["accuracy", "confusion", "f1_score", "categorical_accuracy", "minmax_range", "minmax_rmse",
           "invalid_rate", "value_is_valid", "observation_metrics", "is_number"]
