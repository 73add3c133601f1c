"""Chat clients: OpenAI-compatible endpoints, the bundled local model, a record/replay cache, scripted replies.

Most code needs one line::

    chat = get_chat(llm, stage="03_structure")   # llm: "local", "openai:<model>[@<url>]", "replay:<slug>"
    reply = chat.chat(messages, schema=..., logprobs=True, top_logprobs=5, temperature=0.0, seed=0)

``get_chat`` wraps the backend in the record/replay cache (mode from ``cache`` or
``$CASSANDRA_LLM_CACHE``, default ``record``), so a rerun answers from ``data/llm_cache/`` and
pays nothing.  Only usable replies come back or are stored (others raise :class:`UnusableReply`).
``chat.label`` is the name for tables (with what the server reports, when that differs).
``usage_summary()`` tabulates calls, tokens, seconds and retries per stage; ``check_stage_health()``
stops a stage whose calls mostly failed; ``check_endpoint(llm).require(stages)`` checks an endpoint
(model id, context, JSON output, log-probabilities) before a run.
"""
from __future__ import annotations

import os

from .base import ChatClient, LLMError, Reply, TokenLogprob, UnusableReply, llm_label, parse_json_reply, reply_problem
from .cache import (CachedChat, cache_allows, cache_mode, migrate_cache_file, model_slug, recorded_model, request_key,
                    scan_cache_file)
from .endpoint import STAGE_NEEDS, EndpointError, EndpointReport, check_endpoint
from .local import (LocalServer, ensure_local_server, find_gguf, local_endpoint_id, local_model_name,
                    stop_local_server)
from .openai_backend import (DEFAULT_BASE_URL, ContextTooSmall, EndpointDead, OpenAIChat, is_loopback,
                             normalize_base_url, reset_endpoint_states)
from .scripted import ScriptedChat
from .usage import (StageHealthError, check_stage_health, record_usage, reset_usage, save_usage, stage_health,
                    usage_log, usage_summary, usage_totals)

__all__ = ["ChatClient", "LLMError", "UnusableReply", "EndpointDead", "ContextTooSmall", "EndpointError",
           "StageHealthError", "Reply", "TokenLogprob", "parse_json_reply", "reply_problem", "llm_label",
           "ScriptedChat", "OpenAIChat", "CachedChat", "LocalServer", "ensure_local_server", "stop_local_server",
           "local_model_name", "local_endpoint_id", "find_gguf", "get_chat", "parse_llm_spec", "describe_llm",
           "LLM_SPEC_FORMS", "cache_mode", "cache_allows", "model_slug", "request_key", "recorded_model",
           "scan_cache_file", "migrate_cache_file", "normalize_base_url", "is_loopback", "check_endpoint",
           "EndpointReport", "STAGE_NEEDS", "reset_endpoint_states", "usage_log", "usage_summary", "usage_totals", "reset_usage",
           "save_usage", "record_usage", "stage_health", "check_stage_health"]

LLM_SPEC_FORMS = """\
  local                       the bundled SmolLM2-135M-Instruct on a local llama.cpp server (default)
  openai:<model>              OpenAI, or the server named by OPENAI_BASE_URL; key from OPENAI_API_KEY
  openai:<model>@<base_url>   any OpenAI-compatible server (vLLM, llama.cpp, Ollama...), e.g.
                              openai:qwen2.5:7b@http://localhost:11434/v1
  replay:<model-slug>         only answers recorded in data/llm_cache/<model-slug>.jsonl (no LLM needed)"""


def _bad_spec(spec: str, why: str) -> ValueError:
    return ValueError(f"bad LLM spec {spec!r}: {why}. Accepted forms:\n{LLM_SPEC_FORMS}")


def _split_model_url(rest: str) -> tuple[str, str | None]:
    """Split ``<model>@<url>``; model names may hold '@' (e.g. Vertex ids), so the URL is found by shape."""
    for marker in ("@http://", "@https://"):
        i = rest.find(marker)
        if i >= 0:
            return rest[:i], rest[i + 1:]
    i = rest.rfind("@")
    if i >= 0:
        tail = rest[i + 1:]
        if tail.startswith("localhost") or ":" in tail or "." in tail or "/" in tail:
            return rest[:i], tail
    return rest, None


