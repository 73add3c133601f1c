"""Plotting helpers: DAG drawings, search curves, one-step prediction fans.

Graphs are ``parents`` dicts (node -> list of same-step parents).  All drawings of the same
node set use the same circular layout, so graphs drawn side by side are easy to compare.
Edge colours when a reference graph is given (evaluation only): green = also in the reference,
orange = in the reference with the other direction, red = not in the reference; reference edges
that are missing are drawn as dashed grey lines.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch

Edge = tuple[str, str]

COLORS = {"plain": "0.25", "correct": "#2a9d4b", "reversed": "#e08a00", "spurious": "#c8323c",
          "missing": "0.65", "node": "#eef3fb", "node_edge": "#4a6fa5"}


def _edges(parents: Mapping[str, Sequence[str]]) -> list[Edge]:
    return [(p, v) for v, ps in parents.items() for p in ps]


def circular_layout(nodes: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Nodes on a circle, first node at the top, clockwise."""
    n = len(nodes)
    return {v: (math.sin(2 * math.pi * i / n), math.cos(2 * math.pi * i / n)) for i, v in enumerate(nodes)}


def draw_dag(parents: Mapping[str, Sequence[str]], ax=None, highlight: Iterable[Edge] | None = None,
             true_edges: Iterable[Edge] | None = None, title: str | None = None,
             pos: Mapping[str, tuple[float, float]] | None = None, nodes: Sequence[str] | None = None,
             fontsize: float = 8):
    """Draw one DAG on ``ax`` (a new figure when None) and return the axes.

    ``highlight`` edges are drawn thicker (e.g. edges changed by the search); ``true_edges``
    colours edges against a reference graph (evaluation only) and shows the missing ones dashed.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4.2))
    nodes = list(nodes) if nodes is not None else list(parents)
    pos = dict(pos) if pos is not None else circular_layout(nodes)
    es = _edges(parents)
    hl = set(map(tuple, highlight or []))
    ref = set(map(tuple, true_edges)) if true_edges is not None else None
    box = 0.25  # arrows stop this far from a node centre

    def arrow(u, v, color, lw, style="-", rad=0.08):
        a, b = _shorten(pos[u], pos[v], box)
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, color=color, lw=lw,
                                     linestyle=style, shrinkA=0, shrinkB=0, connectionstyle=f"arc3,rad={rad}",
                                     zorder=1))

    if ref is not None:
        for (u, v) in sorted(ref - set(es)):
            if u in pos and v in pos and (v, u) not in es:
                arrow(u, v, COLORS["missing"], 1.0, "--")
    for (u, v) in es:
        if ref is None:
            c = COLORS["plain"]
        elif (u, v) in ref:
            c = COLORS["correct"]
        elif (v, u) in ref:
            c = COLORS["reversed"]
        else:
            c = COLORS["spurious"]
        arrow(u, v, c, 2.8 if (u, v) in hl else 1.3)
    for v in nodes:
        x, y = pos[v]
        ax.text(x, y, v.replace("_", "\n") if len(v) > 10 else v, ha="center", va="center", fontsize=fontsize,
                zorder=3, bbox=dict(boxstyle="round,pad=0.35", fc=COLORS["node"], ec=COLORS["node_edge"]))
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=fontsize + 2)
    return ax


def _shorten(p0, p1, r):
    (x0, y0), (x1, y1) = p0, p1
    d = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / d, (y1 - y0) / d
    return (x0 + ux * r, y0 + uy * r), (x1 - ux * r, y1 - uy * r)


def draw_initial_vs_final(initial: Mapping[str, Sequence[str]], final: Mapping[str, Sequence[str]],
                          true_edges: Iterable[Edge] | None = None, titles: tuple[str, str] = ("initial DAG", "final DAG"),
                          nodes: Sequence[str] | None = None):
    """Two DAGs side by side (the paper's figure 2); edges that differ are drawn thicker."""
    nodes = list(nodes) if nodes is not None else list(initial)
    ei, ef = set(_edges(initial)), set(_edges(final))
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.6))
    draw_dag(initial, axes[0], highlight=ei - ef, true_edges=true_edges, title=titles[0], nodes=nodes)
    draw_dag(final, axes[1], highlight=ef - ei, true_edges=true_edges, title=titles[1], nodes=nodes)
    if true_edges is not None:
        fig.text(0.01, 0.01, "green: in the simulator's graph, orange: reversed, red: not in it, dashed: missed; "
                 "thick: changed by the search", ha="left", fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def draw_graphs(graphs: Mapping[str, Mapping[str, Sequence[str]]], true_edges: Iterable[Edge] | None = None,
                ncols: int = 3, nodes: Sequence[str] | None = None):
    """A grid of DAGs, one per ``graphs`` entry (title = key)."""
    names = list(graphs)
    if not names:
        raise ValueError("no graphs to draw")
    ncols = min(ncols, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.7 * ncols, 3.7 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        draw_dag(graphs[name], ax, true_edges=true_edges, title=name, nodes=nodes)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_search_curves(logs: Mapping[str, Sequence[Mapping]] | Sequence[Sequence[Mapping]], title: str = ""):
    """J and its three terms per step, one line per run (``logs``: run name -> list of step records)."""
    if not isinstance(logs, Mapping):
        logs = {f"run {i}": lg for i, lg in enumerate(logs)}
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4), sharex=True)
    for name, lg in logs.items():
        steps = [r["step"] for r in lg]
        for ax, key in zip(axes, ("J", "data", "sparsity", "prior")):
            ax.plot(steps, [r[key] for r in lg], lw=1.2, label=name)
        axes[0].plot(steps, [r["best_J"] for r in lg], lw=0.8, ls=":", color=axes[0].lines[-1].get_color())
    for ax, lab in zip(axes, ("J (dotted: best so far)", "data term", "sparsity term (-lam1 |E|/|V|^2)",
                              "prior term (lam2 log p)")):
        ax.set_title(lab, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_quantile_fan(actual: np.ndarray, quantiles: np.ndarray, levels: np.ndarray, ax=None, title: str = "",
                      max_points: int = 150):
    """Predicted quantiles (rows sorted by the median) as shaded bands, with the actual values as dots."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    actual = np.asarray(actual, dtype=float)
    q = np.asarray(quantiles, dtype=float)
    levels = np.asarray(levels, dtype=float)
    if q.ndim != 2 or q.shape[0] != actual.shape[0] or q.shape[1] != levels.shape[0]:
        raise ValueError(f"shapes do not match: actual {actual.shape}, quantiles {q.shape}, levels {levels.shape}")
    if len(actual) > max_points:
        idx = np.linspace(0, len(actual) - 1, max_points).round().astype(int)
        actual, q = actual[idx], q[idx]
    mid = int(np.argmin(np.abs(levels - 0.5)))
    order = np.argsort(q[:, mid], kind="stable")
    actual, q = actual[order], q[order]
    x = np.arange(len(actual))
    k = len(levels)
    for lo in range(k // 2):
        hi = k - 1 - lo
        ax.fill_between(x, q[:, lo], q[:, hi], color="#4a6fa5", alpha=0.12, lw=0)
    ax.plot(x, q[:, mid], color="#4a6fa5", lw=1.2, label=f"predicted median (bands: {levels[0]:.2f}-{levels[-1]:.2f})")
    inside = (actual >= q[:, 0]) & (actual <= q[:, -1])
    ax.scatter(x, actual, s=8, color=np.where(inside, "0.15", "#c8323c"), zorder=3, label="actual")
    ax.set_xlabel("validation rows, sorted by predicted median")
    ax.set_title(title or f"{inside.mean():.0%} of actual values inside the outer band", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return ax


__all__ = ["draw_dag", "draw_initial_vs_final", "draw_graphs", "plot_search_curves", "plot_quantile_fan",
           "circular_layout", "COLORS"]
