"""DAG sampling with an LLM (algorithm 3): order respected, bad replies repaired with a logged reason."""
from __future__ import annotations

import json
import re

import pytest

from cassandra_wm.envs.base import EnvSpec, VariableSpec
from cassandra_wm.knowledge import LLMKnowledge
from cassandra_wm.llm.base import LLMError
from cassandra_wm.llm.scripted import ScriptedChat
from cassandra_wm.structure.dag import edges, is_acyclic
from cassandra_wm.structure.llm_dag import DagSample, elicit_parents, order_variables, sample_dag

SPEC = EnvSpec(
    name="toy_shop", manual="A toy shop. Happy customers come back. Customers make the shop dirty.",
    variables=(
        VariableSpec("price", "/price", "Price of a cup.", "deterministic"),
        VariableSpec("level", "/level", "Upgrade level.", "deterministic", integer=True),
        VariableSpec("satisfaction", "/sat", "How happy customers are.", "stochastic"),
        VariableSpec("customers", "/cust", "Customers served today.", "stochastic"),
        VariableSpec("cleanliness", "/clean", "How clean the shop is.", "stochastic"),
        VariableSpec("money", "/money", "Cash at closing.", "stochastic"),
    ),
    actions=())
NODES = ["satisfaction", "customers", "cleanliness", "money"]


def _remaining(messages) -> list[str]:
    m = re.search(r"one name from: ([^>]*)>", messages[-1]["content"])
    return [s.strip() for s in m.group(1).split(",")]


def _variable(messages) -> str:
    return re.match(r"Variable: (\w+):", messages[-1]["content"]).group(1)


def make_chat(order_answers: list, parent_answers: dict):
    """Scripted LLM: ordering replies in sequence, parents replies per variable."""
    answers = list(order_answers)

    def responder(messages, schema, **kw):
        if "next" in schema["properties"]:
            a = answers.pop(0)
            return a if isinstance(a, str) and not a.startswith("@") else {"reasoning": "r", "next": a[1:]}
        return parent_answers[_variable(messages)]
    return ScriptedChat(responder=responder, model="scripted-test")


def test_clean_sample_follows_the_llm_and_the_order():
    chat = make_chat(["@satisfaction", "@customers", "@cleanliness"],
                     {"customers": {"reasoning": "r", "parents": ["satisfaction"]},
                      "cleanliness": {"reasoning": "r", "parents": ["customers"]},
                      "money": {"reasoning": "r", "parents": ["customers", "satisfaction"]}})
    s = sample_dag(chat, SPEC, sample_index=3, temperature=0.7)
    assert s.order == ["price", "level", "satisfaction", "customers", "cleanliness", "money"]
    assert s.parents == {"satisfaction": [], "customers": ["satisfaction"], "cleanliness": ["customers"],
                         "money": ["customers", "satisfaction"]}
    assert s.repairs == []
    assert s.model == "scripted-test" and s.sample_index == 3
    # one call per ordering step except the forced last one, one per variable with candidates
    assert len(chat.requests) == 3 + 3
    assert all(r["sample_index"] == 3 and r["temperature"] == 0.7 for r in chat.requests)
    # the first ordering schema restricts the answer to the modelled variables
    assert chat.requests[0]["schema"]["properties"]["next"]["enum"] == NODES
    assert chat.requests[0]["schema"]["properties"]["reasoning"]["maxLength"] <= 200
    # candidates offered for money are exactly the earlier variables
    money_req = [r for r in chat.requests if "parents" in r["schema"]["properties"]
                 and _variable(r["messages"]) == "money"][0]
    assert money_req["schema"]["properties"]["parents"]["items"]["enum"] == ["satisfaction", "customers",
                                                                            "cleanliness"]
    assert DagSample.from_dict(json.loads(json.dumps(s.to_dict()))).parents == s.parents
    assert [r["forced"] for r in s.replies].count(True) == 2  # last order step, first variable's parents


def test_unknown_duplicate_and_garbage_order_replies_are_repaired_with_reasons():
    chat = make_chat(["@weather", "@price", "not json at all"],
                     {v: {"reasoning": "", "parents": []} for v in NODES})
    s = sample_dag(chat, SPEC, sample_index=0)
    assert sorted(s.order[2:]) == sorted(NODES) and s.order[:2] == ["price", "level"]
    reasons = [r["reason"] for r in s.repairs if r["stage"] == "order"]
    assert len(reasons) == 3
    assert "unknown variable 'weather'" in reasons[0]
    assert "'price' is already placed" in reasons[1]
    assert "random order seeded by sample 0" in reasons[2]
    # the repair is reproducible for a given sample index
    chat2 = make_chat(["@weather", "@price", "not json at all"],
                      {v: {"reasoning": "", "parents": []} for v in NODES})
    assert sample_dag(chat2, SPEC, sample_index=0).order == s.order


