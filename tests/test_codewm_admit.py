"""Admission on spec-built probes, the removal gate, and refinement from injected faults."""
from __future__ import annotations

import pytest

from cassandra_wm import data
from cassandra_wm.codewm.admit import admit, check_function, function_report, probe_actions, probe_items, probe_states
from cassandra_wm.codewm.errors import Transition
from cassandra_wm.codewm.evaluate import evaluate_code_model
from cassandra_wm.codewm.faults import ScriptedFixer, inject_faults, reference_model, repair_run
from cassandra_wm.codewm.model import CodeModel, make_function
from cassandra_wm.codewm.refine import Refiner
from cassandra_wm.codewm.sandbox import Sandbox
from cassandra_wm.envs import make_env

ENV = make_env("coffee_shop")
SPEC = ENV.spec


@pytest.fixture(scope="module")
def sandbox():
    sb = Sandbox(SPEC)
    yield sb
    sb.close()


@pytest.fixture(scope="module")
def transitions():
    recs = data.collect(make_env("coffee_shop"), "heuristic", 12, 20, seed=3, progress=False)
    trs = [Transition.from_record(r) for r in recs]
    return ([t for t in trs if t.traj_id % 3 == 0], [t for t in trs if t.traj_id % 3 == 1],
            [t for t in trs if t.traj_id % 3 == 2])


def test_probes_come_from_the_spec_alone():
    states = probe_states(SPEC, n_random=3, seed=1)
    assert len(states) == 5
    for st in states:
        assert {v.name for v in SPEC.variables} <= set(st) and "day" in st
        assert all(v.in_bounds(st[v.name]) for v in SPEC.variables)
    assert states[0]["price"] == 1.0 and states[1]["price"] == 10.0 and states[1]["upgrade_level"] == 5
    acts = probe_actions(SPEC)
    assert {a["name"] for a in acts} == {a.name for a in SPEC.actions}
    prices = sorted(a["args"]["price"] for a in acts if a["name"] == "set_price")
    assert prices == [1.0, 5.5, 10.0]
    assert len(probe_items(SPEC, n_random=3)) == len(states) * len(acts)


def fn(kind, action, src, fid):
    return make_function(kind, action, src, fid=fid)


def test_admission_drops_functions_that_cannot_run(sandbox):
    m = CodeModel(env_name="coffee_shop")
    for f in [fn("dynamic", None, "def dynamic(state):\n    ...\n", "dyn"),  # the template copy: returns None
              fn("action", "set_price", "def set_price(state, action):\n    return [{'op': 'replace', 'path': "
                 "'/price', 'value': action['args']['price']}]\n", "act_set_price"),
              fn("precondition", "set_price", "def rule_name(state, action):\n    ok = ...\n    return ok\n", "pre_bad"),
              fn("precondition", "clean", "def broken(state, action)\n    return True, ''\n", "pre_syntax"),
              fn("precondition", "upgrade", "def top(state, action):\n    return state['upgrade_level'] < 5, 'top'\n",
                 "pre_top"),
              fn("action", "buy_milk", "def buy_milk(state, action):\n    return [{'op': 'replace', 'path': "
                 "'/money', 'value': 0}]\n", "act_milk")]:  # patches a stochastic variable
        m = m.with_function(f)
    out, rep = admit(SPEC, sandbox, m, n_random=2)
    assert sorted(rep.dropped) == ["act_milk", "dyn", "pre_bad", "pre_syntax"]
    assert set(out.functions) == {"act_set_price", "pre_top"}
    assert "clean" in out.empty_actions and "buy_milk" in out.empty_actions
    counts = {r["kind"]: r for r in rep.counts()}
    assert counts["precondition"] == {"kind": "precondition", "generated": 3, "compile": 2, "run": 1, "admitted": 1}
    assert counts["dynamic"]["generated"] == 1 and counts["dynamic"]["admitted"] == 0
    reasons = {f["fid"]: f["reason"] for f in rep.functions}
    assert "JSON patch" in reasons["dyn"] or "list" in reasons["dyn"]
    assert out.notes["admission"]["dropped"] == rep.dropped