def parse_llm_spec(spec: str | None = None) -> dict:
    """Validate an ``--llm`` spec and return its parts.

    With ``spec=None`` the environment decides: ``$CASSANDRA_LLM`` (a spec), else
    ``$CASSANDRA_LLM_MODEL`` (an OpenAI-compatible model at ``$OPENAI_BASE_URL``), else ``local``.
    Returns ``{"kind": "local"}``, ``{"kind": "openai", "model": ..., "base_url": ...}`` or
    ``{"kind": "replay", "slug": ...}``, each with the ``spec`` it came from.
    Raises ValueError, listing the accepted forms, for anything else.
    """
    if spec is None:
        spec = os.environ.get("CASSANDRA_LLM") or None
        if spec is None:
            model = os.environ.get("CASSANDRA_LLM_MODEL")
            spec = f"openai:{model}" if model else "local"
    if not isinstance(spec, str):
        raise TypeError(f"the LLM spec must be a string, not {type(spec).__name__}")
    s = spec.strip()
    kind, sep, rest = s.partition(":")
    kind = kind.lower()
    if s.lower() == "local":
        return {"kind": "local", "spec": s}
    if kind == "openai":
        rest = rest.strip()
        if not sep or not rest:
            model = os.environ.get("CASSANDRA_LLM_MODEL")
            if not model:
                raise _bad_spec(spec, "no model given (write openai:<model>, or set CASSANDRA_LLM_MODEL)")
            rest = model
        model, url = _split_model_url(rest)
        model = model.strip()
        if not model:
            raise _bad_spec(spec, "empty model name")
        if url is None:
            url = os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        try:
            base_url = normalize_base_url(url)
        except ValueError as e:
            raise _bad_spec(spec, f"bad base URL ({e})") from None
        return {"kind": "openai", "model": model, "base_url": base_url, "spec": s}
    if kind == "replay":
        slug = rest.strip()
        if not slug:
            raise _bad_spec(spec, "no model slug (the cache file name without .jsonl)")
        return {"kind": "replay", "slug": slug, "spec": s}
    raise _bad_spec(spec, "unknown kind" if s else "empty spec")


def describe_llm(spec: str | None = None) -> str:
    """The model name a spec stands for, without starting or calling anything."""
    p = parse_llm_spec(spec)
    if p["kind"] == "local":
        return local_model_name()
    if p["kind"] == "openai":
        return p["model"]
    return recorded_model(p["slug"])[0]


class _LazyChat(ChatClient):
    """Builds its backend on the first call, so a run answered wholly from the cache starts nothing."""

    def __init__(self, model: str, factory, what: str, endpoint_id: str = ""):
        self.model = model
        self.endpoint_id = endpoint_id
        self._factory = factory
        self._what = what
        self._inner: ChatClient | None = None

    def _get(self) -> ChatClient:
        if self._inner is None:
            self._inner = self._factory()
        return self._inner

    def chat(self, messages, schema=None, logprobs=False, top_logprobs=0, temperature=0.0, seed=None,
             max_tokens=512, sample_index=0, stage=None) -> Reply:
        return self._get().chat(messages, schema=schema, logprobs=logprobs, top_logprobs=top_logprobs,
                                temperature=temperature, seed=seed, max_tokens=max_tokens,
                                sample_index=sample_index, stage=stage)

    @property
    def label(self) -> str:
        return self._inner.label if self._inner is not None else self.model

    def describe(self) -> str:
        return self._inner.describe() if self._inner is not None else f"{self.model} ({self._what})"

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def _local_client(name: str, stage: str | None, endpoint: str) -> OpenAIChat:
    # llama-cpp-python's server rejects json_schema (HTTP 500) but takes a schema in JSON mode.
    return OpenAIChat(model=name, base_url=ensure_local_server(), name=name, stage=stage,
                      schema_mode="json_object", seed_from_sample_index=True, endpoint_id=endpoint)


def get_chat(llm: str | None = None, stage: str | None = None, cache: str | None = None) -> ChatClient:
    """A chat client for an ``--llm`` spec (see :func:`parse_llm_spec`), behind the record/replay cache.

    ``stage`` tags every call for the usage log and replay-miss messages.  ``cache`` is
    ``off|record|replay`` (default ``$CASSANDRA_LLM_CACHE`` or ``record``).  The local server is
    started on the first call that misses the cache, and stopped at exit.  Nothing is contacted
    here; ``chat.label`` (for tables) may ask a remote server for its model list once.
    """
    p = parse_llm_spec(llm)
    if p["kind"] == "replay":
        if cache is not None and cache_mode(cache) != "replay":
            raise ValueError(f"{p['spec']!r} can only replay; drop cache={cache!r} or use another spec")
        model, path = recorded_model(p["slug"])
        pinned = None if path.stem == model_slug(model) else path  # a renamed file is read alone
        return CachedChat(None, mode="replay", path=pinned, model=model, stage=stage)
    mode = cache_mode(cache)
    if p["kind"] == "local":
        from .local import local_context_tokens
        name = local_model_name()
        endpoint = local_endpoint_id()
        inner = None if mode == "replay" else _LazyChat(
            name, lambda: _local_client(name, stage, endpoint), "local llama.cpp server, started on first call",
            endpoint_id=endpoint)
    else:
        name = p["model"]
        endpoint = p["base_url"]
        inner = None if mode == "replay" else OpenAIChat(p["model"], p["base_url"], stage=stage)
    client = inner if mode == "off" else CachedChat(inner, mode=mode, stage=stage, model=name, endpoint=endpoint)
    if p["kind"] == "local":
        client.context_tokens = local_context_tokens()  # lets prompt builders fit the context
    return client
