"""Time one planning decision at the full profile's settings with a fitted network (target: at most 2 s on one core).

The world model is the simulator's deterministic step composed with a fitted coffee-shop Bayesian
network, kept inside its training data by the support guard, exactly as notebook 05 plans with it: a
saved network (notebook 04, ``data/<profile>/coffee_shop/bn/<graph>/seed<k>``) with the support of
that profile's training split when present, else one fitted here on freshly collected heuristic-agent
data (a chain over the variables in spec order: a timing stand-in with the same nodes and inputs).

The planner settings are the coffee-shop kit's defaults with the full profile's budget: 90 iterations x 4
rollouts, 100 proposals, tree depth 3, a 10-day look-ahead with the steady manager as rollout policy,
10 simulations per batch; and the MPC agent of appendix A.1 at the full profile's settings.

Prints, per decision, the wall time and the CPU time of this process (median over several start
states along a heuristic episode).  On a shared machine the CPU time is the figure that says what one
core needs (torch runs on one thread); the wall time also counts waiting for other processes.
``--profile`` adds a cProfile listing of one decision.

With ``--env theme_park``: one MCTS decision of stage 05_planning_theme_park (target: at most 3 s on one
core) at that stage's budget (24 iterations x 2 rollouts, 8 proposals, the park kit's tree depth 2 and 6-day
look-ahead with the heuristic manager), planning with a saved park network of notebook 04 plus the independent
conditionals of the other fields (saved by the stage under ``data/<profile>/theme_park/fields/seed<k>``, else
fitted here), guarded, on states along a heuristic episode on a held-out layout.

Usage: python benchmarks/bench_planning.py [--decisions 8] [--profile-name full] [--bn DIR] [--profile]
       python benchmarks/bench_planning.py --env theme_park [--profile-name quick] [--iterations 24]
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import time
from dataclasses import asdict

import numpy as np
import torch

from cassandra_wm import data, paths
from cassandra_wm.envs import make_env
from cassandra_wm.planning import AgentSpec, DataSupport, MCTSConfig, MPCConfig, build_agent
from cassandra_wm.structure.bn import BayesNet


def find_saved(profile: str, graph: str, fit_seed: int):
    d = paths.data_dir("coffee_shop", profile, create=False) / "bn" / graph / f"seed{fit_seed}"
    return d if (d / "bn.json").exists() else None


def fit_fresh(env, n_traj: int, seed: int):
    recs = data.collect(env, "heuristic", n_traj, 50, seed=seed, progress=False, invalid_rate=0.1)
    cut = int(0.85 * len(recs))
    nodes = [v.name for v in env.spec.stochastic]
    chain = {v: ([nodes[i - 1]] if i else []) for i, v in enumerate(nodes)}
    bn = BayesNet(env.spec, chain, seed=seed)
    bn.fit(recs[:cut], recs[cut:])
    return bn, recs[:cut]


def time_decisions(agent, starts):
    agent.act(starts[0])  # warm-up
    wall, cpu = [], []
    for st in starts:
        t, c = time.perf_counter(), time.process_time()
        agent.act(st)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decisions", type=int, default=8, help="planning decisions to time")
    ap.add_argument("--env", default="coffee_shop", choices=["coffee_shop", "theme_park"])
    ap.add_argument("--iterations", type=int, default=None, help="default: 90 (coffee shop), 24 (theme park)")
    ap.add_argument("--n-proposals", type=int, default=None, help="default: 100 (coffee shop), 8 (theme park)")
    ap.add_argument("--bn", default=None, help="directory of a saved BayesNet (default: look under data/)")
    ap.add_argument("--profile-name", default="full", help="profile whose saved network and data to use")
    ap.add_argument("--graph", default="CASSANDRA")
    ap.add_argument("--fit-seed", type=int, default=0)
    ap.add_argument("--fit-trajectories", type=int, default=40)
    ap.add_argument("--profile", action="store_true", help="print a cProfile listing of one MCTS decision")
    args = ap.parse_args()

    torch.set_num_threads(1)
    if args.env == "theme_park":
        return main_park(args)
    args.iterations = args.iterations or 90
    args.n_proposals = args.n_proposals or 100
    env = make_env("coffee_shop")
    src = args.bn or find_saved(args.profile_name, args.graph, args.fit_seed)
    t0 = time.perf_counter()
    if src:
        bn = BayesNet.load(src)
        train = data.load_records(data.dataset_path("coffee_shop", args.profile_name), split="train")
        how = f"loaded from {src}; support of the {args.profile_name} training split ({len(train)} transitions)"
    else:
        bn, train = fit_fresh(env, args.fit_trajectories, args.fit_seed)
        how = f"fitted here on {args.fit_trajectories} heuristic trajectories (no saved network found)"
    support = DataSupport.from_transitions(env.spec, train)
    print(f"Bayesian network: {bn!r}, {how} ({time.perf_counter() - t0:.1f} s)")

    mcts = MCTSConfig.for_env("coffee_shop", iterations=args.iterations, n_proposals=args.n_proposals,
                              support_penalty=1.0)
    mpc = MPCConfig.for_env("coffee_shop", n_proposals=args.n_proposals, support_penalty=1.0)
    agents = {"MCTS": build_agent(AgentSpec("MCTS", "mcts", args.graph, args.fit_seed, asdict(mcts), guard="on"),
                                  env, bn, support, seed=0),
              "MPC": build_agent(AgentSpec("MPC", "mpc", args.graph, args.fit_seed, asdict(mpc), guard="on"),
                                 env, bn, support, seed=0)}

    # start states: days along a heuristic-agent episode
    from cassandra_wm.agents import make_agent
    heur, rng = make_agent(env, "steady"), np.random.default_rng(1)
    s = env.reset(12345)
    starts = []
    for day in range(45):
        if day % max(1, 45 // args.decisions) == 0:
            starts.append(s)
        s, _, info = env.step(heur.act(s, rng))
        if info["done"]:
            break
    starts = starts[:args.decisions]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the start; torch threads 1\n")
    for name, agent in agents.items():
        wall, cpu = time_decisions(agent, starts)
        cfg = mcts if name == "MCTS" else mpc
        print(f"{name} decision ({cfg}):")
        print(f"  {len(wall)} decisions: CPU time median {statistics.median(cpu):.3f} s (min {min(cpu):.3f}, "
              f"max {max(cpu):.3f})  <- one core; target <= 2 s")
        print(f"  wall time median {statistics.median(wall):.3f} s (min {min(wall):.3f}, max {max(wall):.3f})")
        if name == "MCTS":
            last = agent.last
            print(f"  {last.model_steps} model calls, {last.transitions} sampled transitions per decision, "
                  f"{len(last.candidates)} root candidates")
        c = agent.model.counters_dict()
        share = c.get("out_of_support_rows", 0) / max(c.get("network_rows", 1), 1)
        print(f"  out-of-support share of sampled rows: {share:.2%}\n")

    if args.profile:
        pr = cProfile.Profile()
        pr.enable()
        agents["MCTS"].act(starts[-1])
        pr.disable()
        pstats.Stats(pr).sort_stats("cumulative").print_stats(25)


def main_park(args) -> None:
    from cassandra_wm.planning import load_networks
    from cassandra_wm.structure.independent import IndependentFields, WithIndependentFields
    env = make_env("theme_park", split="test")
    prof = args.profile_name
    t0 = time.perf_counter()
    net = BayesNet.load(args.bn) if args.bn else load_networks("theme_park", prof, [args.graph], [args.fit_seed])[
        (args.graph, args.fit_seed)]  # a clear error names the stage to run when it is missing
    ds = data.dataset_path("theme_park", prof)
    train, val = data.load_records(ds, split="train"), data.load_records(ds, split="val")
    fdir = paths.data_dir("theme_park", prof, create=False) / "fields" / f"seed{args.fit_seed}"
    if (fdir / "fields.json").exists():
        fields, how = IndependentFields.load(fdir, env.spec), f"loaded from {fdir}"
    else:
        exclude = list(net.nodes) + [v for v in ("bankrupt",) if v in env.spec.variable_names()]
        fields, how = IndependentFields.fit(env.spec, train, val, exclude=exclude, seed=args.fit_seed), "fitted here"
    model = WithIndependentFields(net, fields)
    support = DataSupport.from_transitions(env.spec, train)
    print(f"network {net!r} ({prof} profile), {fields!r} {how} ({time.perf_counter() - t0:.1f} s)")
    cfg = MCTSConfig.for_env("theme_park", iterations=args.iterations or 24, rollouts=2,
                             n_proposals=args.n_proposals or 8, support_penalty=1.0)
    agent = build_agent(AgentSpec("MCTS", "mcts", args.graph, args.fit_seed, asdict(cfg), guard="on"), env, model,
                        support, seed=0)
    from cassandra_wm.envs.registry import make_agent
    from cassandra_wm.planning import layout_seeds
    heur, rng = make_agent(env, "heuristic", seed=0), np.random.default_rng(1)
    s = env.reset(layout_seeds(1)[0])
    starts = []
    for day in range(48):
        if day % max(1, 48 // args.decisions) == 0:
            starts.append(s)
        s, _, info = env.step(heur.act(s, rng))
        if info.get("done"):
            break
    starts = starts[:args.decisions]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the start; torch threads 1\n")
    wall, cpu = time_decisions(agent, starts)
    print(f"MCTS decision, theme park ({cfg}):")
    print(f"  {len(wall)} decisions on days {[st['step'] for st in starts]}: CPU time median "
          f"{statistics.median(cpu):.3f} s (min {min(cpu):.3f}, max {max(cpu):.3f})  <- one core; target <= 3 s")
    print(f"  wall time median {statistics.median(wall):.3f} s (min {min(wall):.3f}, max {max(wall):.3f})")
    last = agent.last
    print(f"  {last.model_steps} model calls, {last.transitions} sampled transitions per decision, "
          f"{len(last.candidates)} root candidates")
    c = agent.model.counters_dict()
    print(f"  out-of-support share of sampled rows: {c.get('out_of_support_rows', 0) / max(c.get('network_rows', 1), 1):.2%}")
    if args.profile:
        pr = cProfile.Profile()
        pr.enable()
        agent.act(starts[-1])
        pr.disable()
        pstats.Stats(pr).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
