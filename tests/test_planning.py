"""MCTS/MPC planners, action proposals and the evaluation loop."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cassandra_wm.envs import make_env
from cassandra_wm.envs.base import format_action, get_path
from cassandra_wm.planning import (MCTS, AgentSpec, CoffeeShopProposer, MCTSAgent, MCTSConfig, MPCConfig,
                                   SampledMPCAgent, make_proposer, play_agents)
from cassandra_wm.planning.episodes import heldout_seeds, load_results
from cassandra_wm.planning.stats import (mean_ci, money_curves, paired_difference, summary_table,
                                         t_quantile)
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
    res = MCTS(model, ToyProposer(), MCTSConfig.appendix_c4()).plan(START, np.random.default_rng(seed))
    assert res.action["name"] == "invest"
    assert res.plan[0] == "invest()"
    top = res.candidates[0]
    assert top["action"] == "invest()" and top["visits"] >= 2 * res.candidates[1]["visits"]
    assert sum(c["visits"] for c in res.candidates) == 90  # every iteration passes one root child
    assert model.calls == 90 * 3 and set(model.rows) == {4}  # one batch of 4 rollouts per model step
    # with a one-day horizon the delayed effect is invisible, and the quick gain wins
    short = MCTS(DelayedRewardModel(), ToyProposer(), MCTSConfig(tree_depth=1, lookahead=1)).plan(
        START, np.random.default_rng(seed))
    assert short.action["name"] == "quick"


@pytest.mark.parametrize("batch", [1, 10])
def test_a_lookahead_beyond_the_tree_sees_the_payoff(batch):
    # one tree action, then two days of waiting: the investment's payoff lies beyond the tree
    model = DelayedRewardModel()
    cfg = MCTSConfig(iterations=60, tree_depth=1, lookahead=3, rollout_policy="wait", batch=batch)
    res = MCTS(model, ToyProposer(), cfg).plan(START, np.random.default_rng(0))
    assert res.action["name"] == "invest"
    assert model.calls == (60 // batch) * 3 and set(model.rows) == {4 * batch}
    assert len(res.plan) == 1  # the tree never grows beyond its depth
    # the same search cut at the tree's depth does not see it
    res1 = MCTS(DelayedRewardModel(), ToyProposer(), MCTSConfig(iterations=60, tree_depth=1, lookahead=1,
                                                                batch=batch)).plan(START, np.random.default_rng(0))
    assert res1.action["name"] == "quick"


def test_discounting_weighs_later_days_less():
    # invest: -2 today, +6 on each later day; with a steep discount the quick +3 wins again
    cfg = dict(iterations=60, tree_depth=1, lookahead=3, rollout_policy="wait")
    plain = MCTS(DelayedRewardModel(noise=0.0), ToyProposer(), MCTSConfig(**cfg)).plan(START, np.random.default_rng(0))
    steep = MCTS(DelayedRewardModel(noise=0.0), ToyProposer(), MCTSConfig(**cfg, discount=0.1)).plan(
        START, np.random.default_rng(0))
    assert plain.action["name"] == "invest" and steep.action["name"] == "quick"
    assert plain.candidates[0]["mean"] == pytest.approx(10.0)  # -2 + 6 + 6
    assert max(c["mean"] for c in steep.candidates) == pytest.approx(3.0)


def test_sampled_mpc_finds_the_delayed_best_first_action():
    model = DelayedRewardModel()
    cfg = MPCConfig(n_first=20, lookahead=3, rollouts=8, rollout_policy="wait", score="mean")
    agent = SampledMPCAgent(model, ToyProposer(), cfg, seed=0)
    assert agent.act(START)["name"] == "invest"
    assert model.rows == [18 * 8] * 3  # all first actions x rollouts in one batch per step
    assert agent.diagnostics(3)["candidates"][0]["action"] == "invest()"
    a1 = MPCConfig.appendix_a1(rollout_policy="wait")
    assert (a1.lookahead, a1.score) == (4, "max")


def test_planner_settings_are_checked():
    with pytest.raises(ValueError, match="iterations"):
        MCTSConfig(iterations=0).validate()
    with pytest.raises(ValueError, match="unknown rollout policy 'greedy'"):
        MCTSConfig(rollout_policy="greedy").validate()
    with pytest.raises(ValueError, match="lookahead .2 days. must be at least tree_depth .3."):
        MCTSConfig(tree_depth=3, lookahead=2).validate()
    with pytest.raises(ValueError, match="unknown MCTSConfig settings .'horizon'."):
        MCTSConfig.for_env("coffee_shop", horizon=3)
    with pytest.raises(ValueError, match="unknown rollout policy"):
        MPCConfig(rollout_policy="nope").validate()
    cfg = MCTSConfig.for_env("coffee_shop")
    assert (cfg.tree_depth, cfg.lookahead, cfg.rollout_policy) == (3, 10, "heuristic")
    c4 = MCTSConfig.appendix_c4()
    assert (c4.iterations, c4.rollouts, c4.n_proposals, c4.tree_depth, c4.lookahead, c4.rollout_policy) == (
        90, 4, 100, 3, 3, "wait")


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
    mean, half, sd = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and sd == 1.0 and half == pytest.approx(4.3027 / np.sqrt(3), abs=1e-4)
    assert np.isnan(mean_ci([5.0])[1])


def _rec(agent, seed, money, fit=None):
    return {"agent": agent, "seed": seed, "fit_seed": fit, "run": 0, "final_money": money, "bankrupt": False,
            "days": 5, "money": [0.0, money], "actions": ["wait()"], "valid": [True]}


def test_summary_pairs_episodes_and_separates_fit_and_episode_spread():
    recs = [_rec("oracle", s, 100.0 + 10 * s) for s in range(4)]
    recs += [_rec("heuristic", s, 50.0 + 10 * s) for s in range(4)]
    # two fits: fit 1 is 20 better than fit 0 on every seed
    recs += [_rec("model", s, 60.0 + 10 * s + 20 * f, fit=f) for s in range(4) for f in (0, 1)]
    d = paired_difference([r for r in recs if r["agent"] == "model"], [r for r in recs if r["agent"] == "oracle"])
    assert d["n"] == 4 and d["mean"] == pytest.approx(-30.0) and d["low"] == pytest.approx(-30.0)
    t = summary_table(recs, oracle="oracle", heuristic="heuristic").set_index("agent")
    assert t.loc["model", "fits"] == 2 and t.loc["model", "episodes"] == 8
    assert t.loc["model", "sd_between_fits"] == pytest.approx(np.std([75.0, 95.0], ddof=1))
    assert t.loc["model", "sd_between_episodes"] == pytest.approx(np.std([60, 70, 80, 90], ddof=1))
    assert t.loc["model", "vs_heuristic"] == pytest.approx(20.0)
    assert t.loc["model", "x_heuristic"] == pytest.approx(85.0 / 65.0)
    assert t.loc["oracle", "vs_oracle"] == 0.0


def test_heldout_seeds_are_disjoint_from_collection_seeds():
    a = heldout_seeds(5, seed=0)
    assert a == heldout_seeds(5, seed=0) and a != heldout_seeds(5, seed=1)
    assert all(s >= 2 ** 32 for s in a) and len(set(a)) == 5


BUILT: list = []


def counting_waiter(env, network, support, seed, tag=0):
    """A custom roster agent that records each build (for the resume test)."""
    from cassandra_wm.planning.roster import WaitAgent
    BUILT.append(seed)
    return WaitAgent()


def test_play_agents_resumes_after_an_interruption(tmp_path):
    BUILT.clear()
    waiter = [AgentSpec("wait", "custom", builder="test_planning:counting_waiter", config={"tag": 1})]
    path = tmp_path / "runs.jsonl"
    seeds = heldout_seeds(3)
    recs = play_agents("coffee_shop", waiter, seeds, days=5, results_path=path, executor="serial", progress=False)
    assert len(recs) == 3 and len(BUILT) == 3
    # simulate a crash in the middle of writing the last record
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])
    assert len(load_results(path)) == 2
    recs2 = play_agents("coffee_shop", waiter, seeds, days=5, results_path=path, executor="serial", progress=False)
    assert len(BUILT) == 4 and BUILT[-1] == seeds[2]  # only the torn run was played again
    assert [r["final_money"] for r in recs2] == [r["final_money"] for r in recs]
    assert all(json.loads(x) for x in path.read_text().splitlines())
    # other settings are a different agent configuration: played afresh
    other = [AgentSpec("wait", "custom", builder="test_planning:counting_waiter", config={"tag": 2})]
    play_agents("coffee_shop", other, seeds[:1], days=5, results_path=path, executor="serial", progress=False)
    assert len(BUILT) == 5
    table = summary_table(recs2)
    assert table.loc[0, "episodes"] == 3 and 0.0 <= table.loc[0, "bankruptcy_rate"] <= 1.0
    curves = money_curves(recs2, days=5)
    assert len(curves) == 3 * 6


@pytest.mark.parametrize("bad, message", [
    (AgentSpec("x", "mcts", "oracle", config={"rollout_policy": "greedy"}), "unknown rollout policy 'greedy'"),
    (AgentSpec("x", "mcts", "oracle", config={"tree_depth": 4, "lookahead": 2}), "must be at least tree_depth"),
    (AgentSpec("x", "mcts", "CASSANDRA", 0, guard="on"), "no network for graph 'CASSANDRA'"),
    (AgentSpec("x", "planner"), "unknown agent kind 'planner'"),
    (AgentSpec("x", "agent", agent="genius"), "has no agent 'genius'"),
    (AgentSpec("x", "custom", builder="no_such_module:f"), "cannot import builder"),
])
def test_bad_roster_fails_before_any_episode(bad, message):
    BUILT.clear()
    roster = [AgentSpec("wait", "custom", builder="test_planning:counting_waiter"), bad]
    with pytest.raises(ValueError, match=message):
        play_agents("coffee_shop", roster, heldout_seeds(2), days=3, executor="serial", progress=False)
    assert BUILT == []  # nothing was played


@pytest.mark.parametrize("kwargs, message", [
    ({"executor": "spark"}, "unknown executor 'spark'"),
])
def test_unknown_executor_fails_before_any_episode(kwargs, message):
    BUILT.clear()
    roster = [AgentSpec("wait", "custom", builder="test_planning:counting_waiter")]
    with pytest.raises(ValueError, match=message):
        play_agents("coffee_shop", roster, heldout_seeds(2), days=3, progress=False, **kwargs)
    assert BUILT == []


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
            return {n: np.array([get_path(p, env.spec.variable(n).path) for p in prev_states])
                    for n in env.spec.bn_variables}

    wm = WorldModel(env.spec, det, Hold())
    build = next(a for a in make_proposer(env.spec, det).propose(s, np.random.default_rng(0), 100)
                 if a["name"] == "place" and a["args"]["type"] == "ride")
    nxt, valid = wm.sample_next([s], [build], n=2, rng=np.random.default_rng(0))
    assert valid.all() and s["rides"]["ride_list"] == [] and s["rides"]["total_rides"] == 0  # input untouched
    assert all(len(x["rides"]["ride_list"]) == 1 and x["rides"]["total_rides"] == 1 and x["step"] == s["step"] + 1
               for x in nxt)
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
    res = MCTS(OracleModel(env), prop, MCTSConfig(iterations=8, tree_depth=2, lookahead=4,
                                                  rollout_policy="heuristic")).plan(states[0], np.random.default_rng(0))
    assert res.model_steps == 8 * 4 and env.check_action(states[0], res.action)[1] is None
    from cassandra_wm.planning.rollouts import AgentRollout
    assert isinstance(policy, AgentRollout) and policy.agent.name == "steady"  # the kit's rollout agent
