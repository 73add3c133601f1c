"""Prompts and reply parsing of the code stream, with scripted replies (good, weak and garbage)."""
import json

import pytest

from cassandra_wm.codewm.errors import E_EXEC, E_OD, E_PS, Transition, error_type
from cassandra_wm.codewm.llm_code import (INIT_ACTION_SCHEMA, REFINE_SCHEMA, clean_code, estimate_tokens,
                                          example_state, fit_messages, init_action_messages, init_code,
                                          parse_refinements, prompt_budget, propose_refinements, refine_messages,
                                          salvage_code)
from cassandra_wm.codewm.model import CodeModel, make_function
from cassandra_wm.codewm.sandbox import ExecResult, Sandbox
from cassandra_wm.envs.base import ActionSpec, ArgSpec, EnvSpec, VariableSpec
from cassandra_wm.knowledge import LLMKnowledge
from cassandra_wm.llm import Reply, ScriptedChat

SPEC = EnvSpec(
    name="toy_shop", manual="A toy shop. The price moves at most 2 per day. Upgrades cost 100 per level.",
    variables=(VariableSpec("money", "/money", "cash", "stochastic", low=0),
               VariableSpec("price", "/shop/price", "price of a cup", "deterministic", low=1, high=10),
               VariableSpec("level", "/shop/level", "upgrade level", "deterministic", low=0, high=3, integer=True)),
    actions=(ActionSpec("set_price", "change the price", (ArgSpec("price", "float", low=1, high=10),)),
             ActionSpec("upgrade", "raise the level")))

GOOD_SET_PRICE = {
    "action_name": "set_price", "action_description": "sets the price",
    "code": "def set_price(state, action):\n    return [{\"op\": \"replace\", \"path\": \"/shop/price\", \"value\": action[\"args\"][\"price\"]}]",
    "preconditions": [{"precondition_description": "small step",
                       "code": "def small_step(state, action):\n    return abs(action['args']['price'] - state['shop']['price']) <= 2, 'too far'"}],
}


def test_example_state_comes_from_the_spec_only():
    assert example_state(SPEC) == {"money": 0, "shop": {"price": 1, "level": 0}}


def test_init_prompt_has_the_appendix_structure():
    msgs = init_action_messages(SPEC, "set_price")
    sys_text, user = msgs[0]["content"], msgs[1]["content"]
    for piece in (SPEC.manual, "/shop/price", "JSON PATCH", "precondition: def", "dynamic: def",
                  "ONLY these deterministic variables: /shop/price (price), /shop/level (level)", '"preconditions"',
                  "State shape"):
        assert piece in sys_text, piece
    assert "set_price(price: float in [1, 10])" in user
    assert "money (stochastic" in sys_text


def test_prompts_fit_a_context_budget():
    long_spec = EnvSpec(
        name="long", manual="\n\n".join([f"Story paragraph {i} about the weather and the guests. " * 8 for i in range(12)]
                                         + ["set_price(price) may move the price by at most 2 per day."]),
        variables=SPEC.variables, actions=SPEC.actions)
    full = init_action_messages(long_spec, "set_price")
    msgs, note = fit_messages(lambda man, dc: init_action_messages(long_spec, "set_price", None, man, dc), long_spec, 900)
    assert estimate_tokens(msgs) <= 900 < estimate_tokens(full) and "shortened" in note
    # the paragraph about the action survives, story paragraphs go first
    assert "may move the price by at most 2" in msgs[0]["content"] and "left out" in msgs[0]["content"]
    assert fit_messages(lambda man, dc: init_action_messages(long_spec, "set_price", None, man, dc), long_spec, None)[1] is None
    assert prompt_budget(ScriptedChat(replies=["x"]), 500) is None
    assert prompt_budget(ScriptedChat(replies=["x"]), 500, context_tokens=2048) == 2048 - 500 - 48
    chat = ScriptedChat(replies=[GOOD_SET_PRICE, "no", "no"])
    out = init_code(chat, long_spec, progress=False, context_tokens=1400, max_tokens=400)
    assert all(estimate_tokens(r["messages"]) <= 1400 - 400 for r in chat.requests)
    assert any("shortened" in n for e in out.log for n in e["notes"])