def test_the_reference_model_is_right_and_fully_admitted(sandbox, transitions):
    ref = reference_model()
    out, rep = admit(SPEC, sandbox, ref)
    assert rep.dropped == [] and len(out) == len(ref)
    for trs in transitions:
        assert evaluate_code_model(SPEC, sandbox, ref, trs)["summary"]["all_correct"] == 1.0
    rows = {r["kind"]: r for r in function_report(SPEC, sandbox, ref, transitions[2], rep)}
    assert rows["precondition"]["correct"] == rows["precondition"]["generated"] == 15
    with pytest.raises(ValueError):
        reference_model("theme_park")


def test_removal_gate_drops_harmful_code_and_keeps_good_code(sandbox, transitions):
    train, val, _ = transitions
    bad = fn("precondition", "set_price", "def never(state, action):\n    return False, 'never'\n", "pre_never")
    m = reference_model().with_function(bad)
    refiner = Refiner(SPEC, sandbox, lambda **kw: None, train, val, progress=False)
    pruned, rows = refiner.prune(m)
    assert [r["function"] for r in rows] == ["pre_never"] and rows[0]["vs"] > 0
    assert set(pruned.functions) == set(reference_model().functions)


def test_candidates_must_pass_the_probes(sandbox, transitions):
    train, val, _ = transitions
    crash = fn("action", "upgrade", "def upgrade(state, action):\n    return 1 / 0\n", "act_upgrade")
    assert "ZeroDivisionError" in check_function(sandbox, crash, probe_items(SPEC, 1))
    fault = next(f for f in inject_faults() if f.target == "act_upgrade")

    def propose(model, transition, **kw):
        from cassandra_wm.codewm.model import Proposal, Refinement
        return Proposal(candidates=[Refinement("replace", target="act_upgrade", function=crash), fault.fix])

    refiner = Refiner(SPEC, sandbox, propose, train, val, max_loops=1, progress=False, probes=probe_items(SPEC, 1))
    out = refiner.run(fault.model)
    statuses = [c["status"] for c in out.loops[0].candidates]
    assert statuses[0].startswith("not admitted") and statuses[1] == "accepted"


def test_scripted_expert_repairs_and_the_gate_rejects_decoys(sandbox, transitions):
    train, val, test = transitions
    faults = {f.target + "|" + f.kind: f for f in inject_faults()}
    f = faults["act_set_price|dropped effect"]
    row = repair_run(SPEC, sandbox, f, ScriptedFixer(f, p_fix=1.0, seed=0), train, val, test)
    assert row["repairable"] and row["repaired"] and row["fix_accepted"] == 1
    assert row["decoys_accepted"] == 0 and row["worsened_val"] == 0
    none = repair_run(SPEC, sandbox, f, ScriptedFixer(f, p_fix=0.0, seed=0), train, val, test, max_loops=3)
    assert not none["repaired"] and none["fix_offered"] == 0 and none["worsened_val"] == 0
    assert len(inject_faults()) == 12
    with pytest.raises(ValueError):
        ScriptedFixer(f, p_fix=1.5)


def test_code_calls_ask_for_no_repeat_penalty_when_the_client_can():
    from cassandra_wm.codewm.llm_code import _sampling_kwargs
    from cassandra_wm.llm.scripted import ScriptedChat

    class WithPenalty(ScriptedChat):
        def chat(self, messages, repeat_penalty=None, **kw):
            self.seen = repeat_penalty
            return super().chat(messages, **kw)

    assert _sampling_kwargs(ScriptedChat(replies=["x"])) == {}
    assert _sampling_kwargs(WithPenalty(replies=["x"])) == {"repeat_penalty": 1.0}
