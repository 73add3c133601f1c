"""Structure priors log p(E | V, L) for the DAG search (eq. 3 of the CASSANDRA paper, appendix E.3).

:class:`LLMPrior` asks the LLM, once per node, whether the node's same-day parent set is
consistent with the manual, and reads the probability of "yes" from token log-probabilities:

* Reply format: ``{"answer": true}`` or ``{"answer": false}`` (optionally preceded by a short
  ``"reasoning"`` field when ``reasoning=True``; off by default because every uncached node costs
  a call and the default model is tiny).
* The answer token is the token that covers the first character of the value after the last
  ``"answer":`` in the reply.  Among the alternatives the server reports at that position
  (``top_logprobs``), those that spell the start of ``true`` (or ``yes``) are pooled, likewise
  ``false``/``no``, and the two pools are renormalised against each other::

      log p(yes) = lse(true tokens) - logsumexp(lse(true tokens), lse(false tokens))

  So the value is finite and informative even when a small model spreads its mass over many
  tokens.  If only one side is among the alternatives, the other side is given the smallest
  log-probability shown at that position (an upper bound of its real value).
* Fallbacks, each recorded with its reason in the node's record (``source`` field) and logged:
  no log-probabilities but a parsed boolean answer -> p(yes) = :data:`PARSED_ONLY_P` (or one minus
  it); no usable answer at all, or a failed call -> p(yes) = :data:`FALLBACK_P` (no information).
  Failed calls are kept in memory only (not on disk), so a later run asks again.
* The paper asks one question per target variable; we combine nodes by summing their log-
  probabilities (log p(E) = sum over nodes of log p(parents of v is consistent)), i.e. treat the
  per-node answers as independent.  Each term is floored at :data:`MIN_LOGP`.

Answers are cached per (node, parent set) in memory and in a JSON file (``cache_path``), keyed
also by the model, the prompt version and a hash of the prompt inputs (manual, descriptions,
node list), so the search never asks the same question twice and a changed manual never reuses
stale answers.

:class:`EdgeFrequencyPrior` is an LLM-free alternative (edge frequencies among a set of DAGs,
e.g. the sampled initial DAGs); :class:`NoPrior` is log p = 0 (used by CASS-R).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..llm.base import ChatClient
from ..report import atomic_write_text
from .dag import Parents, bn_variables
from .llm_dag import REASONING_CHARS, _desc, system_prompt

log = logging.getLogger("cassandra_wm.structure")

PRIOR_PROMPT_VERSION = "prior-v1"
FALLBACK_P = 0.5  # no usable answer: no information either way
PARSED_ONLY_P = 0.75  # a parsed true/false answer but no log-probabilities
MIN_LOGP = -30.0  # floor on each node's log-probability
TOP_LOGPROBS = 20

_YES = ("true", "yes")
_NO = ("false", "no")


# -- prompt ----------------------------------------------------------------

def prior_prompt(spec, node: str, parents: Sequence[str], exogenous: Sequence[str], reasoning: bool) -> str:
    """User message: is this parent set of ``node`` consistent with the manual?"""
    same_day = ", ".join(parents) if parents else "no other variable"
    given = ", ".join(exogenous) if exogenous else "(none)"
    fmt = ('{"reasoning": "<one short sentence>", "answer": true or false}' if reasoning
           else '{"answer": true} or {"answer": false}')
    return (f"Variable: {node}: {_desc(spec, node)}\n"
            f"Proposed model: {node} on day t is computed from yesterday's values of all variables, "
            f"today's action, today's values of {given}, and today's values of: {same_day}.\n"
            f"Is that consistent with the manual, i.e. do exactly these same-day variables directly "
            f"affect {node}, with no important same-day cause missing?\n"
            f"Answer as {fmt}.")


def prior_schema(reasoning: bool) -> dict:
    """JSON schema of the prior reply; the boolean comes last so its token is easy to find."""
    props: dict = {}
    if reasoning:
        props["reasoning"] = {"type": "string", "maxLength": REASONING_CHARS}
    props["answer"] = {"type": "boolean"}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


# -- reading the answer token ------------------------------------------------

def _side(token: str) -> str | None:
    """'yes' if ``token`` spells the start of true/yes, 'no' for false/no, else None."""
    t = token.strip().lstrip("\"':{, \t\n").rstrip("\"'}, \t\n").lower()
    if not t:
        return None
    for words, side in ((_YES, "yes"), (_NO, "no")):
        for w in words:
            if w.startswith(t) or (t.startswith(w) and not t[len(w):len(w) + 1].isalnum()):
                # 'n' alone is also the start of 'null': only count it as 'no' when it is the whole token
                if side == "no" and t == "n":
                    continue
                return side
    return None


def _lse(xs: list[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def answer_logprob(text: str, token_logprobs) -> tuple[float | None, str]:
    """log p(yes) read at the answer token, renormalised over yes/no; (None, reason) when unreadable."""
    if not token_logprobs:
        return None, "no token log-probabilities in the reply"
    matches = list(re.finditer(r'"answer"\s*:\s*', text or ""))
    full = "".join(t.token for t in token_logprobs)
    if full != (text or ""):  # locate in the concatenated tokens when the text differs
        matches = list(re.finditer(r'"answer"\s*:\s*', full))
    if not matches:
        return None, "no 'answer' field in the reply"
    value_at = matches[-1].end()
    pos, idx = 0, None
    for i, t in enumerate(token_logprobs):
        if pos <= value_at < pos + len(t.token) or (pos >= value_at and t.token.strip()):
            idx = i
            break
        pos += len(t.token)
    if idx is None:
        return None, "reply ends before the answer value"
    tok = token_logprobs[idx]
    alts = list(tok.top or [])
    if not any(a[0] == tok.token for a in alts):
        alts.append((tok.token, tok.logprob))
    yes = [float(lp) for s, lp in alts if _side(s) == "yes" and math.isfinite(float(lp))]
    no = [float(lp) for s, lp in alts if _side(s) == "no" and math.isfinite(float(lp))]
    if not yes and not no:
        shown = ", ".join(repr(a[0]) for a in alts[:5])
        return None, f"neither true nor false among the alternatives at the answer token ({shown})"
    floor = min(float(lp) for _, lp in alts if math.isfinite(float(lp))) if alts else MIN_LOGP
    note = "renormalised over true/false"
    if not yes:
        yes, note = [floor], "true not among the alternatives: given the smallest shown log-probability"
    if not no:
        no, note = [floor], "false not among the alternatives: given the smallest shown log-probability"
    ly, ln = _lse(yes), _lse(no)
    return ly - _lse([ly, ln]), note


# -- priors --------------------------------------------------------------------

def _key(node: str, parents: Iterable[str]) -> str:
    return node + "|" + ",".join(sorted(parents))


def _as_parents(parents: Mapping[str, Sequence[str]]) -> Parents:
    if not isinstance(parents, Mapping):
        raise ValueError(f"parents must be a dict of lists, got {type(parents).__name__}")
    return {k: list(v) for k, v in parents.items()}


class LLMPrior:
    """log p(E | V, L) from an LLM's yes/no judgement of each node's parent set (see module doc).

    ``log_prior(parents)`` sums :meth:`node_log_prior` over the nodes of ``parents``; any
    node missing from the cache costs one chat call.  ``calls``, ``hits`` and ``fallbacks`` count
    what happened; ``records`` holds every answer (log p, p(yes), reply text, source, reason).
    """

    def __init__(self, chat: ChatClient, spec, nodes: Sequence[str] | None = None,
                 cache_path: str | Path | None = None, reasoning: bool = False,
                 top_logprobs: int = TOP_LOGPROBS, max_tokens: int | None = None):
        self.chat = chat
        self.spec = spec
        self.nodes = list(nodes) if nodes is not None else bn_variables(spec)
        for n in self.nodes:
            spec.variable(n)
        self.exogenous = [v.name for v in spec.deterministic]
        self.reasoning = bool(reasoning)
        self.top_logprobs = int(top_logprobs)
        self.max_tokens = max_tokens or (REASONING_CHARS // 2 + 24 if reasoning else 12)
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self.calls = self.hits = self.fallbacks = 0
        self.records: dict[str, dict] = {}
        self._lock = threading.RLock()
        self._load()

    @property
    def model(self) -> str:
        return getattr(self.chat, "model", "unknown")

    @property
    def scope(self) -> str:
        """Cache scope: model, prompt version, reasoning flag and a hash of the prompt inputs."""
        blob = json.dumps([system_prompt(self.spec), {n: _desc(self.spec, n) for n in self.nodes},
                           self.exogenous], sort_keys=True)
        h = hashlib.sha256(blob.encode()).hexdigest()[:16]
        return f"{self.model}|{PRIOR_PROMPT_VERSION}|reasoning={int(self.reasoning)}|{h}"

    # -- disk cache --
    def _load(self) -> None:
        if self.cache_path is None or not self.cache_path.exists():
            return
        try:
            data = json.loads(self.cache_path.read_text())
            self.records.update(data.get(self.scope, {}))
        except (json.JSONDecodeError, OSError, AttributeError) as e:
            log.warning("prior cache %s unreadable (%s); starting empty", self.cache_path, e)

    def save(self) -> None:
        """Merge this prior's answers into the JSON cache file (atomic write)."""
        if self.cache_path is None:
            return
        with self._lock:
            data: dict = {}
            if self.cache_path.exists():
                try:
                    data = json.loads(self.cache_path.read_text())
                except (json.JSONDecodeError, OSError):
                    data = {}
            mine = data.setdefault(self.scope, {})
            mine.update({k: r for k, r in self.records.items() if r.get("source") != "error"})
            atomic_write_text(self.cache_path, json.dumps(data, indent=0, sort_keys=True))

    # -- queries --
    def is_cached(self, node: str, parents: Sequence[str]) -> bool:
        return _key(node, parents) in self.records

    def node_record(self, node: str, parents: Sequence[str]) -> dict:
        """The full answer record of one node (asks the LLM when not cached)."""
        if node not in self.nodes:
            raise ValueError(f"unknown node {node!r}; nodes are {self.nodes}")
        bad = [p for p in parents if p not in self.nodes or p == node]
        if bad:
            raise ValueError(f"invalid parents {bad} for {node!r}; nodes are {self.nodes}")
        key = _key(node, parents)
        with self._lock:
            if key in self.records:
                self.hits += 1
                return self.records[key]
            rec = self._ask(node, sorted(parents))
            self.records[key] = rec
            if rec["source"] != "logprobs":
                self.fallbacks += 1
                log.info("prior for %s <- %s: %s", node, sorted(parents), rec["reason"])
            if rec["source"] != "error":
                self.save()
            return rec

    def node_log_prior(self, node: str, parents: Sequence[str]) -> float:
        """log p(yes) for one node's parent set."""
        return float(self.node_record(node, parents)["logp"])

    def node_terms(self, parents: Mapping[str, Sequence[str]]) -> dict[str, float]:
        """Per-node log-probabilities of a graph."""
        g = _as_parents(parents)
        return {v: self.node_log_prior(v, g[v]) for v in g}

    def log_prior(self, parents: Mapping[str, Sequence[str]]) -> float:
        """log p(E | V, L): the sum of the per-node terms."""
        return float(sum(self.node_terms(parents).values()))

    __call__ = log_prior

    def _ask(self, node: str, parents: list[str]) -> dict:
        self.calls += 1
        messages = [{"role": "system", "content": system_prompt(self.spec)},
                    {"role": "user", "content": prior_prompt(self.spec, node, parents, self.exogenous,
                                                              self.reasoning)}]
        rec = {"node": node, "parents": parents, "model": self.model}
        try:
            reply = self.chat.chat(messages, schema=prior_schema(self.reasoning), logprobs=True,
                                   top_logprobs=self.top_logprobs, temperature=0.0, seed=0,
                                   max_tokens=self.max_tokens)
        except Exception as e:  # noqa: BLE001 - recorded as a fallback, never fatal
            p = FALLBACK_P
            rec.update(logp=math.log(p), p_yes=p, source="error", text=None,
                       reason=f"chat call failed ({type(e).__name__}: {e}); used p(yes)={p}")
            return rec
        rec["text"] = reply.text
        lp, why = answer_logprob(reply.text, reply.token_logprobs)
        parsed = reply.parsed.get("answer") if isinstance(reply.parsed, dict) else None
        rec["answer"] = parsed if isinstance(parsed, bool) else None
        if lp is not None:
            lp = max(MIN_LOGP, min(0.0, lp))
            rec.update(logp=lp, p_yes=math.exp(lp), source="logprobs", reason=why)
        elif isinstance(parsed, bool):
            p = PARSED_ONLY_P if parsed else 1.0 - PARSED_ONLY_P
            rec.update(logp=math.log(p), p_yes=p, source="parsed",
                       reason=f"{why}; used the parsed answer {parsed}: p(yes)={p}")
        else:
            p = FALLBACK_P
            err = reply.parse_error or "no boolean 'answer' field"
            rec.update(logp=math.log(p), p_yes=p, source="fallback",
                       reason=f"{why}; {err}; used p(yes)={p}")
        return rec

    def summary(self) -> dict:
        """Counters and the share of answers read from log-probabilities."""
        srcs = [r.get("source") for r in self.records.values()]
        return {"model": self.model, "entries": len(self.records), "calls": self.calls, "hits": self.hits,
                "fallbacks": self.fallbacks,
                "from_logprobs": srcs.count("logprobs"), "from_parsed": srcs.count("parsed"),
                "fallback": srcs.count("fallback"), "errors": srcs.count("error")}


