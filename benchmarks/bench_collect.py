"""Time trajectory collection: 100 trajectories x 50 days of the heuristic agent (target: under 10 s).

Usage: python benchmarks/bench_collect.py [--env coffee_shop] [--n 100] [--horizon 50] [--repeat 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cassandra_wm import data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--env", default="coffee_shop")
    ap.add_argument("--agent", default="heuristic")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--horizon", type=int, default=50)
    ap.add_argument("--invalid-rate", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    best_collect, best_save, best_load = float("inf"), float("inf"), float("inf")
    n_rec = 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        recs = data.collect(args.env, args.agent, args.n, args.horizon, seed=0, progress=False,
                            invalid_rate=args.invalid_rate)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "transitions.jsonl"
            data.save_transitions(recs, path, meta={"env": args.env})
            t2 = time.perf_counter()
            data.load_transitions(path)
            t3 = time.perf_counter()
        n_rec = len(recs)
        best_collect = min(best_collect, t1 - t0)
        best_save = min(best_save, t2 - t1)
        best_load = min(best_load, t3 - t2)
    print(f"{args.env}, {args.agent} agent, {args.n} trajectories x {args.horizon} days "
          f"-> {n_rec} transitions (best of {args.repeat})")
    print(f"collect: {best_collect:.3f} s  ({n_rec / best_collect:,.0f} transitions/s; target < 10 s)")
    print(f"save:    {best_save:.3f} s")
    print(f"load:    {best_load:.3f} s")


if __name__ == "__main__":
    main()
