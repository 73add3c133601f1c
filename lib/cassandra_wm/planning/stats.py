"""Tables and curves from episode records (:mod:`.episodes`).

The planning table's statistics, for a row (agent label) played with one or more fitted networks
(fit seeds) on the same episode seeds as every other row:

* ``final_money_mean``: the mean over all its episodes;
* ``ci95_low``/``ci95_high``: a t-based 95% interval over episode seeds, each seed's money
  averaged over the row's fits first (so fits are not counted as independent episodes);
* ``sd_between_fits``: the standard deviation of the per-fit means (how much the network's fit
  seed matters); ``sd_between_episodes``: the pooled standard deviation over episodes within a fit;
* ``vs_oracle``/``vs_heuristic``: the paired difference to the reference row on the same seeds
  (mean, with a t-based 95% interval), and ``x_heuristic`` the ratio of the paired means.

Student's t quantiles come from ``scipy.stats``.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import stats as _st

from .support import out_of_support_share


def t_quantile(p: float, df: float) -> float:
    """Quantile ``p`` of Student's t with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    if not df > 0:
        raise ValueError(f"df must be positive, got {df!r}")
    return float(_st.t.ppf(p, df))


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean, the half-width of a t-based ``level`` confidence interval, and the standard deviation.

    The half-width and standard deviation are NaN with fewer than 2 values.
    """
    x = np.asarray([float(v) for v in values], dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    sd = float(x.std(ddof=1))
    return mean, t_quantile(0.5 + level / 2.0, x.size - 1) * sd / math.sqrt(x.size), sd


def _by_agent(records: Iterable[dict]) -> dict[str, list[dict]]:
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["agent"], []).append(r)
    return by


def per_seed(records: Sequence[dict], field: str = "final_money") -> dict[int, float]:
    """Each episode seed's value of ``field``, averaged over the fits that played it."""
    acc: dict[int, list[float]] = {}
    for r in records:
        acc.setdefault(int(r["seed"]), []).append(float(r[field]))
    return {s: float(np.mean(v)) for s, v in acc.items()}


def paired_difference(a: Sequence[dict], b: Sequence[dict], level: float = 0.95) -> dict:
    """Mean of ``a - b`` over the episode seeds both played (fits averaged per seed), with its CI."""
    pa, pb = per_seed(a), per_seed(b)
    common = sorted(set(pa) & set(pb))
    d = [pa[s] - pb[s] for s in common]
    mean, half, _ = mean_ci(d, level)
    ratio = (float(np.mean([pa[s] for s in common])) / float(np.mean([pb[s] for s in common]))
             if common and np.mean([pb[s] for s in common]) != 0 else float("nan"))
    return {"n": len(common), "mean": mean, "low": mean - half, "high": mean + half, "ratio": ratio}


def summary_table(records: Iterable[dict], oracle: str | None = "MCTS+oracle", heuristic: str | None = "heuristic",
                  level: float = 0.95):
    """One row per agent (see the module docstring); reference columns are left out when their row is absent."""
    import pandas as pd
    by = _by_agent(records)
    rows = []
    for agent, rs in by.items():
        fits = sorted({r.get("fit_seed") for r in rs}, key=lambda x: (x is None, x))
        seeds = per_seed(rs)
        mean_all = float(np.mean([r["final_money"] for r in rs]))
        m, half, _ = mean_ci(list(seeds.values()), level)
        fit_means, within = [], []
        for f in fits:
            x = [r["final_money"] for r in rs if r.get("fit_seed") == f]
            fit_means.append(float(np.mean(x)))
            if len(x) > 1:
                within.append(float(np.var(x, ddof=1)))
        row = {"agent": agent, "fits": len(fits) if fits != [None] else 0, "episodes": len(rs),
               "final_money_mean": mean_all, "ci95_low": m - half, "ci95_high": m + half,
               "sd_between_fits": float(np.std(fit_means, ddof=1)) if len(fit_means) > 1 else float("nan"),
               "sd_between_episodes": float(math.sqrt(np.mean(within))) if within else float("nan")}
        for ref, name in ((oracle, "vs_oracle"), (heuristic, "vs_heuristic")):
            if ref and ref in by:
                pdiff = paired_difference(rs, by[ref], level)
                row[name] = pdiff["mean"]
                row[f"{name}_low"] = pdiff["low"]
                row[f"{name}_high"] = pdiff["high"]
                if name == "vs_heuristic":
                    row["x_heuristic"] = pdiff["ratio"]
        tot: dict[str, int] = {}
        for r in rs:
            for k, v in (r.get("model_counters") or {}).items():
                tot[k] = tot.get(k, 0) + int(v)
        row.update({
            "bankruptcy_rate": float(np.mean([bool(r["bankrupt"]) for r in rs])),
            "invalid_actions_per_run": float(np.mean([r.get("invalid_actions", 0) for r in rs])),
            "out_of_support_share": out_of_support_share(tot),
            "seconds_per_decision": float(np.mean([r.get("seconds_per_decision", 0.0) for r in rs])),
        })
        rows.append(row)
    return pd.DataFrame(rows)