def test_init_code_with_good_weak_and_garbage_replies():
    replies = [
        GOOD_SET_PRICE,  # set_price: a proper answer
        "I think upgrading is good for business!",  # upgrade: no JSON and no code
        {"dynamic_description": "nothing changes", "code": "def dyn(state)\n    return []"},  # does not parse
    ]
    chat = ScriptedChat(replies=replies, model="scripted-llm")
    out = LLMKnowledge(chat).init_code(SPEC, progress=False)
    m = out.model
    assert set(m.functions) == {"act_set_price", "pre_set_price_small_step", "dyn"}
    assert m.llm == "scripted-llm" and m.functions["act_set_price"].origin == "llm"
    assert "upgrade" in m.empty_actions and "salvaged 0 code block" in m.empty_actions["upgrade"]
    dyn_log = [e for e in out.log if e["part"] == "dynamic"][0]
    assert any("will fail in the sandbox" in n and "syntax error" in n for n in dyn_log["notes"])
    assert out.usage["calls"] == 3 and out.usage["prompt_tokens"] > 0
    # JSON output was asked for with a schema, and the init prompts used no data
    assert chat.requests[0]["schema"] == INIT_ACTION_SCHEMA
    # the unparsable dynamic function is an E_exec error, the missing upgrade code predicts no change
    st = {"money": 10, "shop": {"price": 3.0, "level": 1}}
    with Sandbox(SPEC) as sb:
        r1, r2 = sb.evaluate(m, [(st, {"name": "set_price", "args": {"price": 4.0}}), (st, {"name": "upgrade", "args": {}})])
    assert r1.det["price"] == 4.0 and r1.errors[0][0] == "dyn" and "syntax error" in r1.errors[0][1]
    assert r2.det["level"] == 1
    tr = Transition(st, {"name": "upgrade", "args": {}}, True, {"money": 0, "shop": {"price": 3.0, "level": 2}})
    assert error_type(SPEC, r2, tr) == E_EXEC


def test_init_code_survives_a_failing_client():
    def down(messages, **kw):
        raise ConnectionError("no server")
    out = init_code(ScriptedChat(responder=down), SPEC, progress=False)
    assert len(out.model) == 0 and set(out.model.empty_actions) == {"set_price", "upgrade"}
    assert "no server" in out.model.empty_actions["upgrade"]


def test_init_code_rejects_unknown_actions():
    with pytest.raises(KeyError, match="no action named"):
        init_code(ScriptedChat(replies=[]), SPEC, actions=["fly"], progress=False)


def test_salvage_from_truncated_json_and_fences():
    text = '{"action_name": "upgrade", "code": "def up(state, action):\\n    return []", "preconditions": [{"code": "def p(st'
    assert salvage_code(text) == ["def up(state, action):\n    return []\n"]
    assert salvage_code("Here:\n```python\ndef f(state):\n    return []\n```\nDone") == ["def f(state):\n    return []\n"]
    assert clean_code("<code>\n```python\n    def f(state):\n        return []\n```\n</code>") == "def f(state):\n    return []\n"
    assert clean_code("def f(state):\\n    return []") == "def f(state):\n    return []\n"
    assert clean_code(None) == ""


def _model():
    m = CodeModel(env_name="toy_shop")
    for kind, action, src in [("action", "upgrade", "def up(state, action):\n    return []\n"),
                              ("precondition", "upgrade", "def money(state, action):\n    return True, 'ok'\n")]:
        m = m.with_function(make_function(kind, action, src, m))
    return m


def _tr(valid=False):
    st = {"money": 10, "shop": {"price": 3.0, "level": 3}}
    return Transition(st, {"name": "upgrade", "args": {}}, valid, st, "already at the top level")