class EdgeFrequencyPrior:
    """An LLM-free prior: independent Bernoulli edges with the frequencies seen in ``dags``.

    For a node v, log p = sum over other nodes u of log f(u->v) if u is a parent, else
    log(1 - f(u->v)), with f smoothed as (count + a) / (M + 2a).  Useful as a stand-in prior
    (benchmarks) or to turn a set of sampled DAGs into a soft constraint.
    """

    def __init__(self, dags: Sequence[Mapping[str, Sequence[str]]], nodes: Sequence[str] | None = None,
                 smoothing: float = 0.5):
        if not dags:
            raise ValueError("EdgeFrequencyPrior needs at least one DAG")
        if smoothing <= 0:
            raise ValueError("smoothing must be positive (it keeps every log-probability finite)")
        self.nodes = list(nodes) if nodes is not None else list(dags[0])
        m = len(dags)
        counts: dict[tuple[str, str], int] = {}
        for g in dags:
            for v, ps in g.items():
                for p in ps:
                    counts[(p, v)] = counts.get((p, v), 0) + 1
        self.freq = {(u, v): (counts.get((u, v), 0) + smoothing) / (m + 2 * smoothing)
                     for v in self.nodes for u in self.nodes if u != v}
        self.model = "none (edge frequencies of the given DAGs)"

    def node_log_prior(self, node: str, parents: Sequence[str]) -> float:
        ps = set(parents)
        return float(sum(math.log(f) if u in ps else math.log1p(-f)
                         for (u, v), f in self.freq.items() if v == node))

    def node_terms(self, parents: Mapping[str, Sequence[str]]) -> dict[str, float]:
        return {v: self.node_log_prior(v, ps) for v, ps in parents.items()}

    def log_prior(self, parents: Mapping[str, Sequence[str]]) -> float:
        return float(sum(self.node_terms(parents).values()))

    __call__ = log_prior


class NoPrior:
    """log p(E) = 0 for every graph (the search then uses the data and sparsity terms only)."""

    model = "none (no prior)"

    def node_log_prior(self, node: str, parents: Sequence[str]) -> float:
        return 0.0

    def node_terms(self, parents: Mapping[str, Sequence[str]]) -> dict[str, float]:
        return {v: 0.0 for v in parents}

    def log_prior(self, parents: Mapping[str, Sequence[str]]) -> float:
        return 0.0

    __call__ = log_prior


__all__ = ["LLMPrior", "EdgeFrequencyPrior", "NoPrior", "answer_logprob", "prior_prompt", "prior_schema",
           "FALLBACK_P", "PARSED_ONLY_P", "MIN_LOGP", "PRIOR_PROMPT_VERSION"]
