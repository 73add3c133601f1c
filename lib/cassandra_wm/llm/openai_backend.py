"""Chat client for any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama...).

Structured outputs: the client first asks for ``response_format={"type": "json_schema", ...}``;
a server that rejects that with a 4xx (llama.cpp's does) is asked again in JSON mode with the
schema attached (``{"type": "json_object", "schema": ...}``), and the choice is remembered per
endpoint for the rest of the process.

Only usable replies come back: a reply that is empty, cut off, not JSON or off its schema when a
schema was asked, without the log-probabilities asked for, larger than
``CASSANDRA_LLM_MAX_REPLY_BYTES`` or not UTF-8 raises :class:`~cassandra_wm.llm.base.UnusableReply`
(see :func:`~cassandra_wm.llm.base.reply_problem`), and the usage log counts it as an error.

Retries (tenacity): timeouts, dropped or refused connections, rate limits (429, honouring
``Retry-After``) and server errors (5xx) are retried with exponential back-off; every retry is
counted in the usage log and logged.  Each attempt has a timeout (``CASSANDRA_LLM_TIMEOUT``).
On top of that each stage has one deadline for a dead endpoint: once an endpoint has gone
``CASSANDRA_LLM_STAGE_DEADLINE`` seconds without answering, every further call of that stage fails
at once (:class:`EndpointDead`), so a stalled server cannot hold a stage for hours.  Everything
else fails at once with an :class:`LLMError` that says what to do.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import tenacity

from .base import (ChatClient, LLMError, Reply, TokenLogprob, UnusableReply, llm_label, parse_json_reply,
                   reply_problem)
from .usage import record_usage

log = logging.getLogger("cassandra_wm.llm")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
LOOPBACK_KEY = "no-key-needed-on-loopback"  # the openai client refuses to start without some key
DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024
DEFAULT_STAGE_DEADLINE = 600.0

# How each endpoint takes a schema, learnt at run time: base_url -> "json_schema" | "json_object".
_SCHEMA_MODE: dict[str, str] = {}
_SCHEMA_MODE_LOCK = threading.Lock()

# Words servers use when a prompt does not fit their context (llama.cpp, vLLM, OpenAI, Ollama).
_CONTEXT_WORDS = ("context length", "context_length", "context size", "context window", "n_ctx",
                  "maximum context", "too many tokens", "exceeds the available context", "prompt is too long")


def _http_exceptions() -> tuple[tuple, tuple]:
    """(timeout errors, other request errors) of whichever httpx flavours the openai client may use."""
    timeouts, others = [], []
    for name in ("httpx2", "httpx"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        timeouts.append(mod.TimeoutException)
        others += [mod.RequestError, mod.StreamError]
    return tuple(timeouts), tuple(others)


_TIMEOUT_ERRORS, _REQUEST_ERRORS = _http_exceptions()


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
        x = float(v)
    except ValueError as e:
        raise LLMError(f"{name}={v!r} is not a number") from e
    if not math.isfinite(x) or x < 0:
        raise LLMError(f"{name}={v!r} must be a finite number >= 0")
    return x


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
    """Turn a choice's ``logprobs`` (chat format, or the older completions format) into TokenLogprobs.

    Raises ValueError (or KeyError/TypeError) on a malformed structure.
    """
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
            top = [(str(t["token"]), float(t["logprob"])) for t in (item.get("top_logprobs") or [])]
            out.append(TokenLogprob(str(item["token"]), float(item["logprob"]), top))
        return out
    tokens, lps = raw.get("tokens"), raw.get("token_logprobs")
    if tokens is not None and lps is not None:  # completions format: parallel lists, top as dicts
        tops = raw.get("top_logprobs") or [None] * len(tokens)
        return [TokenLogprob(str(tok), float(lp), sorted(((str(k), float(v)) for k, v in (top or {}).items()),
                                                         key=lambda kv: -kv[1]))
                for tok, lp, top in zip(tokens, lps, tops)]
    return None


def _count(v: Any) -> int:
    """A token count from a server: a non-negative int, or 0 for anything else."""
    try:
        x = int(v)
    except (TypeError, ValueError, OverflowError):
        return 0
    return x if 0 <= x < 10**12 else 0


class _Rejected(Exception):
    """A 4xx the caller may work around (e.g. an unsupported response_format)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _Transient(Exception):
    """A failure worth retrying: timeout, dropped or refused connection, 429, 5xx."""

    def __init__(self, reason: str, retry_after: float = 0.0):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class EndpointDead(LLMError):
    """The endpoint has not answered for the stage's deadline; the stage's further calls fail at once."""


