"""A scripted chat backend for unit tests: replies come from a list or a function."""
from __future__ import annotations

import json
from typing import Any, Callable

from .base import ChatClient, LLMError, Reply, TokenLogprob, parse_json_reply


class ScriptedChat(ChatClient):
    """Returns scripted replies in order, or from ``responder(messages, **kwargs)``.

    A scripted reply may be a string, a dict (serialised as JSON) or a :class:`Reply`.
    ``logprob_fn(text) -> list[TokenLogprob]`` supplies log-probabilities when asked for.
    Every request is kept in ``self.requests`` so tests can inspect prompts.
    """

    def __init__(self, replies: list[Any] | None = None,
                 responder: Callable[..., Any] | None = None,
                 logprob_fn: Callable[[str], list[TokenLogprob]] | None = None,
                 model: str = "scripted"):
        if replies is None and responder is None:
            raise ValueError("ScriptedChat needs replies or a responder")
        self.replies = list(replies or [])
        self.responder = responder
        self.logprob_fn = logprob_fn
        self.model = model
        self.endpoint_id = f"scripted:{model}"
        self.requests: list[dict] = []

    def chat(self, messages, schema=None, logprobs=False, top_logprobs=0, temperature=0.0, seed=None,
             max_tokens=512, sample_index=0, stage=None) -> Reply:
        req = dict(messages=messages, schema=schema, logprobs=logprobs, top_logprobs=top_logprobs,
                   temperature=temperature, seed=seed, max_tokens=max_tokens, sample_index=sample_index,
                   stage=stage)
        self.requests.append(req)
        if self.responder is not None:
            out = self.responder(**req)
        elif self.replies:
            out = self.replies.pop(0)
        else:
            raise LLMError(f"ScriptedChat ran out of replies after {len(self.requests) - 1} calls")
        if isinstance(out, Reply):
            out.model = out.model or self.model
            return out
        text = out if isinstance(out, str) else json.dumps(out)
        parsed, err = (parse_json_reply(text) if schema is not None else (None, None))
        lps = self.logprob_fn(text) if (logprobs and self.logprob_fn) else None
        return Reply(text=text, parsed=parsed, token_logprobs=lps, model=self.model, parse_error=err,
                     usage={"prompt_tokens": sum(len(str(m.get("content", "")).split()) for m in messages),
                            "completion_tokens": len(text.split()), "seconds": 0.0})
