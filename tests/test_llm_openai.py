"""The OpenAI-compatible backend against a real (scripted) HTTP server on 127.0.0.1."""
from __future__ import annotations

import socket
import time

import pytest

from cassandra_wm.llm import (LLMError, OpenAIChat, describe_llm, get_chat, normalize_base_url, parse_llm_spec,
                              usage_log, usage_summary, usage_totals)

SCHEMA = {"type": "object", "properties": {"thinking": {"type": "string"}, "answer": {"type": "boolean"}},
          "required": ["thinking", "answer"]}
MSG = [{"role": "user", "content": "Does the queue grow when the barista is slow? Answer in JSON."}]


def client(srv, **kw) -> OpenAIChat:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("max_retries", 2)
    kw.setdefault("backoff", 0.01)
    return OpenAIChat("fake-model", srv.base_url, stage=kw.pop("stage", "test"), **kw)


def test_schema_reply_parsed_and_request_shape(chat_server):
    chat_server.add(chat_server.ok('{"thinking": "more waiting", "answer": true}', prompt_tokens=21,
                                   completion_tokens=9))
    r = client(chat_server).chat(MSG, schema=SCHEMA, temperature=0.0, seed=3, max_tokens=64)
    assert r.parsed == {"thinking": "more waiting", "answer": True}
    assert r.parse_error is None and r.model == "fake-model"
    assert r.usage["prompt_tokens"] == 21 and r.usage["completion_tokens"] == 9 and r.usage["retries"] == 0
    req = chat_server.requests[0]
    assert req["response_format"]["type"] == "json_schema"
    assert req["response_format"]["json_schema"]["schema"] == SCHEMA
    assert req["response_format"]["json_schema"]["strict"] is False  # SCHEMA is not closed
    assert req["seed"] == 3 and req["temperature"] == 0.0 and req["max_tokens"] == 64
    assert req["messages"] == MSG and "logprobs" not in req


def test_strict_schema_sent_as_strict(chat_server):
    strict = dict(SCHEMA, additionalProperties=False)
    chat_server.add(chat_server.ok('{"thinking": "", "answer": false}'))
    client(chat_server).chat(MSG, schema=strict)
    assert chat_server.requests[0]["response_format"]["json_schema"]["strict"] is True


