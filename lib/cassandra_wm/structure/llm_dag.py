"""Sampling initial DAGs from an LLM (algorithm 3 of the CASSANDRA paper, appendix E.2).

Two passes over the variables, each one LLM call per variable:

1. **Ordering.**  Deterministic variables (computed by the code model) come first: they are
   exogenous inputs of every node.  Then the LLM picks, one at a time, which of the remaining
   modelled variables can be computed next from those already placed.  Reply format (JSON):
   ``{"reasoning": "<one short sentence>", "next": "<a remaining name>"}``.
2. **Parents.**  In that order, the LLM names the same-day parents of each modelled variable
   among the modelled variables placed before it.  Reply format:
   ``{"reasoning": "...", "parents": ["name", ...]}``.  Yesterday's values, the action and the
   deterministic variables are always inputs of a node, so they are never asked about.

Because parents can only come from earlier in the order the result is acyclic by
construction; it is validated anyway.

The LLM is often weak (the default is a 135M-parameter model), so every reply is checked.
An unusable reply is *repaired*, never trusted blindly and never allowed to crash the run:

* ordering: a missing/invalid reply, an unknown name or a name already placed is replaced by the
  first remaining variable of a seeded random permutation (seeded by the sample index);
* parents: unknown names, duplicates, the variable itself, deterministic variables (already
  inputs) and variables later in the order are dropped; an unusable reply gives no parents;
* a name that matches only after ignoring case, spaces or quotes is accepted;
* JSON that fails only on raw control characters inside strings is parsed leniently.

Every repair is recorded in :attr:`DagSample.repairs` with its reason, and every raw reply in
:attr:`DagSample.replies`, so nothing changes the graph silently.

When only one variable is left to order, or a variable has no candidate parents, no call is
made (the answer is forced); such steps appear in the replies log with ``"forced": true``.
"""
from __future__ import annotations

import json
import logging
import random
import re
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

from ..llm.base import ChatClient
from .dag import Parents, bn_variables, is_acyclic, validate

log = logging.getLogger("cassandra_wm.structure")

# Bumped whenever a prompt changes, so cached answers of an older wording are not mixed in.
PROMPT_VERSION = "dag-v1"
REASONING_CHARS = 160  # cap on the reasoning field (schema maxLength), keeps replies short
ORDER_MAX_TOKENS = 96
PARENTS_MAX_TOKENS = 128
DESCRIPTION_CHARS = 140  # variable descriptions are cut to this length in prompts


# -- prompts ---------------------------------------------------------------

def system_prompt(spec) -> str:
    """The system message shared by DAG sampling and the structure prior (same text, so a server
    that caches prompt prefixes reuses the manual across calls)."""
    return (f"You know the game {spec.name} very well. This is its manual:\n\n{spec.manual.strip()}\n\n"
            "You help work out how the game's variables depend on each other within a single day. "
            "Rely on the manual first and on common sense second. Reply with JSON only.")


def _desc(spec, name: str) -> str:
    d = spec.variable(name).description.strip().replace("\n", " ")
    return d if len(d) <= DESCRIPTION_CHARS else d[:DESCRIPTION_CHARS - 3].rstrip() + "..."


def _describe(spec, names: list[str]) -> str:
    return "\n".join(f"- {n}: {_desc(spec, n)}" for n in names)


def order_prompt(spec, placed: list[str], remaining: list[str]) -> str:
    """User message asking which remaining variable is computed next."""
    return (f"We compute the variables of day t one after another.\n"
            f"Already computed (in order): {', '.join(placed) if placed else '(none)'}.\n"
            f"Not yet computed:\n{_describe(spec, remaining)}\n"
            "Which of the variables not yet computed should come next, so that it can be worked out "
            "from the ones already computed, yesterday's values and today's action?\n"
            f'Answer as {{"reasoning": "<one short sentence>", "next": "<one name from: '
            f'{", ".join(remaining)}>"}}.')


def parents_prompt(spec, variable: str, candidates: list[str], exogenous: list[str]) -> str:
    """User message asking for the same-day parents of ``variable`` among ``candidates``."""
    given = ", ".join(exogenous) if exogenous else "(none)"
    return (f"Variable: {variable}: {_desc(spec, variable)}\n"
            f"To compute {variable} on day t we always know yesterday's values of every variable, "
            f"today's action, and today's values of: {given}.\n"
            f"Which of these other variables of the same day t directly influence {variable}?\n"
            f"{_describe(spec, candidates)}\n"
            f'Answer as {{"reasoning": "<one short sentence>", "parents": [<names from: '
            f'{", ".join(candidates)}; may be empty>]}}.')


