"""Seconds per predicted transition: CASSANDRA's world model against WALL-E-MAPs, side by side, same LLM.

Target (issue 14): CASSANDRA's world model at least 10x faster per transition than WALL-E-MAPs with
the same LLM (the paper: 10.67 s against 222.3 s).  Both are timed here, in one run, on the same
test transitions of the quick coffee-shop data:

* CASSANDRA: the code model of notebook 02 in the sandbox plus the Bayesian network of notebook 04,
  ``--samples`` samples per transition (as notebook 06 scores it);
* WALL-E-MAPs: its rules (none: the rule check still runs through the sandbox) and one live LLM call
  per transition with the 5 retrieved examples, the record/replay cache switched off so every call
  is really made.

    .venv/bin/python benchmarks/bench_baselines.py [--llm local] [--transitions 3] [--samples 100]

    .venv/bin/python benchmarks/bench_baselines.py --env theme_park --transitions 2

Needs the profile's artifacts of notebooks 01, 02 and 04 for that environment (``python run_all.py --only 04``).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llm", default="local")
    ap.add_argument("--env", default="coffee_shop")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--transitions", type=int, default=3)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=512, help="reply budget of a state prediction (the park's "
                    "31 variables need about 330 tokens; a shorter budget cuts replies off)")
    a = ap.parse_args()

    import json

    from cassandra_wm import data, paths
    from cassandra_wm.baselines.agents import training_index
    from cassandra_wm.baselines.evaluate import world_model_predictions
    from cassandra_wm.baselines.walle import RuleSet, StatePredictor, WallEModel
    from cassandra_wm.codewm.errors import Transition
    from cassandra_wm.codewm.evaluate import SandboxedCodeModel
    from cassandra_wm.codewm.model import CodeModel
    from cassandra_wm.codewm.sandbox import Sandbox
    from cassandra_wm.envs import make_env
    from cassandra_wm.llm import get_chat
    from cassandra_wm.planning.roster import load_networks
    from cassandra_wm.world_model import CodeModelDeterministic, WorldModel

    env = make_env(a.env)
    spec = env.spec
    ds = data.dataset_path(a.env, a.profile)
    train = [Transition.from_record(r) for r in data.load_records(ds, split="train")]
    test = [Transition.from_record(r) for r in data.load_records(ds, split="test")][: a.transitions]
    final = json.loads((paths.data_dir(a.env, a.profile) / "codewm" / "final.json").read_text())
    phi = CodeModel.load(paths.OUT / final.get("data", final)["path"])
    net = load_networks(a.env, a.profile, graphs=["CASSANDRA"], fit_seeds=[0], spec=spec)[("CASSANDRA", 0)]
    sandbox = Sandbox(spec).start()

    wm = WorldModel(spec, CodeModelDeterministic(SandboxedCodeModel(phi, sandbox), spec), net, env=env)
    world_model_predictions(wm, test[:1], n_samples=a.samples)  # warm-up
    t0 = time.perf_counter()
    world_model_predictions(wm, test, n_samples=a.samples, rng=np.random.default_rng(0), batch=1)
    cass = (time.perf_counter() - t0) / len(test)

    chat = get_chat(a.llm, stage="bench_baselines", cache="off")
    index = training_index(train)  # the retrieval index notebook 06 and its planning agents use
    walle = WallEModel(spec, StatePredictor(chat, spec, train, k=5, index=index, max_tokens=a.max_tokens),
                       RuleSet(spec, sandbox), env=env)
    # warm-up on a training transition (a test one would leave its prompt in the server's prefix cache)
    walle.predict(train[0].state, train[0].action)  # starts the local server, loads the embedder
    t0 = time.perf_counter()
    preds = [walle.predict(t.state, t.action) for t in test]
    wall = (time.perf_counter() - t0) / len(test)
    sandbox.close()
    print(f"LLM: {chat.model}; {len(test)} transitions of {a.env} ({a.profile})")
    print(f"CASSANDRA (phi + Bayesian network, {a.samples} samples): {cass:.4f} s per transition")
    print(f"WALL-E-MAPs (rules + one LLM call):            {wall:.2f} s per transition "
          f"(replies: {[p.status for p in preds]})")
    print(f"ratio WALL-E-MAPs / CASSANDRA: {wall / cass:.0f}x (target >= 10x; the paper: 222.3 / 10.67 = 21x)")


if __name__ == "__main__":
    main()
