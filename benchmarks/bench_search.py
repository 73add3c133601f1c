"""Time the full coffee-shop DAG search: 5 initial DAGs x 100 annealing steps (target: < 2 min on 2 cores).

Data: the full profile's data set (100 heuristic-agent trajectories of 50 days, 90/5/5 split), collected
afresh into a temporary folder with seed 0 (it takes well under a second).

Initial DAGs: random DAGs (seeded, 6 edges each) rather than LLM samples, so the benchmark needs no LLM.
Prior: :class:`EdgeFrequencyPrior` of those initial DAGs (an LLM-free stand-in; the LLM prior is read
from its cache at about the same cost, and every uncached node would add one LLM call).

1. With the cache: ``search(..., processes=2)`` with a fresh, empty node-score cache directory shared by
   the two worker processes: every (node, parent set) is fitted once in the whole search.
2. Without the cache: ``use_cache=False`` refits every node of every proposed graph.  That would take
   far too long for 500 steps, so it is timed on the first ``--nocache-steps`` steps of one run (one
   process) and extrapolated linearly to 5 x 100 steps on 2 processes.  The output says so.

Usage: python benchmarks/bench_search.py [--steps 100] [--dags 5] [--processes 2] [--nocache-steps 8]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from cassandra_wm import data  # noqa: E402
from cassandra_wm.envs import make_env  # noqa: E402
from cassandra_wm.structure.ablations import random_dag  # noqa: E402
from cassandra_wm.structure.prior import EdgeFrequencyPrior  # noqa: E402
from cassandra_wm.structure.score import DataScorer  # noqa: E402
from cassandra_wm.structure.search import anneal, search  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--dags", type=int, default=5)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--nocache-steps", type=int, default=8)
    ap.add_argument("--trajectories", type=int, default=100)
    ap.add_argument("--horizon", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)

    env = make_env("coffee_shop")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "transitions.jsonl"
        recs = data.collect(env, "heuristic", args.trajectories, args.horizon, seed=0, progress=False,
                            invalid_rate=0.1)
        data.save_transitions(recs, path, meta={"env": "coffee_shop"})
        train, val = data.load_records(path, "train"), data.load_records(path, "val")
        print(f"data: {len(train)} training and {len(val)} validation transitions")

        scorer = DataScorer(env.spec, train, val, seed=0, cache_dir=tmp / "node_cache")
        nodes = scorer.nodes
        inits = [random_dag(nodes, n_edges=len(nodes), seed=100 + i) for i in range(args.dags)]
        prior = EdgeFrequencyPrior(inits, nodes)
        print(f"search: {args.dags} random initial DAGs x {args.steps} steps, {args.processes} processes, "
              f"prior = edge frequencies of the initial DAGs (no LLM)")

        t0 = time.perf_counter()
        runs = search(inits, scorer, prior, steps=args.steps, seed=0, processes=args.processes, progress=False)
        cached_s = time.perf_counter() - t0
        fits = len(list((tmp / "node_cache").glob("*.json")))
        print(f"with cache:    {cached_s:7.1f} s for {args.dags * args.steps} steps "
              f"({fits} distinct node fits; best J {runs.best.best_terms['J']:.4f}; target < 120 s)")

        nc = DataScorer(env.spec, train, val, seed=0, use_cache=False)
        t1 = time.perf_counter()
        anneal(inits[0], nc, prior, steps=args.nocache_steps, seed=0)
        per_step = (time.perf_counter() - t1) / (args.nocache_steps + 1)  # +1: the initial evaluation
        est = per_step * (args.dags * (args.steps + 1)) / args.processes
        print(f"without cache: {per_step:7.2f} s per step, measured on {args.nocache_steps} steps of one run "
              f"({nc.misses} fits); ESTIMATED {est:.0f} s for {args.dags} x {args.steps} steps on "
              f"{args.processes} processes (linear extrapolation)")
        print(f"speed-up from the cache: {est / cached_s:.1f}x (estimated)")


if __name__ == "__main__":
    main()