def test_json_schema_rejected_then_json_object_remembered(chat_server):
    chat_server.add(chat_server.error(400, "response_format type json_schema is not supported"),
                    chat_server.ok('{"thinking": "x", "answer": false}'),
                    chat_server.ok('{"thinking": "y", "answer": true}'))
    c = client(chat_server)
    r = c.chat(MSG, schema=SCHEMA)
    assert r.parsed == {"thinking": "x", "answer": False}
    first, second = chat_server.requests[:2]
    assert first["response_format"]["type"] == "json_schema"
    assert second["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert second["messages"] == MSG  # the prompt already says JSON: nothing added
    # a new client for the same endpoint goes straight to JSON mode
    r2 = client(chat_server).chat(MSG, schema=SCHEMA)
    assert r2.parsed["answer"] is True
    assert len(chat_server.requests) == 3 and chat_server.requests[2]["response_format"]["type"] == "json_object"
    assert usage_totals()["test"]["retries"] == 0


def test_llama_cpp_style_500_on_json_schema_falls_back_without_retrying(chat_server):
    detail = ("1 validation error: {'loc': ('body', 'response_format', 'type'), "
              "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}")
    chat_server.add({"status": 500, "body": {"detail": detail}},
                    chat_server.ok('{"thinking": "", "answer": true}'))
    msgs = [{"role": "user", "content": "Is the shop open?"}]  # no word "JSON" in the prompt
    r = client(chat_server).chat(msgs, schema=SCHEMA)
    assert r.parsed == {"thinking": "", "answer": True} and r.usage["retries"] == 0
    fallback = chat_server.requests[1]
    assert fallback["response_format"]["type"] == "json_object"
    assert fallback["messages"][0]["role"] == "system" and "JSON" in fallback["messages"][0]["content"]
    assert fallback["messages"][1:] == msgs


def test_cut_off_or_malformed_json_is_an_unusable_reply(chat_server):
    from cassandra_wm.llm import UnusableReply

    chat_server.add(chat_server.ok('{"thinking": "the queue', finish_reason="length"),
                    chat_server.ok('{"thinking": "the queue" "answer": true}'),
                    chat_server.ok('{"thinking": "the queue", "answer": "maybe"}'))
    with pytest.raises(UnusableReply, match="max_tokens=5") as e:
        client(chat_server).chat(MSG, schema=SCHEMA, max_tokens=5)
    assert e.value.kind == "truncated"
    with pytest.raises(UnusableReply, match="malformed JSON") as e:
        client(chat_server).chat(MSG, schema=SCHEMA)
    assert e.value.kind == "not_json"
    with pytest.raises(UnusableReply, match="answer") as e:
        client(chat_server).chat(MSG, schema=SCHEMA)
    assert e.value.kind == "schema"
    t = usage_totals()["test"]
    assert t["calls"] == 3 and t["errors"] == 3


def test_raw_newlines_inside_json_strings_are_accepted(chat_server):
    chat_server.add(chat_server.ok('{"thinking": "line one\nline two", "answer": false}'))
    r = client(chat_server).chat(MSG, schema=SCHEMA)
    assert r.parsed is None and "control characters" in r.parse_error  # as before: callers parse leniently
    from cassandra_wm.llm import parse_json_reply
    assert parse_json_reply(r.text, lenient=True)[0] == {"thinking": "line one\nline two", "answer": False}


def test_free_text_cut_at_max_tokens_is_usable(chat_server):
    chat_server.add(chat_server.ok("A coffee shop is a", finish_reason="length"))
    r = client(chat_server).chat(MSG, max_tokens=5)
    assert r.text == "A coffee shop is a" and r.usage["finish_reason"] == "length"


def test_no_schema_means_no_parsing(chat_server):
    chat_server.add(chat_server.ok("plain words"))
    r = client(chat_server).chat(MSG)
    assert r.text == "plain words" and r.parsed is None and r.parse_error is None
    assert "response_format" not in chat_server.requests[0]


def test_429_then_success_counts_one_retry(chat_server):
    chat_server.add(chat_server.error(429, "slow down", headers={"retry-after": "0"}),
                    chat_server.ok('{"thinking": "", "answer": true}', prompt_tokens=5, completion_tokens=4))
    r = client(chat_server, stage="prior").chat(MSG, schema=SCHEMA)
    assert r.parsed["answer"] is True and r.usage["retries"] == 1
    assert len(chat_server.requests) == 2
    t = usage_totals()["prior"]
    assert (t["calls"], t["retries"], t["prompt_tokens"], t["completion_tokens"], t["errors"]) == (1, 1, 5, 4, 0)
    df = usage_summary()
    assert list(df["stage"]) == ["prior", "total"] and int(df.iloc[-1]["retries"]) == 1


def test_insufficient_quota_is_not_retried(chat_server):
    chat_server.add(chat_server.error(429, "You exceeded your current quota", code="insufficient_quota"))
    with pytest.raises(LLMError, match="quota"):
        client(chat_server).chat(MSG)
    assert len(chat_server.requests) == 1


def test_timeouts_retry_then_clear_error(chat_server):
    slow = {"body": {"choices": []}, "delay": 1.0}
    chat_server.add(slow, slow, slow)
    c = client(chat_server, timeout=0.25, max_retries=1, stage="ordering")
    t0 = time.perf_counter()
    with pytest.raises(LLMError) as e:
        c.chat(MSG)
    assert time.perf_counter() - t0 < 3.0
    msg = str(e.value)
    assert "no answer within 0.25 s" in msg and "gave up after 2 attempts" in msg
    assert "CASSANDRA_LLM_TIMEOUT" in msg
    assert len(chat_server.requests) == 2
    rec = usage_log()[-1]
    assert rec["stage"] == "ordering" and rec["retries"] == 1 and rec["error"]


def test_persistent_server_error_gives_up(chat_server):
    chat_server.add(*[chat_server.error(503, "overloaded")] * 3)
    with pytest.raises(LLMError, match=r"server error 503.*gave up after 3 attempts"):
        client(chat_server).chat(MSG)


def test_unreachable_port_is_a_clear_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = OpenAIChat("m", f"http://127.0.0.1:{port}", timeout=2, max_retries=3, backoff=0.01)
    t0 = time.perf_counter()
    with pytest.raises(LLMError, match=f"cannot reach http://127.0.0.1:{port}/v1.*--llm local"):
        c.chat(MSG)
    assert time.perf_counter() - t0 < 2.0  # refused connections are not retried (dropped ones are)


def test_logprobs_converted(chat_server):
    lps = [('{"', -0.01, [('{"', -0.01), ("{", -4.6)]),
           ("answer", -0.2, [("answer", -0.2), ("thinking", -1.7)]),
           ("true", -0.05, [("true", -0.05), ("false", -3.0)])]
    chat_server.add(chat_server.ok('{"answer": true}', logprobs=lps))
    r = client(chat_server).chat(MSG, logprobs=True, top_logprobs=2)
    req = chat_server.requests[0]
    assert req["logprobs"] is True and req["top_logprobs"] == 2
    assert [t.token for t in r.token_logprobs] == ['{"', "answer", "true"]
    assert r.token_logprobs[2].logprob == pytest.approx(-0.05)
    assert r.token_logprobs[2].top == [("true", pytest.approx(-0.05)), ("false", pytest.approx(-3.0))]


def test_completions_style_logprobs_converted():
    from cassandra_wm.llm.openai_backend import convert_logprobs

    out = convert_logprobs({"tokens": ["a", "b"], "token_logprobs": [-0.5, -1.0],
                            "top_logprobs": [{"a": -0.5, "c": -2.0}, {"b": -1.0}]})
    assert [(t.token, t.logprob) for t in out] == [("a", -0.5), ("b", -1.0)]
    assert out[0].top == [("a", -0.5), ("c", -2.0)]
    assert convert_logprobs(None) is None


def test_401_and_404_say_what_to_do(chat_server):
    chat_server.models = ["llama-3-8b", "qwen2.5-7b"]
    chat_server.add(chat_server.error(401, "Incorrect API key provided"),
                    chat_server.error(404, "The model `gpt-9` does not exist"))
    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        client(chat_server).chat(MSG)
    with pytest.raises(LLMError, match="llama-3-8b, qwen2.5-7b"):
        client(chat_server).chat(MSG)


def test_other_4xx_is_reported_with_the_server_message(chat_server):
    chat_server.add(chat_server.error(400, "temperature must be at most 2"))
    with pytest.raises(LLMError, match=r"HTTP 400.*stage 'test'.*temperature must be"):
        client(chat_server).chat(MSG)
    assert len(chat_server.requests) == 1


def test_context_overflow_says_how_to_fix_it(chat_server):
    from cassandra_wm.llm import ContextTooSmall

    chat_server.add(chat_server.error(400, "This model's maximum context length is 2048 tokens"))
    with pytest.raises(ContextTooSmall, match=r"(?s)does not fit.*2048 tokens.*-c 8192.*'LLMs'"):
        client(chat_server).chat(MSG)
    assert len(chat_server.requests) == 1  # not retried


def test_missing_key_for_remote_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match="set OPENAI_API_KEY"):
        OpenAIChat("gpt-4o-mini", "https://api.example.com/v1")
    OpenAIChat("any", "http://localhost:8080")  # loopback servers get a placeholder key


