"""The one chat interface every LLM backend implements."""
from __future__ import annotations

import abc
import json
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

    ``parsed`` is the JSON object when a schema was asked for and the reply parsed
    (None otherwise); ``parse_error`` says why parsing failed.
    """

    text: str
    parsed: Any = None
    token_logprobs: list[TokenLogprob] | None = None
    usage: dict = field(default_factory=dict)  # prompt_tokens, completion_tokens, seconds
    model: str = ""
    parse_error: str | None = None
    cached: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Reply":
        lps = d.get("token_logprobs")
        if lps is not None:
            lps = [TokenLogprob(x["token"], float(x["logprob"]), [tuple(t) for t in x.get("top", [])]) for x in lps]
        return cls(text=d.get("text", ""), parsed=d.get("parsed"), token_logprobs=lps,
                   usage=dict(d.get("usage") or {}), model=d.get("model", ""),
                   parse_error=d.get("parse_error"), cached=bool(d.get("cached", False)))


class LLMError(RuntimeError):
    """A chat call failed in a way the caller should report (bad endpoint, key, replay miss...)."""


class ChatClient(abc.ABC):
    """``chat(messages, schema=None, logprobs=False, temperature=..., seed=...) -> Reply``."""

    model: str = "unknown"

    @abc.abstractmethod
    def chat(self, messages: list[dict], schema: dict | None = None, logprobs: bool = False,
             top_logprobs: int = 0, temperature: float = 0.0, seed: int | None = None,
             max_tokens: int = 512, sample_index: int = 0, stage: str | None = None) -> Reply:
        """Send one chat request and return the reply."""

    def describe(self) -> str:
        return self.model

    def close(self) -> None:
        """Release any resources (servers, connections)."""


def parse_json_reply(text: str) -> tuple[Any, str | None]:
    """Parse the first JSON object in ``text``; returns (obj, error)."""
    s = text.strip()
    if s.startswith("```"):
        s = s.strip("`")
        if s.startswith("json"):
            s = s[4:]
    try:
        return json.loads(s), None
    except json.JSONDecodeError:
        pass
    start = s.find("{")
    if start < 0:
        return None, "no JSON object in reply"
    dec = json.JSONDecoder()
    try:
        obj, _ = dec.raw_decode(s[start:])
        return obj, None
    except json.JSONDecodeError as e:
        return None, f"malformed JSON: {e.msg} at char {e.pos}"
