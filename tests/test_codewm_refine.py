"""Error typing, the scores of algorithm 2, and the refinement loop of algorithm 1 with scripted LLM replies."""
import json
import random

import pytest

from cassandra_wm.codewm.errors import (E_EXEC, E_OD, E_PF, E_PS, Transition, culprit_functions, error_type,
                                        values_equal)
from cassandra_wm.codewm.evaluate import evaluate_code_model
from cassandra_wm.codewm.llm_code import propose_refinements
from cassandra_wm.codewm.model import CodeModel, CodeStore, make_function
from cassandra_wm.codewm.refine import (Refiner, ScoreOptions, item_score, odrs, pers, prepare,
                                        select_transitions)
from cassandra_wm.codewm.sandbox import ExecResult, Sandbox
from cassandra_wm.envs.base import ActionSpec, ArgSpec, EnvSpec, VariableSpec
from cassandra_wm.knowledge import LLMKnowledge
from cassandra_wm.llm import ScriptedChat

SPEC = EnvSpec(
    name="toy_shop",
    manual=("set_price(price) moves the price at most 2 away from the current one. upgrade() raises the level by "
            "one, at most to 3, and costs 100 times the new level."),
    variables=(VariableSpec("money", "/money", "cash", "stochastic", low=0),
               VariableSpec("price", "/price", "price of a cup", "deterministic", low=1, high=10),
               VariableSpec("level", "/level", "upgrade level", "deterministic", low=0, high=3, integer=True)),
    actions=(ActionSpec("set_price", "change the price", (ArgSpec("price", "float", low=1, high=10),)),
             ActionSpec("upgrade", "raise the level"), ActionSpec("wait", "do nothing")))


def toy_step(state, action, rng):
    """The toy simulator (ground truth for the tests; phi never sees this code)."""
    s = dict(state)
    valid, err = True, ""
    if action["name"] == "set_price":
        p = action["args"]["price"]
        if abs(p - state["price"]) > 2:
            valid, err = False, "price moves too far"
        else:
            s["price"] = p
    elif action["name"] == "upgrade":
        cost = 100 * (state["level"] + 1)
        if state["level"] >= 3:
            valid, err = False, "already at the top level"
        elif state["money"] < cost:
            valid, err = False, "not enough money"
        else:
            s["level"] = state["level"] + 1
            s["money"] = state["money"] - cost
    s["money"] = round(s["money"] + rng.uniform(-20, 60), 2)
    return s, valid, err


