"""The game's named park layouts: entrance, exit, path and water tiles on the 20 x 20 grid.

These are the layouts the public Mini Amusement Parks game ships, under its names, re-drawn here
as our own data (one string per column ``x``, one character per row ``y``: ``E`` entrance,
``X`` exit, ``#`` path, ``~`` water, ``.`` empty).  Tiles are addressed ``(x, y)`` as in the game.

Split (the paper: 7 layouts for training, 3 held out): the game's own configuration names five
training layouts and three test layouts (``ribs``, ``the_islands``, ``zig_zag``); we add
``four_squares`` and ``two_lakes`` to training to reach the paper's seven (``promised_lands``
was left out: most of its paths cannot be reached from the entrance).  In ``the_islands`` too some path
tiles are islands that guests cannot reach; attractions next to them get no visitors.  Water is kept in
easy mode, as the game keeps it: nothing can be built on water, and each water tile next to a ride
adds one to its excitement.
"""
from __future__ import annotations

from dataclasses import dataclass

from .params import GRID_SIZE

Tile = tuple[int, int]

_DRAWINGS: dict[str, tuple[str, ...]] = {
    "diagonal_squares": (
        "E####...............",
        "#.#.#...............",
        "#######.............",
        "#.#.#.#~~~..........",
        "#######~~~..........",
        "..#.#.#~~~~~~~......",
        "..###########~~~....",
        "...~~~#~~#~.#~~~....",
        "...~~~#~.#.~#~~~....",
        "...~~~###.#####.....",
        ".....~#~.#.~#.####..",
        ".....~#.~#~~###..#..",
        ".....~#######~~..#..",
        ".....~~~~#.#~~~..#..",
        "......~~~###~~~~###.",
        "......~~~.#...~~#.#.",
        "..........#...#####.",
        "..........#####.#.#.",
        "..............######",
        "..................#X",
    ),
    "the_ladder": (
        "~~.##X.~~~~~~~~~~~~~",
        "~~.#.#.~~~~~~~~~~~~~",
        "~~.###.~~~~~~~~~~~~~",
        "~~.#.#.~~~~~~~~~~~~~",
        "~~.###.~~~~~~~~~~~~~",
        "~~.#.#.~~~~~~~~~~~~~",
        "~~.###.~~~~~~~~~~~~~",
        "~~.#.#.~~~~~~~~~~~~~",
        "~~.###.~~~~~~~~~~~~~",
        "~~.#.#.~~~~~~~~~~~~~",
        "~~.###.~~~~~~~~~~~~~",
        "~~.#.#.~~~~~~~~~~~~~",
        "~~.###.~~~~~~~~~~~~~",
        "~~.#.#.~~~~~~~~~~~~~",
        "~~.###.~~~~~~~~~~~~~",
        "~~.#.#.~~~~~~~~~~~~~",
        "~~.###.~~~~~~~~~~~~~",
        "~~.#.#.~~~~~~~~~~~~~",
        "~~.###.~~~~~~~~~~~~~",
        "~~.E...~~~~~~~~~~~~~",
    ),
    "two_paths": (
        ".........E~~~~~~~~~~",
        ".........#.~~~...~~~",
        "....############.~~~",
        "....#.....~~~~.#.~~~",
        "....#.....~~~~~#~~~~",
        "....#.....~~~~~#~~~~",
        "....#.....~~~~.#.~~~",
        "....#.....~~~~.#.~~~",
        "....#.....~~~~.#.~~~",
        "....#.....~~~~.#.~~~",
        "....#.....~~~~.#.~~~",
        "....#.....~~~~.#.~~~",
        "....#.....~~~~.#.~~~",
        "....#.....~~~~~#~~~~",
        "....#.....~~~~~#~~~~",
        "....#.....~~~~~#~~~~",
        "....#.....~~~~.#.~~~",
        "....############.~~~",
        "..........#.~~...~~~",
        "..........X~~~~~~~~~",
    ),
    "the_line": (
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "....~~...~~...~~....",
        "....................",
        "X##################E",
        "....................",
        "....................",
        "....................",
        "....................",
    ),
    "the_fork": (
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~..~~.~~.~~..~~~~",
        "~~~~.#..#..#..#.~~~~",
        "~~~~.#..#..#..#.~~~~",
        "~~~~.#..#..#..#.~~~~",
        "~~~~.#..#..#..#.~~~~",
        "~~~~.#..#..#..#.~~~~",
        "~~~~.#..#..#..#.~~~~",
        "~~~~.#..#..#..#.~~~~",
        "~~~~.##########.~~~~",
        "~~~~....#..#....~~~~",
        "~~~~~~..#..#..~~~~~~",
        "~~~~~~..#..#..~~~~~~",
        "~~~~~~..#..#..~~~~~~",
        "~~~~~~..####..~~~~~~",
        "~~~~~~..#..#..~~~~~~",
        "~~~~~~..#..#..~~~~~~",
        "~~~~~~..#..#..~~~~~~",
        "~~~~~~..#..#..~~~~~~",
        "~~~~~~..E..X..~~~~~~",
    ),
    "four_squares": (
        "...............X....",
        "..#################.",
        "..#.......#.......#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.......#.......#.",
        "..#################.",
        "..#.......#.......#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "E##.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.......#.......#.",
        "..#################.",
        "....................",
        "....................",
    ),
    "two_lakes": (
        "..................#X",
        "..##################",
        "..#.......#.......#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.~~~~~.#.~~~~~.#.",
        "..#.......#.......#.",
        "###################.",
        "#.#.................",
        "E##.................",
    ),
    "ribs": (
        "~~~~~~~~~X~~~~~~~~~~",
        "~~~~~~~~.#.~~~~~~~~~",
        "~~~...~~.#.~~.......",
        "~~~.#....#....###...",
        "~~~.###########.#...",
        "~~~......#.~~~###...",
        ".........#.~~~.~~~~~",
        "..###....#....#.~~~~",
        "..#.###########.~~~~",
        "..###~~~.#......~~~~",
        "~~~~.~~~.#..........",
        "~~~.#....#....###...",
        "~~~.###########.#...",
        "~~~......#.~~~###...",
        ".........#.~~~.~~~~~",
        "..###....#....#.~~~~",
        "..#.###########.~~~~",
        "..###~~~.#......~~~~",
        "~~~.~~~~.#..........",
        "~~~......E..........",
    ),
    "the_islands": (
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~.~.~.~~~~~~~",
        "~~~~~~~.#.#.#~~~~~~~",
        "~~~~~~.######.~~~~~~",
        "~~~~~~~#.#.#.~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~....~~~~~~~~",
        "~~~~~~~.####.~~~~~~~",
        "E########..#.~~~~~~~",
        "~~~~~~~.#..########X",
        "~~~~~~~.####.~~~~~~~",
        "~~###~~......~~~~~~~",
        "~~#.#~~......~~~~~~~",
        "~~###~~......~~~~~~~",
        "~~~~~~~######~~~~~~~",
        "~~~~~~~#....#~~~~~~~",
        "~~~~~~~######~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
        "~~~~~~~~~~~~~~~~~~~~",
    ),
    "zig_zag": (
        ".E##................",
        ".#.###############..",
        ".###~~~..~~~~..~~#..",
        "~~~~~.~~~~..~~~~.#..",
        "~~~~..############..",
        "~~~~..#.............",
        "~~.~~.#.............",
        "~.~.~.##########.~~~",
        "~~.~~..........#.~~~",
        "~~~~############~~~~",
        "~~~.#..........~~.~~",
        "~~~.##########.~.~.~",
        ".............#.~~.~~",
        ".............#..~~~~",
        "..############..~~~~",
        "..#.............~~~~",
        "..#.~~~~~~~~~~~~~~~~",
        "..#.............###.",
        "..###############.#.",
        "................##X.",
    ),
}

