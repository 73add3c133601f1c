"""A fault suite: bad replies from a fake OpenAI-compatible server on 127.0.0.1 never crash a caller,
never enter the record/replay cache, and are asked again once the server is fixed.

Each fault kind below is served to a ``CachedChat(OpenAIChat(...))`` in record mode.  A *failing*
kind must raise an :class:`LLMError` (anything else is a crash), leave the cache file without a new
line, count as an error in the usage log, and, once the server answers properly, the same request
must reach the server again and get the good answer (so nothing bad was kept).  A *tolerated* kind
(odd but usable replies) must come back usable and labelled.

Run ``python tests/test_llm_faults.py`` for the figure: kinds, crashes, poisoned cache entries.
"""
from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest

import cassandra_wm.paths as paths
from cassandra_wm.llm import (CachedChat, ContextTooSmall, EndpointDead, LLMError, OpenAIChat, UnusableReply,
                              check_stage_health, get_chat, reset_usage, scan_cache_file, usage_totals)
from cassandra_wm.llm.cache import _FILES
from cassandra_wm.llm.openai_backend import reset_endpoint_states, reset_schema_modes
from cassandra_wm.llm.usage import StageHealthError

SCHEMA = {"type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"],
          "additionalProperties": False}
MSG = [{"role": "user", "content": "Does a longer queue lower satisfaction? Reply in JSON."}]
REQUEST = dict(schema=SCHEMA, logprobs=True, top_logprobs=2, max_tokens=32, temperature=0.0, seed=0)
GOOD_LOGPROBS = [('{"', -0.01, [('{"', -0.01), ("{", -4.0)]), ("answer", -0.02, [("answer", -0.02)]),
                 ('":', -0.01, [('":', -0.01)]), (" true", -0.3, [(" true", -0.3), (" false", -1.4)]),
                 ("}", -0.01, [("}", -0.01)])]


def completion(content, logprobs=GOOD_LOGPROBS, finish="stop", model="fake-model", usage=None) -> dict:
    lp = None
    if logprobs is not None:
        lp = {"content": [{"token": t, "logprob": v, "top_logprobs": [{"token": a, "logprob": b} for a, b in top]}
                          for t, v, top in logprobs]}
    return {"id": "x", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": lp,
                         "finish_reason": finish}],
            "usage": usage if usage is not None else {"prompt_tokens": 20, "completion_tokens": 5}}


GOOD = completion('{"answer": true}')


# -- the server -------------------------------------------------------------------------------------

def send(h: BaseHTTPRequestHandler, body, status: int = 200, headers: dict | None = None,
         length: int | None = None) -> None:
    data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data) if length is None else length))
    for k, v in (headers or {}).items():
        h.send_header(k, str(v))
    h.end_headers()
    try:
        h.wfile.write(data)
        h.wfile.flush()
    except OSError:  # the client gave up
        pass


class FaultServer:
    """Answers ``POST /v1/chat/completions`` with ``handler(h, request_body)`` callables from ``script``
    (the last one repeats); ``GET /v1/models`` lists ``models``."""

    def __init__(self, models=("fake-model",)):
        self.script: list[Callable] = []
        self.requests: list[dict] = []
        self.models = list(models)
        self.stop = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    send(self, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]})
                else:
                    send(self, {"error": {"message": "no route"}}, 404)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                fake.requests.append(body)
                fn = fake.script.pop(0) if len(fake.script) > 1 else (fake.script[0] if fake.script else None)
                if fn is None:
                    return send(self, {"error": {"message": "no script"}}, 500)
                fn(self, body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request, client_address):
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def serve(self, *fns: Callable) -> "FaultServer":
        self.script = list(fns)
        self.requests.clear()
        return self

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def ok(body=GOOD, **kw):
    return lambda h, req: send(h, body, **kw)


def drop(h, req):  # read the request, answer nothing, close the socket
    h.close_connection = True
    try:
        h.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def stall(seconds: float):
    def fn(h, req):
        time.sleep(seconds)
        send(h, GOOD)
    return fn


def trickle(h, req):  # headers at once, then one byte every 0.1 s
    data = json.dumps(GOOD).encode()
    h.send_response(200)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    try:
        for i in range(len(data)):
            h.wfile.write(data[i:i + 1])
            h.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass


def short_body(h, req):  # declares 5,000 bytes, sends 20, hangs up
    send(h, json.dumps(GOOD).encode()[:20], length=5000)
    h.close_connection = True


