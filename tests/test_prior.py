"""The LLM structure prior: reading yes/no from log-probabilities, fallbacks, caching."""
from __future__ import annotations

import json
import math

import pytest

from cassandra_wm.llm.base import LLMError, Reply, TokenLogprob
from cassandra_wm.llm.scripted import ScriptedChat
from cassandra_wm.structure.prior import (MIN_LOGP, NEUTRAL_P, EdgeFrequencyPrior, LLMPrior, answer_logprob,
                                          candidate_parent_sets, log_sigmoid, logit_of, prior_prompt)

from test_llm_dag import NODES, SPEC


def toks(pieces, answer_top=None, answer_index=None):
    """TokenLogprobs for ``pieces``; the answer position gets ``answer_top`` alternatives."""
    out = []
    for i, p in enumerate(pieces):
        top = answer_top if i == answer_index else [(p, -0.01)]
        lp = dict(top).get(p, -0.01) if top else -0.01
        out.append(TokenLogprob(p, lp, list(top or [])))
    return out


def reply_with(pieces, answer_top, answer_index, parsed=True):
    text = "".join(pieces)
    return Reply(text=text, parsed={"answer": parsed} if parsed is not None else None,
                 token_logprobs=toks(pieces, answer_top, answer_index))


def test_yes_probability_is_renormalised_over_true_and_false():
    pieces = ['{"', "answer", '":', " true", "}"]
    lp, why = answer_logprob("".join(pieces), toks(pieces, [(" true", -0.2), (" false", -1.8), ('"', -4.0)], 3))
    assert lp == pytest.approx(-0.2 - math.log(math.exp(-0.2) + math.exp(-1.8)))
    assert "renormalised" in why
    # the value may share a token with the colon, and split tokens ('t', 'tr') count for their word
    pieces = ['{"answer', '": false', "}"]
    top = [('": false', -0.1), ('": t', -2.5), ('": tr', -3.0), ('": null', -3.5)]
    lp, _ = answer_logprob("".join(pieces), toks(pieces, top, 1))
    yes = math.log(math.exp(-2.5) + math.exp(-3.0))
    assert lp == pytest.approx(yes - math.log(math.exp(yes) + math.exp(-0.1)))


def test_answer_is_found_after_a_reasoning_field_that_mentions_answer():
    pieces = ['{"reasoning": "', 'the "answer": false is wrong', '", "', 'answer', '": ', 'true', '}']
    lp, _ = answer_logprob("".join(pieces), toks(pieces, [("true", -0.5), ("false", -0.9)], 5))
    assert lp == pytest.approx(-0.5 - math.log(math.exp(-0.5) + math.exp(-0.9)))


def test_one_sided_alternatives_use_the_smallest_shown_logprob():
    pieces = ['{"answer": ', "true", "}"]
    lp, why = answer_logprob("".join(pieces), toks(pieces, [("true", -0.05), ("1", -3.0), ("null", -7.0)], 1))
    assert lp == pytest.approx(-0.05 - math.log(math.exp(-0.05) + math.exp(-7.0)))
    assert "false not among" in why


def test_unreadable_replies_give_none_with_a_reason():
    assert answer_logprob('{"answer": true}', None)[0] is None
    assert answer_logprob("garbage", toks(["gar", "bage"], None, None))[1] == "no 'answer' field in the reply"
    pieces = ['{"answer": ', "maybe", "}"]
    lp, why = answer_logprob("".join(pieces), toks(pieces, [("maybe", -0.1), ("perhaps", -2.0)], 1))
    assert lp is None and "neither true nor false" in why
    assert answer_logprob('{"answer": ', toks(['{"answer": '], None, None))[0] is None


def _prior(chat, tmp_path=None, **kw):
    return LLMPrior(chat, SPEC, cache_path=(tmp_path / "prior.json") if tmp_path else None, **kw)


def parents_in(prompt: str) -> list[str]:
    same = prompt.split("today's values of: ")[1].split(".\n")[0]
    return [] if same == "no other variable" else same.split(", ")


def biased_responder(knowledge, bias=1.5):
    """p(yes) = sigmoid(knowledge(node, parents) +- bias): +bias when 'true' is listed first."""
    def responder(messages, **kw):
        user = messages[-1]["content"]
        node = user.split(":")[1].strip()
        x = knowledge(node, parents_in(user)) + (bias if '{"answer": true} or' in user else -bias)
        lp_yes = log_sigmoid(x)
        lp_no = log_sigmoid(-x)
        pieces = ['{"answer": ', "true" if x > 0 else "false", "}"]
        return reply_with(pieces, [("true", lp_yes), ("false", lp_no)], 1)
    return responder


def test_the_first_order_keeps_the_original_wording():
    """The shipped answers were recorded with this prompt; the true-first question must not change."""
    text = prior_prompt(SPEC, "money", ["customers"], ["price"], False, "true_first")
    assert text.endswith('Answer as {"answer": true} or {"answer": false}.')
    other = prior_prompt(SPEC, "money", ["customers"], ["price"], False, "false_first")
    assert other.endswith('Answer as {"answer": false} or {"answer": true}.')
    assert text[:-40] == other[:-40]
    with pytest.raises(ValueError):
        prior_prompt(SPEC, "money", [], [], False, "sideways")


