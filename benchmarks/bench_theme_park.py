"""One simulated day of the theme park against the real game's Node backend, measured in one run, one core.

    .venv/bin/python benchmarks/bench_theme_park.py [--game-dir /path/to/MAPs] [--days 5] [--layout diagonal_squares]
        [--engines numba,numpy] [--cold]

Two parks, built by the same scripted policy in both (the game's parameters): a small one (a carousel
and a janitor, tens of guests a day) and a large one (24 rides, 4 shops and 4 staff on a big budget,
over 1,000 guests a day).  For each, ``--days`` more days are played and timed, interleaved day by day:

* ours, per engine (``numba``: the compiled kernel; ``numpy``: the fallback): CPU seconds of this
  process per day (``time.process_time``, numpy on one thread), for what ``ThemeParkEnv.step`` does
  (apply the action, run the day, copy the state);
* the game: CPU seconds of its Node server process per day (from ``/proc``), and the wall time of
  the HTTP call that runs the day.

It prints CPU seconds per day (the total over the timed days divided by their number: the kernel's
``/proc`` counters tick every 10 ms, too coarse for one small-park day) and the ratios ours / game
(below 1: ours is faster).  The first day of
the compiled engine in a process also pays for importing numba and loading (or, the first time
after an install or an edit, compiling) the kernel: it is printed apart.  ``--cold`` measures that
first day in a fresh process twice, with an empty numba cache (compilation) and then with the cache
it left.  Without the real game (``--game-dir`` or ``$MAPS_GAME_DIR``) it prints our times only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from cassandra_wm.envs.maps import fidelity as F  # noqa: E402
from cassandra_wm.envs.maps.client import GameError  # noqa: E402
from cassandra_wm.envs.maps.env import MapsEnv  # noqa: E402
from cassandra_wm.envs.theme_park import ThemeParkEnv, sim  # noqa: E402
from cassandra_wm.envs.theme_park.state import copy_park_state  # noqa: E402

PARKS = {"small": (F.ride_and_janitor, 3, {}), "large": (F.large_park, 33, {"start_money": 1_000_000})}

_FIRST_DAY = """
import time, numpy as np
t0 = time.process_time()
from cassandra_wm.envs.theme_park import ThemeParkEnv, sim
env = ThemeParkEnv(layout="diagonal_squares", parameters="game", horizon=3)
s = env.reset(0)
t1 = time.process_time()
s, _, _ = env.step("wait()")
t2 = time.process_time()
s, _, _ = env.step("wait()")
t3 = time.process_time()
print(sim.engine_name(), t1 - t0, t2 - t1, t3 - t2)
"""


def _node_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build(env, policy, days: int):
    s = env.reset(0)
    for d in range(days):
        s, _, _ = env.step(policy(s, d))
    return s


def first_day_cold() -> list[str]:
    """The first day in fresh processes: with an empty numba cache, then with the cache it wrote."""
    out = []
    with tempfile.TemporaryDirectory() as cache:
        envv = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT / "lib"))
        for label in ("empty numba cache (compiles)", "numba cache from the run before"):
            r = subprocess.run([sys.executable, "-c", _FIRST_DAY], env=envv, capture_output=True, text=True,
                               timeout=1800)
            if r.returncode != 0:
                out.append(f"  {label}: failed: {r.stderr.strip()[-300:]}")
                continue
            eng, imp, first, second = r.stdout.split()
            out.append(f"  {label}: engine {eng}; import {float(imp):.2f} s, first day {float(first):.2f} s, "
                       f"second day {float(second):.4f} s (CPU)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--layout", default="diagonal_squares")
    ap.add_argument("--game-dir", default=None)
    ap.add_argument("--engines", default="numba,numpy", help="ours to time, in order: numba, numpy")
    ap.add_argument("--cold", action="store_true", help="also time the first day in fresh processes")
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    for e in engines:
        sim.engine_name(e)  # unknown names fail here
    if "numba" in engines and sim.engine_name("numba") != "numba":
        print("(numba is not installed: the 'numba' rows run the numpy engine)", file=sys.stderr)
    rows, notes = [], []
    for name, (policy, build_days, kw) in PARKS.items():
        horizon = build_days + args.days + 1
        env = ThemeParkEnv(layout=args.layout, parameters="game", horizon=horizon, **kw)
        t = time.process_time()
        env.reset(0)
        env.step(policy(env.state, 0))
        if name == "small":
            notes.append(f"first day in this process (imports numba, loads or compiles the kernel): "
                         f"{time.process_time() - t:.2f} s CPU")
        s = build(env, policy, build_days)
        start, rng_state = env.state, env.rng.bit_generator.state
        states = {e: start for e in engines}
        rngs = {}
        for e in engines:
            rngs[e] = type(env.rng)(type(env.rng.bit_generator)())
            rngs[e].bit_generator.state = rng_state
        cpu = {e: [] for e in engines}
        guests = []
        for _ in range(args.days):
            for e in engines:
                t = time.process_time()
                nxt, _, _ = sim.transition(states[e], "wait()", rngs[e], engine=e)
                copy_park_state(nxt)
                cpu[e].append(time.process_time() - t)
                states[e] = nxt
            guests.append(states[engines[0]]["guests"]["total_guests"])
        row = {"park": name, "rides": s["rides"]["total_rides"], "guests/day": statistics.mean(guests)}
        for e in engines:
            row[f"{e} cpu s/day"] = statistics.fmean(cpu[e])
        try:
            real = MapsEnv(layout=args.layout, game_dir=args.game_dir, horizon=horizon, **kw)
            try:
                rs = build(real, policy, build_days)
                pid = real.server.proc.pid
                gcpu, gwall, gguests = [], [], []
                for _ in range(args.days):
                    real.client.act("wait()")
                    c0, w0 = _node_cpu(pid), time.perf_counter()
                    real.client.proceed()
                    gwall.append(time.perf_counter() - w0)
                    gcpu.append(_node_cpu(pid) - c0)
                    raw = real.client.raw_state()
                    gguests.append(raw["guestStats"]["total_guests"])
                row.update({"game rides": rs["rides"]["total_rides"], "game guests/day": statistics.mean(gguests),
                            "game cpu s/day": statistics.fmean(gcpu), "game wall s/day": statistics.fmean(gwall)})
                for e in engines:
                    row[f"{e} / game (cpu)"] = row[f"{e} cpu s/day"] / max(row["game cpu s/day"], 1e-9)
            finally:
                real.close()
        except GameError as e:
            print(f"(real game not measured: {e})", file=sys.stderr)
        rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(f"{r[k]:.4f}" if isinstance(r.get(k), float) else str(r.get(k, "-")) for k in keys))
    for n in notes:
        print(n)
    if args.cold:
        print("first day in a fresh process:")
        for line in first_day_cold():
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