def stream_until_close(nbytes: int):
    def fn(h, req):  # no Content-Length: the body runs until the connection closes
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        chunk = b" " * 65536
        try:
            h.wfile.write(b'{"pad": "')
            for _ in range(nbytes // len(chunk)):
                h.wfile.write(chunk)
        except OSError:
            pass
    return fn


def error(status: int, message: str, headers: dict | None = None):
    return lambda h, req: send(h, {"error": {"message": message, "type": "x", "code": None}}, status, headers)


# name -> (server behaviour, expected UnusableReply kind / exception class / "usable")
FAULTS: dict[str, tuple[Callable, object]] = {
    "malformed JSON": (ok(completion('{"answer": tru')), "not_json"),
    "JSON off the schema (unknown key)": (ok(completion('{"verdict": "yes"}')), "schema"),
    "JSON off the schema (wrong type)": (ok(completion('{"answer": "maybe"}')), "schema"),
    "JSON array instead of object": (ok(completion("[true]")), "schema"),
    "empty content": (ok(completion("")), "empty"),
    "null content": (ok(completion(None)), "empty"),
    "content parts instead of text": (ok(completion([{"type": "text", "text": "{}"}])), "bad_content"),
    "no choices": (ok({**GOOD, "choices": []}), "no_choices"),
    "not a chat completion": (ok({"hello": "world"}), "no_choices"),
    "error object with HTTP 200": (ok({"error": {"message": "model overloaded"}}), "error_body"),
    "truncated (finish_reason=length)": (ok(completion('{"answer": ', finish="length")), "truncated"),
    "no logprobs when asked": (ok(completion('{"answer": true}', logprobs=None)), "no_logprobs"),
    "no top logprobs when asked": (ok(completion('{"answer": true}', logprobs=[(t, v, []) for t, v, _ in GOOD_LOGPROBS])),
                                   "no_top_logprobs"),
    "NaN logprob": (ok(json.dumps(GOOD).replace("-0.3", "NaN")), "bad_logprobs"),
    "logprob not a number": (ok(json.dumps(GOOD).replace("-0.3", '"low"')), "bad_logprobs"),
    "logprob entry without token": (ok(json.dumps(GOOD).replace('"token": "}"', '"tok": "}"')), "bad_logprobs"),
    "30 MB body (declared)": (ok(b'{"x": "' + b"a" * (30 << 20) + b'"}'), "oversized"),
    "30 MB body (until close)": (stream_until_close(30 << 20), "oversized"),
    "text far over max_tokens": (ok(completion('{"answer": true}' + " " * 400_000)), "oversized"),
    "non-UTF-8 bytes": (ok(json.dumps(GOOD).encode().replace(b"answer", b"ans\xff\xfewer")), "not_utf8"),
    "HTML instead of JSON": (ok("<html><body>502 Bad Gateway</body></html>"), "not_json_body"),
    "JSON nested 100,000 deep": (ok("[" * 100_000 + "]" * 100_000), "not_json_body"),
    "HTTP 500": (error(500, "internal error"), LLMError),
    "HTTP 503 with Retry-After": (error(503, "overloaded", {"Retry-After": "0"}), LLMError),
    "HTTP 429": (error(429, "slow down", {"Retry-After": "0"}), LLMError),
    "HTTP 400": (error(400, "bad request: unknown field"), LLMError),
    "HTTP 401": (error(401, "bad key"), LLMError),
    "tiny context (HTTP 400)": (error(400, "the request exceeds the available context size (2048 tokens)"),
                                ContextTooSmall),
    "dropped connection": (drop, LLMError),
    "body shorter than declared": (short_body, LLMError),
    "stall past the timeout": (stall(3.0), LLMError),
    "trickle past the timeout": (trickle, LLMError),
    # odd but usable: must come back usable, stored, and labelled
    "wrong model id": (ok(completion('{"answer": true}', model="smollm2-135m-instruct")), "usable"),
    "garbage usage numbers": (ok(completion('{"answer": true}', usage={"prompt_tokens": "lots",
                                                                       "completion_tokens": -4})), "usable"),
}
FAILING = [k for k, (_fn, want) in FAULTS.items() if want != "usable"]


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def run_fault(name: str, srv: FaultServer, cache: Path) -> dict:
    """Serve one fault kind, then a fixed server; return what happened (see the module docstring)."""
    fn, want = FAULTS[name]
    _FILES.clear()
    reset_usage()
    reset_endpoint_states()
    reset_schema_modes()
    path = cache / "fake-model.jsonl"
    if path.exists():  # each kind starts from an empty cache (the fixed server's answer is kept there)
        path.unlink()
    before = _lines(path)

    def client() -> CachedChat:
        inner = OpenAIChat("fake-model", srv.base_url, timeout=0.6, max_retries=1, backoff=0.01, max_backoff=0.05,
                           stage_deadline=30.0, max_reply_bytes=8 << 20, schema_mode="json_schema")
        return CachedChat(inner, mode="record", stage="faults")

    out = {"kind": name, "want": want, "crash": None, "error": None, "poisoned": 0, "asked_again": None}
    srv.serve(fn)
    c = client()
    t0 = time.perf_counter()
    try:
        reply = c.chat(MSG, **REQUEST)
        out["reply"] = reply
    except LLMError as e:
        out["error"] = e
    except BaseException as e:  # noqa: BLE001 - anything but an LLMError is a crash
        out["crash"] = f"{type(e).__name__}: {e}"[:300]
    out["seconds"] = time.perf_counter() - t0
    out["requests"] = len(srv.requests)
    out["usage"] = usage_totals().get("faults", {})
    stored = _lines(path) - before
    if want == "usable":
        out["stored"] = stored
        out["label"] = c.label
        return out
    out["poisoned"] = stored
    srv.serve(ok())  # the server is fixed: the same request must reach it again
    try:
        r2 = client().chat(MSG, **REQUEST)
        out["asked_again"] = len(srv.requests) == 1 and not r2.cached and r2.parsed == {"answer": True}
    except BaseException as e:  # noqa: BLE001
        out["crash"] = out["crash"] or f"after the fix: {type(e).__name__}: {e}"[:300]
    return out


@pytest.fixture(scope="module")
def srv():
    s = FaultServer()
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "LLM_CACHE", tmp_path / "cache")
    monkeypatch.setattr(paths, "SHIPPED_LLM_CACHE", tmp_path / "shipped")
    monkeypatch.delenv("CASSANDRA_LLM_CACHE", raising=False)
    yield tmp_path / "cache"
    _FILES.clear()