def money_curves(records: Iterable[dict], days: int | None = None):
    """Long frame (agent, fit_seed, run, day, money); a run that ended early keeps its last money afterwards."""
    import pandas as pd
    rows = []
    recs = list(records)
    horizon = days if days is not None else max((len(r["money"]) - 1 for r in recs), default=0)
    for r in recs:
        m = list(r["money"])
        m = m + [m[-1]] * max(0, horizon + 1 - len(m))
        for d, v in enumerate(m[:horizon + 1]):
            rows.append({"agent": r["agent"], "fit_seed": r.get("fit_seed"), "run": r["run"], "day": d,
                         "money": float(v)})
    return pd.DataFrame(rows)


def counters_table(records: Iterable[dict]):
    """Model guard-rail counters summed per agent (clipped values, out-of-support samples, ...)."""
    import pandas as pd
    tot: dict[str, dict[str, int]] = {}
    for r in records:
        if not r.get("model_counters"):  # agents without a world model
            continue
        t = tot.setdefault(r["agent"], {})
        for k, v in r["model_counters"].items():
            t[k] = t.get(k, 0) + int(v)
    rows = []
    for a, c in tot.items():
        row = {"agent": a, **dict(sorted(c.items()))}
        if c.get("network_rows"):
            row["out_of_support_share"] = out_of_support_share(c)
            row["spec_bound_clip_share"] = sum(v for k, v in c.items() if k.startswith("clipped:")) / c["network_rows"]
        if c.get("proposals_checked"):
            row["proposals_out_of_support_share"] = c.get("proposals_out_of_support", 0) / c["proposals_checked"]
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in df.columns[1:]:
        if not col.endswith("_share"):
            df[col] = df[col].fillna(0).astype(int)
    return df


def action_counts(records: Iterable[dict]):
    """Mean number of each action kind played per episode, per agent."""
    import pandas as pd
    by = _by_agent(records)
    rows = []
    for agent, rs in by.items():
        c: dict[str, float] = {}
        for r in rs:
            for a in r["actions"]:
                name = a.split("(", 1)[0]
                c[name] = c.get(name, 0) + 1
        rows.append({"agent": agent, **{k: v / len(rs) for k, v in sorted(c.items())}})
    return pd.DataFrame(rows).fillna(0.0)


def annotated_episode(record: dict, top: int = 3):
    """One run as a per-day frame: money, the chosen action, and the top candidates the planner weighed."""
    import pandas as pd
    by_day = {d["day"]: d for d in record.get("decisions", [])}
    rows = []
    for day, act in enumerate(record["actions"]):
        row = {"day": day, "money_before": record["money"][day], "money_after": record["money"][day + 1],
               "chosen": act, "valid": record["valid"][day]}
        cands = by_day.get(day, {}).get("candidates", [])
        for k, c in enumerate(cands[:top], 1):
            row[f"cand{k}"] = c["action"]
            row[f"cand{k}_visits"] = c["visits"]
            row[f"cand{k}_predicted"] = c["mean"]
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["t_quantile", "mean_ci", "per_seed", "paired_difference", "summary_table", "money_curves",
           "counters_table", "action_counts", "annotated_episode", "SURVIVAL_DAYS", "bankruptcy_day", "survival_table",
           "survival_text", "survival_curves", "wilson", "survived"]


