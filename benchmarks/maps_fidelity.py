"""Side-by-side fidelity: the Python theme park (game parameters) against the real Mini Amusement Parks.

    MAPS_GAME_DIR=/path/to/MAPs .venv/bin/python benchmarks/maps_fidelity.py [--seeds 5] [--days 50]
        [--policies lone_ride,ride_and_janitor,growing_park,large_park] [--layout diagonal_squares]
        [--validity] [--out runs/maps_fidelity.json]

For each scripted policy (``cassandra_wm.envs.maps.fidelity.POLICIES``) it plays ``--seeds`` episodes
in the real game and in the port, and prints per metric the share of days whose means agree
(within 25% of the real game's mean, or within two standard errors of the difference), plus the
means over all days.  ``--validity`` also compares a varied set of action texts (validity and
reason).  Needs the real game installed (see the README); writes the per-day numbers as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from cassandra_wm.envs.maps import fidelity as F  # noqa: E402
from cassandra_wm.envs.maps.env import MapsEnv  # noqa: E402
from cassandra_wm.envs.theme_park import ThemeParkEnv  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--days", type=int, default=50)
    ap.add_argument("--policies", default=",".join(F.POLICIES))
    ap.add_argument("--layout", default="diagonal_squares")
    ap.add_argument("--game-dir", default=None)
    ap.add_argument("--validity", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "runs" / "maps_fidelity.json"))
    args = ap.parse_args()
    results: dict = {"layout": args.layout, "seeds": args.seeds, "days": args.days, "policies": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.policies.split(","):
        policy, kw = F.POLICIES[name]
        real = MapsEnv(layout=args.layout, game_dir=args.game_dir, horizon=args.days, **kw)
        ours = ThemeParkEnv(layout=args.layout, parameters="game", horizon=args.days, **kw)
        runs = {"real": [], "ours": [], "seconds": {"real": 0.0, "ours": 0.0}}
        try:
            for seed in range(args.seeds):
                for key, env in (("real", real), ("ours", ours)):
                    t = time.perf_counter()
                    runs[key].append(F.play(env, policy, seed, args.days))
                    runs["seconds"][key] += time.perf_counter() - t
                print(f"{name}: seed {seed} done", file=sys.stderr, flush=True)
        finally:
            real.close()
        agree = F.agreement(runs["real"], runs["ours"])
        results["policies"][name] = {"agreement": agree, "seconds": runs["seconds"]}
        print(f"\n{name}  (real {runs['seconds']['real']:.0f} s, ours {runs['seconds']['ours']:.0f} s)")
        print(f"  {'metric':<16} {'days agreeing':>13} {'real mean':>10} {'ours mean':>10}")
        for m, r in agree.items():
            print(f"  {m:<16} {r['share']:>12.0%} {r['real_mean']:>10.2f} {r['ours_mean']:>10.2f}")
        out.write_text(json.dumps(results))
    shares = [r["share"] for p in results["policies"].values() for r in p["agreement"].values()]
    if shares:
        print(f"\nall policies and metrics: {sum(s >= 0.8 for s in shares)}/{len(shares)} reach 80% of days; "
              f"mean share {sum(shares) / len(shares):.0%}")
    if args.validity:
        real = MapsEnv(layout=args.layout, game_dir=args.game_dir, horizon=10)
        ours = ThemeParkEnv(layout=args.layout, parameters="game", horizon=10)
        try:
            rows = F.compare_validity(real, ours)
        finally:
            real.close()
        same = sum(r["same"] for r in rows)
        text = sum(r["same_text"] for r in rows)
        print(f"\naction validity: same validity and reason on {same}/{len(rows)} ({same / len(rows):.0%}); "
              f"same message text on {text}/{len(rows)}")
        for r in rows:
            if not r["same"]:
                print(f"  differs: {r['action']}\n    game: {r['real_valid']} {r['real_message']}\n"
                      f"    ours: {r['ours_valid']} {r['ours_message']}")
        results["validity"] = rows
    out.write_text(json.dumps(results))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
