"""MCTS/MPC planners, action proposals and the evaluation loop."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cassandra_wm.envs import make_env
from cassandra_wm.envs.base import format_action
from cassandra_wm.planning import (MCTS, CoffeeShopProposer, MCTSAgent, MCTSConfig, SampledMPCAgent,
                                   make_proposer)
from cassandra_wm.planning.evaluate import (evaluate, heldout_seeds, load_results, mean_ci, money_curves,
                                            summary_table, t_quantile)
from cassandra_wm.world_model import OracleModel, SimulatorDeterministic, WorldModel

torch.set_num_threads(1)


# -- a toy problem with a known answer -------------------------------------------------------

class DelayedRewardModel:
    """money changes by: wait 0, quick +3, invest -2 (once; afterwards +6 every later day), decoys -0.1.

    Over a 3-day horizon the best first action is ``invest`` (e.g. invest, quick, quick = +16),
    although it is the worst action on its own day; over 1 day ``quick`` is best.
    """

    def __init__(self, noise: float = 1.0):
        self.noise = noise
        self.calls = 0
        self.rows = []

    def sample_next(self, states, actions, n=1, rng=None):
        self.calls += 1
        self.rows.append(len(states))
        out = []
        eps = rng.normal(0.0, self.noise, len(states))
        for s, a, e in zip(states, actions, eps):
            m, inv = s["money"] + 6.0 * s["invested"], s["invested"]
            name = a["name"]
            if name == "quick":
                m += 3.0
            elif name == "invest":
                m -= 2.0
                inv = 1
            elif name.startswith("decoy"):
                m -= 0.1
            out.append({"money": m + e, "invested": inv})
        return out, np.ones(len(states), bool)

    def reward(self, states):
        return np.array([s["money"] for s in states])

    def is_terminal(self, states):
        return np.zeros(len(states), bool)


class ToyProposer:
    names = ["quick", "invest"] + [f"decoy{i}" for i in range(15)]

    def propose(self, state, rng, n=100):
        picks = rng.choice(self.names, size=n)
        out, seen = [self.wait_action()], set()
        for p in picks:
            if p not in seen:
                seen.add(p)
                out.append({"name": str(p), "args": {}})
        return out

    def wait_action(self):
        return {"name": "wait", "args": {}}


START = {"money": 0.0, "invested": 0}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mcts_finds_the_delayed_best_first_action(seed):
    model = DelayedRewardModel()
    res = MCTS(model, ToyProposer(), MCTSConfig()).plan(START, np.random.default_rng(seed))
    assert res.action["name"] == "invest"
    assert res.plan[0] == "invest()"
    top = res.candidates[0]
    assert top["action"] == "invest()" and top["visits"] >= 2 * res.candidates[1]["visits"]
    assert sum(c["visits"] for c in res.candidates) == 90  # every iteration passes one root child
    assert model.calls == 90 * 3 and set(model.rows) == {4}  # one batch of 4 rollouts per model step
    # with a one-day horizon the delayed effect is invisible, and the quick gain wins
    short = MCTS(DelayedRewardModel(), ToyProposer(), MCTSConfig(horizon=1)).plan(START, np.random.default_rng(seed))
    assert short.action["name"] == "quick"


def test_sampled_mpc_finds_the_delayed_best_first_action():
    model = DelayedRewardModel()
    agent = SampledMPCAgent(model, ToyProposer(), n_first=20, steps=3, rollouts=8, rollout_policy="wait", seed=0)
    assert agent.act(START)["name"] == "invest"
    assert model.rows == [18 * 8] * 3  # all first actions x rollouts in one batch per step
    assert agent.diagnostics(3)["candidates"][0]["action"] == "invest()"


def test_mcts_config_is_checked():
    with pytest.raises(ValueError, match="iterations"):
        MCTSConfig(iterations=0).validate()
    with pytest.raises(ValueError, match="rollout_policy"):
        MCTSConfig(rollout_policy="greedy").validate()


# -- coffee-shop proposals ------------------------------------------------------------------

@pytest.mark.parametrize("money", [1000.0, 40.0])
def test_coffee_shop_proposals_follow_the_rules(money):
    env = make_env("coffee_shop")
    s = dict(env.reset(2), money=money)
    prop = make_proposer(env.spec, SimulatorDeterministic(env))
    assert isinstance(prop, CoffeeShopProposer)
    rng = np.random.default_rng(0)
    for _ in range(20):
        acts = prop.propose(s, rng, 100)
        texts = [format_action(a) for a in acts]
        assert texts[0] == "wait()" and texts.count("wait()") == 1
        assert len(set(texts)) == len(texts)
        assert sum(a["name"] == "set_price" for a in acts) <= 1
        for a in acts:
            _, err = env.check_action(s, a)
            assert err is None, (a, err)
    if money < 50:  # nothing dear is proposed when cash is short
        assert all(a["name"] != "upgrade" for a in acts)
    assert prop.stats["invalid"] > 0 or money >= 1000


# -- the oracle-model agent on the real coffee shop ----------------------------------------------

def _play(env, act, seed, days):
    s = env.reset(seed)
    for _ in range(days):
        s, _, info = env.step(act(s))
        if info["done"]:
            break
    return s["money"]


def test_oracle_mcts_agent_beats_random_play():
    env = make_env("coffee_shop")
    prop = make_proposer(env.spec, SimulatorDeterministic(env))
    cfg = MCTSConfig(iterations=30, n_proposals=40)
    rng = np.random.default_rng(0)

    def random_act(s):  # uniform over the (valid) proposals: random play that at least obeys the rules
        acts = prop.propose(s, rng, 40)
        return acts[int(rng.integers(len(acts)))]

    seeds = [101, 202, 303]
    planner, rand = [], []
    for sd in seeds:
        agent = MCTSAgent(OracleModel(env), prop, cfg, seed=sd)
        planner.append(_play(env, agent.act, sd, 25))
        rand.append(_play(env, random_act, sd, 25))
    assert np.mean(planner) > np.mean(rand) + 100, (planner, rand)


def test_planning_survives_a_model_with_wild_predictions():
    env = make_env("coffee_shop")

    class WildBN:
        def sample(self, prev_states, actions, next_det, rng):
            n = len(prev_states)
            wild = rng.choice([np.nan, 1e12, -1e12, 5.0], size=n)
            return {v.name: wild.copy() for v in env.spec.stochastic}

    det = SimulatorDeterministic(env)
    wm = WorldModel(env.spec, det, WildBN())
    agent = MCTSAgent(wm, make_proposer(env.spec, det), MCTSConfig(iterations=20, n_proposals=30), seed=0)
    action = agent.act(env.reset(0))
    assert env.check_action(env.reset(0), action)[1] is None
    c = wm.counters_dict()
    assert c.get("clipped:money", 0) > 0 and c.get("nonfinite:customers", 0) > 0


# -- evaluation ------------------------------------------------------------------------------

def test_t_quantiles_and_confidence_interval():
    # reference values of Student's t (two-sided 95%)
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-3)
    assert t_quantile(0.975, 2) == pytest.approx(4.3027, abs=1e-4)
    assert t_quantile(0.975, 19) == pytest.approx(2.0930, abs=1e-4)
    assert t_quantile(0.975, 35) == pytest.approx(2.0301, abs=1e-4)
    mean, half, sd = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and sd == 1.0 and half == pytest.approx(4.3027 / np.sqrt(3), abs=1e-4)
    assert np.isnan(mean_ci([5.0])[1])


def test_heldout_seeds_are_disjoint_from_collection_seeds():
    a = heldout_seeds(5, seed=0)
    assert a == heldout_seeds(5, seed=0) and a != heldout_seeds(5, seed=1)
    assert all(s >= 2 ** 32 for s in a) and len(set(a)) == 5


def test_evaluate_resumes_after_an_interruption(tmp_path):
    built = []

    class Waiter:
        def act(self, state, rng):
            return {"name": "wait", "args": {}}

    def factory(seed):
        built.append(seed)
        return Waiter()

    path = tmp_path / "runs.jsonl"
    seeds = heldout_seeds(3)
    recs = evaluate("coffee_shop", {"wait": (factory, {"v": 1})}, seeds, days=5, results_path=path,
                    progress=False)
    assert len(recs) == 3 and len(built) == 3
    # simulate a crash in the middle of writing the last record
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])
    assert len(load_results(path)) == 2
    recs2 = evaluate("coffee_shop", {"wait": (factory, {"v": 1})}, seeds, days=5, results_path=path,
                     progress=False)
    assert len(built) == 4 and built[-1] == seeds[2]  # only the torn run was played again
    assert [r["final_money"] for r in recs2] == [r["final_money"] for r in recs]
    assert all(json.loads(x) for x in path.read_text().splitlines())
    # other settings are a different agent configuration: played afresh
    evaluate("coffee_shop", {"wait": (factory, {"v": 2})}, seeds[:1], days=5, results_path=path, progress=False)
    assert len(built) == 5
    table = summary_table(recs2)
    assert table.loc[0, "runs"] == 3 and 0.0 <= table.loc[0, "bankruptcy_rate"] <= 1.0
    curves = money_curves(recs2, days=5)
    assert len(curves) == 3 * 6


def test_theme_park_proposals_follow_appendix_c4():
    from cassandra_wm.planning import ThemeParkProposer
    env = make_env("theme_park")
    s = env.reset(0)
    det = SimulatorDeterministic(env)
    prop = make_proposer(env.spec, det)
    assert isinstance(prop, ThemeParkProposer)
    sites = set(prop.sites(s))
    assert 0 < len(sites) <= 5
    acts = prop.propose(s, np.random.default_rng(0), 100)
    texts = [format_action(a) for a in acts]
    assert texts[0] == "wait()" and texts.count("wait()") == 1
    assert all(a["name"] != "move" for a in acts)
    builds = [a for a in acts if a["name"] == "place" and a["args"]["type"] != "staff"]
    assert builds and all((a["args"]["x"], a["args"]["y"]) in sites for a in builds)
    for a in builds:  # built at the published maximum price
        assert a["args"]["price"] == prop.max_price[(a["args"]["type"], a["args"]["subtype"])][a["args"]["subclass"]]
    hires = [a["args"]["subtype"] for a in acts if a["name"] == "place" and a["args"]["type"] == "staff"]
    assert len(hires) == len(set(hires)) <= 2  # duplicates up to the tile
    assert all(det.check(s, a)[0] for a in acts)


def test_world_model_carries_the_theme_parks_structural_changes():
    env = make_env("theme_park")
    s = env.reset(0)
    det = SimulatorDeterministic(env)

    class Hold:
        def sample(self, prev_states, actions, next_det, rng):
            return {n: np.array([p[n] for p in prev_states]) for n in env.spec.bn_variables}

    wm = WorldModel(env.spec, det, Hold())
    build = next(a for a in make_proposer(env.spec, det).propose(s, np.random.default_rng(0), 100)
                 if a["name"] == "place" and a["args"]["type"] == "ride")
    nxt, valid = wm.sample_next([s], [build], n=2, rng=np.random.default_rng(0))
    assert valid.all() and s["rides"] == []  # input untouched
    assert all(len(x["rides"]) == 1 and x["num_rides"] == 1 and x["day"] == 1 for x in nxt)
    assert wm.counters_dict()["held:revenue"] == 2  # stochastic variables outside the network are held


def test_heuristic_rollout_policy_plays_valid_actions():
    from cassandra_wm.planning import make_rollout_policy
    env = make_env("coffee_shop")
    det = SimulatorDeterministic(env)
    prop = make_proposer(env.spec, det)
    policy = make_rollout_policy("heuristic", prop)
    states = [env.reset(k) for k in range(6)]
    acts = policy(states, np.random.default_rng(0))
    assert len(acts) == 6 and all(env.check_action(s, a)[1] is None for s, a in zip(states, acts))
    res = MCTS(OracleModel(env), prop, MCTSConfig(iterations=8, horizon=4, rollout_policy="heuristic")).plan(
        states[0], np.random.default_rng(0))
    assert res.model_steps == 8 * 4 and env.check_action(states[0], res.action)[1] is None