def order_schema(remaining: list[str]) -> dict:
    """JSON schema of the ordering reply (``next`` restricted to the remaining names)."""
    return {"type": "object",
            "properties": {"reasoning": {"type": "string", "maxLength": REASONING_CHARS},
                           "next": {"type": "string", "enum": list(remaining)}},
            "required": ["reasoning", "next"], "additionalProperties": False}


def parents_schema(candidates: list[str]) -> dict:
    """JSON schema of the parents reply (names restricted to the candidates)."""
    return {"type": "object",
            "properties": {"reasoning": {"type": "string", "maxLength": REASONING_CHARS},
                           "parents": {"type": "array", "items": {"type": "string", "enum": list(candidates)},
                                       "maxItems": len(candidates)}},
            "required": ["reasoning", "parents"], "additionalProperties": False}


# -- results -----------------------------------------------------------------

@dataclass
class DagSample:
    """One DAG sampled by algorithm 3, with everything needed to audit it.

    ``parents`` covers the modelled variables only; ``order`` is the full order (deterministic
    variables first).  ``replies`` holds one record per step (raw text, parsed object, parse
    error); ``repairs`` one record per change made to what the LLM said, with the reason.
    """

    parents: Parents
    order: list[str]
    replies: list[dict] = field(default_factory=list)
    repairs: list[dict] = field(default_factory=list)
    model: str = ""
    sample_index: int = 0
    temperature: float = 0.7
    seconds: float = 0.0

    @property
    def n_edges(self) -> int:
        return sum(len(p) for p in self.parents.values())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DagSample":
        return cls(parents={k: list(v) for k, v in d["parents"].items()}, order=list(d["order"]),
                   replies=list(d.get("replies", [])), repairs=list(d.get("repairs", [])),
                   model=d.get("model", ""), sample_index=int(d.get("sample_index", 0)),
                   temperature=float(d.get("temperature", 0.7)), seconds=float(d.get("seconds", 0.0)))


# -- helpers -------------------------------------------------------------------

def _norm(name: str) -> str:
    return re.sub(r"[\s\"'`]+", "", str(name)).lower().replace("-", "_")


def _match(name: Any, allowed: list[str]) -> tuple[str | None, str | None]:
    """Map a reply name onto ``allowed``: (name, None) exact, (name, note) loose, (None, None) no match."""
    if not isinstance(name, str):
        return None, None
    if name in allowed:
        return name, None
    key = _norm(name)
    for a in allowed:
        if _norm(a) == key:
            return a, f"matched {name!r} to {a!r} ignoring case/spaces"
    return None, None


def _reply_record(step: int, kind: str, variable: str | None, reply=None, forced: bool = False) -> dict:
    rec = {"step": step, "kind": kind, "variable": variable, "forced": forced}
    if reply is not None:
        rec.update(text=reply.text, parsed=reply.parsed, parse_error=reply.parse_error,
                   model=reply.model, cached=bool(getattr(reply, "cached", False)))
    return rec


def _call(chat: ChatClient, spec, user: str, schema: dict, temperature: float, sample_index: int,
          max_tokens: int):
    """One chat call; any exception becomes (None, message) so callers can repair."""
    messages = [{"role": "system", "content": system_prompt(spec)}, {"role": "user", "content": user}]
    try:
        return chat.chat(messages, schema=schema, temperature=temperature, seed=sample_index,
                         max_tokens=max_tokens, sample_index=sample_index), None
    except Exception as e:  # noqa: BLE001 - a failing call is repaired and logged, never fatal
        return None, f"chat call failed: {type(e).__name__}: {e}"


def _parsed_obj(reply) -> tuple[dict | None, str | None, str | None]:
    """(object, why it failed, repair note).  A reply whose JSON only fails on raw control characters
    inside strings (a newline in the reasoning, say) is parsed leniently, with a note."""
    if reply is None:
        return None, "no reply", None
    obj, note = reply.parsed, None
    if obj is None and reply.text:
        start = reply.text.find("{")
        if start >= 0:
            try:
                obj, _ = json.JSONDecoder(strict=False).raw_decode(reply.text[start:])
                note = f"reply was not strict JSON ({reply.parse_error or 'unparsed'}); parsed it leniently"
            except (json.JSONDecodeError, TypeError):
                obj = None
    if not isinstance(obj, dict):
        why = reply.parse_error or f"reply is not a JSON object: {str(reply.text)[:80]!r}"
        return None, why, None
    return obj, None, note


