"""Does survival mean something?  Survival and money of simple agents in the theme park, paper parameters.

    .venv/bin/python benchmarks/theme_park_survival.py [--episodes 6] [--days 50] [--parameters paper]
        [--agents wait,heedless,random,heuristic] [--split test]

Plays each agent on the held-out layouts (episode k on layout k mod 3) and prints, per agent, the share of
runs still solvent after 10, 20, 30, 40 and 50 days, the final money (mean, min, max) and the day of
bankruptcy.  With the paper's parameters a park that only waits keeps its $500 and one that builds dear
shops heedlessly goes broke; the heuristic agent is the data-collection agent of notebook 01.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from cassandra_wm.envs.registry import make_agent, make_env  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=6)
    ap.add_argument("--days", type=int, default=50)
    ap.add_argument("--parameters", default="paper")
    ap.add_argument("--agents", default="wait,heedless,random,heuristic")
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    print(f"parameters={args.parameters}, {args.episodes} episodes x {args.days} days on the {args.split} layouts")
    print("agent | solvent after 10/20/30/40/50 days | final money mean [min, max] | bankrupt on day | s/episode")
    for kind in args.agents.split(","):
        finals, alive, broke, secs = [], np.zeros(5), [], []
        for ep in range(args.episodes):
            env = make_env("theme_park", split=args.split, parameters=args.parameters, horizon=args.days)
            agent = make_agent(env, kind, seed=ep)
            s = env.reset(ep)
            rng = np.random.default_rng(1000 + ep)
            t = time.perf_counter()
            day_broke = None
            for d in range(args.days):
                s, _, _ = env.step(agent.act(s, rng))
                if s.get("bankrupt") and day_broke is None:
                    day_broke = s["step"]
                if env.is_done(s):
                    break
            secs.append(time.perf_counter() - t)
            finals.append(s["money"])
            for j, cut in enumerate((10, 20, 30, 40, 50)):
                alive[j] += day_broke is None or day_broke > cut
            if day_broke is not None:
                broke.append(day_broke)
        share = " / ".join(f"{a / args.episodes:.0%}" for a in alive)
        print(f"{kind} | {share} | {statistics.mean(finals):,.0f} [{min(finals):,}, {max(finals):,}] | "
              f"{sorted(broke) or '-'} | {statistics.mean(secs):.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
