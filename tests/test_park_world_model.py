"""The park's world model: the code model with the simulator standing in, and every stochastic field outside
the network from independent conditionals (structure/independent.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cassandra_wm.envs import make_env
from cassandra_wm.envs.base import ActionSpec, ArgSpec, EnvSpec, VariableSpec
from cassandra_wm.structure.independent import IndependentFields, WithIndependentFields
from cassandra_wm.world_model import (CodeModelDeterministic, FallbackDeterministic, SimulatorDeterministic,
                                      WorldModel)

torch.set_num_threads(1)

SPEC = EnvSpec(
    name="toyshop", manual="A toy shop.",
    variables=(VariableSpec("money", "/money", "cash", "stochastic", low=-50.0),
               VariableSpec("price", "/price", "price", "deterministic", low=1.0, high=10.0)),
    actions=(ActionSpec("wait", "do nothing"),
             ActionSpec("set_price", "new price", (ArgSpec("price", "float", low=1.0, high=10.0),))),
)


class ToyEnv:
    spec = SPEC

    def check_action(self, state, action):
        return action, None

    def deterministic_step(self, state, action):
        price = action["args"]["price"] if action["name"] == "set_price" else state["price"]
        return {"price": price, "shelf": state["shelf"] + ["sim"]}, True, None


class Phi:
    """A code model that fails on prices above 5 (an execution error), and says 'phi' in what it returns."""
    name = "phi-v1"

    def predict(self, state, action):
        if action["name"] == "set_price" and action["args"]["price"] > 5:
            raise RuntimeError("E_exec: generated code failed")
        nxt = dict(state)
        if action["name"] == "set_price":
            nxt["price"] = action["args"]["price"] + 0.5  # phi's own (slightly wrong) rule: visible in the result
        return nxt, True, None


class KeepMoney:
    def sample(self, prev_states, actions, next_det, rng):
        return {"money": np.array([s["money"] for s in prev_states], dtype=float)}


def toy_state(price=3.0):
    return {"day": 0, "bankrupt": False, "money": 10.0, "price": price, "shelf": ["a"]}


def test_fallback_serves_the_rows_the_code_model_cannot_and_counts_them():
    sim = SimulatorDeterministic(ToyEnv())
    det = FallbackDeterministic(CodeModelDeterministic(Phi(), SPEC), sim)
    assert "code:phi-v1" in det.name and sim.name in det.name
    wm = WorldModel(SPEC, det, KeepMoney())
    acts = ["set_price(price=2.0)", "set_price(price=8.0)", "wait"]
    nxt, valid = wm.sample_next([toy_state()] * 3, acts, rng=np.random.default_rng(0))
    assert valid.tolist() == [True, True, True]          # the failing row is valid by the simulator, not refused
    assert [s["price"] for s in nxt] == [2.5, 8.0, 3.0]  # phi's rule, the simulator's, phi's
    c = wm.counters_dict()
    assert c["det_fallback_rows"] == 1 and c["det_rows:code:phi-v1"] == 2
    assert c.get("det_errors", 0) == 0


def test_fallback_takes_every_row_when_the_code_model_breaks_down():
    class Broken:
        name = "broken"

        def step(self, states, actions):
            raise MemoryError("generated code ran away")
    det = FallbackDeterministic(Broken(), SimulatorDeterministic(ToyEnv()))
    vals, ok, errs = det.step([toy_state(), toy_state()], [{"name": "wait", "args": {}}] * 2)
    assert ok.tolist() == [True, True] and det.last_counts["det_fallback_rows"] == 2
    with pytest.raises(TypeError, match="not a deterministic source"):
        FallbackDeterministic(object(), SimulatorDeterministic(ToyEnv()))


def test_code_model_with_structure_keeps_phis_variables_and_the_structures_lists():
    det = CodeModelDeterministic(Phi(), SPEC, structure=SimulatorDeterministic(ToyEnv()))
    vals, ok, _ = det.step([toy_state()], [{"name": "set_price", "args": {"price": 2.0}}])
    assert vals[0]["price"] == 2.5            # the variable from phi
    assert vals[0]["shelf"] == ["a", "sim"]   # the list the code model does not return, from the structure
    assert det.last_counts == {"det_validity_disagreements": 0}
    with pytest.raises(TypeError, match="structure"):
        CodeModelDeterministic(Phi(), SPEC, structure=object())


# -- the theme park's fields outside the network ----------------------------------------------------

@pytest.fixture(scope="module")
def park_fit():
    from cassandra_wm import data
    env = make_env("theme_park")
    recs = data.collect(env, "heuristic", n_trajectories=3, horizon=6, seed=3, progress=False)
    train, val = [r for r in recs if r["traj_id"] != 2], [r for r in recs if r["traj_id"] == 2]
    nodes = list(env.spec.bn_variables)
    fields = IndependentFields.fit(env.spec, train, val, exclude=nodes + ["bankrupt"]
                                   if "bankrupt" in env.spec.variable_names() else nodes, seed=0,
                                   fit_kwargs={"max_epochs": 3})
    from cassandra_wm.structure.bn import BayesNet
    net = BayesNet(env.spec, {v: [] for v in nodes}, nodes=nodes, seed=0, max_epochs=3)
    net.fit(train, val)
    return env, train, fields, nodes, net


def test_park_fields_outside_the_network_are_sampled_not_frozen(park_fit, tmp_path):
    env, train, fields, nodes, net = park_fit
    assert fields.items and fields.scalars and not set(fields.spec_nodes) & set(nodes)
    assert not {"/game_over", "/bankrupt", "/step"} & set(fields.scalars)  # bookkeeping is not sampled
    state = train[-1]["next_state"]
    g = torch.Generator().manual_seed(0)
    x = fields.encode([state] * 4, ["wait"] * 4, [state] * 4)
    out = [dict(state) for _ in range(4)]
    counts = fields.write_fields(out, x, g)
    assert isinstance(counts, dict)
    changed = [name for name in fields.items
               if any(a != b for s in out for a, b in zip(*(_column(t, name) for t in (state, s))))]
    assert changed, "no item field moved: the fields are frozen"
    assert state["rides"]["ride_list"] is train[-1]["next_state"]["rides"]["ride_list"]  # input untouched
    # save and load give the same draws
    fields.save(tmp_path / "f")
    again = IndependentFields.load(tmp_path / "f", env.spec)
    a = [dict(state) for _ in range(4)]
    b = [dict(state) for _ in range(4)]
    fields.write_fields(a, x, torch.Generator().manual_seed(5))
    again.write_fields(b, again.encode([state] * 4, ["wait"] * 4, [state] * 4), torch.Generator().manual_seed(5))
    assert a == b
    with pytest.raises(FileNotFoundError, match="fields.json"):
        IndependentFields.load(tmp_path / "nothing", env.spec)


def _column(state, name):
    from cassandra_wm.envs.base import get_path
    ptr, _, f = name.partition("/*/")
    return [it.get(f) for it in get_path(state, ptr)]


def test_park_world_model_with_independent_fields(park_fit):
    env, train, fields, nodes, net = park_fit
    model = WithIndependentFields(net, fields)
    assert model.guarded_nodes == nodes and model.parents == net.parents  # the network's, passed through
    with pytest.raises(RuntimeError, match="follow sample"):
        model.write_fields([{}])
    wm = WorldModel(env.spec, SimulatorDeterministic(env), model, name="frozen+fields")
    s = train[-1]["next_state"]
    nxt, valid = wm.sample_next([s], ["wait"], n=6, rng=np.random.default_rng(0))
    assert valid.all() and len(nxt) == 6
    c = wm.counters_dict()
    assert c["field_rows"] == 6 and c["network_rows"] == 6
    assert len({str(_column(x, "/paths/*/cleanliness")) for x in nxt}) > 1  # rows differ: sampled per row
    from cassandra_wm.structure.bn import BayesNet
    both = BayesNet(env.spec, {}, nodes=fields.spec_nodes[:1], seed=0, max_epochs=1)
    with pytest.raises(ValueError, match="both model"):
        WithIndependentFields(both, fields)