def test_parent_replies_are_cleaned_with_logged_reasons():
    chat = make_chat(["@satisfaction", "@customers", "@cleanliness"],
                     {"customers": {"parents": ["Satisfaction", "satisfaction", "money", "price", "customers",
                                                "moon_phase"]},
                      "cleanliness": "{broken",
                      "money": {"reasoning": "r", "parents": "customers, cleanliness"}})
    s = sample_dag(chat, SPEC)
    assert s.parents["customers"] == ["satisfaction"]
    assert s.parents["cleanliness"] == []
    assert s.parents["money"] == ["customers", "cleanliness"]
    assert is_acyclic(s.parents)
    text = " | ".join(f"{r['variable']}: {r['reason']}" for r in s.repairs)
    for expected in ["customers: matched 'Satisfaction' to 'satisfaction'",
                     "customers: dropped duplicate parent 'satisfaction'",
                     "customers: dropped 'money': it comes after customers",
                     "customers: dropped 'price': deterministic variables are always inputs",
                     "customers: dropped 'customers': a variable cannot be its own parent",
                     "customers: dropped unknown variable 'moon_phase'",
                     "cleanliness: ", "kept no parents",
                     "money: 'parents' was the string"]:
        assert expected in text, (expected, text)


def test_a_failing_chat_never_crashes_sampling():
    def responder(**kw):
        raise LLMError("server down")
    s = sample_dag(ScriptedChat(responder=responder), SPEC, sample_index=1)
    assert sorted(s.order[2:]) == sorted(NODES)
    assert all(v == [] for v in s.parents.values())
    assert all("server down" in r["reason"] for r in s.repairs)
    assert len(s.repairs) == 3 + 3


def test_order_variables_and_elicit_parents_directly():
    chat = make_chat(["@money", "@customers", "@cleanliness"], {})
    log: dict = {}
    order = order_variables(chat, SPEC, sample_index=2, log_to=log)
    assert order == ["price", "level", "money", "customers", "cleanliness", "satisfaction"]
    assert len(log["replies"]) == 4 and log["repairs"] == []
    chat = ScriptedChat(replies=[{"reasoning": "x", "parents": ["customers", "nope"]}])
    log = {}
    ps = elicit_parents(chat, SPEC, "money", ["customers", "satisfaction"], log_to=log)
    assert ps == ["customers"] and "nope" in log["repairs"][0]["reason"]
    with pytest.raises(ValueError):
        elicit_parents(chat, SPEC, "money", ["money"])
    with pytest.raises(KeyError):
        elicit_parents(chat, SPEC, "money", ["nothing_like_it"])


def test_samples_differ_by_index_and_knowledge_facade_uses_them():
    seen = []

    def responder(messages, schema, sample_index, **kw):
        seen.append(sample_index)
        if "next" in schema["properties"]:
            rem = _remaining(messages)
            return {"reasoning": "", "next": rem[sample_index % len(rem)]}
        cands = schema["properties"]["parents"]["items"]["enum"]
        return {"reasoning": "", "parents": cands[:1]}
    k = LLMKnowledge(ScriptedChat(responder=responder))
    s0, s1 = k.sample_dag(SPEC, sample_index=0), k.sample_dag(SPEC, sample_index=1)
    assert s0.order != s1.order
    for s in (s0, s1):
        pos = {v: i for i, v in enumerate(s.order)}
        assert all(pos[p] < pos[c] for p, c in edges(s.parents))
    assert set(seen) == {0, 1}


def test_json_with_raw_newlines_is_parsed_leniently_with_a_note():
    chat = make_chat(['{"reasoning": "first\nsecond", "next": "money"}', "@customers", "@cleanliness"],
                     {v: '{"reasoning": "a\tb", "parents": []}' for v in NODES})
    s = sample_dag(chat, SPEC)
    assert s.order[2] == "money"
    notes = [r for r in s.repairs if "parsed it leniently" in r["reason"]]
    assert len(notes) == 1 + 3  # the first ordering reply and the three parents replies