def make_transitions(n, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        st = {"money": round(rng.uniform(0, 600), 2), "price": round(rng.uniform(2, 8), 1), "level": rng.randint(0, 3)}
        r = rng.random()
        if r < 0.45:
            a = {"name": "upgrade", "args": {}}
        elif r < 0.85:
            a = {"name": "set_price", "args": {"price": round(min(10, max(1, st["price"] + rng.uniform(-3, 3))), 1)}}
        else:
            a = {"name": "wait", "args": {}}
        nxt, valid, err = toy_step(st, a, rng)
        out.append(Transition(st, a, valid, nxt, err, traj_id=seed, t=i))
    return out


UP_BUG = 'def upgrade(state, action):\n    return [{"op": "replace", "path": "/level", "value": state["level"] + 2}]\n'
UP_FIX = 'def upgrade(state, action):\n    return [{"op": "replace", "path": "/level", "value": state["level"] + 1}]\n'
UP_OVERFIT = 'def upgrade(state, action):\n    return [{"op": "replace", "path": "/level", "value": 1}]\n'
PRE_MONEY = ('def enough_money(state, action):\n    cost = 100 * (state["level"] + 1)\n'
             '    return state["money"] >= cost, "not enough money"\n')
PRE_MAX = 'def below_top(state, action):\n    return state["level"] < 3, "already at the top level"\n'
PRE_OVERFIT = 'def rich(state, action):\n    return state["money"] < 250, "too rich"\n'
SET_PRICE = 'def set_price(state, action):\n    return [{"op": "replace", "path": "/price", "value": action["args"]["price"]}]\n'
PRE_STEP = ('def small_step(state, action):\n    d = abs(action["args"]["price"] - state["price"])\n'
            '    return d <= 2, "price moves too far"\n')


def hand_phi(*parts):
    m = CodeModel(env_name="toy_shop")
    for kind, action, src in parts:
        m = m.with_function(make_function(kind, action, src, m, origin="hand"))
    return m


def buggy_phi():
    """Hand-written phi with two planted bugs: upgrade adds 2 levels, and the top level is not checked."""
    return hand_phi(("action", "upgrade", UP_BUG), ("precondition", "upgrade", PRE_MONEY),
                    ("action", "set_price", SET_PRICE), ("precondition", "set_price", PRE_STEP))


@pytest.fixture(scope="module")
def sandbox():
    sb = Sandbox(SPEC, call_timeout=0.5)
    yield sb
    sb.close()


def res(valid=True, price=3.0, level=1, errors=()):
    return ExecResult(valid=valid, det={"price": price, "level": level}, errors=list(errors))


# -- error typing ---------------------------------------------------------------------------

def test_each_error_type_is_detected():
    st = {"money": 500, "price": 3.0, "level": 1}
    ok = Transition(st, {"name": "upgrade", "args": {}}, True, {"money": 300, "price": 3.0, "level": 2})
    bad = Transition(st, {"name": "upgrade", "args": {}}, False, {"money": 510, "price": 3.0, "level": 1})
    assert error_type(SPEC, res(level=2), ok) is None
    assert error_type(SPEC, res(level=2, errors=[("act_upgrade", "boom")]), ok) == E_EXEC
    assert error_type(SPEC, res(valid=False, level=1), ok) == E_PF
    assert error_type(SPEC, res(valid=True, level=1), bad) == E_PS
    assert error_type(SPEC, res(level=3), ok) == E_OD
    # stochastic variables never count: money differs wildly but only deterministic ones are compared
    assert error_type(SPEC, res(valid=False, level=1), bad) is None


def test_error_types_from_the_sandbox(sandbox):
    trs = make_transitions(300, seed=1)
    types = {error_type(SPEC, r, t) for r, t in zip(sandbox.evaluate(buggy_phi(), [(t.state, t.action) for t in trs]), trs)}
    assert {E_OD, E_PS, None} <= types
    strict = hand_phi(("precondition", "upgrade", 'def no(state, action):\n    return False, "never"\n'))
    t_ok = next(t for t in trs if t.action["name"] == "upgrade" and t.valid)
    r, = sandbox.evaluate(strict, [(t_ok.state, t_ok.action)])
    assert error_type(SPEC, r, t_ok) == E_PF
    crash = hand_phi(("action", "upgrade", 'def up(state, action):\n    return state["nope"]\n'))
    r, = sandbox.evaluate(crash, [(t_ok.state, t_ok.action)])
    assert error_type(SPEC, r, t_ok) == E_EXEC and culprit_functions(crash, r, t_ok, E_EXEC) == ["act_upgrade"]


def test_values_equal_tolerance():
    assert values_equal(1, 1.0) and values_equal(2.0000000001, 2.0) and not values_equal(True, 1)
    assert not values_equal(float("nan"), float("nan")) and values_equal({"a": [1, 2]}, {"a": [1.0, 2.0]})


# -- algorithm 2 ------------------------------------------------------------------------------

def test_pers():
    assert pers(True, False, True) == 1
    assert pers(True, True, False) == -1
    assert pers(False, False, False) == 0
    assert pers(True, True, True, base_ok=False) == 1  # fixing a crashing precondition counts


def test_odrs_follows_the_true_changes():
    prev, true = {"price": 3.0, "level": 1}, {"price": 3.0, "level": 2}
    assert odrs(prev, true, {"price": 3.0, "level": 2}) == 1.0
    assert odrs(prev, true, {"price": 3.0, "level": 3}) == -1.0  # as far off as no change: not closer
    assert odrs(prev, true, {"price": 3.0, "level": 1}) == -1.0  # no change predicted
    # the pseudocode's literal "<=" gives "no change" a +1
    assert odrs(prev, true, {"price": 3.0, "level": 1}, opts=ScoreOptions(strict=False)) == 1.0
    # a spurious change of price is punished (unless count_spurious is off)
    assert odrs(prev, true, {"price": 9.0, "level": 2}) == 0.0
    assert odrs(prev, true, {"price": 9.0, "level": 2}, opts=ScoreOptions(count_spurious=False)) == 1.0
    assert odrs(prev, prev, prev) == 1.0 and odrs(prev, true, true, ok=False) == -1.0
    # categorical and nested values go through DeepDiff paths
    assert odrs({"a": {"m": "x"}}, {"a": {"m": "y"}}, {"a": {"m": "y"}}) == 1.0
    assert odrs({"a": {"m": "x"}}, {"a": {"m": "y"}}, {"a": {"m": "z"}}) == -1.0
    assert odrs({"l": [1]}, {"l": [1, 2]}, {"l": [1, 2]}) == -1.0  # not a values_changed difference


def test_item_score_uses_pers_or_odrs():
    st = {"money": 500, "price": 3.0, "level": 1}
    tr = Transition(st, {"name": "upgrade", "args": {}}, True, {"money": 300, "price": 3.0, "level": 2})
    s = prepare(SPEC, [tr])[0]
    m = CodeModel()
    assert item_score("action", s, m, res(level=3), m, res(level=2)) == 2.0
    assert item_score("precondition", s, m, res(valid=False, level=1), m, res(level=2)) == 1.0


def test_select_transitions_balances_validity():
    trs = make_transitions(200, seed=3)
    pick = select_transitions(trs, 40, valid_ratio=0.5, seed=0)
    assert len(pick) == 40 and sum(t.valid for t in pick) == 20
    rest = select_transitions(trs, 30, valid_ratio=None, seed=0, exclude={t.key() for t in pick})
    assert not {t.key() for t in rest} & {t.key() for t in pick}
    few_bad = [t for t in trs if t.valid][:30] + [t for t in trs if not t.valid][:3]
    assert sum(not t.valid for t in select_transitions(few_bad, 20, seed=0)) == 3
    with pytest.raises(ValueError):
        select_transitions(trs, 10, valid_ratio=1.5)


# -- algorithm 1 with scripted candidate refinements -----------------------------------------

def refinement(op, kind, action, code, fid=""):
    return {"operation": op, "function_id": fid, "kind": kind, "action": action or "", "description": "scripted",
            "code": code}


def responder(messages, **kw):
    """Scripted LLM: offers a right, an over-fitted and an unusable candidate per error type."""
    user = messages[-1]["content"]
    if "Error type: E_od" in user:
        return {"refinements": [refinement("replace", "action", "upgrade", UP_OVERFIT, "act_upgrade"),
                                refinement("replace", "action", "upgrade", UP_FIX, "act_upgrade"),
                                refinement("replace", "action", "upgrade", "I would change the level.", "act_upgrade")]}
    if "Error type: E_ps" in user and "action: upgrade()" in user:
        return {"refinements": [refinement("add", "precondition", "upgrade", PRE_OVERFIT),
                                refinement("add", "precondition", "upgrade", PRE_MAX),
                                refinement("remove", "precondition", "upgrade", "", "pre_not_there")]}
    return "Sorry, I cannot help with that."  # no JSON, no code


def test_planted_bugs_are_repaired(sandbox, tmp_path):
    trs = make_transitions(900, seed=7)
    train = select_transitions(trs[:300], 60, valid_ratio=0.5, seed=0)
    val = select_transitions(trs[300:600], 120, valid_ratio=None, seed=1)
    test = trs[600:]
    chat = ScriptedChat(responder=responder)
    know = LLMKnowledge(chat)
    model0 = buggy_phi()
    store = CodeStore(tmp_path / "codewm")
    store.save(model0, {"source": "hand-written with planted bugs"})
    before = evaluate_code_model(SPEC, sandbox, model0, test)["summary"]
    refiner = Refiner(SPEC, sandbox, lambda **kw: know.refine_code(SPEC, **kw), train, val, k=3,
                      store=store, progress=False)
    out = refiner.run(model0)
    after = evaluate_code_model(SPEC, sandbox, out.model, test)["summary"]
    assert before["all_correct"] < 0.9
    assert after["all_correct"] == 1.0 and after["sigma_acc"] == 1.0 and after["num_rmse_D"] == 0.0
    accepted = [l.accepted["refinement"] for l in out.loops if l.accepted]
    assert any("act_upgrade" in a for a in accepted) and any("below_top" in a for a in accepted)
    # the over-fitted candidates were scored and turned down, the unusable ones logged
    statuses = [c["status"] for l in out.loops for c in l.candidates]
    assert any("validation gate" in s for s in statuses)
    assert any("no function definition" in n or "unknown function" in n for l in out.loops for n in l.notes)
    # every accepted version is on disk and diffs against its parent
    assert store.versions() == list(range(len(accepted) + 1))
    d = store.diff(0, 1)
    assert d.startswith("--- phi v000") and ("+    return [{\"op\": \"replace\", \"path\": \"/level\", \"value\": state[\"level\"] + 1}]" in d
                                              or "below_top" in d)
    assert out.curve[-1]["correct"] > out.curve[0]["correct"]
    assert all(l.prompt_tokens > 0 for l in out.loops)


def test_validation_gate_rejects_a_candidate_that_only_fits_the_current_transition(sandbox):
    trs = make_transitions(600, seed=11)
    good = hand_phi(("action", "upgrade", UP_FIX), ("precondition", "upgrade", PRE_MONEY),
                    ("action", "set_price", SET_PRICE), ("precondition", "set_price", PRE_STEP))
    # the only failing training transition: an upgrade refused at the top level with money < 250
    cur = next(t for t in trs if t.action["name"] == "upgrade" and not t.valid and t.state["level"] == 3
               and t.state["money"] >= 400)
    val = [t for t in trs[:300] if t is not cur]

    def only_overfit(messages, **kw):
        return {"refinements": [refinement("add", "precondition", "upgrade",
                                           'def f(state, action):\n    return state["money"] < 400, "x"\n')]}

    chat = ScriptedChat(responder=only_overfit)
    out = Refiner(SPEC, sandbox, lambda **kw: propose_refinements(chat, SPEC, **kw), [cur], val, k=3,
                  progress=False).run(good)
    (loop,) = out.loops
    (cand,) = loop.candidates
    assert loop.error_type == E_PS and cand["rs"] == 1.0  # it does fix the current transition...
    assert cand["vs"] < 0 and "validation gate" in cand["status"]  # ...but breaks valid upgrades in V
    assert loop.accepted is None and out.model.version == good.version and len(out.model) == len(good)


def test_refinement_survives_garbage_and_failing_llm(sandbox):
    trs = make_transitions(200, seed=5)
    replies = iter(["", "```python\ndef broken(state, action)\n    return [\n```", json.dumps({"refinements": "x"}),
                    json.dumps({"refinements": [{"operation": "replace", "function_id": "act_upgrade", "code": "def upgrade(state, action):\n    return 5\n"}]})])

    def flaky(messages, **kw):
        nxt = next(replies, None)
        if nxt is None:
            raise RuntimeError("endpoint down")
        return nxt

    chat = ScriptedChat(responder=flaky)
    out = Refiner(SPEC, sandbox, lambda **kw: propose_refinements(chat, SPEC, **kw), trs[:100], trs[100:],
                  k=3, max_loops=5, progress=False).run(buggy_phi())
    assert len(out.loops) == 5 and all(l.accepted is None for l in out.loops)
    notes = " | ".join(n for l in out.loops for n in l.notes)
    assert "endpoint down" in notes and "salvaged" in notes
    cands = [c for l in out.loops for c in l.candidates]
    assert cands and all(c["status"] != "accepted" for c in cands)
    assert any("execution errors" in c["status"] for c in cands)


def test_refiner_rejects_bad_arguments(sandbox):
    with pytest.raises(ValueError, match="validation set V is empty"):
        Refiner(SPEC, sandbox, lambda **kw: None, make_transitions(5, 0), [], k=3)
    with pytest.raises(ValueError):
        Refiner(SPEC, sandbox, lambda **kw: None, [], make_transitions(5, 0), k=0)
