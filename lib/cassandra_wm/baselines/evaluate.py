"""Scoring world models on test transitions (tables 3 and 4) and planning runs by survival (table 2).

Every model is scored the same way from what it predicts for each test transition: a validity
and a value per variable.

* table 3: validity accuracy and F1 (positive class: valid);
* table 4: for the deterministic (D) and the stochastic (S) variables, categorical accuracy,
  min-max-normalised RMSE of numeric variables and the invalid-value rate (values missing, of the
  wrong type or outside their bounds, as produced by the model before any repair), plus seconds
  per predicted transition;
* table 2: share of runs still solvent at given days, with Wilson 95% intervals.

:func:`world_model_predictions` gets CASSANDRA's predictions (code model + Bayesian network, or
any :class:`~cassandra_wm.world_model.WorldModel`) in that form: ``n`` samples per transition,
the mean (numeric) or most frequent value (categorical) as the point prediction, and the invalid
rate from the model's own guard-rail counters (values it had to clip or replace).
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Any, Sequence

import numpy as np

from ..envs.base import EnvSpec, VariableSpec, get_path
from ..metrics import accuracy, f1_score, observation_metrics
from ..planning.stats import survived, wilson  # noqa: F401 - re-exported for the notebook and tests
from .walle import as_transition

REPAIR_PREFIXES = ("clipped", "nonfinite", "bad_category", "missing", "nonnumeric")


def stochastic_variables(spec: EnvSpec) -> list[VariableSpec]:
    """The stochastic variables table 4 scores: the ones the Bayesian network models."""
    names = list(spec.bn_variables) or spec.variable_names("stochastic")
    return [spec.variable(n) for n in names]


def _truth(spec: EnvSpec, trs: Sequence[Any], variables: Sequence[VariableSpec]) -> dict[str, list]:
    out = {v.name: [] for v in variables}
    for t in trs:
        for v in variables:
            try:
                out[v.name].append(get_path(t.next_state, v.path))
            except (KeyError, IndexError, TypeError, ValueError):
                out[v.name].append(None)
    return out


def score_predictions(spec: EnvSpec, transitions: Sequence[Any], valid: Sequence[bool | None],
                      values: Sequence[dict], seconds: Sequence[float], label: str,
                      invalid_override: dict[str, float] | None = None,
                      stochastic: Sequence[VariableSpec] | None = None) -> tuple[dict, list[dict]]:
    """The table-3/4 summary of one model and its per-variable rows.

    ``valid[i]`` may be None for a model that predicts no validity (then the table-3 columns are
    NaN); ``values[i]`` maps variable names to predicted values; ``invalid_override`` replaces the
    invalid-value rate of the named variables (for models that repair values before returning
    them).
    """
    trs = [as_transition(t) for t in transitions]
    n = len(trs)
    if not (len(valid) == len(values) == len(seconds) == n):
        raise ValueError(f"{label}: {n} transitions but {len(valid)} validities, {len(values)} value sets, "
                         f"{len(seconds)} times")
    if n == 0:
        raise ValueError(f"{label}: no predictions to score")
    summary: dict[str, Any] = {"model": label, "n": n}
    truth_valid = [t.valid for t in trs]
    if any(v is None for v in valid):
        summary["sigma_acc"] = summary["sigma_f1"] = float("nan")
    else:
        summary["sigma_acc"] = accuracy(truth_valid, [bool(v) for v in valid])
        summary["sigma_f1"] = f1_score(truth_valid, [bool(v) for v in valid])
    rows_all = []
    for tag, variables in (("D", spec.deterministic), ("S", list(stochastic or stochastic_variables(spec)))):
        if not variables:
            summary.update({f"cat_acc_{tag}": float("nan"), f"num_rmse_{tag}": float("nan"), f"inv_{tag}": float("nan")})
            continue
        y_true = _truth(spec, trs, variables)
        y_pred = {v.name: [vals.get(v.name) for vals in values] for v in variables}
        rows, obs = observation_metrics(variables, y_true, y_pred)
        if invalid_override:
            for r in rows:
                if r["variable"] in invalid_override:
                    r["inv"] = float(invalid_override[r["variable"]])
            obs["inv"] = float(np.mean([r["inv"] for r in rows])) if rows else float("nan")
        for r in rows:
            r.update(model=label, part=tag)
        rows_all += rows
        summary.update({f"cat_acc_{tag}": obs["cat_acc"], f"num_rmse_{tag}": obs["num_rmse"], f"inv_{tag}": obs["inv"]})
    summary["seconds_per_transition"] = float(np.mean(seconds))
    return summary, rows_all


def world_model_predictions(model: Any, transitions: Sequence[Any], n_samples: int = 100,
                            rng: np.random.Generator | None = None, batch: int = 50
                            ) -> tuple[list[bool], list[dict], list[float], dict[str, float]]:
    """Predictions of a sampling world model (``sample_next`` with guard-rail ``counters``).

    Returns validities, point predictions per transition, seconds per transition (wall time of the
    sampling, shared evenly within a batch) and the invalid-value rate per variable (repairs
    counted by the model / values it produced).
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples!r}")
    rng = rng if rng is not None else np.random.default_rng(0)
    trs = [as_transition(t) for t in transitions]
    spec = model.spec
    if hasattr(model, "reset_counters"):
        model.reset_counters()
    valid, values, seconds = [], [], []
    for s in range(0, len(trs), batch):
        part = trs[s:s + batch]
        t0 = time.perf_counter()
        nxt, ok = model.sample_next([t.state for t in part], [t.action for t in part], n_samples, rng)
        dt = (time.perf_counter() - t0) / len(part)
        for j in range(len(part)):
            rows = nxt[j * n_samples:(j + 1) * n_samples]
            valid.append(bool(ok[j * n_samples]))
            values.append(point_prediction(spec, rows))
            seconds.append(dt)
    counts: Counter = Counter()
    for key, c in (model.counters_dict() if hasattr(model, "counters_dict") else {}).items():
        kind, _, name = key.partition(":")
        if kind in REPAIR_PREFIXES and name:
            counts[name] += int(c)
    total = len(trs) * n_samples
    return valid, values, seconds, {v.name: counts.get(v.name, 0) / total for v in spec.variables}