def _repair_rng(spec, sample_index: int) -> random.Random:
    return random.Random(zlib.crc32(f"{spec.name}|{sample_index}".encode()))


def _modelled(spec, nodes: list[str] | None) -> list[str]:
    nodes = list(nodes) if nodes is not None else bn_variables(spec)
    for n in nodes:
        spec.variable(n)  # raises KeyError on unknown names
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"repeated node names in {nodes}")
    return nodes


# -- the two passes -------------------------------------------------------------

def _order(chat, spec, nodes, sample_index, temperature, replies, repairs) -> list[str]:
    exogenous = [v.name for v in spec.deterministic]
    placed_nodes: list[str] = []
    remaining = list(nodes)
    fallback = list(nodes)
    _repair_rng(spec, sample_index).shuffle(fallback)
    step = 0
    while remaining:
        if len(remaining) == 1:
            replies.append(_reply_record(step, "order", remaining[0], forced=True))
            placed_nodes.append(remaining.pop())
            break
        reply, err = _call(chat, spec, order_prompt(spec, exogenous + placed_nodes, remaining),
                           order_schema(remaining), temperature, sample_index, ORDER_MAX_TOKENS)
        replies.append(_reply_record(step, "order", None, reply))
        if err:
            replies[-1]["error"] = err
        obj, why, lenient = _parsed_obj(reply) if err is None else (None, err, None)
        choice = None
        if obj is not None:
            raw = obj.get("next")
            choice, note = _match(raw, remaining)
            if choice is None:
                if isinstance(raw, str) and _match(raw, placed_nodes + exogenous)[0] is not None:
                    why = f"{raw!r} is already placed"
                elif isinstance(raw, str) and raw.strip():
                    why = f"unknown variable {raw!r}"
                else:
                    why = f"no usable 'next' field (got {raw!r})"
            elif note:
                repairs.append({"step": step, "stage": "order", "variable": choice, "reason": note})
        if choice is None:
            choice = next(v for v in fallback if v in remaining)
            repairs.append({"step": step, "stage": "order", "variable": choice,
                            "reason": f"{why}; took {choice!r}, the first remaining variable in a "
                                      f"random order seeded by sample {sample_index}"})
            log.info("DAG sample %d, order step %d: %s", sample_index, step, repairs[-1]["reason"])
        if lenient and obj is not None:
            repairs.append({"step": step, "stage": "order", "variable": choice, "reason": lenient})
        replies[-1]["variable"] = choice
        placed_nodes.append(choice)
        remaining.remove(choice)
        step += 1
    return exogenous + placed_nodes


def _parents_of(chat, spec, variable, candidates, exogenous, later, sample_index, temperature,
                replies, repairs, step) -> list[str]:
    if not candidates:
        replies.append(_reply_record(step, "parents", variable, forced=True))
        return []
    reply, err = _call(chat, spec, parents_prompt(spec, variable, candidates, exogenous),
                       parents_schema(candidates), temperature, sample_index, PARENTS_MAX_TOKENS)
    replies.append(_reply_record(step, "parents", variable, reply))
    if err:
        replies[-1]["error"] = err
    obj, why, note = _parsed_obj(reply) if err is None else (None, err, None)

    def fix(reason: str) -> None:
        repairs.append({"step": step, "stage": "parents", "variable": variable, "reason": reason})
        log.info("DAG sample %d, parents of %s: %s", sample_index, variable, reason)

    if note:
        fix(note)

    if obj is None:
        fix(f"{why}; kept no parents")
        return []
    raw = obj.get("parents")
    if isinstance(raw, str):
        fix(f"'parents' was the string {raw!r}; split it on commas")
        raw = [s for s in re.split(r"[,;]", raw) if s.strip()]
    if raw is None:
        fix("reply has no 'parents' field; kept no parents")
        return []
    if not isinstance(raw, list):
        fix(f"'parents' is not a list (got {type(raw).__name__}); kept no parents")
        return []
    out: list[str] = []
    for name in raw:
        got, note = _match(name, candidates)
        if got is not None:
            if got in out:
                fix(f"dropped duplicate parent {got!r}")
                continue
            if note:
                fix(note)
            out.append(got)
            continue
        if _match(name, [variable])[0] is not None:
            fix(f"dropped {name!r}: a variable cannot be its own parent")
        elif _match(name, exogenous)[0] is not None:
            fix(f"dropped {name!r}: deterministic variables are always inputs")
        elif _match(name, later)[0] is not None:
            fix(f"dropped {name!r}: it comes after {variable} in the order (would allow a cycle)")
        else:
            fix(f"dropped unknown variable {name!r}")
    return out