# -- survival (the theme park's table 2) -------------------------------------------------------------

SURVIVAL_DAYS = (10, 20, 30, 40, 50)


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (95% by default); NaNs when n is 0."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def survived(record: dict, day: int) -> bool:
    """Was the run still solvent after ``day`` days?  (A run that went bankrupt on day d fails from d on.)"""
    if not record.get("bankrupt"):
        return True
    return int(record.get("days", len(record.get("money", [])) - 1)) > int(day)


def bankruptcy_day(record: dict) -> int | None:
    """The day a run went bankrupt (its last day: a bankrupt park stops), None if it stayed solvent."""
    return int(record.get("days", len(record.get("money", [])) - 1)) if record.get("bankrupt") else None


def survival_table(records: Iterable[dict], days: Sequence[int] = SURVIVAL_DAYS, oracle: str | None = "MCTS+oracle",
                   heuristic: str | None = "heuristic", level: float = 0.95):
    """Per agent: the share of runs still solvent after each of ``days`` (with its Wilson 95% interval:
    ``solvent_d<day>``, ``_low``, ``_high``), days beyond what was played left out; final money (mean with the
    t-based interval over seeds, paired differences to the references, from :func:`summary_table`);
    bankruptcies, the mean bankruptcy day among them and invalid actions per run."""
    import pandas as pd
    recs = list(records)
    by = _by_agent(recs)
    played = min((int(r.get("days_budget", r.get("days", 0))) for r in recs), default=0)
    money = summary_table(recs, oracle=oracle, heuristic=heuristic, level=level).set_index("agent")
    rows = []
    for agent, rs in by.items():
        row: dict[str, Any] = {"agent": agent, "runs": len(rs)}
        for d in days:
            if d > played:
                continue
            k = sum(survived(r, d) for r in rs)
            lo, hi = wilson(k, len(rs))
            row[f"solvent_d{d}"], row[f"solvent_d{d}_low"], row[f"solvent_d{d}_high"] = k / len(rs), lo, hi
        m = money.loc[agent]
        row.update({"final_money_mean": m["final_money_mean"], "ci95_low": m["ci95_low"], "ci95_high": m["ci95_high"]})
        for c in ("vs_heuristic", "vs_heuristic_low", "vs_heuristic_high", "vs_oracle", "vs_oracle_low",
                  "vs_oracle_high"):
            if c in money.columns:
                row[c] = m[c]
        broke = [bankruptcy_day(r) for r in rs if r.get("bankrupt")]
        row.update({"bankruptcies": len(broke), "bankruptcy_day_mean": float(np.mean(broke)) if broke else float("nan"),
                    "bankruptcy_day_min": min(broke) if broke else float("nan"),
                    "invalid_actions_per_run": float(np.mean([r.get("invalid_actions", 0) for r in rs])),
                    "out_of_support_share": m.get("out_of_support_share", float("nan")),
                    "seconds_per_decision": m["seconds_per_decision"]})
        rows.append(row)
    return pd.DataFrame(rows)


def survival_text(table, days: Sequence[int] = SURVIVAL_DAYS):
    """The survival columns of :func:`survival_table` as 'share [low, high]' strings, one per day (for print)."""
    out = table[["agent", "runs"]].copy()
    for d in days:
        c = f"solvent_d{d}"
        if c in table.columns:
            out[f"day {d}"] = [f"{p:.0%} [{lo:.0%}, {hi:.0%}]" for p, lo, hi in
                               zip(table[c], table[f"{c}_low"], table[f"{c}_high"])]
    return out


def survival_curves(records: Iterable[dict], days: int | None = None):
    """Long frame (agent, day, solvent, runs, low, high): the share of runs solvent after each day with its
    Wilson 95% interval."""
    import pandas as pd
    recs = list(records)
    horizon = days if days is not None else max((int(r.get("days_budget", r.get("days", 0))) for r in recs), default=0)
    rows = []
    for agent, rs in _by_agent(recs).items():
        for d in range(horizon + 1):
            k = sum(survived(r, d) for r in rs)
            lo, hi = wilson(k, len(rs))
            rows.append({"agent": agent, "day": d, "solvent": k / len(rs), "runs": len(rs), "low": lo, "high": hi})
    return pd.DataFrame(rows)
