"""Time one MCTS planning decision at the appendix C.4 settings (target: under 2 s on 2 cores).

The world model is the simulator's deterministic step composed with a fitted coffee-shop
Bayesian network: a saved one (notebook 04, ``data/<profile>/coffee_shop/bn/<graph>/seed<k>``)
when present, else one fitted here on freshly collected heuristic-agent data.  The graph of a
freshly fitted network is a chain over the variables in spec order (a timing stand-in: it has
the same number of nodes and inputs as any learned graph).

Prints the time per decision (median and spread over several start states), the transitions
the search sampled per second, and the raw sampling rate of ``WorldModel.sample_next`` at a few
batch sizes.  ``--profile`` adds a cProfile listing of one decision.

Usage: python benchmarks/bench_planning.py [--decisions 8] [--threads 2] [--bn DIR] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time

import numpy as np
import torch

from cassandra_wm import data, paths
from cassandra_wm.envs import make_env
from cassandra_wm.planning import MCTSAgent, MCTSConfig, make_proposer
from cassandra_wm.structure.bn import BayesNet
from cassandra_wm.world_model import SimulatorDeterministic, WorldModel


def find_saved(profile: str, graph: str, bn_seed: int):
    d = paths.data_dir("coffee_shop", profile, create=False) / "bn" / graph / f"seed{bn_seed}"
    return d if (d / "bn.json").exists() else None


def fit_fresh(env, n_traj: int, seed: int) -> BayesNet:
    recs = data.collect(env, "heuristic", n_traj, 50, seed=seed, progress=False, invalid_rate=0.1)
    cut = int(0.85 * len(recs))
    nodes = [v.name for v in env.spec.stochastic]
    chain = {v: ([nodes[i - 1]] if i else []) for i, v in enumerate(nodes)}
    bn = BayesNet(env.spec, chain, seed=seed)
    bn.fit(recs[:cut], recs[cut:])
    return bn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decisions", type=int, default=8, help="planning decisions to time")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: each call is a tiny batch, so more threads only add "
                         "synchronisation; the target is for a 2-core machine)")
    ap.add_argument("--iterations", type=int, default=90)
    ap.add_argument("--rollouts", type=int, default=4)
    ap.add_argument("--n-proposals", type=int, default=100)
    ap.add_argument("--horizon", type=int, default=3)
    ap.add_argument("--bn", default=None, help="directory of a saved BayesNet (default: look under data/)")
    ap.add_argument("--profile-name", default="quick", help="profile whose saved networks to look for")
    ap.add_argument("--graph", default="CASSANDRA")
    ap.add_argument("--bn-seed", type=int, default=0)
    ap.add_argument("--fit-trajectories", type=int, default=40)
    ap.add_argument("--profile", action="store_true", help="print a cProfile listing of one decision")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    env = make_env("coffee_shop")
    src = args.bn or find_saved(args.profile_name, args.graph, args.bn_seed)
    t0 = time.perf_counter()
    if src:
        bn = BayesNet.load(src)
        how = f"loaded from {src}"
    else:
        bn = fit_fresh(env, args.fit_trajectories, args.bn_seed)
        how = f"fitted here on {args.fit_trajectories} heuristic trajectories (no saved network found)"
    print(f"Bayesian network: {bn!r}, {how} ({time.perf_counter() - t0:.1f} s)")

    det = SimulatorDeterministic(env)
    model = WorldModel(env.spec, det, bn)
    proposer = make_proposer(env.spec, det)
    cfg = MCTSConfig(iterations=args.iterations, rollouts=args.rollouts, n_proposals=args.n_proposals,
                     horizon=args.horizon)
    agent = MCTSAgent(model, proposer, cfg, seed=0)

    # start states: days along a heuristic-agent episode
    from cassandra_wm.envs.coffee_shop.agents import HeuristicAgent
    heur, rng = HeuristicAgent(env.spec), np.random.default_rng(1)
    s = env.reset(12345)
    starts = []
    for day in range(40):
        if day % max(1, 40 // args.decisions) == 0:
            starts.append(s)
        s, _, info = env.step(heur.act(s, rng))
        if info["done"]:
            break
    starts = starts[:args.decisions]

    agent.act(starts[0])  # warm-up
    times, rows = [], 0
    for st in starts:
        t = time.perf_counter()
        agent.act(st)
        times.append(time.perf_counter() - t)
        rows += agent.last.transitions
    total = sum(times)
    print(f"\nMCTS decision at iterations={cfg.iterations}, rollouts={cfg.rollouts}, "
          f"proposals={cfg.n_proposals}, horizon={cfg.horizon}, torch threads={args.threads}:")
    print(f"  {len(times)} decisions: median {statistics.median(times):.3f} s, "
          f"min {min(times):.3f} s, max {max(times):.3f} s  (target < 2 s)")
    print(f"  sampled transitions in search: {rows / total:,.0f} per second "
          f"({rows // len(times)} per decision, {agent.last.model_steps} model calls per decision)")
    print(f"  root candidates per decision: {len(agent.last.candidates)}")

    print("\nWorldModel.sample_next throughput:")
    act = {"name": "wait", "args": {}}
    for batch in (4, 64, 1024):
        reps = max(3, 2048 // batch)
        st = [starts[0]] * batch
        t = time.perf_counter()
        for _ in range(reps):
            model.sample_next(st, [act] * batch, 1, rng)
        dt = time.perf_counter() - t
        print(f"  batch {batch:5d}: {dt / reps * 1e3:7.2f} ms per call, {batch * reps / dt:10,.0f} transitions/s")
    print(f"\nmodel counters: {model.counters_dict()}")

    if args.profile:
        pr = cProfile.Profile()
        pr.enable()
        agent.act(starts[-1])
        pr.disable()
        pstats.Stats(pr).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
