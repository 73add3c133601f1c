"""The endpoint check: model id the server reports, context size, JSON output, log-probabilities."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import cassandra_wm.paths as paths
from cassandra_wm.llm import EndpointError, check_endpoint, get_chat

LPS = [('{"', -0.01, [('{"', -0.01), ("{", -3.0)]), ("answer", -0.1, [("answer", -0.1), ("ans", -4.0)]),
       ('":', -0.01, [('":', -0.01), (":", -5.0)]), (" true", -0.2, [(" true", -0.2), (" false", -1.8)]),
       ("}", -0.01, [("}", -0.01), ("}\n", -6.0)])]


@pytest.fixture(autouse=True)
def _record_mode(monkeypatch):
    monkeypatch.delenv("CASSANDRA_LLM_CACHE", raising=False)


def test_report_names_what_the_server_says_it_serves(chat_server):
    chat_server.models = ["smollm2-135m-instruct"]
    chat_server.add(chat_server.ok('{"answer": true}', logprobs=LPS, model="smollm2-135m-instruct"))
    rep = check_endpoint(f"openai:gpt-4o@{chat_server.base_url}")
    assert rep.label == "gpt-4o (server reports: smollm2-135m-instruct)"
    assert rep.reachable and rep.json_output and rep.schema_mode == "json_schema"
    assert rep.logprobs and rep.top_logprobs == 2
    assert any("asked for 20 top log-probabilities, got 2" in n for n in rep.notes)
    assert rep.context_tokens is None and any("does not state its context" in n for n in rep.notes)
    probe = chat_server.requests[0]
    assert probe["logprobs"] is True and probe["top_logprobs"] == 20 and probe["max_tokens"] == 16
    rep.require()  # nothing known to be missing
    assert "server lists: smollm2-135m-instruct" in str(rep)


def test_label_of_a_chat_client_shows_the_served_model_before_any_call(chat_server, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "LLM_CACHE", tmp_path)
    chat_server.models = ["qwen2.5-0.5b"]
    c = get_chat(f"openai:gpt-4o@{chat_server.base_url}", stage="s")
    assert c.label == "gpt-4o (server reports: qwen2.5-0.5b)"
    chat_server.models = ["gpt-4o", "other"]
    assert get_chat(f"openai:gpt-4o@{chat_server.base_url}", stage="s").label == "gpt-4o"
    assert not chat_server.requests  # listing models costs no chat call


def test_missing_logprobs_fail_the_prior_stage_only(chat_server):
    chat_server.add(chat_server.ok('{"answer": true}'), chat_server.ok('{"answer": true}'))
    rep = check_endpoint(f"openai:fake-model@{chat_server.base_url}")
    assert rep.json_output is True and rep.logprobs is False
    assert rep.label == "fake-model"
    rep.require(["01_data_collection", "02_code_init_refine", "04_fitting"])
    with pytest.raises(EndpointError) as e:
        rep.require(["02_code_init_refine", "03_dag_sampling_search"])
    msg = str(e.value)
    assert "03_dag_sampling_search needs token log-probabilities with top_logprobs=20" in msg
    assert "02_code" not in msg and chat_server.base_url in msg and "'LLMs'" in msg


def test_server_rejecting_logprobs_is_told_apart_from_json(chat_server):
    chat_server.add(chat_server.error(400, "logprobs are not supported by this server"),
                    chat_server.ok('{"answer": false}'))
    rep = check_endpoint(f"openai:fake-model@{chat_server.base_url}")
    assert rep.json_output is True and rep.logprobs is False
    assert "logprobs" not in chat_server.requests[1]


def test_json_mode_fallback_is_reported(chat_server):
    chat_server.add(chat_server.error(400, "response_format json_schema is not supported"),
                    chat_server.ok('{"answer": true}', logprobs=LPS))
    rep = check_endpoint(f"openai:fake-model@{chat_server.base_url}")
    assert rep.json_output and rep.schema_mode == "json_object" and rep.logprobs


def test_no_json_output_fails_the_json_stages(chat_server):
    chat_server.add(chat_server.ok("Yes, ice is colder.", logprobs=LPS))
    rep = check_endpoint(f"openai:fake-model@{chat_server.base_url}")
    assert rep.json_output is False
    with pytest.raises(EndpointError, match="02_code_init_refine needs JSON output"):
        rep.require(["02_code_init_refine"])


class _PropsServer:
    """A llama.cpp-like server: /props states the context; chat answers JSON with log-probabilities."""

    def __init__(self, n_ctx: int):
        body = {"id": "x", "object": "chat.completion", "created": 0, "model": "tiny.gguf",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"answer": true}'},
                             "finish_reason": "stop",
                             "logprobs": {"content": [{"token": t, "logprob": v,
                                                       "top_logprobs": [{"token": a, "logprob": b} for a, b in top]}
                                                      for t, v, top in LPS]}}],
                "usage": {"prompt_tokens": 30, "completion_tokens": 5}}
        routes = {"/props": {"default_generation_settings": {"n_ctx": n_ctx}},
                  "/v1/models": {"data": [{"id": "tiny.gguf", "meta": {"n_ctx_train": 8192}}]}}

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, obj, status=200):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(routes.get(self.path, {"error": "no"}), 200 if self.path in routes else 404)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._send(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_small_context_fails_the_stages_that_need_more():
    srv = _PropsServer(2048)
    try:
        rep = check_endpoint(f"openai:tiny.gguf@{srv.base_url}")
    finally:
        srv.close()
    assert rep.context_tokens == 2048 and "n_ctx" in rep.context_source
    assert rep.label == "tiny.gguf" and rep.top_logprobs == 2
    with pytest.raises(EndpointError, match=r"03_dag_sampling_search_theme_park needs a context of at least 4096 "
                                            r"tokens; the endpoint has 2048"):
        rep.require(["03_dag_sampling_search_theme_park"])
    rep.require(["00_environment"])


def test_unreachable_endpoint_is_reported_for_every_llm_stage():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rep = check_endpoint(f"openai:m@http://127.0.0.1:{port}/v1", timeout=2.0)
    assert rep.reachable is False
    with pytest.raises(EndpointError, match="02_code_init_refine: the endpoint does not answer"):
        rep.require(["02_code_init_refine"])


def test_replay_checks_nothing_and_needs_nothing(monkeypatch):
    from cassandra_wm.llm import local_endpoint_id

    monkeypatch.setenv("CASSANDRA_LLM_CACHE", "replay")
    rep = check_endpoint("local")
    assert rep.kind == "replay" and rep.endpoint == local_endpoint_id()
    assert rep.label.startswith("SmolLM2-135M-Instruct") and rep.require(list(rep_stages())) is rep
    assert "nothing contacted" in str(rep)


def rep_stages():
    from cassandra_wm.llm import STAGE_NEEDS
    return STAGE_NEEDS


def test_a_server_echoing_the_name_asked_for_is_still_named(chat_server, tmp_path, monkeypatch):
    """llama.cpp answers any model name with its one model and echoes the name in its replies."""
    monkeypatch.setattr(paths, "LLM_CACHE", tmp_path)
    chat_server.models = ["SmolLM2-135M-Instruct"]
    chat_server.add(chat_server.ok('{"answer": true}', logprobs=LPS, model="gpt-4o"),
                    chat_server.ok('{"answer": true}', model="gpt-4o"))
    rep = check_endpoint(f"openai:gpt-4o@{chat_server.base_url}")
    assert rep.label == "gpt-4o (server reports: SmolLM2-135M-Instruct)"
    c = get_chat(f"openai:gpt-4o@{chat_server.base_url}", stage="s", cache="off")
    c.chat([{"role": "user", "content": "JSON?"}], schema={"type": "object"})
    assert c.label == "gpt-4o (server reports: SmolLM2-135M-Instruct)"
    c2 = get_chat(f"openai:gpt-4o@{chat_server.base_url}", stage="s", cache="record")
    chat_server.add(chat_server.ok('{"answer": false}', model="gpt-4o"))
    c2.chat([{"role": "user", "content": "JSON?"}], schema={"type": "object"})
    replay = get_chat(f"openai:gpt-4o@{chat_server.base_url}", stage="s", cache="replay")
    assert replay.label == "gpt-4o (server reports: SmolLM2-135M-Instruct)"  # recorded with the answer
