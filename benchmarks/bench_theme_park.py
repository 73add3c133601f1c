"""One simulated day of the theme park against the real game's Node backend, measured in one run, one core.

    MAPS_GAME_DIR=/path/to/MAPs .venv/bin/python benchmarks/bench_theme_park.py [--days 5] [--layout diagonal_squares]

Two parks, built by the same scripted policy in both (the game's parameters): a small one (a carousel
and a janitor, tens of guests a day) and a large one (25 rides, 4 shops and 4 staff on a big budget,
over 1,000 guests a day).  For each, ``--days`` more days are played and timed:

* ours: CPU time of this process per day (``time.process_time``; numpy limited to one thread);
* the game: CPU time of its Node server process per day (from ``/proc``), and the wall time of the
  HTTP call that runs the day.

It prints the per-day times and the ratio ours / game (below 1: ours is faster).  Without the real
game installed it prints our times only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from cassandra_wm.envs.maps import fidelity as F  # noqa: E402
from cassandra_wm.envs.maps.client import GameError  # noqa: E402
from cassandra_wm.envs.maps.env import MapsEnv  # noqa: E402
from cassandra_wm.envs.theme_park import ThemeParkEnv  # noqa: E402

PARKS = {"small": (F.ride_and_janitor, 3, {}), "large": (F.large_park, 33, {"start_money": 1_000_000})}


def _node_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build(env, policy, days: int):
    s = env.reset(0)
    for d in range(days):
        s, _, _ = env.step(policy(s, d))
    return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--layout", default="diagonal_squares")
    ap.add_argument("--game-dir", default=None)
    args = ap.parse_args()
    rows = []
    for name, (policy, build_days, kw) in PARKS.items():
        horizon = build_days + args.days + 1
        ours = ThemeParkEnv(layout=args.layout, parameters="game", horizon=horizon, **kw)
        s = build(ours, policy, build_days)
        cpu, guests = [], []
        for _ in range(args.days):
            t = time.process_time()
            s, _, _ = ours.step("wait()")
            cpu.append(time.process_time() - t)
            guests.append(s["guests"]["total_guests"])
        row = {"park": name, "rides": s["rides"]["total_rides"], "guests/day": statistics.mean(guests),
               "ours cpu s/day": statistics.median(cpu)}
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
                            "game cpu s/day": statistics.median(gcpu), "game wall s/day": statistics.median(gwall)})
                row["ours / game (cpu)"] = row["ours cpu s/day"] / max(row["game cpu s/day"], 1e-9)
            finally:
                real.close()
        except GameError as e:
            print(f"(real game not measured: {e})", file=sys.stderr)
        rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(f"{r[k]:.3f}" if isinstance(r.get(k), float) else str(r.get(k, "-")) for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
