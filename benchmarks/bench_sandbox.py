"""Transitions predicted per second by a code model phi running in the sandbox (target: > 1,000/s).

The phi used here is HAND-WRITTEN for the coffee shop (from its manual), standing in for a refined
one: the point is the speed of the sandbox, not the quality of the code.  Its accuracy against the
simulator is printed as a sanity check.  Transitions come from the coffee-shop simulator with its
heuristic agent (10% deliberately invalid actions), generated in memory.

    .venv/bin/python benchmarks/bench_sandbox.py [--transitions 2000] [--repeats 3]

Prints the sandbox start-up time and whether the operating-system boundary is in place,
transitions per second for several batch sizes (one request to the worker per batch), the same
when every batch comes from a NEW candidate model (each candidate gets a freshly forked worker,
as in refinement), and the paper's reference point (table 4: about 10 s per transition for
CASSANDRA with its LLM-written code and Bayesian network together).
"""
from __future__ import annotations

import argparse
import statistics
import time

from cassandra_wm import data
from cassandra_wm.codewm.errors import Transition, error_type
from cassandra_wm.codewm.model import CodeModel, make_function
from cassandra_wm.codewm.sandbox import Sandbox
from cassandra_wm.envs import make_env

HAND_WRITTEN = [
    ("action", "set_price", '''def set_price(state, action):
    return [{"op": "replace", "path": "/price", "value": float(action["args"]["price"])}]
'''),
    ("precondition", "set_price", '''def price_in_range(state, action):
    p = action["args"].get("price")
    ok = isinstance(p, (int, float)) and not isinstance(p, bool) and 1.0 <= p <= 10.0
    return ok, "price must be a number between 1 and 10"
'''),
    ("precondition", "set_price", '''def small_step(state, action):
    p = action["args"].get("price")
    if not isinstance(p, (int, float)) or isinstance(p, bool):
        return True, "checked elsewhere"
    return abs(p - state["price"]) <= 2.0 + 1e-9, "the price may move at most 2.00 per day"
'''),
    ("action", "upgrade", '''def upgrade(state, action):
    return [{"op": "replace", "path": "/upgrade_level", "value": state["upgrade_level"] + 1}]
'''),
    ("precondition", "upgrade", '''def below_top(state, action):
    return state["upgrade_level"] < 5, "already at the top level"
'''),
    ("precondition", "upgrade", '''def can_pay_upgrade(state, action):
    return state["money"] >= 400 * (state["upgrade_level"] + 1), "not enough cash"
'''),
    ("precondition", "upgrade", '''def no_args(state, action):
    return not action["args"], "upgrade takes no arguments"
'''),
    ("precondition", "buy_beans", '''def beans_units(state, action):
    u = action["args"].get("units")
    ok = isinstance(u, int) and not isinstance(u, bool) and 1 <= u <= 100 and set(action["args"]) == {"units"}
    return ok, "units must be an integer from 1 to 100"
'''),
    ("precondition", "buy_beans", '''def beans_affordable(state, action):
    u = action["args"].get("units")
    if not isinstance(u, int):
        return True, "checked elsewhere"
    return state["money"] >= 5.0 * u and state["coffee_beans"] + u <= 200, "cash or storage short"
'''),
    ("precondition", "buy_milk", '''def milk_units(state, action):
    u = action["args"].get("units")
    ok = isinstance(u, int) and not isinstance(u, bool) and 1 <= u <= 100 and set(action["args"]) == {"units"}
    return ok, "units must be an integer from 1 to 100"
'''),
    ("precondition", "buy_milk", '''def milk_affordable(state, action):
    u = action["args"].get("units")
    if not isinstance(u, int):
        return True, "checked elsewhere"
    return state["money"] >= 1.2 * u and state["milk"] + u <= 150, "cash or storage short"
'''),
    ("precondition", "clean", '''def can_clean(state, action):
    return state["money"] >= 30 and state["cleanliness"] < 95 and not action["args"], "cannot clean now"
'''),
    ("precondition", "wait", '''def wait_no_args(state, action):
    return not action["args"], "wait takes no arguments"
'''),
    ("dynamic", None, '''def nothing_changes_by_itself(state):
    return []
'''),
]