def order_variables(chat: ChatClient, spec, sample_index: int = 0, temperature: float = 0.7,
                    nodes: list[str] | None = None, log_to: dict | None = None) -> list[str]:
    """Order all variables: deterministic ones first, then the modelled ones as the LLM picks them.

    ``nodes`` are the modelled variables (default :func:`bn_variables`).  With ``log_to`` (a dict),
    the raw replies and repairs are appended to ``log_to["replies"]`` and ``log_to["repairs"]``.
    """
    nodes = _modelled(spec, nodes)
    replies: list[dict] = []
    repairs: list[dict] = []
    order = _order(chat, spec, nodes, sample_index, temperature, replies, repairs)
    if log_to is not None:
        log_to.setdefault("replies", []).extend(replies)
        log_to.setdefault("repairs", []).extend(repairs)
    return order


def elicit_parents(chat: ChatClient, spec, variable: str, candidates: list[str], sample_index: int = 0,
                   temperature: float = 0.7, log_to: dict | None = None) -> list[str]:
    """Ask the LLM for the same-day parents of ``variable`` among ``candidates``.

    Returns a subset of ``candidates`` (reply order, duplicates and unknown names dropped with a
    logged reason).  With ``log_to`` the raw reply and repairs are appended as in
    :func:`order_variables`.
    """
    spec.variable(variable)
    candidates = list(candidates)
    for c in candidates:
        spec.variable(c)
    if variable in candidates:
        raise ValueError(f"{variable!r} cannot be a candidate parent of itself")
    exogenous = [v.name for v in spec.deterministic]
    later = [n for n in spec.variable_names() if n not in candidates and n != variable and n not in exogenous]
    replies: list[dict] = []
    repairs: list[dict] = []
    out = _parents_of(chat, spec, variable, candidates, exogenous, later, sample_index, temperature,
                      replies, repairs, 0)
    if log_to is not None:
        log_to.setdefault("replies", []).extend(replies)
        log_to.setdefault("repairs", []).extend(repairs)
    return out


def sample_dag(chat: ChatClient, spec, sample_index: int = 0, temperature: float = 0.7,
               nodes: list[str] | None = None) -> DagSample:
    """Algorithm 3: order the variables, then elicit each modelled variable's parents.

    Different ``sample_index`` values give different samples at the same temperature (the index
    seeds the request and is part of any reply-cache key).  Never raises on a bad reply.
    """
    t0 = time.perf_counter()
    nodes = _modelled(spec, nodes)
    replies: list[dict] = []
    repairs: list[dict] = []
    order = _order(chat, spec, nodes, sample_index, temperature, replies, repairs)
    exogenous = [v.name for v in spec.deterministic]
    stoch_order = [v for v in order if v in nodes]
    parents: Parents = {v: [] for v in nodes}
    for i, v in enumerate(stoch_order):
        parents[v] = _parents_of(chat, spec, v, stoch_order[:i], exogenous, stoch_order[i + 1:],
                                 sample_index, temperature, replies, repairs, len(nodes) + i)
    # Acyclic by construction; check anyway and drop any edge against the order (with a reason).
    pos = {v: i for i, v in enumerate(stoch_order)}
    for v in nodes:
        keep = [p for p in parents[v] if pos[p] < pos[v]]
        for p in parents[v]:
            if p not in keep:
                repairs.append({"step": None, "stage": "validate", "variable": v,
                                "reason": f"dropped edge {p} -> {v}: against the order"})
        parents[v] = keep
    parents = validate(parents, nodes)
    if not is_acyclic(parents):  # cannot happen after the filter above
        raise RuntimeError(f"sampled graph has a cycle: {parents}")
    model = next((r.get("model") for r in replies if r.get("model")), getattr(chat, "model", ""))
    return DagSample(parents=parents, order=order, replies=replies, repairs=repairs, model=model or "",
                     sample_index=sample_index, temperature=temperature,
                     seconds=time.perf_counter() - t0)


__all__ = ["DagSample", "order_variables", "elicit_parents", "sample_dag", "system_prompt", "order_prompt",
           "parents_prompt", "order_schema", "parents_schema", "PROMPT_VERSION"]