def test_the_suite_has_at_least_15_failing_kinds():
    assert len(FAILING) >= 15


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault(name, srv, cache):
    out = run_fault(name, srv, cache)
    assert out["crash"] is None, out["crash"]
    want = out["want"]
    if want == "usable":
        assert out["error"] is None and out["stored"] == 1
        r = out["reply"]
        assert r.parsed == {"answer": True}
        if name == "wrong model id":
            assert out["label"] == "fake-model (server reports: smollm2-135m-instruct)"
            assert r.server_model == "smollm2-135m-instruct"
        else:
            assert r.usage["prompt_tokens"] == 0 and r.usage["completion_tokens"] == 0
        return
    e = out["error"]
    assert e is not None, f"{name}: no error raised"
    if isinstance(want, str):
        assert isinstance(e, UnusableReply) and e.kind == want, f"{name}: {e!r}"
    else:
        assert isinstance(e, want), f"{name}: {e!r}"
    assert out["poisoned"] == 0
    assert out["asked_again"] is True
    assert out["usage"].get("errors") == 1
    assert out["seconds"] < 10.0


def test_deeply_nested_json_text_is_a_parse_error_not_a_crash():
    from cassandra_wm.llm import parse_json_reply, reply_problem, Reply

    deep = '{"answer": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert parse_json_reply(deep) == (None, "JSON nested too deeply")
    assert reply_problem(Reply(deep), schema=SCHEMA)[0] == "not_json"


def test_retries_are_counted_and_bounded(srv, cache):
    out = run_fault("HTTP 503 with Retry-After", srv, cache)
    assert out["requests"] == 2 and out["usage"]["retries"] == 1  # max_retries=1
    out = run_fault("dropped connection", srv, cache)
    assert out["requests"] == 2 and "gave up after 2 attempts" in str(out["error"])
    out = run_fault("HTTP 400", srv, cache)
    assert out["requests"] == 1  # a plain 4xx is not retried


