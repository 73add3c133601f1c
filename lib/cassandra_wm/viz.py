"""Plotting helpers: DAG drawings, search curves, one-step prediction fans.

Every function builds :class:`matplotlib.figure.Figure` objects directly, never through pyplot's global
state: a figure made in a widget callback or a worker thread cannot be redrawn or closed by anything
else, and nothing is shown twice.  In a notebook, ``display(fig)`` (or a figure as a cell's last value)
shows it inline; :func:`figure_png` renders it to PNG bytes (e.g. for an ``ipywidgets.Image``).

Graphs are ``parents`` dicts (node -> list of same-step parents), drawn with networkx.  All drawings of
the same node set use the same circular layout, so graphs drawn side by side are easy to compare.
Edge colours when a reference graph is given (evaluation only): green = also in the reference,
orange = in the reference with the other direction, red = not in the reference; reference edges
that are missing are drawn as dashed grey lines.
"""
from __future__ import annotations

import io
import math
from typing import Iterable, Mapping, Sequence

import networkx as nx
import numpy as np
from matplotlib.figure import Figure

Edge = tuple[str, str]

COLORS = {"plain": "0.25", "correct": "#2a9d4b", "reversed": "#e08a00", "spurious": "#c8323c",
          "missing": "0.65", "node": "#eef3fb", "node_edge": "#4a6fa5"}


def new_figure(figsize: tuple[float, float] = (6.4, 4.8), **kwargs) -> Figure:
    """A figure outside pyplot's global state (see the module docstring)."""
    return Figure(figsize=figsize, **kwargs)


def figure_png(fig: Figure, dpi: int = 90, tight: bool = True) -> bytes:
    """The figure rendered as PNG bytes (``tight=False`` keeps the figure's size, so successive
    drawings of one view have the same pixel size)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def _edges(parents: Mapping[str, Sequence[str]]) -> list[Edge]:
    return [(p, v) for v, ps in parents.items() for p in ps]


def dag_graph(parents: Mapping[str, Sequence[str]], nodes: Sequence[str] | None = None) -> nx.DiGraph:
    """A parents dict as a networkx DiGraph (edges parent -> child); ``nodes`` fixes the node order."""
    g = nx.DiGraph()
    g.add_nodes_from(list(nodes) if nodes is not None else list(parents))
    g.add_edges_from(_edges(parents))
    return g


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
    Nodes sit on :func:`circular_layout` unless ``pos`` gives their positions.
    """
    if ax is None:
        ax = new_figure((4.2, 4.2)).subplots()
    nodes = list(nodes) if nodes is not None else list(parents)
    pos = dict(pos) if pos is not None else circular_layout(nodes)
    g = dag_graph(parents, nodes)
    es = list(g.edges)
    hl = set(map(tuple, highlight or []))
    ref = set(map(tuple, true_edges)) if true_edges is not None else None

    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    # arrows stop about 0.25 data units from a node centre (networkx takes the margin in points)
    ax.apply_aspect()
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    margin = 0.25 * width_pt / 2.7

    def arrows(edgelist, color, width, style="solid"):
        if edgelist:
            nx.draw_networkx_edges(nx.DiGraph(edgelist), pos,
                                   edgelist=edgelist, edge_color=color, width=width, style=style, ax=ax,
                                   arrows=True, arrowstyle="-|>", arrowsize=12, node_size=0,
                                   connectionstyle="arc3,rad=0.08", min_source_margin=margin,
                                   min_target_margin=margin, hide_ticks=False)

    if ref is not None:
        arrows([(u, v) for (u, v) in sorted(ref - set(es)) if u in pos and v in pos and (v, u) not in es],
               COLORS["missing"], 1.0, "dashed")
    groups: dict[tuple[str, float], list[Edge]] = {}
    for (u, v) in es:
        if ref is None:
            c = COLORS["plain"]
        elif (u, v) in ref:
            c = COLORS["correct"]
        elif (v, u) in ref:
            c = COLORS["reversed"]
        else:
            c = COLORS["spurious"]
        groups.setdefault((c, 2.8 if (u, v) in hl else 1.3), []).append((u, v))
    for (c, w), group in groups.items():
        arrows(group, c, w)
    labels = {v: v.replace("_", "\n") if len(v) > 10 else v for v in nodes}
    texts = nx.draw_networkx_labels(g, pos, labels=labels, font_size=fontsize, ax=ax, hide_ticks=False,
                                    bbox=dict(boxstyle="round,pad=0.35", fc=COLORS["node"], ec=COLORS["node_edge"]))
    for t in texts.values():
        t.set_zorder(3)
    ax.set_xlim(-1.35, 1.35)  # networkx autoscales; keep every drawing of a node set on the same box
    ax.set_ylim(-1.3, 1.3)
    if title:
        ax.set_title(title, fontsize=fontsize + 2)
    return ax


