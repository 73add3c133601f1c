"""The one chat interface every LLM backend implements, and what makes a reply usable."""
from __future__ import annotations

import abc
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)  # alternatives at this position


@dataclass
class Reply:
    """What a chat call returns.

    ``parsed`` is the JSON object when a schema was asked for and it parses strictly (None
    otherwise); ``parse_error`` says why not.  The real backends and the cache only return usable
    replies (others raise :class:`UnusableReply`), so there ``parse_error`` can only mean raw
    control characters inside JSON strings, which :func:`parse_json_reply` with ``lenient=True``
    reads; the scripted backend returns whatever it was given.  ``server_model`` is the model id the server said it
    used ("" when unknown).
    """

    text: str
    parsed: Any = None
    token_logprobs: list[TokenLogprob] | None = None
    usage: dict = field(default_factory=dict)  # prompt_tokens, completion_tokens, seconds, finish_reason
    model: str = ""
    parse_error: str | None = None
    cached: bool = False
    server_model: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Reply":
        lps = d.get("token_logprobs")
        if lps is not None:
            lps = [TokenLogprob(x["token"], float(x["logprob"]), [tuple(t) for t in x.get("top", [])]) for x in lps]
        return cls(text=d.get("text", ""), parsed=d.get("parsed"), token_logprobs=lps,
                   usage=dict(d.get("usage") or {}), model=d.get("model", ""),
                   parse_error=d.get("parse_error"), cached=bool(d.get("cached", False)),
                   server_model=str(d.get("server_model") or ""))


class LLMError(RuntimeError):
    """A chat call failed in a way the caller should report (bad endpoint, key, replay miss...)."""


class UnusableReply(LLMError):
    """The endpoint answered, but not with something a caller may use or the cache may keep.

    ``kind`` is a short tag (``empty``, ``truncated``, ``not_json``, ``schema``, ``no_logprobs``,
    ``oversized``, ``not_utf8``, ...); ``reason`` says what was wrong in words.
    """

    def __init__(self, kind: str, reason: str, endpoint: str = ""):
        where = f" from {endpoint}" if endpoint else ""
        super().__init__(f"unusable LLM reply{where} ({kind}): {reason}")
        self.kind, self.reason, self.endpoint = kind, reason, endpoint


class ChatClient(abc.ABC):
    """``chat(messages, schema=None, logprobs=False, temperature=..., seed=...) -> Reply``.

    ``model`` is the name asked for; ``label`` is what tables print (the name, plus what the
    server reports when that differs); ``endpoint_id`` says where answers come from and is part
    of every record/replay cache key.
    """

    model: str = "unknown"
    endpoint_id: str = ""

    @abc.abstractmethod
    def chat(self, messages: list[dict], schema: dict | None = None, logprobs: bool = False,
             top_logprobs: int = 0, temperature: float = 0.0, seed: int | None = None,
             max_tokens: int = 512, sample_index: int = 0, stage: str | None = None) -> Reply:
        """Send one chat request and return the reply."""

    @property
    def label(self) -> str:
        return self.model

    def describe(self) -> str:
        return self.model

    def close(self) -> None:
        """Release any resources (servers, connections)."""


def llm_label(asked: str, reported: str | None) -> str:
    """``"gpt-4o (server reports: smollm2-135m)"`` when the server names another model, else ``asked``."""
    if not reported or reported == asked:
        return asked
    return f"{asked} (server reports: {reported})"


