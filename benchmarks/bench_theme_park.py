"""Time one simulated day (500 ticks) of the theme park on one core, for a small and a large park.

    .venv/bin/python benchmarks/bench_theme_park.py [--repeats 20]

Small park: 3 yellow rides and 3 shops (tens of guests a day).  Large park: 25 rides of all kinds,
10 shops and 4 staff with a high rating (over 1,000 guests a day).  The reference is the original
Node.js MAPs backend: about 12-15 ms a day (small) and 50-100 ms (large).

Prints, per park, the CPU time of the process per simulated day (best and median over the
repeats; CPU time is what one core spends, so other jobs on a shared machine disturb it less
than wall time, though they still slow it through shared caches) and the wall time median.
Layout tables are built once per layout and per set of attractions and cached; the first day
of a new park pays for them, which is reported separately as "first day".
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


def time_days(state: dict, repeats: int, seed: int = 0) -> dict:
    """CPU and wall seconds per simulated day, the first (table-building) day, guests per day."""
    rng = np.random.default_rng(seed)
    path_graph(state)          # route tables: once per layout
    t0 = time.process_time()
    simulate_day(state, rng)   # first day of this park: builds its adjacency and pass-by tables
    first = time.process_time() - t0
    cpu, wall, guests = [], [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        nxt = simulate_day(state, rng)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        guests.append(nxt["guests_today"])
    return {"cpu": cpu, "wall": wall, "first": first, "guests": guests}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    ref = {"small": "12-15 ms", "large": "50-100 ms"}
    for kind in ("small", "large"):
        state = build_park(kind)
        r = time_days(state, args.repeats)
        print(f"{kind:5s} park: {state['num_rides']:2d} rides, {state['num_shops']:2d} shops, "
              f"{state['num_staff']} staff, {statistics.mean(r['guests']):6.0f} guests/day | CPU per day: "
              f"best {1000 * min(r['cpu']):5.1f} ms, median {1000 * statistics.median(r['cpu']):5.1f} ms | "
              f"wall median {1000 * statistics.median(r['wall']):5.1f} ms | first day {1000 * r['first']:5.1f} ms "
              f"| Node.js MAPs: {ref[kind]}")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
