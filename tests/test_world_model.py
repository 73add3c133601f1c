"""World model composition: batching, guard rails (clipping, invalid actions), oracle, batched vs unbatched."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from cassandra_wm.envs import make_env
from cassandra_wm.envs.base import ActionSpec, ArgSpec, EnvSpec, VariableSpec
from cassandra_wm.world_model import (CodeModelDeterministic, OracleModel, SimulatorDeterministic, WorldModel)

torch.set_num_threads(1)


# -- a tiny fake world -------------------------------------------------------------------

SPEC = EnvSpec(
    name="toyshop", manual="A toy shop.",
    variables=(
        VariableSpec("money", "/money", "cash", "stochastic", low=-50.0),
        VariableSpec("stock", "/inv/stock", "units in store", "stochastic", low=0, high=50, integer=True),
        VariableSpec("mood", "/mood", "mood", "stochastic", type="categorical", categories=("bad", "good")),
        VariableSpec("price", "/price", "price", "deterministic", low=1.0, high=10.0),
    ),
    actions=(ActionSpec("wait", "do nothing"),
             ActionSpec("set_price", "new price", (ArgSpec("price", "float", low=1.0, high=10.0),)),
             ActionSpec("buy", "buy stock", (ArgSpec("units", "int", low=1, high=20),))),
)


class FakeEnv:
    spec = SPEC

    def check_action(self, state, action):
        if action["name"] == "buy" and action["args"]["units"] * 2 > state["money"]:
            return action, "too expensive"
        if action["name"] == "set_price" and not 1.0 <= action["args"]["price"] <= 10.0:
            return action, "bad price"
        return action, None

    def deterministic_step(self, state, action):
        _, err = self.check_action(state, action)
        price = state["price"]
        if err is None and action["name"] == "set_price":
            price = action["args"]["price"]
        return {"price": price}, err is None, err

    def is_done(self, state):
        return bool(state.get("bankrupt"))


class FakeBN:
    """money += price * N(5, 1); stock -= 1 (+units if buying); mood from a coin.  ``wild`` breaks bounds."""

    def __init__(self, wild: bool = False):
        self.wild = wild
        self.calls = 0

    def sample(self, prev_states, actions, next_det, rng):
        self.calls += 1
        n = len(prev_states)
        price = np.array([s["price"] for s in next_det])
        money = np.array([s["money"] for s in prev_states]) + price * rng.normal(5.0, 1.0, n)
        buy = np.array([a["args"]["units"] if a["name"] == "buy" else 0 for a in actions])
        money = money - 2 * buy
        stock = np.array([s["inv"]["stock"] for s in prev_states]) + buy - 1 + rng.normal(0, 0.3, n)
        mood = np.where(rng.random(n) < 0.5, "bad", "good").astype(object)
        if self.wild:
            money[0] = np.nan
            money[1:] = -1e9
            stock[:] = 1e6
            mood[:] = "furious"
        return {"money": money, "stock": stock, "mood": mood}


def toy_state(money=100.0, stock=10, price=4.0):
    return {"day": 0, "bankrupt": False, "money": money, "inv": {"stock": stock, "shelf": [1, 2]},
            "mood": "good", "price": price}


def toy_model(wild=False):
    env = FakeEnv()
    return WorldModel(SPEC, SimulatorDeterministic(env), FakeBN(wild))


# -- composition ------------------------------------------------------------------------

def test_rows_repeat_and_inputs_untouched():
    wm = toy_model()
    s1, s2 = toy_state(), toy_state(money=30.0, price=2.0)
    before = copy.deepcopy([s1, s2])
    acts = [{"name": "set_price", "args": {"price": 6.0}}, "buy(units=5)"]
    nxt, valid = wm.sample_next([s1, s2], acts, n=3, rng=np.random.default_rng(0))
    assert [s1, s2] == before  # never modified in place
    assert len(nxt) == 6 and valid.tolist() == [True] * 6
    assert [s["price"] for s in nxt] == [6.0] * 3 + [2.0] * 3  # row i*n+j comes from input row i
    assert all(s["day"] == 1 for s in nxt)
    assert all(isinstance(s["inv"]["stock"], int) for s in nxt)  # integer variable rounded
    assert all(s["inv"]["stock"] >= 13 for s in nxt[3:])  # bought 5
    assert nxt[0]["inv"] is not s1["inv"]  # nested container copied, not shared
    assert nxt[0]["inv"]["shelf"] == [1, 2]
    assert len({s["money"] for s in nxt[:3]}) == 3  # independent samples


def test_out_of_range_predictions_are_clipped_and_counted():
    wm = toy_model(wild=True)
    s = toy_state()
    nxt, valid = wm.sample_next([s], ["wait"], n=4, rng=np.random.default_rng(1))
    c = wm.counters_dict()
    assert c["nonfinite:money"] == 1 and nxt[0]["money"] == s["money"]  # NaN keeps the previous value
    assert c["clipped:money"] == 3 and all(x["money"] == -50.0 for x in nxt[1:])
    assert c["clipped:stock"] == 4 and all(x["inv"]["stock"] == 50 for x in nxt)
    assert c["bad_category:mood"] == 4 and all(x["mood"] == "good" for x in nxt)
    # clipped money is below zero, so the rows are bankrupt and then absorbing
    assert all(x["bankrupt"] for x in nxt[1:])
    again, v2 = wm.sample_next(nxt[1:], ["wait"] * 3, rng=np.random.default_rng(2))
    assert again == nxt[1:] and not v2.any()
    assert wm.counters_dict()["terminal_rows"] == 3


def test_invalid_actions_and_failing_deterministic_source_are_counted():
    wm = toy_model()
    s = toy_state(money=10.0)
    nxt, valid = wm.sample_next([s, s], ["buy(units=20)", {"name": "set_price", "args": {"price": 99.0}}],
                                rng=np.random.default_rng(0))
    assert valid.tolist() == [False, False]
    assert wm.counters_dict()["invalid_actions"] == 2
    assert [x["price"] for x in nxt] == [4.0, 4.0]

    class Broken:
        name = "broken"

        def step(self, states, actions):
            if any(a["name"] == "set_price" for a in actions):
                raise ZeroDivisionError("generated code divided by zero")
            return [{"price": st["price"]} for st in states], np.ones(len(states), bool), [None] * len(states)

        def check(self, state, action):
            return True, None

    wm2 = WorldModel(SPEC, Broken(), FakeBN())
    nxt, valid = wm2.sample_next([s, s], ["wait", "set_price(price=5.0)"], rng=np.random.default_rng(0))
    assert valid.tolist() == [True, False]
    assert wm2.counters_dict()["det_errors"] == 1
    assert nxt[1]["price"] == 4.0


def test_deterministic_out_of_bounds_is_clipped():
    class Wild:
        name = "wild"

        def step(self, states, actions):
            return [{"price": 1e9} for _ in states], np.ones(len(states), bool), [None] * len(states)

        def check(self, state, action):
            return True, None

    wm = WorldModel(SPEC, Wild(), FakeBN())
    nxt, _ = wm.sample_next([toy_state()], ["wait"], rng=np.random.default_rng(0))
    assert nxt[0]["price"] == 10.0 and wm.counters_dict()["clipped:price"] == 1


def test_bad_inputs_raise_clear_errors():
    wm = toy_model()
    with pytest.raises(ValueError, match="states but"):
        wm.sample_next([toy_state()], ["wait", "wait"])
    with pytest.raises(ValueError, match="positive integer"):
        wm.sample_next([toy_state()], ["wait"], n=0)
    with pytest.raises(TypeError, match="not a dict"):
        wm.sample_next(["state"], ["wait"])


def test_reward_and_terminal():
    wm = toy_model()
    states = [toy_state(money=5.0), dict(toy_state(money=-1.0), bankrupt=True)]
    assert wm.reward(states).tolist() == [5.0, -1.0]
    assert wm.is_terminal(states).tolist() == [False, True]


def test_code_model_adapter():
    class Phi:
        name = "phi-v3"

        def predict(self, state, action):
            if action["name"] == "buy":
                raise RuntimeError("E_exec in generated code")
            nxt = dict(state)
            if action["name"] == "set_price":
                nxt["price"] = action["args"]["price"]
            return nxt, True, None

    det = CodeModelDeterministic(Phi(), SPEC)
    wm = WorldModel(SPEC, det, FakeBN())
    nxt, valid = wm.sample_next([toy_state()] * 2, ["set_price(price=7.5)", "buy(units=1)"],
                                rng=np.random.default_rng(0))
    assert nxt[0]["price"] == 7.5 and valid.tolist() == [True, False]
    assert wm.counters_dict()["det_errors"] == 1
    assert det.name == "code:phi-v3"


# -- the coffee shop: oracle, and batched vs unbatched sampling -------------------------------------

def ks_statistic(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov statistic."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    return float(np.abs(fa - fb).max())


def ks_critical(n: int, m: int, alpha: float = 0.001) -> float:
    c = np.sqrt(-0.5 * np.log(alpha / 2))
    return float(c * np.sqrt((n + m) / (n * m)))


def test_oracle_rows_are_independent_and_seeded():
    env = make_env("coffee_shop")
    s = env.reset(3)
    om = OracleModel(env)
    a, _ = om.sample_next([s], ["wait"], n=50, rng=np.random.default_rng(7))
    b, _ = om.sample_next([s], ["wait"], n=50, rng=np.random.default_rng(7))
    assert a == b
    assert len({x["customers"] for x in a}) > 5
    assert all(x["day"] == 1 for x in a)
    bad, valid = om.sample_next([s], ["upgrade_twice()"], rng=np.random.default_rng(0))
    assert not valid[0] and om.counters_dict()["invalid_actions"] == 1


def _rollout_money(model, state, actions, rows, batched, seed):
    rng = np.random.default_rng(seed)
    if batched:
        states = [state] * rows
        for a in actions:
            states, _ = model.sample_next(states, [a] * len(states), 1, rng)
        return model.reward(states)
    out = []
    for _ in range(rows):
        st = [state]
        for a in actions:
            st, _ = model.sample_next(st, [a], 1, rng)
        out.append(model.reward(st)[0])
    return np.array(out)


@pytest.fixture(scope="module")
def coffee_bn():
    from cassandra_wm.envs.coffee_shop.agents import HeuristicAgent
    from cassandra_wm.structure.bn import BayesNet
    env = make_env("coffee_shop")
    agent = HeuristicAgent(env.spec, invalid_rate=0.1)
    recs = []
    for ep in range(12):
        rng = np.random.default_rng(ep)
        agent.start_episode(rng)
        s = env.reset(ep)
        for _ in range(30):
            a = agent.act(s, rng)
            ns, ok, info = env.step(a)
            recs.append({"state": s, "action": a, "valid": ok, "next_state": ns})
            s = ns
            if info["done"]:
                break
    parents = {"money": ["customers"], "coffee_beans": ["customers"], "milk": ["customers"],
               "customers": ["satisfaction"], "satisfaction": [], "cleanliness": ["customers"]}
    bn = BayesNet(env.spec, parents, seed=0, max_epochs=15, hidden=16)
    cut = int(0.8 * len(recs))
    bn.fit(recs[:cut], recs[cut:])
    return env, bn


@pytest.mark.parametrize("which", ["bn", "oracle"])
def test_batched_and_unbatched_rollouts_agree_in_distribution(which, coffee_bn):
    env, bn = coffee_bn
    model = WorldModel(env.spec, SimulatorDeterministic(env), bn) if which == "bn" else OracleModel(env)
    s = env.reset(11)
    plan = ["buy_beans(units=10)", "wait", "set_price(price=4.5)"]
    rows = 300
    batched = _rollout_money(model, s, plan, rows, True, seed=1)
    single = _rollout_money(model, s, plan, rows, False, seed=2)
    crit = ks_critical(rows, rows)
    assert ks_statistic(batched, single) < crit
    assert abs(np.median(batched) - np.median(single)) < 0.25 * batched.std() + 1e-9
    # the same test tells a poorer shop apart (it has power)
    poorer = dict(s, money=s["money"] - 600.0)
    other = _rollout_money(model, poorer, plan, rows, True, seed=3)
    assert ks_statistic(batched, other) > crit


def test_sandboxed_code_model_as_the_deterministic_source():
    from cassandra_wm.codewm.evaluate import SandboxedCodeModel
    from cassandra_wm.codewm.model import CodeModel, make_function
    from cassandra_wm.codewm.sandbox import Sandbox

    env = make_env("coffee_shop")
    parts = [("action", "set_price",
              'def set_price(state, action):\n'
              '    return [{"op": "replace", "path": "/price", "value": action["args"]["price"]}]\n'),
             ("precondition", "set_price",
              'def small_step(state, action):\n'
              '    ok = abs(action["args"]["price"] - state["price"]) <= 2\n'
              '    return ok, "price moves too far"\n'),
             ("action", "upgrade", 'def upgrade(state, action):\n    return 1 / 0\n')]
    phi = CodeModel(env_name="coffee_shop")
    for kind, action, src in parts:
        phi = phi.with_function(make_function(kind, action, src, phi, origin="test"))

    class Hold:  # keeps every stochastic variable where it was
        def sample(self, prev_states, actions, next_det, rng):
            return {v.name: np.array([s[v.name] for s in prev_states]) for v in env.spec.stochastic}

    with Sandbox(env.spec, call_timeout=0.5) as sb:
        wm = WorldModel(env.spec, CodeModelDeterministic(SandboxedCodeModel(phi, sb), env.spec), Hold(), env=env)
        s = env.reset(0)
        nxt, valid = wm.sample_next([s] * 3, ["set_price(price=4.5)", "set_price(price=9.5)", "upgrade"],
                                    rng=np.random.default_rng(0))
    assert nxt[0]["price"] == 4.5 and valid[0]
    assert nxt[1]["price"] == s["price"] and not valid[1]  # the learned precondition refuses it
    assert nxt[2]["upgrade_level"] == s["upgrade_level"]  # the failing action function changes nothing
    c = wm.counters_dict()
    assert c["det_errors"] == 1 and c["invalid_actions"] == 1


# -- keeping a network inside its training data ---------------------------------------------------

def _toy_transitions():
    """Toy records whose stock stays in 5..15, money in 80..120 with daily changes of -5..+40, price 3..5."""
    recs = []
    rng = np.random.default_rng(0)
    for i in range(40):
        s = toy_state(money=float(rng.uniform(80, 120)), stock=int(rng.integers(5, 16)), price=float(rng.uniform(3, 5)))
        ns = toy_state(money=s["money"] + float(rng.uniform(-5, 40)), stock=int(rng.integers(5, 16)), price=s["price"])
        a = {"name": "buy", "args": {"units": int(rng.integers(1, 6))}} if i % 2 else {"name": "wait", "args": {}}
        recs.append({"state": s, "action": a, "valid": True, "next_state": ns})
    return recs


def test_support_records_the_datas_ranges():
    from cassandra_wm.planning.support import DataSupport
    sup = DataSupport.from_transitions(SPEC, _toy_transitions(), margin=0.0)
    assert sup.accumulators == ("money",)
    lo, hi = sup.level("stock")
    assert lo == 5 and hi == 15
    assert -5 <= sup.change("money")[0] < sup.change("money")[1] <= 40
    assert sup.actions == {"wait": 20, "buy": 20} and sup.args["buy.units"] == (1.0, 5.0)
    assert DataSupport.from_dict(sup.to_dict()).to_dict() == sup.to_dict()
    s = toy_state(stock=10, price=4.0)
    det = SimulatorDeterministic(FakeEnv())
    reason = lambda a: sup.action_reason(s, a, det.step([s], [a])[0][0], SPEC)  # noqa: E731
    assert reason({"name": "buy", "args": {"units": 3}}) is None
    assert "outside the data" in reason({"name": "buy", "args": {"units": 12}})
    assert "played validly 0 times" in reason({"name": "set_price", "args": {"price": 4.5}})
    with pytest.raises(ValueError, match="at least one transition"):
        DataSupport.from_transitions(SPEC, [])


@pytest.mark.parametrize("mode", ["clip", "count"])
def test_world_model_keeps_samples_inside_the_support(mode):
    from cassandra_wm.planning.support import DataSupport, out_of_support_share
    sup = DataSupport.from_transitions(SPEC, _toy_transitions(), margin=0.0)
    seen = []

    class Recording(FakeBN):
        def sample(self, prev_states, actions, next_det, rng):
            seen.extend(s["money"] for s in prev_states)
            return super().sample(prev_states, actions, next_det, rng)

    wm = WorldModel(SPEC, SimulatorDeterministic(FakeEnv()), Recording(), support=sup, support_mode=mode)
    rich = toy_state(money=10_000.0, stock=15, price=4.0)
    nxt, _ = wm.sample_next([rich], [{"name": "buy", "args": {"units": 5}}], n=20, rng=np.random.default_rng(1))
    c = wm.counters_dict()
    # the network saw money at the data's top level; the change it predicted was carried over to 10,000
    assert max(seen) <= sup.level("money")[1] and c["input_clamped:money"] == 20
    change = np.array([x["money"] for x in nxt]) - rich["money"]
    # stock 15 + 5 bought - 1 sold is above anything in the data
    assert c["out_of_support:stock"] == 20 and c["out_of_support_rows"] == 20 and wm.last_out_of_support.all()
    assert out_of_support_share(c) == 1.0 and c["network_rows"] == 20
    if mode == "clip":
        assert all(x["inv"]["stock"] <= 15 for x in nxt)
        clo, chi = sup.change("money")
        assert (change >= clo - 1e-9).all() and (change <= chi + 1e-9).all()
    else:
        assert all(x["inv"]["stock"] >= 18 for x in nxt)
    # a state inside the data: nothing to count
    wm.reset_counters()
    wm.sample_next([toy_state(money=100.0, stock=10)], ["wait"], n=5, rng=np.random.default_rng(2))
    assert wm.counters_dict().get("out_of_support_rows", 0) == 0 and not wm.last_out_of_support.any()


def test_guarded_proposer_and_rollout_drop_what_the_data_never_showed():
    from cassandra_wm.planning.support import DataSupport, GuardedProposer, GuardedRollout, SupportGuard
    from cassandra_wm.planning.proposals import SpecProposer
    sup = DataSupport.from_transitions(SPEC, _toy_transitions(), margin=0.0)
    det = SimulatorDeterministic(FakeEnv())
    wm = WorldModel(SPEC, det, FakeBN(), support=sup)
    guard = SupportGuard(sup, det, SPEC, wm.counters)
    prop = GuardedProposer(SpecProposer(SPEC, det), guard)
    s = toy_state(money=1000.0)
    acts = prop.propose(s, np.random.default_rng(0), 200)
    names = {a["name"] for a in acts}
    assert "set_price" not in names  # never played in the data
    assert all(a["args"]["units"] <= 5 for a in acts if a["name"] == "buy")
    assert acts[0]["name"] == "wait"
    c = wm.counters_dict()
    assert c["proposals_out_of_support"] > 0 and c["proposals_checked"] >= len(acts)
    roll = GuardedRollout(lambda states, rng: [{"name": "buy", "args": {"units": 20}}] * len(states), guard,
                          {"name": "wait", "args": {}})
    assert roll([s, s], np.random.default_rng(0)) == [{"name": "wait", "args": {}}] * 2
    assert wm.counters_dict()["rollout_actions_out_of_support"] == 2
