"""Time one simulated day (500 ticks) of the theme park on one core, for a small and a large park.

    .venv/bin/python benchmarks/bench_theme_park.py [--repeats 20]

Small park: 3 yellow rides and 3 shops (tens of guests a day).  Large park: 25 rides of all kinds,
10 shops and 4 staff with a high rating (over 1,000 guests a day).  The reference is the original
Node.js MAPs backend: about 12-15 ms a day (small) and 50-100 ms (large).  Prints the median and
best time per day and the guests served.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from cassandra_wm.envs.theme_park.actions import apply_action  # noqa: E402
from cassandra_wm.envs.theme_park.layouts import get_layout  # noqa: E402
from cassandra_wm.envs.theme_park.params import COLOURS, RIDE_TYPES  # noqa: E402
from cassandra_wm.envs.theme_park.sim import path_graph, simulate_day  # noqa: E402
from cassandra_wm.envs.theme_park.state import initial_state  # noqa: E402


def _free_spots(state: dict) -> list[tuple[int, int]]:
    """Empty tiles touching a path, nearest the entrance first."""
    paths = {tuple(p) for p in state["paths"]}
    ex, ey = state["entrance"]
    spots = set()
    for x, y in paths:
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            t = (x + dx, y + dy)
            if 0 <= t[0] < 20 and 0 <= t[1] < 20 and t not in paths:
                spots.add(t)
    return sorted(spots, key=lambda t: (abs(t[0] - ex) + abs(t[1] - ey), t))


def build_park(kind: str) -> dict:
    """A morning state with a small or large park already built."""
    state = initial_state(get_layout("loop"))
    state["money"] = 10_000_000.0
    spots = _free_spots(state)
    acts = []
    if kind == "small":
        rides = [("carousel", "yellow"), ("ferris_wheel", "yellow"), ("roller_coaster", "yellow")]
        shops = [("drink", "yellow"), ("food", "yellow"), ("specialty", "yellow")]
        staff = []
        state["park_rating"] = 40.0
    else:
        rides = [(RIDE_TYPES[i % 3], COLOURS[(i // 3) % 4]) for i in range(25)]
        shops = [("drink", c) for c in ("yellow", "blue", "green", "red")] + \
                [("food", c) for c in ("yellow", "blue", "green", "red")] + \
                [("specialty", "yellow"), ("specialty", "green")]
        staff = ["janitor", "janitor", "mechanic", "mechanic"]
        state["park_rating"] = 80.0
    for sub, col in rides:
        acts.append(dict(type="ride", subtype=sub, subclass=col))
    for sub, col in shops:
        acts.append(dict(type="shop", subtype=sub, subclass=col))
    for a, (x, y) in zip(acts, spots):
        from cassandra_wm.envs.theme_park.params import RIDES, SHOPS
        table = RIDES if a["type"] == "ride" else SHOPS
        price = table[a["subtype"]][a["subclass"]]["max_price"]
        state, ok, err, _ = apply_action(state, {"name": "place", "args": dict(a, x=x, y=y, price=price)})
        assert ok, err
    paths = state["paths"]
    for i, sub in enumerate(staff):
        x, y = paths[(7 * i) % len(paths)]
        state, ok, err, _ = apply_action(state, {"name": "place", "args": dict(x=x, y=y, type="staff", subtype=sub)})
        assert ok, err
    state["money"] = 5000.0
    return state


def time_days(state: dict, repeats: int, seed: int = 0) -> tuple[list[float], list[int]]:
    rng = np.random.default_rng(seed)
    path_graph(state)          # layout tables are built once per layout; not part of a day
    simulate_day(state, rng)   # warm-up
    times, guests = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        nxt = simulate_day(state, rng)
        times.append(time.perf_counter() - t0)
        guests.append(nxt["guests_today"])
    return times, guests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    ref = {"small": "12-15 ms", "large": "50-100 ms"}
    for kind in ("small", "large"):
        state = build_park(kind)
        times, guests = time_days(state, args.repeats)
        print(f"{kind:5s} park: {state['num_rides']:2d} rides, {state['num_shops']:2d} shops, "
              f"{state['num_staff']} staff, {statistics.mean(guests):7.1f} guests/day | "
              f"median {1000 * statistics.median(times):6.1f} ms/day, best {1000 * min(times):6.1f} ms "
              f"(Node.js MAPs reference: {ref[kind]})")


if __name__ == "__main__":
    main()
