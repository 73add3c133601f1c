"""CoffeeShopEnv: determinism, bounds, preconditions, bad input, agents."""
import json
import math

import numpy as np
import pytest

from cassandra_wm.agents import RandomAgent, make_agent, spec_invalid_action
from cassandra_wm.envs import make_env
from cassandra_wm.envs.base import Environment
from cassandra_wm.envs.coffee_shop import CoffeeShopEnv
from cassandra_wm.envs.coffee_shop.agents import HeuristicAgent

VARS = ["money", "coffee_beans", "milk", "customers", "satisfaction", "cleanliness", "price", "upgrade_level"]


def play(env, agent, seed, days=50):
    rng = np.random.default_rng(seed + 1)
    # as the library's episode loops do: an agent that draws a style per episode draws it from this
    # episode's generator (otherwise an unseeded agent's style comes from OS entropy)
    if callable(getattr(agent, "start_episode", None)):
        agent.start_episode(rng)
    s = env.reset(seed=seed)
    out = [s]
    for _ in range(days):
        s, valid, info = env.step(agent.act(s, rng))
        out.append(s)
        if info["done"]:
            break
    return out


def base_state(**kw):
    s = {"day": 3, "horizon": 50, "bankrupt": False, "money": 500.0, "coffee_beans": 50.0, "milk": 40.0,
         "customers": 60, "satisfaction": 60.0, "cleanliness": 70.0, "price": 4.0, "upgrade_level": 1}
    s.update(kw)
    return s


def test_spec_shape():
    env = make_env("coffee_shop")
    assert isinstance(env, Environment) and isinstance(env, CoffeeShopEnv)
    spec = env.spec
    assert spec.variable_names() == VARS
    assert spec.variable_names("stochastic") == VARS[:6]
    assert spec.variable_names("deterministic") == ["price", "upgrade_level"]
    assert all(v.path == "/" + v.name for v in spec.variables)
    assert {a.name for a in spec.actions} == {"set_price", "buy_beans", "buy_milk", "upgrade", "clean", "wait"}
    assert spec.reward_variable == "money" and spec.horizon == 50
    json.dumps(spec.to_dict())  # serialisable
    # the manual documents actions but not the hidden same-day link
    assert "set_price" in spec.manual and "bankrupt" in spec.manual
    assert "true_graph" not in spec.manual


def test_true_graph_is_a_dag_over_stochastic_variables():
    env = make_env("coffee_shop")
    edges = env.true_graph()
    stoch = set(env.spec.variable_names("stochastic"))
    assert ("satisfaction", "customers") in edges
    assert all(a in stoch and b in stoch for a, b in edges)
    import networkx as nx
    assert nx.is_directed_acyclic_graph(nx.DiGraph(edges))


def test_same_seed_same_trajectory_and_different_seed_differs():
    env1, env2 = make_env("coffee_shop"), make_env("coffee_shop")
    a = HeuristicAgent(env1.spec, invalid_rate=0.2)
    t1, t2 = play(env1, a, seed=7), play(env2, a, seed=7)
    assert t1 == t2
    assert play(env1, a, seed=8) != t1


def test_transition_is_pure_and_markov():
    env = make_env("coffee_shop")
    s = base_state()
    frozen = json.dumps(s)
    r1 = env.transition(s, "buy_beans(units=10)", np.random.default_rng(3))
    r2 = env.transition(s, {"name": "buy_beans", "args": {"units": 10}}, np.random.default_rng(3))
    assert json.dumps(s) == frozen  # input untouched
    assert r1[0] == r2[0] and r1[1] is True
    # a separate environment instance with the same parameters gives the same law
    r3 = CoffeeShopEnv().transition(s, "buy_beans(units=10)", np.random.default_rng(3))
    assert r3[0] == r1[0]


def test_bounds_hold_over_many_random_steps():
    env = make_env("coffee_shop")
    agents = [RandomAgent(env.spec, invalid_rate=0.3), HeuristicAgent(env.spec, invalid_rate=0.1)]
    n = 0
    for seed in range(40):
        for s in play(env, agents[seed % 2], seed):
            n += 1
            for v in env.spec.variables:
                assert v.in_bounds(s[v.name]), (v.name, s[v.name], seed)
            assert isinstance(s["customers"], int) and isinstance(s["upgrade_level"], int)
            json.dumps(s)
    assert n > 1000


