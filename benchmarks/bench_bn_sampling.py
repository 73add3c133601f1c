"""Speed of the Bayesian network: one node fit, and batched one-step sampling.

Collects coffee-shop transitions with the heuristic agent (100 x 50 days by
default), fits a 6-node network on a chain graph over the stochastic variables
(the graph only changes which parent columns each node reads; speed hardly
depends on it), then times 1,024 one-step samples

* through the fast path ``sample_array`` (exogenous block encoded once), and
* through the dict path ``sample`` (encoding 1,024 state/action dicts each call).

Target: the fast
path under 20 ms per call.  Run:  .venv/bin/python benchmarks/bench_bn_sampling.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from cassandra_wm import data
from cassandra_wm.envs import make_env
from cassandra_wm.structure import bn_variables
from cassandra_wm.structure.bn import BayesNet
from cassandra_wm.structure.score import DataScorer


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trajectories", type=int, default=100)
    ap.add_argument("--horizon", type=int, default=50)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    env = make_env("coffee_shop", horizon=args.horizon)
    recs = data.collect(env, "heuristic", args.trajectories, args.horizon, seed=0, progress=False, invalid_rate=0.1)
    split = data.split_trajectories([r["traj_id"] for r in recs], seed=0)
    train = [r for r in recs if r["traj_id"] in set(split["train"])]
    val = [r for r in recs if r["traj_id"] in set(split["val"])]
    nodes = bn_variables(env.spec)
    chain = {v: ([nodes[i - 1]] if i else []) for i, v in enumerate(nodes)}

    # warm up torch once, then time one scorer fit per node
    DataScorer(env.spec, train[:200], val, fit_kwargs={"max_epochs": 1}).node_term(nodes[0], [])
    scorer = DataScorer(env.spec, train, val)
    fit_ms, fit_cpu_ms = {}, {}
    for v in nodes:
        t0, c0 = time.perf_counter(), time.process_time()
        scorer.node_term(v, chain[v])
        fit_ms[v] = (time.perf_counter() - t0) * 1e3
        fit_cpu_ms[v] = (time.process_time() - c0) * 1e3
    bn = BayesNet(env.spec, chain)
    bn.fit_from_scorer(scorer)

    rows = [val[i % len(val)] for i in range(args.batch)]
    prev = [r["state"] for r in rows]
    acts = [r["action"] for r in rows]
    nxt = [r["next_state"] for r in rows]
    x = bn.encoder.encode_exogenous(prev, acts, nxt)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        bn.sample_array(x, gen)
    fast = timed(lambda: bn.sample_array(x, gen), args.repeats)
    slow = timed(lambda: bn.sample(prev, acts, nxt, rng=gen), max(5, args.repeats // 5))
    enc = timed(lambda: bn.encoder.encode_exogenous(prev, acts, nxt), max(5, args.repeats // 5))

    print(f"coffee shop: {len(train)} train / {len(val)} val transitions, {len(nodes)} nodes, "
          f"{args.threads} torch thread(s); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(wall times stretch when the machine is shared)")
    print("node fit wall (ms): " + ", ".join(f"{v} {ms:.0f}" for v, ms in fit_ms.items())
          + f"  | mean {statistics.mean(fit_ms.values()):.0f} ms, CPU mean "
          f"{statistics.mean(fit_cpu_ms.values()):.0f} ms, epochs " + str([bn.models[v].info['epochs'] for v in nodes]))
    print(f"sample {args.batch} rows, fast path (sample_array): median {statistics.median(fast):.2f} ms "
          f"(min {min(fast):.2f}) per call  [target < 20 ms]")
    print(f"sample {args.batch} rows, dict path (sample):       median {statistics.median(slow):.2f} ms "
          f"(of which encoding {statistics.median(enc):.2f} ms)")
    print(f"clipped values in the last call: {bn.last_clip_counts}")


if __name__ == "__main__":
    main()
