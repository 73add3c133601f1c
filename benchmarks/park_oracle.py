"""Does the park's planner use a perfect model well?  MCTS on the real simulator against the heuristic agent.

Issue 12's reference check for table 2: on paired held-out episodes (episode k on held-out layout k mod 3),
MCTS with the simulator as its model should survive at least as often as the heuristic agent and end with
more money.  Uses the park kit's planning defaults with the full profile's budget (24 iterations x 2
rollouts, 8 proposals) unless told otherwise.

Usage: python benchmarks/park_oracle.py [--runs 6] [--days 50] [--iterations 24] [--workers 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=6, help="paired episodes (a multiple of 3 covers the layouts evenly)")
    ap.add_argument("--days", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=24)
    ap.add_argument("--rollouts", type=int, default=2)
    ap.add_argument("--proposals", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from cassandra_wm.planning import MCTSConfig, make_executor, play_agents, standard_roster, stats
    from cassandra_wm.planning.episodes import layout_seeds

    cfg = MCTSConfig.for_env("theme_park", iterations=args.iterations, rollouts=args.rollouts,
                             n_proposals=args.proposals)
    roster = [s for s in standard_roster("theme_park", [], [0], mcts=asdict(cfg), include_mpc=False, include_c4=False)
              if s.label in ("MCTS+oracle", "heuristic")]
    seeds = layout_seeds(args.runs, args.seed)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        recs = play_agents("theme_park", roster, seeds, args.days, executor=make_executor("local", workers=args.workers),
                           results_path=Path(tmp) / "results.jsonl", env_kwargs={"split": "test"}, progress=True)
    table = stats.survival_table(recs)
    print(stats.survival_text(table).to_string())
    cols = ["agent", "final_money_mean", "vs_heuristic", "vs_heuristic_low", "vs_heuristic_high", "bankruptcies"]
    print(table[cols].round(0).to_string(index=False))
    money = {(r["agent"], r["seed"]): r["final_money"] for r in recs}
    wins = sum(money[("MCTS+oracle", s)] > money[("heuristic", s)] for s in seeds)
    print(f"oracle ahead of the heuristic agent on {wins} of {len(seeds)} paired episodes; "
          f"{args.runs} runs x {args.days} days in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