def hand_written_phi() -> CodeModel:
    m = CodeModel(env_name="coffee_shop", llm="none (hand-written for the benchmark)")
    for kind, action, src in HAND_WRITTEN:
        m = m.with_function(make_function(kind, action, src, m, origin="hand"))
    return m


def variant(phi: CodeModel, i: int) -> CodeModel:
    """The same model with a comment added to its dynamic function: a new candidate to the sandbox."""
    fid = next(f.fid for f in phi.functions.values() if f.kind == "dynamic")
    src = phi.functions[fid].source + f"# candidate {i}\n"
    return phi.with_function(make_function("dynamic", None, src, origin="hand", fid=fid))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--transitions", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.transitions < 1 or args.repeats < 1:
        ap.error("--transitions and --repeats must be positive")

    horizon = 50
    n_traj = max(1, -(-args.transitions // horizon))
    recs = data.collect("coffee_shop", "heuristic", n_traj, horizon, seed=0, progress=False, invalid_rate=0.1)
    trs = [Transition.from_record(r) for r in recs][:args.transitions]
    spec = make_env("coffee_shop").spec
    phi = hand_written_phi()
    items = [(t.state, t.action) for t in trs]

    t0 = time.perf_counter()
    sb = Sandbox(spec)
    sb.start()
    print(f"sandbox start-up (zygote and first worker): {time.perf_counter() - t0:.3f} s; "
          f"boundary: {sb.isolation}")
    try:
        res = sb.evaluate(phi, items)
        wrong = sum(error_type(spec, r, t) is not None for r, t in zip(res, trs))
        print(f"{len(trs)} transitions ({sum(not t.valid for t in trs)} invalid); hand-written phi gets "
              f"{len(trs) - wrong} right ({wrong} wrong) -- a sanity check, not a result")
        print(f"{'batch size':>10} {'transitions/s':>14} {'ms/request':>11}")
        for bs in (1, 10, 100, 1000, len(items)):
            if bs > len(items):
                continue
            rates, per_req = [], []
            for _ in range(args.repeats):
                n = min(len(items), max(bs, 200 if bs == 1 else bs))  # batch size 1: 200 requests
                t0 = time.perf_counter()
                done = 0
                while done < n:
                    sb.evaluate(phi, items[done:done + bs])
                    done += bs
                dt = time.perf_counter() - t0
                rates.append(done / dt)
                per_req.append(1000 * dt / (done / bs))
            print(f"{bs:>10} {statistics.median(rates):>14,.0f} {statistics.median(per_req):>11.2f}")
        print("every request from a new candidate (a freshly forked worker each):")
        print(f"{'batch size':>10} {'transitions/s':>14} {'ms/request':>11}")
        k = 0
        for bs in (10, 100, 1000):
            if bs > len(items):
                continue
            rates, per_req = [], []
            for _ in range(args.repeats):
                n = min(len(items), max(bs, 200))
                t0 = time.perf_counter()
                done = 0
                while done < n:
                    k += 1
                    sb.evaluate(variant(phi, k), items[done:done + bs])
                    done += bs
                dt = time.perf_counter() - t0
                rates.append(done / dt)
                per_req.append(1000 * dt / (done / bs))
            print(f"{bs:>10} {statistics.median(rates):>14,.0f} {statistics.median(per_req):>11.2f}")
        print(f"workers forked: {sb.stats()['forks']}")
        print(f"target: > 1,000 transitions/s; the paper's table 4 reports ~10 s per transition for CASSANDRA "
              f"(LLM-written code plus Bayesian network) on a 16-core machine")
    finally:
        sb.close()


if __name__ == "__main__":
    main()
