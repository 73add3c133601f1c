"""Path layouts of the 20 x 20 park: an entrance and an exit on the border, joined by paths.

Seven layouts are for training and three are held out for evaluation, as in the
paper's MAPs setup.  Layouts are drawn as axis-aligned polylines through way
points; every path tile is reachable from the entrance (checked by the tests).
"""
from __future__ import annotations

from dataclasses import dataclass

from .params import GRID_SIZE

Tile = tuple[int, int]


@dataclass(frozen=True)
class Layout:
    """One park layout: entrance, exit and path tiles as (x, y) pairs."""

    name: str
    entrance: Tile
    exit: Tile
    paths: tuple[Tile, ...]
    split: str  # "train" or "test"

    def to_dict(self) -> dict:
        return {"name": self.name, "entrance": list(self.entrance), "exit": list(self.exit),
                "paths": [list(p) for p in self.paths], "split": self.split}


def _polyline(*points: Tile) -> set[Tile]:
    """Tiles on straight (horizontal or vertical) segments through the given way points."""
    tiles: set[Tile] = set()
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        if x0 != x1 and y0 != y1:
            raise ValueError(f"segment {(x0, y0)}->{(x1, y1)} is not axis-aligned")
        for x in range(min(x0, x1), max(x0, x1) + 1):
            for y in range(min(y0, y1), max(y0, y1) + 1):
                tiles.add((x, y))
    if len(points) == 1:
        tiles.add(points[0])
    return tiles


def _make(name: str, split: str, entrance: Tile, exit_: Tile, *lines: tuple[Tile, ...]) -> Layout:
    tiles: set[Tile] = set()
    for line in lines:
        tiles |= _polyline(*line)
    tiles |= {entrance, exit_}
    for x, y in tiles:
        if not (0 <= x < GRID_SIZE and 0 <= y < GRID_SIZE):
            raise ValueError(f"layout {name}: tile {(x, y)} outside the grid")
    return Layout(name, entrance, exit_, tuple(sorted(tiles)), split)


_LAYOUTS = [
    # --- training layouts ---
    _make("straight", "train", (0, 10), (19, 10), ((0, 10), (19, 10))),
    _make("l_shape", "train", (0, 3), (15, 19), ((0, 3), (15, 3), (15, 19))),
    _make("u_shape", "train", (3, 0), (16, 0), ((3, 0), (3, 16), (16, 16), (16, 0))),
    _make("loop", "train", (0, 10), (19, 10),
          ((0, 10), (4, 10)), ((4, 4), (15, 4), (15, 15), (4, 15), (4, 4)), ((15, 10), (19, 10))),
    _make("zigzag", "train", (0, 2), (19, 17),
          ((0, 2), (17, 2), (17, 7), (2, 7), (2, 12), (17, 12), (17, 17), (19, 17))),
    _make("cross", "train", (10, 0), (10, 19), ((10, 0), (10, 19)), ((2, 10), (17, 10))),
    _make("comb", "train", (0, 4), (19, 4),
          ((0, 4), (19, 4)), ((4, 4), (4, 14)), ((9, 4), (9, 14)), ((14, 4), (14, 14))),
    # --- held-out layouts ---
    _make("hook", "test", (0, 1), (0, 18),
          ((0, 1), (18, 1), (18, 18), (0, 18)), ((1, 18), (1, 5), (14, 5), (14, 14), (5, 14), (5, 9))),
    _make("h_shape", "test", (4, 0), (15, 19),
          ((4, 0), (4, 19)), ((15, 0), (15, 19)), ((4, 10), (15, 10))),
    _make("staircase", "test", (0, 0), (19, 19),
          ((0, 0), (3, 0), (3, 3), (6, 3), (6, 6), (9, 6), (9, 9), (12, 9), (12, 12), (15, 12),
           (15, 15), (18, 15), (18, 19), (19, 19))),
]

LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in _LAYOUTS}
TRAIN_LAYOUTS: tuple[str, ...] = tuple(lay.name for lay in _LAYOUTS if lay.split == "train")
TEST_LAYOUTS: tuple[str, ...] = tuple(lay.name for lay in _LAYOUTS if lay.split == "test")


def get_layout(layout: str | int | Layout) -> Layout:
    """Look a layout up by name or by index into ``list(LAYOUTS)``."""
    if isinstance(layout, Layout):
        return layout
    if isinstance(layout, bool):
        raise ValueError(f"layout must be a name or an index, got {layout!r}")
    if isinstance(layout, int):
        names = list(LAYOUTS)
        if not 0 <= layout < len(names):
            raise ValueError(f"layout index {layout} out of range 0..{len(names) - 1}")
        return LAYOUTS[names[layout]]
    if isinstance(layout, str) and layout in LAYOUTS:
        return LAYOUTS[layout]
    raise ValueError(f"unknown layout {layout!r}; known: {list(LAYOUTS)}")


def layout_for_seed(seed: int, split: str = "train") -> Layout:
    """The layout an episode with this seed uses when none is named: seed modulo the split's size."""
    names = {"train": TRAIN_LAYOUTS, "test": TEST_LAYOUTS, "all": tuple(LAYOUTS)}.get(split)
    if names is None:
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    return LAYOUTS[names[int(seed) % len(names)]]


__all__ = ["Layout", "LAYOUTS", "TRAIN_LAYOUTS", "TEST_LAYOUTS", "get_layout", "layout_for_seed"]
