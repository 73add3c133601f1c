"""Notebook helpers for the theme park (and the real game, ``maps``): its figures in notebook 01.

Notebook 01 calls :func:`figures`, which returns the park's own figures, each with a caption in
Markdown.  (Collection over the named layouts is :func:`cassandra_wm.data.collect_on_layouts`.)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .layouts import TEST_LAYOUTS, TRAIN_LAYOUTS


def _state_at(by_traj: dict, tid: int, day: int) -> dict:
    """The state at the start of ``day`` of one trajectory (0 = the empty park; clipped to its last day)."""
    g = by_traj[tid]
    last_day = len(g)
    day = last_day + 1 + day if day < 0 else day
    day = min(max(day, 0), last_day)
    return g["state"].iloc[0] if day == 0 else g["next_state"].iloc[day - 1]


def figures(spec: Any, df: Any, daily: Any, splits: dict, agent: str, n_total: int,
            render_days: Any = (0, 10, 25, -1), **_: Any) -> list[dict]:
    """The park's figures: ``[{"name", "caption", "figure"} ...]`` (the caller saves and shows them)."""
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    from .actions import apply_action
    from .render import render_park

    out = []
    if isinstance(render_days, str):  # e.g. papermill -p render_days "0,10,-1"
        render_days = [int(x) for x in render_days.strip("[] ").split(",") if x.strip()]
    by_traj = {int(t): g.sort_values("t") for t, g in df.groupby("traj_id")}
    by_name = {v.name: v for v in spec.variables}

    # 1. the park itself
    picks = splits["train"][:1] + [i for i in splits["test"][:1] if i not in splits["train"][:1]]
    picks = picks or sorted(by_traj)[:1]
    ncol = max(1, len(render_days))
    fig, axes = plt.subplots(len(picks), ncol, figsize=(4.1 * ncol, 4.6 * len(picks)), squeeze=False)
    for row, tid in zip(axes, picks):
        where = "test" if tid in splits["test"] else "training"
        for ax, d in zip(row, render_days):
            s = _state_at(by_traj, tid, int(d))
            render_park(s, ax=ax, title=(f"traj {tid} ({where}) · {s['hidden']['layout']} · day {s['step']}\n"
                                         f"\\${s['money']:,.0f} · rating {s['park_rating']:.0f} · "
                                         f"{s['guests']['total_guests']} guests"))
    fig.suptitle(f"theme park, {agent} agent: the park at the start of days {list(render_days)} "
                 "(negative = from the end)", y=1.0)
    fig.tight_layout()
    out.append({"name": "data_theme_park_render", "figure": fig, "caption": (
        "**The park itself.** Each panel draws one park at the start of a day (day 0 is the empty park): paths "
        "grey, browner where dirty, water blue; rides as squares and shops as circles in their colour (C "
        "carousel, F ferris wheel, R roller coaster; d drink, f food, s specialty); a broken ride is crossed "
        "out; janitors (purple) and mechanics (orange) are triangles where they stood at closing. Top row: the "
        "first training trajectory; bottom row: the first test trajectory (a held-out layout when "
        "`n_test_trajectories > 0`).")})

    # 2. the six network variables, layout by layout
    traj_layout = {tid: g["state"].iloc[0]["hidden"]["layout"] for tid, g in by_traj.items()}
    daily = daily.assign(layout=daily["traj_id"].map(traj_layout))
    names = list(TRAIN_LAYOUTS) + list(TEST_LAYOUTS)
    present = [n for n in names if n in set(traj_layout.values())]
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.2), squeeze=False)
    for ax, name in zip(axes.flat, spec.bn_variables):
        for k, lay in enumerate(present):
            sub = daily[daily["layout"] == lay]
            m = pd.to_numeric(sub[name], errors="coerce").groupby(sub["day"]).mean()
            held = lay in TEST_LAYOUTS
            ax.plot(m.index, m.values, color=plt.cm.tab10(k % 10), lw=1.4, ls="--" if held else "-",
                    label=f"{lay}{' (held out)' if held else ''}")
        ax.set_title(f"{name}: {by_name[name].description}", fontsize=9)
        ax.set_xlabel("day")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.flat[0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"theme park: the network's six variables by layout (mean over trajectories; {n_total} in all)",
                 y=1.0)
    fig.tight_layout()
    out.append({"name": "data_theme_park_bn_variables", "figure": fig, "caption": (
        f"**The six network variables, layout by layout** ({', '.join(spec.bn_variables)}); the rest are treated "
        "as independent. Each line is the mean over one layout's trajectories; dashed lines are held-out layouts.")})

    # 3. what gets built
    groups = {"rides": ("rides", "ride_list", ["carousel", "ferris_wheel", "roller_coaster"]),
              "shops": ("shops", "shop_list", ["drink", "food", "specialty"]),
              "staff": ("staff", "staff_list", ["janitor", "mechanic", "specialist"])}
    rows = []
    for tid, g in by_traj.items():
        for s in [g["state"].iloc[0]] + list(g["next_state"]):
            row = {"traj_id": tid, "day": s["step"]}
            for key, lst, kinds in groups.values():
                for kind in kinds:
                    row[kind] = sum(1 for a in s[key][lst] if a["subtype"] == kind)
            rows.append(row)
    built = pd.DataFrame(rows)
    mean_built = built.groupby("day").mean(numeric_only=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), squeeze=False)
    for ax, (title, (_, _, kinds)) in zip(axes.flat, groups.items()):
        ax.stackplot(mean_built.index, [mean_built[k] for k in kinds], labels=kinds, alpha=0.85)
        ax.set_title(f"{title} (mean per park)", fontsize=10)
        ax.set_xlabel("day")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"theme park: attractions and staff over time ({agent} agent)", y=1.02)
    fig.tight_layout()
    out.append({"name": "data_theme_park_built", "figure": fig, "caption": (
        "**What gets built.** Mean number of rides by type, shops by type and staff by kind at the start of each "
        "day, over all trajectories still running (stacked).")})

    # 4. why actions were refused (re-checked against the stored states with the game's rules)
    reasons = spec.notes["invalid_reasons"]
    bad = df[~df["valid"]]
    rrows = []
    for st, act, err in zip(bad["state"], bad["action"], bad["error"]):
        _, ok, msg, info = apply_action(st, act)
        if ok or msg != err:
            raise AssertionError(f"re-checking {act} gave ({ok}, {msg!r}), the data says {err!r}")
        rrows.append({"reason": info["reason"], "action": act.get("name") if isinstance(act, dict) else str(act)[:12]})
    refused = pd.DataFrame(rrows, columns=["reason", "action"])
    table = refused.groupby(["reason", "action"]).size().unstack(fill_value=0).reindex(list(reasons), fill_value=0)
    table = table.loc[table.sum(axis=1).sort_values().index]
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(table) + 1.4))
    left = np.zeros(len(table))
    for k, col in enumerate(table.columns):
        ax.barh([f"{r}: {reasons[r]}" for r in table.index], table[col], left=left, color=f"C{k}", label=col)
        left += table[col].to_numpy()
    ax.set_xlabel("refused steps")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="y", labelsize=7)
    if len(table.columns):
        ax.legend(title="action", fontsize=7)
    ax.set_title(f"theme park: {len(refused)} refusals in {len(df)} steps, by reason and action", fontsize=10)
    fig.tight_layout()
    out.append({"name": "data_theme_park_refusals", "figure": fig, "table": table.assign(total=table.sum(axis=1)),
                "caption": (
                    "**Why actions were refused.** Every refusal has a reason code (`spec.notes['invalid_reasons']`; "
                    "the game's checks run in a fixed order, so an action breaking several rules is refused for the "
                    "first). The code is recovered by re-checking the stored action against the stored state (no "
                    "day is simulated) and the message must match the stored one. Reasons that never occurred show "
                    "a zero count: the code stream can only learn the preconditions the data shows.")})
    return out


__all__ = ["figures"]