def test_seed_from_sample_index(chat_server):
    chat_server.add(chat_server.ok("a"), chat_server.ok("b"))
    c = client(chat_server, seed_from_sample_index=True)
    c.chat(MSG, temperature=0.7, sample_index=4)
    c.chat(MSG, temperature=0.7, sample_index=4, seed=9)
    assert [r["seed"] for r in chat_server.requests] == [4, 9]


@pytest.mark.parametrize("given, expected", [
    ("http://localhost:8000", "http://localhost:8000/v1"),
    ("localhost:8000/", "http://localhost:8000/v1"),
    ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
    ("http://127.0.0.1:8080/v1/chat/completions", "http://127.0.0.1:8080/v1"),
    ("https://example.org/api/v1beta/openai", "https://example.org/api/v1beta/openai"),
])
def test_normalize_base_url(given, expected):
    assert normalize_base_url(given) == expected


def test_parse_llm_spec_forms(monkeypatch):
    for var in ("CASSANDRA_LLM", "CASSANDRA_LLM_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    assert parse_llm_spec(None)["kind"] == "local"
    assert parse_llm_spec("local")["kind"] == "local"
    p = parse_llm_spec("openai:gpt-4o-mini")
    assert (p["model"], p["base_url"]) == ("gpt-4o-mini", "https://api.openai.com/v1")
    p = parse_llm_spec("openai:qwen2.5:7b@http://localhost:11434")
    assert (p["model"], p["base_url"]) == ("qwen2.5:7b", "http://localhost:11434/v1")
    p = parse_llm_spec("openai:meta/llama@localhost:8000")
    assert (p["model"], p["base_url"]) == ("meta/llama", "http://localhost:8000/v1")
    assert parse_llm_spec("replay:smollm2-135m")["slug"] == "smollm2-135m"
    monkeypatch.setenv("CASSANDRA_LLM_MODEL", "my-model")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999")
    p = parse_llm_spec(None)
    assert (p["kind"], p["model"], p["base_url"]) == ("openai", "my-model", "http://127.0.0.1:9999/v1")
    assert describe_llm("openai:gpt-4o") == "gpt-4o"


@pytest.mark.parametrize("bad", ["gpt-4", "openai:", "replay:", "", "ollama:llama3", "openai:m@ftp://x"])
def test_bad_specs_list_the_accepted_forms(bad, monkeypatch):
    monkeypatch.delenv("CASSANDRA_LLM_MODEL", raising=False)
    with pytest.raises(ValueError, match=r"(?s)bad LLM spec.*openai:<model>@<base_url>"):
        parse_llm_spec(bad)


def test_get_chat_openai_records_through_cache(chat_server, tmp_path):
    chat_server.add(chat_server.ok('{"thinking": "", "answer": true}'))
    spec = f"openai:fake-model@{chat_server.base_url}"
    import cassandra_wm.paths as paths

    old = paths.LLM_CACHE
    paths.LLM_CACHE = tmp_path
    try:
        c = get_chat(spec, stage="s1", cache="record")
        assert c.model == "fake-model"
        assert c.chat(MSG, schema=SCHEMA).parsed["answer"] is True
        assert c.chat(MSG, schema=SCHEMA).cached  # second time from the cache file
        assert (tmp_path / "fake-model.jsonl").exists()
        assert len(chat_server.requests) == 1
    finally:
        paths.LLM_CACHE = old


def test_json_note_joins_an_existing_system_message(chat_server):
    chat_server.add(chat_server.ok('{"thinking": "", "answer": true}'))
    msgs = [{"role": "system", "content": "You know coffee shops."}, {"role": "user", "content": "Open?"}]
    client(chat_server, schema_mode="json_object").chat(msgs, schema=SCHEMA)
    sent = chat_server.requests[0]["messages"]
    assert len(sent) == 2 and sent[0]["content"] == "You know coffee shops.\nReply with one JSON object."
    assert msgs[0]["content"] == "You know coffee shops."  # the caller's list is left alone