def test_stock_accounting_and_money_identity():
    env = make_env("coffee_shop")
    p = env.params
    s = base_state()
    nxt, valid, info = env.transition(s, "buy_beans(units=20)", np.random.default_rng(0))
    assert valid and info["error"] is None
    cups = nxt["customers"]
    assert nxt["coffee_beans"] == pytest.approx(s["coffee_beans"] + 20 - cups * p.beans_per_cup, abs=0.051)
    expected = s["money"] - 20 * p.bean_cost + info["revenue"] - info["running_cost"]
    assert nxt["money"] == pytest.approx(expected, abs=0.011)
    assert info["revenue"] == pytest.approx(cups * s["price"] + info["milk_drinks"] * p.milk_premium)


def test_stockout_caps_sales():
    env = make_env("coffee_shop")
    s = base_state(coffee_beans=0.5, milk=0.0, satisfaction=90.0, customers=100)
    nxt, valid, info = env.transition(s, "wait", np.random.default_rng(1))
    assert nxt["customers"] <= 5 and info["turned_away"] > 0
    assert nxt["milk"] == 0.0


@pytest.mark.parametrize("action,state_kw,fragment", [
    ("set_price(price=7.0)", {}, "at most"),
    ("set_price(price=0.5)", {}, "below the minimum"),
    ("set_price(price=11)", {"price": 9.5}, "above the maximum"),
    ("buy_beans(units=100)", {"money": 100.0}, "only 100.00 is available"),
    ("buy_beans(units=60)", {"coffee_beans": 150.0}, "capacity"),
    ("buy_beans(units=0)", {}, "below the minimum"),
    ("buy_milk(units=100)", {"money": 50.0}, "only 50.00"),
    ("buy_milk(units=120)", {}, "above the maximum"),
    ("buy_milk(units=20)", {"milk": 140.0}, "capacity"),
    ("upgrade()", {"upgrade_level": 5}, "top level"),
    ("upgrade()", {"money": 500.0, "upgrade_level": 1}, "costs 800.00"),
    ("clean()", {"cleanliness": 97.0}, "already clean"),
    ("clean()", {"money": 10.0}, "costs 30.00"),
])
def test_preconditions(action, state_kw, fragment):
    env = make_env("coffee_shop")
    s = base_state(**state_kw)
    det, valid, err = env.deterministic_step(s, action)
    assert valid is False and fragment in err
    nxt, valid2, info = env.transition(s, action, np.random.default_rng(0))
    assert valid2 is False and info["error"] == err
    # invalid = the same day as a wait, with the same noise
    waited, _, _ = env.transition(s, "wait()", np.random.default_rng(0))
    assert nxt == waited
    assert det == {"price": s["price"], "upgrade_level": s["upgrade_level"]}


@pytest.mark.parametrize("action,key,value", [
    ("set_price(price=5.5)", "price", 5.5),
    ("upgrade()", "upgrade_level", 2),
])
def test_valid_actions_change_deterministic_variables(action, key, value):
    env = make_env("coffee_shop")
    s = base_state(money=2000.0)
    det, valid, err = env.deterministic_step(s, action)
    assert valid and err is None and det[key] == value
    nxt, valid2, _ = env.transition(s, action, np.random.default_rng(0))
    assert valid2 and nxt[key] == value


def test_upgrade_and_clean_effects():
    env = make_env("coffee_shop")
    s = base_state(money=2000.0, cleanliness=20.0)
    up, _, info = env.transition(s, "upgrade()", np.random.default_rng(0))
    assert info["spent"] == 800.0 and up["upgrade_level"] == 2
    cl, _, info = env.transition(s, "clean()", np.random.default_rng(0))
    dirty, _, _ = env.transition(s, "wait()", np.random.default_rng(0))
    assert info["spent"] == 30.0 and cl["cleanliness"] > dirty["cleanliness"] + 40


BAD_INPUTS = [
    "fly_to_moon()", "buy_beans(units='lots')", "buy_beans(units=2.5)", "buy_beans()",
    "buy_beans(units=5, colour='red')", "set_price(price=None)", "set_price(price=float('nan'))",
    "buy_beans(5)", "buy_beans(units=5", ")(", "", "   ", "__import__('os').system('true')",
    "set_price(price=1e400)", "buy_milk(units=10**400)", 42, None, [], {"args": {}}, {"name": 3},
    {"name": "buy_beans", "args": [1]}, {"name": "buy_beans", "args": {"units": float("inf")}},
    {"name": "buy_beans", "args": {"units": True}}, {"name": "set_price", "args": {"price": "4"}},
    {"name": "upgrade", "args": {"level": 3}}, {"name": "buy_milk", "args": {"units": 10 ** 400}},
]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[repr(b)[:40] for b in BAD_INPUTS])
def test_bad_input_never_raises(bad):
    env = make_env("coffee_shop")
    env.reset(seed=0)
    s, valid, info = env.step(bad)
    assert valid is False
    assert isinstance(info["error"], str) and info["error"]
    assert s["day"] == 1  # the day still ran
    det, valid, err = env.deterministic_step(base_state(), bad)
    assert valid is False and err