def test_refine_prompt_shows_the_failure_and_the_functions():
    m, tr = _model(), _tr()
    r = ExecResult(valid=True, det={"price": 3.0, "level": 3})
    msgs = refine_messages(SPEC, m, tr, r, E_PS, ["pre_upgrade_money"], k=3)
    user = msgs[1]["content"]
    assert "Error type: E_ps" in user and "already at the top level" in user and "function_id: pre_upgrade_money" in user
    assert "Propose 3 refinements" in user and "act_upgrade" in user
    assert "- replace: an existing function" in msgs[0]["content"] and "\"refinements\"" in msgs[0]["content"]


def test_parse_refinements_reads_lenient_and_drops_bad_items():
    m, tr = _model(), _tr()
    reply = Reply(text=json.dumps({"refinements": [
        {"operation": "Add", "kind": "Precondition", "action": "upgrade", "description": "top",
         "code": "def top(state, action):\n    return state['shop']['level'] < 3, 'top'"},
        {"operation": "delete", "function_id": "pre_upgrade_money"},
        {"operation": "modify", "function_id": "wrong_id", "code": "def up(state, action):\n    return []"},
        {"operation": "replace", "function_id": "act_upgrade", "code": "no code here"},
        {"operation": "add", "action": "fly", "kind": "action", "code": "def f(state, action):\n    return []"},
        {"operation": "teleport"},
        "text",
    ]}))
    refs, notes = parse_refinements(reply, SPEC, m, tr, E_PS, culprits=["pre_upgrade_money"], k=5)
    assert [r.op for r in refs] == ["add", "remove", "replace"]
    assert refs[0].function.kind == "precondition" and refs[0].function.action == "upgrade"
    assert refs[2].target == "pre_upgrade_money" and "read as" in refs[2].note
    joined = " | ".join(notes)
    assert "no function definition" in joined and "unknown action 'fly'" in joined
    assert "unknown operation" in joined and "not an object" in joined
    # k caps the number of candidates
    refs, notes = parse_refinements(reply, SPEC, m, tr, E_PS, culprits=["pre_upgrade_money"], k=1)
    assert len(refs) == 1 and any("only the first 1" in n for n in notes)


def test_refinement_apply_semantics():
    m = _model()
    f_act = make_function("action", "upgrade", "def up2(state, action):\n    return []\n", m)
    added = parse_refinements(Reply(text=json.dumps({"refinements": [
        {"operation": "add", "kind": "action", "action": "upgrade", "code": f_act.source}]})),
        SPEC, m, _tr(True), E_OD)[0][0]
    new = added.apply(m)
    # a second action function for the same action replaces the first one
    assert [f.fid for f in new.functions.values() if f.kind == "action"] == ["act_upgrade"]
    assert new.functions["act_upgrade"].name == "up2" and new.version == m.version + 1
    assert m.functions["act_upgrade"].name == "up"  # the original is untouched


def test_propose_refinements_records_usage_and_asks_for_json():
    m, tr = _model(), _tr()
    chat = ScriptedChat(replies=[{"refinements": []}])
    p = propose_refinements(chat, SPEC, m, tr, ExecResult(True, {"price": 3.0, "level": 3}), E_PS,
                            culprits=["pre_upgrade_money"], k=3)
    assert p.candidates == [] and p.notes == ["reply held no refinements"]
    assert p.usage["prompt_tokens"] > 0 and chat.requests[0]["schema"] == REFINE_SCHEMA


def test_json_with_raw_newlines_in_strings_is_read():
    text = '{"action_name": "upgrade", "action_description": "up", "code": "def up(state, action):\n    return []", "preconditions": []}'
    fns, notes = __import__("cassandra_wm.codewm.llm_code", fromlist=["x"]).parse_action_reply(
        Reply(text=text), "upgrade", CodeModel())
    assert [f.fid for f in fns] == ["act_upgrade"] and fns[0].source == "def up(state, action):\n    return []\n"
