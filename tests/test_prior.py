"""The LLM structure prior: reading yes/no from log-probabilities, fallbacks, caching."""
from __future__ import annotations

import json
import math

import pytest

from cassandra_wm.llm.base import LLMError, Reply, TokenLogprob
from cassandra_wm.llm.scripted import ScriptedChat
from cassandra_wm.structure.prior import (FALLBACK_P, MIN_LOGP, PARSED_ONLY_P, EdgeFrequencyPrior, LLMPrior,
                                          NoPrior, answer_logprob)

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


def test_prior_reads_logprobs_and_caches_per_node_and_parent_set(tmp_path):
    def responder(messages, **kw):
        # more same-day parents -> less plausible, as a deterministic function of the prompt
        n = messages[-1]["content"].split("today's values of: ")[1].count(",")
        lp_true = -0.3 - n
        pieces = ['{"answer": ', "true" if n == 0 else "false", "}"]
        return reply_with(pieces, [("true", lp_true), ("false", -1.0)], 1)
    chat = ScriptedChat(responder=responder, model="scripted-prior")
    prior = _prior(chat, tmp_path)
    g = {"satisfaction": [], "customers": ["satisfaction"], "cleanliness": ["customers"],
         "money": ["customers", "satisfaction"]}
    terms = prior.node_terms(g)
    assert set(terms) == set(NODES) and all(MIN_LOGP <= t < 0 for t in terms.values())
    assert terms["money"] < terms["customers"]  # two parents judged less plausible than one
    assert prior.log_prior(g) == pytest.approx(sum(terms.values()))
    assert len(chat.requests) == 4 and prior.calls == 4
    req = chat.requests[0]
    assert req["logprobs"] and req["top_logprobs"] > 1 and req["max_tokens"] <= 16
    assert list(req["schema"]["properties"]) == ["answer"]
    # asking again (even with parents listed in another order) hits the cache
    prior.log_prior({"satisfaction": [], "customers": ["satisfaction"], "cleanliness": ["customers"],
                     "money": ["satisfaction", "customers"]})
    assert len(chat.requests) == 4 and prior.hits >= 4
    # a new prior on the same file asks nothing
    chat2 = ScriptedChat(responder=responder, model="scripted-prior")
    again = _prior(chat2, tmp_path)
    assert again.log_prior(g) == pytest.approx(prior.log_prior(g))
    assert chat2.requests == []
    # another model does not reuse these answers
    chat3 = ScriptedChat(responder=responder, model="another-model")
    _prior(chat3, tmp_path).log_prior(g)
    assert len(chat3.requests) == 4
    data = json.loads((tmp_path / "prior.json").read_text())
    assert len(data) == 2


def test_prior_falls_back_with_reasons_on_malformed_replies(tmp_path):
    replies = [Reply(text='{"answer": true}', parsed={"answer": True}, token_logprobs=None),  # no logprobs
               Reply(text="I think so!!", parsed=None, token_logprobs=toks(["I", " think"], None, None),
                     parse_error="no JSON object in reply"),  # garbage
               reply_with(['{"answer": ', "false", "}"], [("fal", -0.1), ("fa", -0.2)], 1),  # only 'false'
               reply_with(['{"answer": ', "#$", "}"], [("#$", -0.1), ("\x00", -0.2)], 1, parsed=None)]
    chat = ScriptedChat(replies=replies)
    prior = _prior(chat, tmp_path)
    recs = [prior.node_record(v, []) for v in NODES]
    assert recs[0]["source"] == "parsed" and recs[0]["logp"] == pytest.approx(math.log(PARSED_ONLY_P))
    assert "no token log-probabilities" in recs[0]["reason"]
    assert recs[1]["source"] == "fallback" and recs[1]["logp"] == pytest.approx(math.log(FALLBACK_P))
    assert "no JSON object" in recs[1]["reason"]
    assert recs[2]["source"] == "logprobs" and recs[2]["logp"] < math.log(0.5)
    assert recs[3]["source"] == "fallback" and "neither true nor false" in recs[3]["reason"]
    assert all(math.isfinite(r["logp"]) for r in recs)
    assert prior.fallbacks == 3
    assert prior.summary()["from_logprobs"] == 1


def test_failed_calls_fall_back_and_are_not_saved(tmp_path):
    def responder(**kw):
        raise LLMError("endpoint unreachable")
    prior = _prior(ScriptedChat(responder=responder), tmp_path)
    assert prior.log_prior({v: [] for v in NODES}) == pytest.approx(4 * math.log(FALLBACK_P))
    assert all(r["source"] == "error" for r in prior.records.values())
    assert not (tmp_path / "prior.json").exists() or "endpoint" not in (tmp_path / "prior.json").read_text()


def test_prior_rejects_bad_graphs():
    prior = _prior(ScriptedChat(replies=[]))
    with pytest.raises(ValueError):
        prior.node_log_prior("money", ["money"])
    with pytest.raises(ValueError):
        prior.node_log_prior("weather", [])
    with pytest.raises(ValueError):
        prior.log_prior([("a", "b")])


def test_reasoning_variant_puts_the_answer_last():
    chat = ScriptedChat(replies=[reply_with(['{"reasoning": "fine", "answer": ', "true", "}"],
                                            [("true", -0.1), ("false", -2.0)], 1)])
    prior = _prior(chat, reasoning=True)
    assert prior.node_log_prior("money", ["customers"]) == pytest.approx(
        -0.1 - math.log(math.exp(-0.1) + math.exp(-2.0)))
    assert list(chat.requests[0]["schema"]["properties"]) == ["reasoning", "answer"]


def test_edge_frequency_and_no_prior():
    dags = [{"a": [], "b": ["a"]}, {"a": [], "b": ["a"]}, {"a": ["b"], "b": []}]
    p = EdgeFrequencyPrior(dags)
    assert p.log_prior({"a": [], "b": ["a"]}) > p.log_prior({"a": ["b"], "b": []}) > -math.inf
    f_ab = (2 + 0.5) / (3 + 1)
    f_ba = (1 + 0.5) / 4
    assert p.log_prior({"a": [], "b": ["a"]}) == pytest.approx(math.log(f_ab) + math.log(1 - f_ba))
    assert NoPrior().log_prior({"a": ["b"], "b": []}) == 0.0
    with pytest.raises(ValueError):
        EdgeFrequencyPrior([])
