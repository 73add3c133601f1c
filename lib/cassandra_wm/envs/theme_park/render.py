"""Draw a theme park state with matplotlib: grid, paths, gates, attractions, staff and dirt."""
from __future__ import annotations

from typing import Any

import numpy as np

_COLOUR = {"yellow": "#f2c200", "blue": "#2f6fd6", "green": "#2e9e4f", "red": "#d2352b"}
_LETTER = {"carousel": "C", "ferris_wheel": "F", "roller_coaster": "R",
           "drink": "d", "food": "f", "specialty": "s"}


def render_park(state: dict, ax: Any = None, show_dirt: bool = True, title: str | None = None) -> Any:
    """Draw ``state`` on ``ax`` (a new figure when None) and return the axes.

    Paths are grey, tinted brown by dirt; rides are squares and shops circles in their colour
    (letters: C carousel, F ferris wheel, R roller coaster; d drink, f food, s specialty); a broken
    ride is crossed out; janitors (J) and mechanics (M) are small triangles; the entrance and exit
    are marked "in" and "out".
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(6.2, 6.2))
    n = 20
    ax.add_patch(Rectangle((-0.5, -0.5), n, n, facecolor="#e9f3e1", edgecolor="none", zorder=0))
    brown = np.array([0.45, 0.30, 0.12])
    grey = np.array([0.78, 0.78, 0.78])
    for t in state.get("waters", []):
        ax.add_patch(Rectangle((t["x"] - 0.5, t["y"] - 0.5), 1, 1, facecolor="#9cc9ef", edgecolor="none", zorder=1))
    for t in state["paths"]:
        dirt = min(max(1.0 - float(t["cleanliness"]), 0.0), 1.0) if show_dirt else 0.0
        ax.add_patch(Rectangle((t["x"] - 0.5, t["y"] - 0.5), 1, 1, facecolor=tuple(grey + (brown - grey) * dirt),
                               edgecolor="white", linewidth=0.5, zorder=1))
    for a, shape in ([(r, "ride") for r in state["rides"]["ride_list"]]
                     + [(s, "shop") for s in state["shops"]["shop_list"]]):
        x, y = a["x"], a["y"]
        c = min(float(a.get("cleanliness", 1.0)), 1.0)
        if show_dirt and c < 1.0:
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=tuple(brown), alpha=0.6 * (1 - c),
                                   edgecolor="none", zorder=1.5))
        col = _COLOUR.get(a["subclass"], "black")
        if shape == "ride":
            ax.add_patch(Rectangle((x - 0.42, y - 0.42), 0.84, 0.84, facecolor=col, edgecolor="black",
                                   linewidth=0.8, zorder=2))
        else:
            ax.add_patch(Circle((x, y), 0.4, facecolor=col, edgecolor="black", linewidth=0.8, zorder=2))
        ax.text(x, y, _LETTER.get(a["subtype"], "?"), ha="center", va="center", fontsize=8, fontweight="bold",
                color="white" if a["subclass"] in ("blue", "red", "green") else "black", zorder=3)
        if shape == "ride" and a.get("out_of_service"):
            ax.plot([x - 0.45, x + 0.45], [y - 0.45, y + 0.45], color="black", linewidth=2, zorder=4)
            ax.plot([x - 0.45, x + 0.45], [y + 0.45, y - 0.45], color="black", linewidth=2, zorder=4)
    seen: dict[tuple[int, int], int] = {}
    for st in state["staff"]["staff_list"]:
        key = (st["x"], st["y"])
        k = seen.get(key, 0)
        seen[key] = k + 1
        dx = -0.25 + 0.25 * (k % 3)
        dy = -0.25 + 0.25 * (k // 3 % 3)
        col = {"mechanic": "#ff8c00", "janitor": "#7b3fb5"}.get(st["subtype"], "#e0409b")
        ax.plot(st["x"] + dx, st["y"] + dy, marker="^", markersize=7, color=col,
                markeredgecolor="black", markeredgewidth=0.6, linestyle="none", zorder=5)
    for (x, y), label, col in ((state["entrance"], "in", "#1b7a1b"), (state["exit"], "out", "#a01010")):
        ax.text(x, y, label, ha="center", va="center", fontsize=7, fontweight="bold", color="white",
                bbox=dict(boxstyle="round,pad=0.15", facecolor=col, edgecolor="none"), zorder=6)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)   # row 0 at the top
    ax.set_aspect("equal")
    ax.set_xticks(range(0, n, 5))
    ax.set_yticks(range(0, n, 5))
    ax.tick_params(labelsize=7)
    if title is None:
        title = (f"{state.get('hidden', {}).get('layout', '')} day {state['step']}: ${state['money']:,.0f}, rating "
                 f"{state['park_rating']:.0f}, {state['guests']['total_guests']} guests")
    ax.set_title(title, fontsize=9)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], marker="s", color="w", markerfacecolor="grey", markeredgecolor="black", markersize=7,
                      label="ride (C/F/R)"),
               Line2D([], [], marker="o", color="w", markerfacecolor="grey", markeredgecolor="black", markersize=7,
                      label="shop (d/f/s)"),
               Line2D([], [], marker="^", color="w", markerfacecolor="#7b3fb5", markeredgecolor="black", markersize=7,
                      label="janitor"),
               Line2D([], [], marker="^", color="w", markerfacecolor="#ff8c00", markeredgecolor="black", markersize=7,
                      label="mechanic"),
               Line2D([], [], marker="s", color="w", markerfacecolor=tuple(brown), markersize=7, label="dirt")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=5, fontsize=6.5,
              frameon=False, handletextpad=0.2, columnspacing=0.8)
    return ax


__all__ = ["render_park"]