def test_both_orders_cancel_the_order_bias_and_terms_are_centred(tmp_path):
    def knows(node, ps):  # the model truly likes exactly one parent set per node
        return 2.0 if (node, ps) == ("money", ["customers"]) else -1.0
    chat = ScriptedChat(responder=biased_responder(knows, bias=1.5), model="scripted-prior")
    prior = _prior(chat, tmp_path)
    rec = prior.node_record("money", ["customers"])
    assert rec["usable"] and rec["logit"] == pytest.approx(2.0)  # +-1.5 cancels
    assert rec["answers"]["true_first"]["p_yes"] > rec["answers"]["false_first"]["p_yes"]
    assert len(chat.requests) == 2 and all(r["logprobs"] and r["max_tokens"] <= 16 for r in chat.requests)
    # centring: the node's terms average to zero over its candidate parent sets
    sets = candidate_parent_sets(NODES, "money")
    assert len(sets) == 8
    terms = [prior.node_log_prior("money", list(s)) for s in sets]
    assert sum(terms) == pytest.approx(0.0, abs=1e-9)
    assert prior.node_log_prior("money", ["customers"]) == max(terms)
    # a graph's prior is the sum of its node terms; centring only shifts each node by a constant
    g1 = {"satisfaction": [], "customers": ["satisfaction"], "cleanliness": [], "money": ["customers"]}
    g2 = dict(g1, money=["customers", "satisfaction"])
    raw = _prior(ScriptedChat(responder=biased_responder(knows, 1.5), model="scripted-prior"), centre=False)
    assert prior.log_prior(g1) - prior.log_prior(g2) == pytest.approx(raw.log_prior(g1) - raw.log_prior(g2))
    assert prior.log_prior(g1) == pytest.approx(sum(prior.node_terms(g1).values()))
    # the paper's single question keeps the bias
    paper = _prior(ScriptedChat(responder=biased_responder(knows, 1.5), model="scripted-prior"),
                   orders=("true_first",), centre=False)
    assert paper.node_record("money", ["customers"])["logit"] == pytest.approx(3.5)
    assert paper.node_log_prior("money", ["customers"]) == pytest.approx(log_sigmoid(3.5))
    s = prior.summary()
    assert s["usable_answers"] == s["answers"] and s["unusable_questions"] == 0
    assert [r["n_parents"] for r in prior.table(["money"])] == [len(x) for x in sets]


def test_answers_are_cached_on_disk_by_model_and_order(tmp_path):
    chat = ScriptedChat(responder=biased_responder(lambda n, ps: -len(ps)), model="scripted-prior")
    prior = _prior(chat, tmp_path)
    prior.prefetch(progress=False)
    n = len(chat.requests)
    assert n == 2 * sum(len(candidate_parent_sets(NODES, v)) for v in NODES)
    again = _prior(ScriptedChat(responder=biased_responder(lambda n, ps: -len(ps)), model="scripted-prior"), tmp_path)
    g = {v: [] for v in NODES}
    assert again.log_prior(g) == pytest.approx(prior.log_prior(g))
    assert again.calls == 0
    other = ScriptedChat(responder=biased_responder(lambda n, ps: -len(ps)), model="another-model")
    third = _prior(other, tmp_path)
    third.node_record("money", [])
    third.flush()
    assert len(other.requests) == 2
    assert len(json.loads((tmp_path / "prior.json").read_text())) == 2


@pytest.mark.parametrize("mode", ["off", "replay"])
def test_the_cache_file_obeys_the_cache_mode(tmp_path, monkeypatch, mode):
    monkeypatch.setenv("CASSANDRA_LLM_CACHE", mode)
    chat = ScriptedChat(responder=biased_responder(lambda n, ps: 0.3), model="scripted-prior")
    prior = _prior(chat, tmp_path)
    prior.prefetch(["money"], progress=False)
    prior.save()
    assert not (tmp_path / "prior.json").exists()
    assert prior.cache_mode == mode