def draw_initial_vs_final(initial: Mapping[str, Sequence[str]], final: Mapping[str, Sequence[str]],
                          true_edges: Iterable[Edge] | None = None, titles: tuple[str, str] = ("initial DAG", "final DAG"),
                          nodes: Sequence[str] | None = None):
    """Two DAGs side by side (the paper's figure 2); edges that differ are drawn thicker."""
    nodes = list(nodes) if nodes is not None else list(initial)
    ei, ef = set(_edges(initial)), set(_edges(final))
    fig = new_figure((9.5, 4.6))
    axes = fig.subplots(1, 2)
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
    fig = new_figure((3.7 * ncols, 3.7 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
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
    fig = new_figure((15, 3.4))
    axes = fig.subplots(1, 4, sharex=True)
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
        ax = new_figure((6, 3.2)).subplots()
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


MODEL_COLORS = {"CASSANDRA": "C0", "CASS-Ind": "C1", "CASS-L": "C2", "CASS-R": "C3", "CASSANDRA (no guard)": "C4",
                "WALL-E-MAPs": "C5", "oracle": "black"}


def plot_money_curves(curves, title: str = "", min_band: int = 4):
    """Money per day, one panel per planner (MCTS, MPC, ...) with the reference agents in every panel.

    ``curves`` is :func:`cassandra_wm.planning.stats.money_curves`' long frame (agent, fit_seed, run, day,
    money).  An agent's line is the mean over its episodes (fits averaged per episode seed); the band
    is the 25-75% range over episode seeds, drawn only with at least ``min_band`` of them (fewer give
    no useful spread).  Each world model keeps its colour across panels; agents without a planner
    prefix (``heuristic``, ``wait only``) are grey references.
    """
    agents = list(dict.fromkeys(curves["agent"]))
    planners = list(dict.fromkeys(a.split("+", 1)[0] for a in agents if "+" in a)) or [""]
    refs = [a for a in agents if "+" not in a]
    fig = new_figure(figsize=(6.2 * len(planners), 4.4), layout="constrained")
    axes = fig.subplots(1, len(planners), squeeze=False, sharey=True)[0]
    grey = ["0.35", "0.6", "0.8"]

    def line(ax, agent, label, color, style, lw):
        g = curves[curves["agent"] == agent]
        per = g.groupby(["day", "run"])["money"].mean().unstack()
        ax.plot(per.index, per.mean(axis=1), style, color=color, lw=lw, label=label)
        if per.shape[1] >= min_band:
            ax.fill_between(per.index, per.quantile(0.25, axis=1), per.quantile(0.75, axis=1), color=color,
                            alpha=0.12, lw=0)

    for ax, planner in zip(axes, planners):
        for agent in agents:
            if "+" not in agent or agent.split("+", 1)[0] != planner:
                continue
            model = agent.split("+", 1)[1]
            base = model.split(" (", 1)[0] if model not in MODEL_COLORS else model
            color = MODEL_COLORS.get(model, MODEL_COLORS.get(base, "C6"))
            variant = model != base and model not in MODEL_COLORS  # e.g. "oracle (C.4: 3 days, wait)"
            line(ax, agent, model, color, ":" if variant else "-", 2.2 if base == "oracle" else 1.6)
        for k, agent in enumerate(refs):
            line(ax, agent, agent, grey[k % len(grey)], "--", 1.4)
        ax.set_title(f"{planner} agents" if planner else "agents")
        ax.set_xlabel("day")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    axes[0].set_ylabel("money")
    if title:
        fig.suptitle(title)
    return fig


__all__ = ["plot_money_curves", "draw_dag", "draw_initial_vs_final", "draw_graphs", "plot_search_curves", "plot_quantile_fan",
           "circular_layout", "dag_graph", "new_figure", "figure_png", "COLORS"]