def point_prediction(spec: EnvSpec, samples: Sequence[dict]) -> dict:
    """Mean of numeric variables and most frequent value of categorical ones over ``samples``."""
    out = {}
    for v in spec.variables:
        xs = []
        for s in samples:
            try:
                xs.append(get_path(s, v.path))
            except (KeyError, IndexError, TypeError, ValueError):
                pass
        if not xs:
            out[v.name] = None
        elif v.type == "categorical":
            out[v.name] = Counter(xs).most_common(1)[0][0]
        else:
            nums = [float(x) for x in xs if isinstance(x, (int, float)) and not isinstance(x, bool)]
            out[v.name] = float(np.mean(nums)) if nums else None
    return out


# -- table 2 ------------------------------------------------------------------------------

def survival_table(records: Sequence[dict], days: Sequence[int]):
    """Per agent: runs, and per checkpoint day the survival rate with its Wilson 95% interval."""
    import pandas as pd
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["agent"], []).append(r)
    rows = []
    for agent, rs in by.items():
        row: dict[str, Any] = {"agent": agent, "runs": len(rs)}
        played = min(int(r.get("days_budget", r.get("days", 0))) for r in rs)
        for d in days:
            if d > played:
                row[f"day {d}"] = "-"
                continue
            k = sum(survived(r, d) for r in rs)
            lo, hi = wilson(k, len(rs))
            row[f"day {d}"] = f"{k / len(rs):.0%} [{lo:.0%}, {hi:.0%}]"
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["score_predictions", "world_model_predictions", "point_prediction", "stochastic_variables", "wilson",
           "survived", "survival_table"]


# -- cost -----------------------------------------------------------------------------------

def cost_table(parts: dict[str, dict], scales: dict[str, dict[str, float]], hosted_seconds_per_call: float,
               usd_per_mtok_in: float, usd_per_mtok_out: float):
    """What each part of the stage cost, and what it would cost at other sizes.

    ``parts[name]`` holds the LLM use measured for that part (``calls``, ``prompt_tokens``,
    ``completion_tokens``, ``seconds``: as recorded, cache hits included); ``scales[label][name]``
    is the number of LLM calls the part needs at the sizes called ``label`` (e.g. the full profile,
    the paper), so the measured cost per call scales.  The hosted columns assume
    ``hosted_seconds_per_call`` and the given prices per million tokens (assumptions, not measured).
    """
    import pandas as pd
    rows = []
    for name, u in parts.items():
        calls = max(int(u.get("calls", 0)), 0)
        per = {k: (u.get(k, 0) / calls if calls else float("nan")) for k in ("prompt_tokens", "completion_tokens", "seconds")}
        row = {"part": name, "calls": calls, "LLM s / call": per["seconds"], "prompt tok / call": per["prompt_tokens"],
               "completion tok / call": per["completion_tokens"]}
        for label, units in scales.items():
            n = float(units.get(name, float("nan")))
            row[f"calls ({label})"] = n
            row[f"hours, this LLM ({label})"] = n * per["seconds"] / 3600
            row[f"hours, hosted ({label})"] = n * hosted_seconds_per_call / 3600
            row[f"USD, hosted ({label})"] = n * (per["prompt_tokens"] * usd_per_mtok_in
                                                 + per["completion_tokens"] * usd_per_mtok_out) / 1e6
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        total = {"part": "total"}
        for c in df.columns[1:]:
            total[c] = df[c].sum() if c == "calls" or c.startswith(("calls (", "hours", "USD")) else float("nan")
        df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    return df


def planning_calls(runs: int, days: int, mpc_first: int, mpc_rollouts: int, mpc_steps: int, mcts_iterations: int,
                   mcts_horizon: int, mcts_rollouts: int, temperature: float = 0.0) -> int:
    """LLM calls the two WALL-E agents make at most: per day, MPC predicts every (first action, rollout) row
    for each look-ahead step and MCTS every rollout row along the horizon in each iteration; at
    temperature 0 the MCTS rollouts of one node are one request."""
    mcts_rows = mcts_rollouts if temperature > 0 else 1
    return runs * days * (mpc_first * mpc_rollouts * mpc_steps + mcts_iterations * mcts_horizon * mcts_rows)


__all__ += ["cost_table", "planning_calls"]


def stage_settings(notebook: str, env_name: str, profile: str) -> dict:
    """The parameters ``notebooks/stages.toml`` gives the stage of ``notebook`` for ``env_name`` in ``profile``
    (an empty dict when there is no such stage or TOML cannot be read)."""
    from .. import paths
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return {}
    try:
        table = tomllib.loads((paths.NOTEBOOKS / "stages.toml").read_text())
    except (OSError, ValueError):
        return {}
    for st in table.get("stage", []):
        block = st.get(profile)
        if st.get("notebook") == notebook and isinstance(block, dict) and block.get("env_name", "coffee_shop") == env_name:
            return dict(block)
    return {}


__all__ += ["stage_settings"]