def test_a_dead_endpoint_costs_a_stage_one_deadline(srv, cache):
    """20 calls to a stalled server: the first ones wait out the stage deadline, the rest fail at once."""
    reset_endpoint_states()
    reset_usage()
    srv.serve(stall(5.0))
    inner = OpenAIChat("fake-model", srv.base_url, timeout=0.3, max_retries=2, backoff=0.01, stage_deadline=0.8,
                       schema_mode="json_schema")
    c = CachedChat(inner, mode="record", stage="03_x")
    t0 = time.perf_counter()
    errors = []
    for i in range(20):
        with pytest.raises(LLMError) as e:
            c.chat(MSG, **{**REQUEST, "seed": i})
        errors.append(e.value)
    took = time.perf_counter() - t0
    assert took < 0.8 + 2 * 0.3 + 1.0, took
    assert isinstance(errors[-1], EndpointDead) and "has not answered for 0.8 s in stage '03_x'" in str(errors[-1])
    assert sum(isinstance(x, EndpointDead) for x in errors) >= 15
    with pytest.raises(StageHealthError, match=rf"(?s)'03_x': 20 of 20 LLM requests failed.*{srv.base_url}"):
        check_stage_health("03_x")
    # another stage starts with a fresh deadline
    srv.serve(ok())
    assert CachedChat(inner, mode="record", stage="04_y").chat(MSG, **REQUEST).parsed == {"answer": True}


def test_all_calls_answering_500_fail_the_stage_health_check(srv, cache):
    reset_usage()
    reset_endpoint_states()
    srv.serve(error(500, "boom"))
    c = get_chat(f"openai:fake-model@{srv.base_url}", stage="02_code_init", cache="record")
    c.inner.max_retries, c.inner.backoff = 1, 0.01
    for i in range(4):
        with pytest.raises(LLMError):
            c.chat(MSG, schema=SCHEMA, seed=i)
    with pytest.raises(StageHealthError) as e:
        check_stage_health("02_code")
    msg = str(e.value)
    assert "4 of 4" in msg and srv.base_url in msg and "server error 500" in msg and "Not writing tables" in msg
    assert not (cache / "fake-model.jsonl").exists()


def test_unusable_records_already_in_a_cache_file_are_not_served(srv, cache):
    """A file written by an older version holds a cut-off reply: record asks again, replay refuses it."""
    srv.serve(ok())
    reset_schema_modes()
    inner = OpenAIChat("fake-model", srv.base_url, max_retries=0, schema_mode="json_schema")
    CachedChat(inner, mode="record", stage="s").chat(MSG, **REQUEST)
    path = cache / "fake-model.jsonl"
    rec = json.loads(path.read_text())
    rec["reply"]["text"] = '{"answer": '
    rec["reply"]["usage"]["finish_reason"] = "length"
    path.write_text(json.dumps(rec) + "\n")
    _FILES.clear()
    assert scan_cache_file(path)["problems"][0][1] == "truncated"
    with pytest.raises(LLMError, match="holds an unusable answer \\(truncated"):
        CachedChat(None, mode="replay", model="fake-model", stage="s", endpoint=srv.base_url).chat(MSG, **REQUEST)
    srv.serve(ok())
    r = CachedChat(inner, mode="record", stage="s").chat(MSG, **REQUEST)
    assert not r.cached and len(srv.requests) == 1 and r.parsed == {"answer": True}
    _FILES.clear()
    r = CachedChat(None, mode="replay", model="fake-model", stage="s", endpoint=srv.base_url).chat(MSG, **REQUEST)
    assert r.cached and r.parsed == {"answer": True}


def main() -> int:
    """Run every kind once and print the figure."""
    import tempfile

    srv = FaultServer()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        paths.LLM_CACHE = Path(d) / "cache"
        paths.SHIPPED_LLM_CACHE = Path(d) / "shipped"
        for name in FAULTS:
            out = run_fault(name, srv, paths.LLM_CACHE)
            got = ("usable" if out["error"] is None else
                   getattr(out["error"], "kind", type(out["error"]).__name__))
            rows.append((name, got, out["crash"], out["poisoned"], out["asked_again"], out["seconds"]))
            print(f"{name:38s} -> {got:16s} crash={out['crash'] or 'no'} poisoned={out['poisoned']} "
                  f"asked again after fix={out['asked_again']} ({out['seconds']:.2f} s)")
    srv.close()
    crashes = sum(1 for r in rows if r[2])
    poisoned = sum(r[3] for r in rows)
    print(f"\nfault suite: {len(FAILING)} failing kinds + {len(FAULTS) - len(FAILING)} tolerated kinds, "
          f"{crashes} crashes, {poisoned} poisoned cache entries")
    return 1 if crashes or poisoned else 0


if __name__ == "__main__":
    sys.exit(main())