def parse_json_reply(text: str, lenient: bool = False) -> tuple[Any, str | None]:
    """Parse the first JSON value in ``text``; returns (obj, error).

    ``lenient`` also accepts raw newlines and tabs inside strings (small models write code into
    JSON strings without escaping it; the content is intact): the backends parse that way.
    """
    s = (text or "").strip()
    if s.startswith("```"):
        s = s.strip("`")
        if s.startswith("json"):
            s = s[4:]
    dec = json.JSONDecoder(strict=not lenient)
    try:
        return dec.decode(s), None
    except json.JSONDecodeError:
        pass
    except RecursionError:
        return None, "JSON nested too deeply"
    start = s.find("{")
    if start < 0:
        return None, "no JSON object in reply"
    try:
        obj, _ = dec.raw_decode(s[start:])
        return obj, None
    except json.JSONDecodeError as e:
        return None, f"malformed JSON: {e.msg} at char {e.pos}"
    except RecursionError:
        return None, "JSON nested too deeply"


# A token is rarely more than a few dozen characters; a reply far longer than max_tokens allows
# did not come from the request it claims to answer.
CHARS_PER_TOKEN_LIMIT = 64


_VALIDATORS: dict[str, Any] = {}


def schema_errors(obj: Any, schema: dict) -> list[str]:
    """Why ``obj`` does not match the JSON ``schema`` (empty when it does, or when the schema itself is bad).

    Uses fastjsonschema (already required by nbformat; importing jsonschema here costs seconds).
    """
    import fastjsonschema

    key = json.dumps(schema, sort_keys=True, default=str)
    check = _VALIDATORS.get(key)
    if check is None:
        try:
            check = fastjsonschema.compile(schema)
        except Exception:  # noqa: BLE001 - a caller's schema mistake is not the endpoint's fault
            check = _accept_all
        if len(_VALIDATORS) > 512:
            _VALIDATORS.clear()
        _VALIDATORS[key] = check
    try:
        check(obj)
    except fastjsonschema.JsonSchemaValueException as e:
        return [str(e.message)[:300]]
    except (RecursionError, TypeError, ValueError) as e:
        return [f"cannot be checked ({type(e).__name__})"]
    return []


def _accept_all(obj: Any) -> Any:
    return obj


def reply_problem(reply: Reply, schema: dict | None = None, logprobs: bool = False, top_logprobs: int = 0,
                  max_tokens: int | None = None) -> tuple[str, str] | None:
    """``(kind, reason)`` when ``reply`` cannot serve the request it answers, else None.

    Unusable: empty text; text longer than ``max_tokens`` could produce; with a schema, a reply cut
    off at ``max_tokens`` (``finish_reason == "length"``), not JSON, or not matching the schema;
    with ``logprobs``, no log-probabilities, non-numbers or values above 0 among them, or no top
    alternatives when ``top_logprobs`` were asked for.  Free text cut at ``max_tokens`` is usable:
    a prefix is what such a request asks for.
    """
    text = reply.text
    if not isinstance(text, str) or not text.strip():
        return "empty", "the reply has no text"
    if max_tokens and len(text) > CHARS_PER_TOKEN_LIMIT * int(max_tokens) + 1024:
        return "oversized", (f"{len(text)} characters is more than max_tokens={max_tokens} tokens can hold")
    if schema is not None:
        finish = (reply.usage or {}).get("finish_reason")
        if finish == "length":
            return "truncated", f"the reply was cut off at max_tokens={max_tokens} before its JSON was complete"
        obj, err = parse_json_reply(text, lenient=True)
        if err:
            return "not_json", f"{err}; reply starts {text[:80]!r}"
        errs = schema_errors(obj, schema)
        if errs:
            return "schema", "the JSON does not match the schema: " + "; ".join(errs)
    if logprobs:
        lps = reply.token_logprobs
        if not lps:
            return "no_logprobs", "log-probabilities were asked for but the reply has none"
        for t in lps:
            vals = [t.logprob] + [v for _tok, v in t.top]
            if any(not isinstance(v, (int, float)) or math.isnan(v) or v > 1e-3 for v in vals):
                return "bad_logprobs", f"log-probability of token {t.token!r} is not a number <= 0"
        if top_logprobs and not any(t.top for t in lps):
            return "no_top_logprobs", (f"top_logprobs={top_logprobs} alternatives were asked for but the reply "
                                       "lists none")
    return None
