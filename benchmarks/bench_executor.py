"""Speed-up of the episode executor from 1 to 2 (or more) worker processes, side by side in one run.

Plays the same batch of episodes (MCTS with the real simulator as model, at a reduced budget, plus the
heuristic agent) with the local executor at each worker count, checks that every run produced the same
records, and prints the wall times and the speed-up over one worker.  The machine may be shared: the
load average is printed, and the ratio, not the absolute time, is the figure (2 workers cannot beat
2x, and other processes on the cores pull it down).

Usage: python benchmarks/bench_executor.py [--episodes 8] [--days 10] [--workers 1 2] [--dask]
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict

from cassandra_wm.planning import AgentSpec, MCTSConfig, heldout_seeds, play_agents
from cassandra_wm.planning.episodes import TIMING_FIELDS
from cassandra_wm.planning.executor import DaskExecutor, LocalExecutor


def strip(records):
    out = [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]
    for r in out:
        r["decisions"] = [{k: v for k, v in d.items() if k != "seconds"} for d in r.get("decisions", [])]
    return sorted(out, key=lambda r: (r["agent"], r["seed"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=8, help="episode seeds (each played by both agents)")
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dask", action="store_true", help="also time a local Dask cluster at the largest count")
    args = ap.parse_args()

    cfg = asdict(MCTSConfig.for_env("coffee_shop", iterations=args.iterations))
    roster = [AgentSpec("MCTS+oracle", "mcts", "oracle", config=cfg), AgentSpec("heuristic", "agent", agent="heuristic")]
    seeds = heldout_seeds(args.episodes, seed=1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{len(roster) * len(seeds)} episodes of {args.days} days (MCTS+oracle at {args.iterations} iterations, "
          f"and the heuristic agent); {os.cpu_count()} cores, load average {load:.1f}")
    times, ref = {}, None
    runs = [(f"local, {w} worker{'s' if w > 1 else ''}", LocalExecutor(w)) for w in args.workers]
    if args.dask:
        runs.append((f"dask local cluster, {max(args.workers)} workers", None))
    for name, ex in runs:
        if ex is None:
            ex = DaskExecutor("local", workers=max(args.workers))
        t = time.perf_counter()
        recs = play_agents("coffee_shop", roster, seeds, args.days, executor=ex, progress=False)
        times[name] = time.perf_counter() - t
        ex.close()
        same = ref is None or strip(recs) == ref
        ref = ref or strip(recs)
        print(f"  {name:32s} {times[name]:7.1f} s   records identical to the first run: {same}")
    base = times[runs[0][0]]
    for name in times:
        print(f"  speed-up of {name} over {runs[0][0]}: {base / times[name]:.2f}x")


if __name__ == "__main__":
    main()
