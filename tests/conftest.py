"""Shared pytest fixtures.  Each section is self-contained; add new ones in sections of their own."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest


# ---------------------------------------------------------------------------------------------
# LLM layer: a scripted OpenAI-compatible chat server on 127.0.0.1 (used by tests/test_llm_*.py)
# ---------------------------------------------------------------------------------------------

def chat_completion(content: str, logprobs: list | None = None, prompt_tokens: int = 11,
                    completion_tokens: int = 7, finish_reason: str = "stop", model: str = "fake-model") -> dict:
    """A chat.completion body as an OpenAI server sends it.

    ``logprobs`` is a list of ``(token, logprob, [(alt_token, alt_logprob), ...])``.
    """
    lp = None
    if logprobs is not None:
        lp = {"content": [{"token": t, "logprob": v, "bytes": list(t.encode()),
                           "top_logprobs": [{"token": a, "logprob": b, "bytes": list(a.encode())} for a, b in top]}
                          for t, v, top in logprobs], "refusal": None}
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": lp, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def http_error(status: int, message: str, code: str | None = None, headers: dict | None = None) -> dict:
    """A scripted error answer in OpenAI's error format."""
    return {"status": status, "body": {"error": {"message": message, "type": "test_error", "code": code}},
            "headers": headers or {}}


class FakeChatServer:
    """Speaks ``POST /v1/chat/completions`` and ``GET /v1/models`` from a script.

    Each entry of ``script`` answers one chat request, in order: a dict with ``body`` (dict or
    str), optional ``status`` (200), ``delay`` (seconds to sleep first) and ``headers``, or a
    callable ``f(request_body) -> entry``.  Request bodies are kept in ``requests``.
    """

    def __init__(self, models: tuple[str, ...] = ("fake-model",)):
        self.script: list[dict | Callable[[dict], dict]] = []
        self.requests: list[dict] = []
        self.models = list(models)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: Any, headers: dict | None = None) -> None:
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, str(v))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                fake.requests.append(body)
                entry = fake.script.pop(0) if fake.script else http_error(500, "fake server: script exhausted")
                if callable(entry):
                    entry = entry(body)
                if entry.get("delay"):
                    time.sleep(entry["delay"])
                self._send(entry.get("status", 200), entry["body"], entry.get("headers"))

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request, client_address) -> None:  # a client hung up: not a failure
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def add(self, *entries: dict | Callable[[dict], dict]) -> "FakeChatServer":
        self.script.extend(entries)
        return self

    def ok(self, content: str, **kw: Any) -> dict:
        """A 200 entry answering ``content`` (keywords go to :func:`chat_completion`)."""
        return {"body": chat_completion(content, **kw)}

    def error(self, status: int, message: str, **kw: Any) -> dict:
        """An error entry (keywords go to :func:`http_error`)."""
        return http_error(status, message, **kw)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    """A running :class:`FakeChatServer`; the learnt schema modes and the usage log start empty."""
    from cassandra_wm.llm.openai_backend import reset_schema_modes
    from cassandra_wm.llm.usage import reset_usage

    reset_schema_modes()
    reset_usage()
    srv = FakeChatServer()
    yield srv
    srv.close()
    reset_schema_modes()