def test_bankruptcy_ends_episode():
    env = make_env("coffee_shop")
    s = base_state(money=5.0, coffee_beans=0.0, milk=0.0, upgrade_level=3)
    nxt, valid, info = env.transition(s, "wait", np.random.default_rng(0))
    assert nxt["bankrupt"] and nxt["money"] < 0 and info["done"]
    again, valid, info = env.transition(nxt, "wait", np.random.default_rng(0))
    assert not valid and "over" in info["error"] and again == nxt


def test_horizon_ends_episode():
    env = CoffeeShopEnv(horizon=3)
    env.reset(seed=1)
    dones = [env.step("wait")[2]["done"] for _ in range(3)]
    assert dones == [False, False, True]


def test_constructor_rejects_bad_parameters():
    with pytest.raises(ValueError):
        CoffeeShopEnv(horizon=0)
    with pytest.raises(ValueError):
        CoffeeShopEnv(no_such_param=1)
    with pytest.raises(RuntimeError):
        CoffeeShopEnv().step("wait")


def test_heuristic_makes_money_and_random_can_go_bankrupt():
    env = make_env("coffee_shop")
    heur, rand = HeuristicAgent(env.spec), RandomAgent(env.spec)
    h = [play(env, heur, seed) for seed in range(10)]
    r = [play(env, rand, seed) for seed in range(30)]
    assert all(not t[-1]["bankrupt"] for t in h)
    assert np.mean([t[-1]["money"] - t[0]["money"] for t in h]) > 2000
    assert any(t[-1]["bankrupt"] for t in r)


def test_agents_invalid_rate_and_variety():
    env = make_env("coffee_shop")
    agent = make_agent(env, "heuristic", invalid_rate=0.5, seed=0)
    assert isinstance(agent, HeuristicAgent)
    rng = np.random.default_rng(0)
    s = env.reset(seed=0)
    errors = []
    n = 0
    for _ in range(200):
        s, valid, info = env.step(agent.act(s, rng))
        n += 1
        if not valid:
            errors.append(info["error"])
        if info["done"]:
            s = env.reset(seed=n)
    rate = len(errors) / n
    assert 0.4 < rate < 0.65
    kinds = {e.split(":")[0] if not e.startswith("unknown action") else "unknown" for e in errors}
    assert len(kinds) >= 5
    assert any("unknown action" in e for e in errors) and any("capacity" in e or "available" in e for e in errors)


def test_heuristic_without_invalid_rate_is_nearly_always_valid():
    env = make_env("coffee_shop")
    agent = make_agent(env, "heuristic", invalid_rate=0.0)
    rng = np.random.default_rng(5)
    s = env.reset(seed=5)
    valid_count = 0
    for _ in range(50):
        s, valid, info = env.step(agent.act(s, rng))
        valid_count += valid
    assert valid_count >= 45


def test_spec_invalid_actions_are_rejected():
    env = make_env("coffee_shop")
    rng = np.random.default_rng(0)
    for kind in ["unknown_action", "out_of_range", "wrong_type", "missing_argument", "extra_argument"]:
        for _ in range(10):
            act = spec_invalid_action(env.spec, rng, kind)
            _, valid, err = env.deterministic_step(base_state(), act)
            assert not valid and err, (kind, act)


def test_make_agent_errors():
    env = make_env("coffee_shop")
    with pytest.raises(ValueError):
        make_agent(env, "genius")
    with pytest.raises(ValueError):
        make_agent(env, "random", invalid_rate=1.5)
    with pytest.raises(TypeError):
        make_agent(object(), "random")
    assert isinstance(make_agent(env.spec, "random"), RandomAgent)


def test_no_nan_in_long_random_run():
    env = make_env("coffee_shop")
    agent = RandomAgent(env.spec, invalid_rate=0.2)
    for s in play(env, agent, seed=123):
        assert all(not (isinstance(s[k], float) and math.isnan(s[k])) for k in VARS)