TRAIN_LAYOUTS = ("diagonal_squares", "the_ladder", "two_paths", "the_line", "the_fork", "four_squares",
                 "two_lakes")
TEST_LAYOUTS = ("ribs", "the_islands", "zig_zag")


@dataclass(frozen=True)
class Layout:
    """One park layout: entrance, exit, path and water tiles as (x, y) pairs."""

    name: str
    entrance: Tile
    exit: Tile
    paths: tuple[Tile, ...]
    waters: tuple[Tile, ...]
    split: str  # "train" or "test"

    def to_dict(self) -> dict:
        return {"name": self.name, "entrance": list(self.entrance), "exit": list(self.exit),
                "paths": [list(p) for p in self.paths], "waters": [list(w) for w in self.waters],
                "split": self.split}


def _parse(name: str, rows: tuple[str, ...], split: str) -> Layout:
    if len(rows) != GRID_SIZE or any(len(r) != GRID_SIZE for r in rows):
        raise ValueError(f"layout {name!r} is not {GRID_SIZE} x {GRID_SIZE}")
    ent = ext = None
    paths, waters = [], []
    for x, row in enumerate(rows):
        for y, c in enumerate(row):
            if c == "E":
                ent = (x, y)
            elif c == "X":
                ext = (x, y)
            elif c == "#":
                paths.append((x, y))
            elif c == "~":
                waters.append((x, y))
            elif c != ".":
                raise ValueError(f"layout {name!r}: unknown tile {c!r} at ({x}, {y})")
    if ent is None or ext is None:
        raise ValueError(f"layout {name!r} needs one entrance and one exit")
    return Layout(name, ent, ext, tuple(paths), tuple(waters), split)


LAYOUTS: dict[str, Layout] = {}
for _n in TRAIN_LAYOUTS:
    LAYOUTS[_n] = _parse(_n, _DRAWINGS[_n], "train")
for _n in TEST_LAYOUTS:
    LAYOUTS[_n] = _parse(_n, _DRAWINGS[_n], "test")
LAYOUT_NAMES = tuple(LAYOUTS)


def get_layout(layout: "str | int | Layout") -> Layout:
    """A layout by name, by index into ``LAYOUT_NAMES``, or the layout itself."""
    if isinstance(layout, Layout):
        return layout
    if isinstance(layout, bool):
        raise ValueError(f"unknown layout {layout!r}")
    if isinstance(layout, int):
        if not 0 <= layout < len(LAYOUT_NAMES):
            raise ValueError(f"layout index {layout} out of range 0..{len(LAYOUT_NAMES) - 1}")
        return LAYOUTS[LAYOUT_NAMES[layout]]
    if isinstance(layout, str) and layout in LAYOUTS:
        return LAYOUTS[layout]
    raise ValueError(f"unknown layout {layout!r}; known: {list(LAYOUT_NAMES)}")


def layout_for_seed(seed: int, split: str = "train") -> Layout:
    """The layout an episode seed picks from a split ("train", "test" or "all")."""
    names = {"train": TRAIN_LAYOUTS, "test": TEST_LAYOUTS, "all": LAYOUT_NAMES}.get(split)
    if names is None:
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    return LAYOUTS[names[int(seed) % len(names)]]


__all__ = ["Layout", "LAYOUTS", "LAYOUT_NAMES", "TRAIN_LAYOUTS", "TEST_LAYOUTS", "get_layout", "layout_for_seed"]
