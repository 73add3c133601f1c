"""Chat client for any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama...).

Structured outputs: the client first asks for ``response_format={"type": "json_schema", ...}``;
a server that rejects that with a 4xx (llama.cpp's does) is asked again in JSON mode with the
schema attached (``{"type": "json_object", "schema": ...}``), and the choice is remembered per
endpoint for the rest of the process.

Retries: the ``openai`` client's own retries are switched off; this module retries timeouts,
rate limits (429) and server errors (5xx) itself with exponential back-off, so every retry is
counted in the usage log and logged.  Everything else fails at once with an :class:`LLMError`
that says what to do.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .base import ChatClient, LLMError, Reply, TokenLogprob, parse_json_reply
from .usage import record_usage

log = logging.getLogger("cassandra_wm.llm")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
LOOPBACK_KEY = "no-key-needed-on-loopback"  # the openai client refuses to start without some key

# How each endpoint takes a schema, learnt at run time: base_url -> "json_schema" | "json_object".
_SCHEMA_MODE: dict[str, str] = {}
_SCHEMA_MODE_LOCK = threading.Lock()


def normalize_base_url(url: str) -> str:
    """Return ``url`` in the form the openai client expects.

    Adds ``http://`` when no scheme is given, drops a trailing ``/chat/completions`` and
    slashes, and appends ``/v1`` when the URL has no path (``http://host:8000`` ->
    ``http://host:8000/v1``).  A URL with a path of its own is kept as given.
    """
    u = (url or "").strip()
    if not u:
        raise ValueError("empty base URL")
    if "://" not in u:
        u = "http://" + u
    parts = urlsplit(u)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    path = parts.path.rstrip("/")
    for tail in ("/chat/completions", "/completions"):
        if path.endswith(tail):
            path = path[: -len(tail)]
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (localhost, 127.x.x.x, ::1)."""
    host = urlsplit(url if "://" in url else "http://" + url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env_float(name: str, default: float) -> float:
    v = os.environ.get(name)
    if not v:
        return default
    try:
        return float(v)
    except ValueError as e:
        raise LLMError(f"{name}={v!r} is not a number") from e


def _strict_ok(schema: Any) -> bool:
    """Whether ``schema`` meets OpenAI's strict mode rules (closed objects, every property required)."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            props = schema.get("properties", {})
            if schema.get("additionalProperties", True) is not False:
                return False
            if set(schema.get("required", [])) != set(props):
                return False
        return all(_strict_ok(v) for k, v in schema.items() if k not in ("enum", "const", "default"))
    if isinstance(schema, list):
        return all(_strict_ok(v) for v in schema)
    return True


def convert_logprobs(raw: Any) -> list[TokenLogprob] | None:
    """Turn a choice's ``logprobs`` (chat format, or the older completions format) into TokenLogprobs."""
    if raw is None:
        return None
    if hasattr(raw, "model_dump"):
        raw = raw.model_dump()
    if not isinstance(raw, dict):
        return None
    content = raw.get("content")
    if content is not None:
        out = []
        for item in content:
            top = [(t["token"], float(t["logprob"])) for t in (item.get("top_logprobs") or [])]
            out.append(TokenLogprob(item["token"], float(item["logprob"]), top))
        return out
    tokens, lps = raw.get("tokens"), raw.get("token_logprobs")
    if tokens is not None and lps is not None:  # completions format: parallel lists, top as dicts
        tops = raw.get("top_logprobs") or [None] * len(tokens)
        return [TokenLogprob(tok, float(lp), sorted(((k, float(v)) for k, v in (top or {}).items()),
                                                    key=lambda kv: -kv[1]))
                for tok, lp, top in zip(tokens, lps, tops)]
    return None


class _Rejected(Exception):
    """A 4xx the caller may work around (e.g. an unsupported response_format)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class OpenAIChat(ChatClient):
    """A :class:`ChatClient` over the ``openai`` package.

    ``model`` is the name sent to the server; ``name`` (default: ``model``) is the name recorded
    in replies, caches and tables.  ``timeout`` (seconds per attempt), ``max_retries`` and
    ``backoff`` (first wait in seconds, doubled each retry, capped at ``max_backoff``) default to
    the environment variables ``CASSANDRA_LLM_TIMEOUT`` (120), ``CASSANDRA_LLM_RETRIES`` (3) and
    ``CASSANDRA_LLM_BACKOFF`` (1.0).  ``schema_mode`` forces ``"json_schema"`` or ``"json_object"``;
    by default it is learnt per endpoint.
    """

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, *,
                 name: str | None = None, stage: str | None = None, timeout: float | None = None,
                 max_retries: int | None = None, backoff: float | None = None, max_backoff: float = 30.0,
                 schema_mode: str | None = None, seed_from_sample_index: bool = False):
        try:
            import openai
        except ImportError as e:  # pragma: no cover - openai is in requirements.txt
            raise LLMError("the 'openai' package is missing: pip install -r requirements.txt") from e
        if not model:
            raise LLMError("no model name given: use --llm openai:<model> or set CASSANDRA_LLM_MODEL")
        if schema_mode not in (None, "json_schema", "json_object"):
            raise ValueError(f"schema_mode must be 'json_schema' or 'json_object', not {schema_mode!r}")
        self._openai = openai
        self.base_url = normalize_base_url(base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if not is_loopback(self.base_url):
                raise LLMError(f"no API key for {self.base_url}: set OPENAI_API_KEY, or use --llm local "
                               "for the bundled model (no key needed)")
            key = LOOPBACK_KEY
        self.request_model = model
        self.model = name or model
        self.stage = stage
        self.timeout = float(timeout if timeout is not None else _env_float("CASSANDRA_LLM_TIMEOUT", 120.0))
        self.max_retries = int(max_retries if max_retries is not None
                               else _env_float("CASSANDRA_LLM_RETRIES", 3))
        self.backoff = float(backoff if backoff is not None else _env_float("CASSANDRA_LLM_BACKOFF", 1.0))
        self.max_backoff = float(max_backoff)
        self.schema_mode = schema_mode
        self.seed_from_sample_index = bool(seed_from_sample_index)
        http_client = None
        if is_loopback(self.base_url):  # never send loopback traffic through an HTTP(S)_PROXY
            factory = getattr(openai, "DefaultHttpx2Client", None) or getattr(openai, "DefaultHttpxClient")
            http_client = factory(trust_env=False)
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout, max_retries=0,
                                     http_client=http_client)

    def describe(self) -> str:
        return f"{self.model} via {self.base_url}"

    def close(self) -> None:
        self._client.close()

    # -- the call ----------------------------------------------------------
    def chat(self, messages: list[dict], schema: dict | None = None, logprobs: bool = False,
             top_logprobs: int = 0, temperature: float = 0.0, seed: int | None = None,
             max_tokens: int = 512, sample_index: int = 0, stage: str | None = None) -> Reply:
        """Send one request (see :class:`ChatClient`); ``sample_index`` only matters to caches."""
        stage = stage or self.stage
        kwargs: dict[str, Any] = dict(model=self.request_model, messages=list(messages),
                                      temperature=temperature, max_tokens=max_tokens)
        if seed is None and self.seed_from_sample_index:
            seed = int(sample_index)
        if seed is not None:
            kwargs["seed"] = int(seed)
        if logprobs:
            kwargs["logprobs"] = True
            if top_logprobs:
                kwargs["top_logprobs"] = int(top_logprobs)
        counter = {"retries": 0}
        t0 = time.perf_counter()
        try:
            if schema is None:
                resp = self._with_retries(kwargs, counter)
            else:
                resp = self._structured(kwargs, messages, schema, counter)
        except _Rejected as e:
            err = LLMError(f"{self.base_url} rejected the request (HTTP {e.status}) in stage "
                           f"{stage or 'unspecified'!r}: {e.message}")
            record_usage(stage, self.model, seconds=time.perf_counter() - t0, retries=counter["retries"],
                         error=str(err))
            raise err from None
        except LLMError as e:
            record_usage(stage, self.model, seconds=time.perf_counter() - t0, retries=counter["retries"],
                         error=str(e))
            raise
        seconds = time.perf_counter() - t0
        return self._reply(resp, schema, max_tokens, seconds, counter["retries"], stage)

    def _structured(self, kwargs: dict, messages: list[dict], schema: dict, counter: dict):
        with _SCHEMA_MODE_LOCK:
            mode = self.schema_mode or _SCHEMA_MODE.get(self.base_url, "json_schema")
        if mode == "json_schema":
            fmt = {"type": "json_schema",
                   "json_schema": {"name": "reply", "schema": schema, "strict": _strict_ok(schema)}}
            try:
                resp = self._with_retries({**kwargs, "response_format": fmt}, counter)
            except _Rejected as e:
                if self.schema_mode == "json_schema":
                    raise
                log.info("%s rejected response_format json_schema (HTTP %s); retrying in JSON mode with "
                         "the schema attached", self.base_url, e.status)
                mode = "json_object"
            else:
                with _SCHEMA_MODE_LOCK:
                    _SCHEMA_MODE.setdefault(self.base_url, "json_schema")
                return resp
        msgs = list(messages)
        if not any("json" in str(m.get("content", "")).lower() for m in msgs):
            # JSON mode on OpenAI-style servers requires the word "JSON" somewhere in the prompt.
            note = "Reply with one JSON object."
            if msgs and msgs[0].get("role") == "system" and isinstance(msgs[0].get("content"), str):
                msgs[0] = {**msgs[0], "content": f"{msgs[0]['content']}\n{note}"}
            else:
                msgs.insert(0, {"role": "system", "content": note})
        fmt = {"type": "json_object", "schema": schema}
        resp = self._with_retries({**kwargs, "messages": msgs, "response_format": fmt}, counter)
        if self.schema_mode is None:
            with _SCHEMA_MODE_LOCK:
                _SCHEMA_MODE[self.base_url] = "json_object"
        return resp

    def _with_retries(self, kwargs: dict, counter: dict):
        """One request with bounded retries on timeouts, 429 and 5xx; other failures raise at once."""
        oa = self._openai
        where = f"{self.base_url} (model {self.request_model!r})"
        for attempt in range(self.max_retries + 1):
            wait = self.backoff * (2 ** attempt)
            try:
                return self._client.chat.completions.create(**kwargs)
            except oa.APITimeoutError:
                reason = f"no answer within {self.timeout:g} s"
            except oa.APIConnectionError as e:
                raise LLMError(f"cannot reach {self.base_url}: {e.__cause__ or e}. Is the server running and "
                               "the URL right? Set OPENAI_BASE_URL or --llm openai:<model>@<url>, or use "
                               "--llm local") from None
            except oa.APIStatusError as e:
                status = e.status_code
                msg = _error_message(e)
                if status == 401:
                    raise LLMError(f"{self.base_url} refused the API key (401): {msg}. Check OPENAI_API_KEY") \
                        from None
                if status == 403:
                    raise LLMError(f"{where}: access denied (403): {msg}. Check the key's permissions") from None
                if status == 404:
                    raise LLMError(f"{where}: not found (404): {msg}. {self._models_hint()}") from None
                if status == 429:
                    if _error_code(e) == "insufficient_quota":
                        raise LLMError(f"{where}: quota exhausted (429 insufficient_quota): {msg}. "
                                       "Check billing, or use --llm local") from None
                    reason = "rate limited (429)"
                    wait = max(wait, _retry_after(e))
                elif status >= 500 and any(w in f"{msg} {e}" for w in ("response_format", "json_schema")):
                    raise _Rejected(status, msg) from None  # llama-cpp-python answers json_schema with a 500
                elif status >= 500:
                    reason = f"server error {status}: {msg}"
                else:
                    raise _Rejected(status, msg) from None
            if attempt == self.max_retries:
                raise LLMError(f"{where}: {reason}; gave up after {attempt + 1} attempts. Try again later, "
                               "raise CASSANDRA_LLM_TIMEOUT / CASSANDRA_LLM_RETRIES, or use another endpoint")
            wait = min(wait, self.max_backoff)
            counter["retries"] += 1
            log.warning("%s: %s; retry %d/%d in %.2f s", where, reason, attempt + 1, self.max_retries, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _models_hint(self) -> str:
        try:
            ids = [m.id for m in self._client.models.list()]
        except Exception:
            return "Check the base URL (it should end in /v1) and the model name"
        return (f"Models served there: {', '.join(ids[:20]) or 'none'}. "
                "Pick one with --llm openai:<model> or CASSANDRA_LLM_MODEL")

    def _reply(self, resp, schema, max_tokens: int, seconds: float, retries: int, stage) -> Reply:
        if not getattr(resp, "choices", None):
            err = f"{self.base_url} returned no choices"
            record_usage(stage, self.model, seconds=seconds, retries=retries, error=err)
            raise LLMError(err)
        choice = resp.choices[0]
        text = (choice.message.content if choice.message is not None else None) or ""
        u = getattr(resp, "usage", None)
        ptok = int(getattr(u, "prompt_tokens", 0) or 0)
        ctok = int(getattr(u, "completion_tokens", 0) or 0)
        finish = getattr(choice, "finish_reason", None)
        usage = {"prompt_tokens": ptok, "completion_tokens": ctok, "seconds": round(seconds, 4),
                 "retries": retries, "finish_reason": finish}
        parsed, perr = (None, None)
        if schema is not None:
            parsed, perr = parse_json_reply(text)
            if perr and finish == "length":
                perr += f" (reply cut off at max_tokens={max_tokens})"
        lps = convert_logprobs(getattr(choice, "logprobs", None))
        record_usage(stage, self.model, ptok, ctok, seconds, retries)
        return Reply(text=text, parsed=parsed, token_logprobs=lps, usage=usage, model=self.model,
                     parse_error=perr)


def _error_message(e) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
        if isinstance(body.get("detail"), (str, list)):
            return str(body["detail"])[:500]
    return str(getattr(e, "message", e))[:500]


def _error_code(e) -> str | None:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get("code") or inner.get("type")
    return getattr(e, "code", None)


def _retry_after(e) -> float:
    try:
        v = e.response.headers.get("retry-after")
        return float(v) if v else 0.0
    except (AttributeError, TypeError, ValueError):
        return 0.0


def reset_schema_modes() -> None:
    """Forget what was learnt about each endpoint's structured-output support (tests use this)."""
    with _SCHEMA_MODE_LOCK:
        _SCHEMA_MODE.clear()