def test_unusable_answers_are_neutral_counted_and_never_crash(tmp_path):
    good = reply_with(['{"answer": ', "false", "}"], [("false", -0.1), ("true", -2.5)], 1)
    replies = [Reply(text='{"answer": true}', parsed={"answer": True}, token_logprobs=None),  # no logprobs
               good,
               Reply(text="I think so!!", parsed=None, token_logprobs=toks(["I", " think"], None, None),
                     parse_error="no JSON object in reply"),  # garbage
               good,
               reply_with(['{"answer": ', "#$", "}"], [("#$", -0.1), ("\x00", -0.2)], 1, parsed=None),
               good, good, good]
    chat = ScriptedChat(replies=replies)
    prior = _prior(chat, tmp_path, centre=False)
    recs = [prior.node_record(v, []) for v in NODES]
    assert [r["usable"] for r in recs] == [False, False, False, True]
    assert all(r["logp"] == pytest.approx(math.log(NEUTRAL_P)) for r in recs[:3])
    assert "no token log-probabilities" in recs[0]["reason"] and "no 'answer' field" in recs[1]["reason"]
    assert "neither true nor false" in recs[2]["reason"]
    assert recs[3]["logp"] < math.log(0.5) and math.isfinite(recs[3]["logp"])
    s = prior.summary()
    assert s["unusable_answers"] == 3 and s["unusable_questions"] == 3 and sum(s["unusable_reasons"].values()) == 3
    centred = _prior(ScriptedChat(replies=[Reply(text="", token_logprobs=None)] * 16), centre=True)
    assert centred.node_log_prior("money", ["customers"]) == 0.0  # no information either way


def test_failed_calls_are_counted_and_not_saved(tmp_path):
    def responder(**kw):
        raise LLMError("endpoint unreachable")
    prior = _prior(ScriptedChat(responder=responder), tmp_path, centre=False)
    assert prior.log_prior({v: [] for v in NODES}) == pytest.approx(4 * math.log(NEUTRAL_P))
    assert all(r["source"] == "error" for r in prior.answers.values())
    prior.flush()
    assert not (tmp_path / "prior.json").exists() or "endpoint" not in (tmp_path / "prior.json").read_text()
    assert prior.summary()["unusable_reasons"]


def test_prior_rejects_bad_graphs():
    prior = _prior(ScriptedChat(replies=[]))
    with pytest.raises(ValueError):
        prior.node_log_prior("money", ["money"])
    with pytest.raises(ValueError):
        prior.node_log_prior("weather", [])
    with pytest.raises(ValueError):
        prior.log_prior([("a", "b")])
    with pytest.raises(ValueError):
        _prior(ScriptedChat(replies=[]), orders=("true_first", "true_first"))


def test_reasoning_variant_puts_the_answer_last():
    chat = ScriptedChat(replies=[reply_with(['{"reasoning": "fine", "answer": ', "true", "}"],
                                            [("true", -0.1), ("false", -2.0)], 1)])
    prior = _prior(chat, reasoning=True, orders=("true_first",), centre=False)
    assert prior.node_log_prior("money", ["customers"]) == pytest.approx(
        -0.1 - math.log(math.exp(-0.1) + math.exp(-2.0)))
    assert list(chat.requests[0]["schema"]["properties"]) == ["reasoning", "answer"]


def test_logit_helpers_are_stable():
    assert logit_of(math.log(0.5)) == pytest.approx(0.0)
    assert logit_of(0.0) == 30.0 and logit_of(-1000.0) == -30.0
    assert log_sigmoid(1000.0) == 0.0 and log_sigmoid(-1000.0) == pytest.approx(-1000.0)
    assert len(candidate_parent_sets(list("abcdefghij"), "a", max_sets=64)) == 64


def test_edge_frequency_prior():
    dags = [{"a": [], "b": ["a"]}, {"a": [], "b": ["a"]}, {"a": ["b"], "b": []}]
    p = EdgeFrequencyPrior(dags)
    assert p.log_prior({"a": [], "b": ["a"]}) > p.log_prior({"a": ["b"], "b": []}) > -math.inf
    f_ab = (2 + 0.5) / (3 + 1)
    f_ba = (1 + 0.5) / 4
    assert p.log_prior({"a": [], "b": ["a"]}) == pytest.approx(math.log(f_ab) + math.log(1 - f_ba))
    with pytest.raises(ValueError):
        EdgeFrequencyPrior([])


def test_reliability_keeps_what_survives_the_order_swap():
    import random as _random

    def knows(node, ps):  # a consistent preference, the same in both orders
        return -0.8 * len(ps)
    consistent = _prior(ScriptedChat(responder=biased_responder(knows, 1.0), model="m"))
    r = consistent.reliability("money")
    assert r["n"] == 8 and r["r"] == pytest.approx(1.0) and r["weight"] == pytest.approx(1.0)
    assert consistent.node_log_prior("money", []) > 0 > consistent.node_log_prior("money", ["customers", "cleanliness"])
    rng = _random.Random(0)

    def noise(messages, **kw):  # each order answers at random: nothing survives the swap
        x = rng.gauss(0, 1)
        return reply_with(['{"answer": ', "true", "}"], [("true", log_sigmoid(x)), ("false", log_sigmoid(-x))], 1)
    noisy = _prior(ScriptedChat(responder=noise, model="m"))
    assert noisy.reliability("money")["weight"] == 0.0
    assert all(noisy.node_log_prior("money", list(s)) == 0.0 for s in candidate_parent_sets(NODES, "money"))
    assert "money" in noisy.summary()["reliability"]
    one_order = _prior(ScriptedChat(responder=noise, model="m"), orders=("true_first",))
    assert not one_order.weigh  # nothing to compare with one order: the paper's single question