class ContextTooSmall(LLMError):
    """The server rejected a prompt that does not fit its context."""


class _EndpointState:
    """Per (stage, endpoint): since when nothing has answered, and whether the deadline has passed."""

    def __init__(self):
        self.failing_since: float | None = None
        self.dead: str | None = None

    def remaining(self, deadline: float) -> float:
        if self.failing_since is None:
            return deadline
        return deadline - (time.monotonic() - self.failing_since)


_STATES: dict[tuple[str, str], _EndpointState] = {}
_STATES_LOCK = threading.Lock()


def _state(stage: str | None, base_url: str) -> _EndpointState:
    with _STATES_LOCK:
        return _STATES.setdefault((stage or "unspecified", base_url), _EndpointState())


def reset_endpoint_states() -> None:
    """Forget which endpoints were found dead in which stage (tests, or a notebook retrying by hand)."""
    with _STATES_LOCK:
        _STATES.clear()


class OpenAIChat(ChatClient):
    """A :class:`ChatClient` over the ``openai`` package.

    ``model`` is the name sent to the server; ``name`` (default: ``model``) is the name recorded
    in replies, caches and tables.  ``endpoint_id`` (default: the base URL) names where answers come
    from in cache keys.  ``timeout`` (seconds per attempt), ``max_retries``, ``backoff`` (first wait
    in seconds, doubled each retry, capped at ``max_backoff``), ``stage_deadline`` (seconds an
    endpoint may go without answering before the stage gives up on it) and ``max_reply_bytes``
    default to ``CASSANDRA_LLM_TIMEOUT`` (120), ``CASSANDRA_LLM_RETRIES`` (3),
    ``CASSANDRA_LLM_BACKOFF`` (1.0), ``CASSANDRA_LLM_STAGE_DEADLINE`` (600) and
    ``CASSANDRA_LLM_MAX_REPLY_BYTES`` (16 MiB).  ``schema_mode`` forces ``"json_schema"`` or
    ``"json_object"``; by default it is learnt per endpoint.
    """

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, *,
                 name: str | None = None, stage: str | None = None, timeout: float | None = None,
                 max_retries: int | None = None, backoff: float | None = None, max_backoff: float = 30.0,
                 schema_mode: str | None = None, seed_from_sample_index: bool = False,
                 endpoint_id: str | None = None, stage_deadline: float | None = None,
                 max_reply_bytes: int | None = None):
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
        self._key = key
        self.request_model = model
        self.model = name or model
        self.endpoint_id = endpoint_id or self.base_url
        self.stage = stage
        self.timeout = float(timeout if timeout is not None else _env_float("CASSANDRA_LLM_TIMEOUT", 120.0))
        self.max_retries = int(max_retries if max_retries is not None
                               else _env_float("CASSANDRA_LLM_RETRIES", 3))
        self.backoff = float(backoff if backoff is not None else _env_float("CASSANDRA_LLM_BACKOFF", 1.0))
        self.max_backoff = float(max_backoff)
        self.stage_deadline = float(stage_deadline if stage_deadline is not None
                                    else _env_float("CASSANDRA_LLM_STAGE_DEADLINE", DEFAULT_STAGE_DEADLINE))
        self.max_reply_bytes = int(max_reply_bytes if max_reply_bytes is not None
                                   else _env_float("CASSANDRA_LLM_MAX_REPLY_BYTES", DEFAULT_MAX_REPLY_BYTES))
        if self.timeout <= 0 or self.stage_deadline <= 0 or self.max_reply_bytes <= 0 or self.max_retries < 0:
            raise ValueError("timeout, stage_deadline and max_reply_bytes must be > 0 and max_retries >= 0")
        self.schema_mode = schema_mode
        self.seed_from_sample_index = bool(seed_from_sample_index)
        self.server_model: str | None = None  # what the server last said it used
        self._listed: list[str] | None = None
        http_client = None
        if is_loopback(self.base_url):  # never send loopback traffic through an HTTP(S)_PROXY
            factory = getattr(openai, "DefaultHttpx2Client", None) or getattr(openai, "DefaultHttpxClient")
            http_client = factory(trust_env=False)
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout, max_retries=0,
                                     http_client=http_client)

    @property
    def where(self) -> str:
        """The base URL, with the cache's endpoint id when that differs (the bundled model's)."""
        return self.base_url if self.endpoint_id == self.base_url else f"{self.base_url} ({self.endpoint_id})"

    def describe(self) -> str:
        return f"{self.model} via {self.base_url}"

    def close(self) -> None:
        self._client.close()

    # -- what the server says it is ------------------------------------------
    def served_models(self, timeout: float = 10.0) -> list[str]:
        """Model ids listed by ``GET <base_url>/models`` (raises LLMError when that fails)."""
        try:
            page = self._client.with_options(timeout=timeout).models.list()
            return [str(m.id) for m in page.data]
        except Exception as e:  # noqa: BLE001 - any failure is reported the same way
            raise LLMError(f"{self.base_url}/models did not answer: {type(e).__name__}: {e}") from None

    def reported_model(self) -> str | None:
        """The model id the server reports, or None when it says nothing.

        A reply naming another model than the one asked for wins; else the model list (asked once):
        a server that lists one model but not the name asked for serves that one whatever name a
        request carries (llama.cpp echoes the requested name in its replies).
        """
        if self.server_model and self.server_model != self.request_model:
            return self.server_model
        if self._listed is None:
            try:
                self._listed = self.served_models(timeout=5.0)
            except LLMError:
                self._listed = []
        if self._listed and self.request_model not in self._listed:
            return self._listed[0] if len(self._listed) == 1 else None
        return self.server_model or (self.request_model if self._listed else None)

    @property
    def label(self) -> str:
        """The name asked for, plus what the server reports when that differs from the name sent."""
        reported = self.reported_model()
        return llm_label(self.model, None if reported == self.request_model else reported)

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

        def fail(err: LLMError, ptok: int = 0, ctok: int = 0) -> LLMError:
            record_usage(stage, self.model, ptok, ctok, seconds=time.perf_counter() - t0,
                         retries=counter["retries"], error=str(err), endpoint=self.where)
            return err

        try:
            if schema is None:
                body = self._with_retries(kwargs, counter, stage)
            else:
                body = self._structured(kwargs, messages, schema, counter, stage)
            reply = self._reply(body, time.perf_counter() - t0, counter["retries"])
        except _Rejected as e:
            raise fail(LLMError(f"{self.base_url} rejected the request (HTTP {e.status}) in stage "
                                f"{stage or 'unspecified'!r}: {e.message}")) from None
        except LLMError as e:
            raise fail(e) from None
        problem = reply_problem(reply, schema=schema, logprobs=logprobs, top_logprobs=top_logprobs,
                                max_tokens=max_tokens)
        if problem is not None:
            raise fail(UnusableReply(*problem, endpoint=self.base_url), reply.usage.get("prompt_tokens", 0),
                       reply.usage.get("completion_tokens", 0)) from None
        if schema is not None:
            reply.parsed, err = parse_json_reply(reply.text)
            if err:  # usable, so only raw control characters inside strings stop a strict parse
                reply.parse_error = f"{err}: raw control characters inside JSON strings (parses leniently)"
        reply.server_model = self.reported_model() or reply.server_model  # what caches record and replay
        record_usage(stage, self.model, reply.usage["prompt_tokens"], reply.usage["completion_tokens"],
                     reply.usage["seconds"], counter["retries"], endpoint=self.where)
        return reply

    def _structured(self, kwargs: dict, messages: list[dict], schema: dict, counter: dict, stage) -> dict:
        with _SCHEMA_MODE_LOCK:
            mode = self.schema_mode or _SCHEMA_MODE.get(self.base_url, "json_schema")
        if mode == "json_schema":
            fmt = {"type": "json_schema",
                   "json_schema": {"name": "reply", "schema": schema, "strict": _strict_ok(schema)}}
            try:
                body = self._with_retries({**kwargs, "response_format": fmt}, counter, stage)
            except _Rejected as e:
                if self.schema_mode == "json_schema" or "logprob" in e.message.lower():
                    raise  # forced, or a rejection of something else than the schema
                log.info("%s rejected response_format json_schema (HTTP %s); retrying in JSON mode with "
                         "the schema attached", self.base_url, e.status)
                mode = "json_object"
            else:
                with _SCHEMA_MODE_LOCK:
                    _SCHEMA_MODE.setdefault(self.base_url, "json_schema")
                return body
        msgs = list(messages)
        if not any("json" in str(m.get("content", "")).lower() for m in msgs):
            # JSON mode on OpenAI-style servers requires the word "JSON" somewhere in the prompt.
            note = "Reply with one JSON object."
            if msgs and msgs[0].get("role") == "system" and isinstance(msgs[0].get("content"), str):
                msgs[0] = {**msgs[0], "content": f"{msgs[0]['content']}\n{note}"}
            else:
                msgs.insert(0, {"role": "system", "content": note})
        fmt = {"type": "json_object", "schema": schema}
        body = self._with_retries({**kwargs, "messages": msgs, "response_format": fmt}, counter, stage)
        if self.schema_mode is None:
            with _SCHEMA_MODE_LOCK:
                _SCHEMA_MODE[self.base_url] = "json_object"
        return body

    def _with_retries(self, kwargs: dict, counter: dict, stage) -> dict:
        """One request, retried (tenacity) on transient failures within the attempt and stage limits."""
        where = f"{self.base_url} (model {self.request_model!r})"
        state = _state(stage, self.base_url)
        deadline = self.stage_deadline

        def attempt() -> dict:
            with _STATES_LOCK:
                if state.dead is None and state.remaining(deadline) <= 0:
                    state.dead = (f"{self.base_url} has not answered for {deadline:g} s in stage "
                                  f"{stage or 'unspecified'!r}")
                dead = state.dead
            if dead:
                raise EndpointDead(f"{dead} (CASSANDRA_LLM_STAGE_DEADLINE); every further call of this stage "
                                   "fails at once. Check that the server is up and answering, then rerun the stage "
                                   "(in a notebook: restart the kernel, or call "
                                   "cassandra_wm.llm.reset_endpoint_states())")
            timeout = max(0.05, min(self.timeout, state.remaining(deadline)))
            started = time.monotonic()
            try:
                body = self._post(kwargs, timeout)
            except _Transient:
                with _STATES_LOCK:
                    if state.failing_since is None:
                        state.failing_since = started
                raise
            except (UnusableReply, _Rejected, LLMError):
                with _STATES_LOCK:  # the endpoint answered: it is alive
                    state.failing_since = None
                raise
            with _STATES_LOCK:
                state.failing_since = None
            return body

        def wait(rs: tenacity.RetryCallState) -> float:
            exc = rs.outcome.exception() if rs.outcome is not None else None
            w = min(self.max_backoff, self.backoff * 2 ** (rs.attempt_number - 1))
            if isinstance(exc, _Transient) and exc.retry_after:
                w = max(w, min(exc.retry_after, self.max_backoff))
            return max(0.0, min(w, state.remaining(deadline)))

        def before_sleep(rs: tenacity.RetryCallState) -> None:
            counter["retries"] += 1
            exc = rs.outcome.exception()
            log.warning("%s: %s; retry %d/%d in %.2f s", where, getattr(exc, "reason", exc), rs.attempt_number,
                        self.max_retries, rs.next_action.sleep if rs.next_action else 0.0)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=tenacity.stop_after_attempt(self.max_retries + 1) | (lambda rs: state.remaining(deadline) <= 0),
            wait=wait, before_sleep=before_sleep, reraise=True, sleep=time.sleep)
        try:
            return retrying(attempt)
        except _Transient as e:
            raise LLMError(f"{where}: {e.reason}; gave up after {counter['retries'] + 1} attempts. Try again later, "
                           "raise CASSANDRA_LLM_TIMEOUT / CASSANDRA_LLM_RETRIES, or use another endpoint") from None

    def _post(self, kwargs: dict, timeout: float) -> dict:
        """One HTTP request; returns the decoded JSON body or raises _Transient/_Rejected/LLMError."""
        oa = self._openai
        t0 = time.monotonic()
        try:
            with self._client.chat.completions.with_streaming_response.create(**kwargs, timeout=timeout) as resp:
                data = self._read_capped(resp, timeout, t0)
        except oa.APITimeoutError:
            raise _Transient(f"no answer within {timeout:.3g} s") from None
        except oa.APIConnectionError as e:
            cause = e.__cause__ or e
            if type(cause).__name__ == "ConnectError":  # refused, or no such host: retrying will not help
                raise LLMError(f"cannot reach {self.base_url}: {cause}. Is the server running and the URL right? "
                               "Set OPENAI_BASE_URL or --llm openai:<model>@<url>, or use --llm local") from None
            raise _Transient(f"the connection dropped ({type(cause).__name__}: {cause})") from None
        except oa.APIStatusError as e:
            raise self._status_error(e) from None
        except _TIMEOUT_ERRORS:
            raise _Transient(f"the reply stalled (no data for {timeout:.3g} s)") from None
        except _REQUEST_ERRORS as e:
            raise _Transient(f"the connection broke mid-reply ({type(e).__name__}: {e})") from None
        except oa.OpenAIError as e:  # anything else the client raises is still the endpoint's failure
            raise LLMError(f"{self.base_url}: {type(e).__name__}: {e}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UnusableReply("not_utf8", f"the answer is not UTF-8 ({e.reason} at byte {e.start})",
                                self.base_url) from None
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):
            raise UnusableReply("not_json_body", f"the answer is not JSON; it starts {text[:80]!r}",
                                self.base_url) from None
        if not isinstance(body, dict):
            raise UnusableReply("not_a_completion", f"the answer is a JSON {type(body).__name__}, not an object",
                                self.base_url)
        return body

    def _read_capped(self, resp, timeout: float, t0: float) -> bytes:
        """The body, refusing more than ``max_reply_bytes`` and a trickle lasting past the timeout."""
        cap = self.max_reply_bytes
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise UnusableReply("oversized", f"the answer declares {int(declared):,} bytes, more than "
                                f"CASSANDRA_LLM_MAX_REPLY_BYTES={cap:,}", self.base_url)
        chunks, size = [], 0
        for chunk in resp.iter_bytes():
            size += len(chunk)
            if size > cap:
                raise UnusableReply("oversized", f"the answer is over CASSANDRA_LLM_MAX_REPLY_BYTES={cap:,} bytes",
                                    self.base_url)
            chunks.append(chunk)
            if time.monotonic() - t0 > timeout:
                raise _Transient(f"the reply trickled in past the {timeout:.3g} s timeout")
        return b"".join(chunks)

    def _status_error(self, e) -> Exception:
        """Map an HTTP error status to what the retry loop and the caller should see."""
        status = e.status_code
        msg = _error_message(e)
        where = f"{self.base_url} (model {self.request_model!r})"
        if status == 401:
            return LLMError(f"{self.base_url} refused the API key (401): {msg}. Check OPENAI_API_KEY")
        if status == 403:
            return LLMError(f"{where}: access denied (403): {msg}. Check the key's permissions")
        if status == 404:
            return LLMError(f"{where}: not found (404): {msg}. {self._models_hint()}")
        if status == 429:
            if _error_code(e) == "insufficient_quota":
                return LLMError(f"{where}: quota exhausted (429 insufficient_quota): {msg}. "
                                "Check billing, or use --llm local")
            return _Transient("rate limited (429)", retry_after=_retry_after(e))
        low = f"{msg} {_error_code(e) or ''}".lower()
        if status in (400, 413, 422) and any(w in low for w in _CONTEXT_WORDS):
            return ContextTooSmall(
                f"{where}: the prompt does not fit the server's context (HTTP {status}): {msg}. Start the server "
                "with a larger context (llama.cpp: -c 8192; vLLM: --max-model-len 8192) or pick a model with "
                "one; the README's 'LLMs' section lists what each stage needs")
        if status >= 500 and any(w in f"{msg} {e}" for w in ("response_format", "json_schema")):
            return _Rejected(status, msg)  # llama-cpp-python answers json_schema with a 500
        if status >= 500 or status in (408, 409):
            return _Transient(f"server error {status}: {msg}")
        return _Rejected(status, msg)

    def _models_hint(self) -> str:
        try:
            ids = self.served_models(timeout=5.0)
        except LLMError:
            return "Check the base URL (it should end in /v1) and the model name"
        return (f"Models served there: {', '.join(ids[:20]) or 'none'}. "
                "Pick one with --llm openai:<model> or CASSANDRA_LLM_MODEL")

    def _reply(self, body: dict, seconds: float, retries: int) -> Reply:
        """A Reply from a chat.completion body, read defensively (nothing in it is trusted)."""
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            if isinstance(body.get("error"), (dict, str)):
                raise UnusableReply("error_body", f"the answer is an error: {str(body['error'])[:300]}",
                                    self.base_url)
            raise UnusableReply("no_choices", "the answer has no choices", self.base_url)
        choice = choices[0]
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if content is not None and not isinstance(content, str):
            raise UnusableReply("bad_content", f"the message content is a {type(content).__name__}, not text",
                                self.base_url)
        u = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        finish = choice.get("finish_reason")
        usage = {"prompt_tokens": _count(u.get("prompt_tokens")), "completion_tokens": _count(u.get("completion_tokens")),
                 "seconds": round(seconds, 4), "retries": retries,
                 "finish_reason": finish if isinstance(finish, str) else None}
        try:
            lps = convert_logprobs(choice.get("logprobs"))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UnusableReply("bad_logprobs", f"the log-probabilities are malformed ({type(e).__name__}: {e})",
                                self.base_url) from None
        server_model = body.get("model") if isinstance(body.get("model"), str) else ""
        if server_model:
            self.server_model = server_model[:200]
        return Reply(text=content or "", parsed=None, token_logprobs=lps, usage=usage, model=self.model,
                     server_model=server_model[:200])


def _error_message(e) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
        if isinstance(inner, str):
            return inner[:500]
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
        x = float(v) if v else 0.0
        return x if math.isfinite(x) and x > 0 else 0.0
    except (AttributeError, TypeError, ValueError):
        return 0.0


def reset_schema_modes() -> None:
    """Forget what was learnt about each endpoint's structured-output support (tests use this)."""
    with _SCHEMA_MODE_LOCK:
        _SCHEMA_MODE.clear()
