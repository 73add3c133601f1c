"""Structure priors log p(E | V, L) for the DAG search (eq. 3 of the CASSANDRA paper, appendix E.3).

A knowledge source judges, once per node, whether a same-day parent set is right for that node;
the prior of a graph is the sum of its nodes' terms.  :class:`StructurePrior` holds what every
source shares, :class:`LLMPrior` asks an LLM, and :class:`~.expert.ExpertPrior` (an evaluation
control that reads the simulator's graph) answers from a noisy copy of the true graph.

What one term is
----------------
* **The question.**  ``{"answer": true}`` or ``{"answer": false}``: is this node computed from
  exactly these same-day variables (plus yesterday's state, the action and the deterministic
  variables)?  The probability of "yes" is read from token log-probabilities at the answer token:
  the alternatives that spell the start of ``true``/``yes`` are pooled, likewise ``false``/``no``,
  and the two pools are renormalised against each other (:func:`answer_logprob`).
* **Both orders.**  A small model's p(yes) mostly follows the order in which the prompt lists the
  two answers (SmolLM2-135M: 0.63-0.73 with ``true`` first, 0.20-0.34 with ``false`` first).  The
  question is asked with the options in both orders and the two log-odds are averaged, so an
  order bias that shifts the log-odds by +b one way and by about -b the other way cancels.  The
  combined p(yes) is the logistic of that mean.
* **Centring.**  Each node's log p(yes) is centred over its candidate parent sets (every subset of
  the other nodes, or a seeded sample of them when there are more than ``max_candidates``): the
  term is ``log p(yes | v, S) - mean over S' of log p(yes | v, S')``.  This subtracts a constant per
  node, so it never changes which graph J prefers; it makes the prior term readable (0 = an
  average parent set for that node, positive = the source likes it better) and comparable across
  sources.  How much the prior may move the search is set by the reliability weight below and lambda2.
* **Reliability weight.**  What changes when only the order of the options changes is format, not
  knowledge.  Over a node's candidate parent sets, the correlation r between the log-odds of the two
  orders (two parallel forms of the same question) measures how much of the answers is consistent;
  the averaged answer's reliability is 2r / (1 + r) (Spearman-Brown).  Each node's centred term is
  multiplied by that reliability when r is positive beyond chance (one-sided Fisher test at 5%), and
  by 0 otherwise, so a node whose answers only follow the format carries no prior at all
  (:meth:`StructurePrior.reliability`).  SmolLM2-135M's answers are consistent for one node of the
  coffee shop (milk, r = 0.44) and for none of the others.  Consistency is not correctness: a
  confidently wrong source keeps its weight (notebook 07 shows what that costs).
* **Unusable answers carry no information.**  An answer without usable log-probabilities (no
  logprobs, no ``answer`` field, neither true nor false among the alternatives, a failed call) is
  never scored as knowledge: the question gets the neutral value (log-odds 0; centred term 0) and
  is counted in :meth:`StructurePrior.summary` with its reason.  A question counts as usable only
  when every order it was asked in gave log-probabilities (one order alone would bring its bias
  back).
* Each raw log p(yes) is floored at :data:`MIN_LOGP`; log-odds are clipped to +-:data:`MAX_LOGIT`.

The paper's prior is ``orders=("true_first",), centre=False`` with lambda2 = 100
(:data:`~cassandra_wm.paper.LAMBDA2`); the bundle's default ("calibrated") is both orders, centred and
reliability-weighted, at the same lambda2 = 100: the weight each node's prior gets is chosen from the
source's own answers.  Held-out fit can choose lambda2 too (:func:`~.exact.choose_lambda2`); notebook 03
reports what it picks, and why it is not the default.

Answers are cached per (node, parent set, order) in memory and, for :class:`LLMPrior`, in a JSON
file (``cache_path``), keyed also by the model, the prompt version and a hash of the prompt inputs
(manual, descriptions, node list).  The file obeys ``$CASSANDRA_LLM_CACHE`` like every LLM cache:
``off`` neither reads nor writes it, ``replay`` only reads it, ``record`` reads and writes it.

:class:`EdgeFrequencyPrior` is an LLM-free alternative (edge frequencies among a set of DAGs).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import random
import re
import threading
import zlib
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..llm.base import ChatClient
from ..report import atomic_write_text
from .dag import Parents, bn_variables
from .llm_dag import REASONING_CHARS, _desc, system_prompt

log = logging.getLogger("cassandra_wm.structure")

PRIOR_PROMPT_VERSION = "prior-v2"  # cache scope of the parsed answers (v2: one record per answer order)
ORDERS = ("true_first", "false_first")
NEUTRAL_P = 0.5  # an unusable answer: no information either way
MIN_LOGP = -30.0  # floor on each raw log p(yes)
MAX_LOGIT = 30.0  # log-odds are clipped to +-MAX_LOGIT
MAX_CANDIDATES = 64  # candidate parent sets per node used for centring (all of them up to this many)
RELIABILITY_Z = 1.645  # one-sided 5% Fisher test that the two answer orders agree beyond chance
TOP_LOGPROBS = 20
SAVE_EVERY = 16  # new answers between two writes of the cache file

_YES = ("true", "yes")
_NO = ("false", "no")


# -- prompt ----------------------------------------------------------------

def prior_prompt(spec, node: str, parents: Sequence[str], exogenous: Sequence[str], reasoning: bool,
                 order: str = "true_first") -> str:
    """User message: is this parent set of ``node`` consistent with the manual?

    ``order`` says which answer the prompt lists first (``true_first`` is the original wording).
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    same_day = ", ".join(parents) if parents else "no other variable"
    given = ", ".join(exogenous) if exogenous else "(none)"
    first, second = ("true", "false") if order == "true_first" else ("false", "true")
    fmt = (f'{{"reasoning": "<one short sentence>", "answer": {first} or {second}}}' if reasoning
           else f'{{"answer": {first}}} or {{"answer": {second}}}')
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

def _key(node: str, parents: Iterable[str], order: str | None = None) -> str:
    k = node + "|" + ",".join(sorted(parents))
    return k if order is None else k + "|" + order


def _as_parents(parents: Mapping[str, Sequence[str]]) -> Parents:
    if not isinstance(parents, Mapping):
        raise ValueError(f"parents must be a dict of lists, got {type(parents).__name__}")
    return {k: list(v) for k, v in parents.items()}


def logit_of(logp: float) -> float:
    """Log-odds of a probability given by its log, clipped to +-MAX_LOGIT."""
    lp = min(float(logp), -1e-300)
    x = lp - math.log(-math.expm1(lp)) if lp < -1e-12 else MAX_LOGIT
    return max(-MAX_LOGIT, min(MAX_LOGIT, x))


def log_sigmoid(x: float) -> float:
    """log(1 / (1 + exp(-x))), stable for large |x|."""
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def candidate_parent_sets(nodes: Sequence[str], node: str, max_sets: int = MAX_CANDIDATES,
                          seed: int = 0) -> list[tuple[str, ...]]:
    """Every subset of the other nodes (in node order), or, when there are more than ``max_sets``,
    the empty set, every single parent and a seeded sample of the rest, ``max_sets`` in all."""
    others = [n for n in nodes if n != node]
    total = 2 ** len(others)
    if total <= max_sets:
        return [tuple(c) for k in range(len(others) + 1) for c in itertools.combinations(others, k)]
    must = [()] + [(o,) for o in others]
    rng = random.Random(zlib.crc32(f"{node}|{seed}".encode()))
    seen = set(must)
    out = list(must)
    while len(out) < max(max_sets, len(must)):
        pick = tuple(o for o in others if rng.random() < 0.5)
        if pick not in seen:
            seen.add(pick)
            out.append(pick)
    return out


class StructurePrior:
    """Per-node structure prior from yes/no judgements of parent sets (see the module doc).

    Subclasses implement :meth:`_judge`, one answer to one question in one answer order.
    ``log_prior(parents)`` sums :meth:`node_log_prior` over the nodes; with ``centre=True`` (default)
    the first use of a node judges all of its candidate parent sets (:meth:`prefetch` does that for
    every node up front, with a progress bar).
    """

    label = "unknown knowledge source"

    def __init__(self, nodes: Sequence[str], orders: Sequence[str] = ORDERS, centre: bool = True,
                 max_candidates: int = MAX_CANDIDATES, seed: int = 0, weigh: bool = True):
        self.nodes = list(nodes)
        if not self.nodes:
            raise ValueError("a structure prior needs at least one node")
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError(f"repeated node names in {self.nodes}")
        self.orders = tuple(orders)
        if not self.orders or any(o not in ORDERS for o in self.orders) or len(set(self.orders)) != len(self.orders):
            raise ValueError(f"orders must be a non-empty selection of {ORDERS}, got {orders!r}")
        self.centre = bool(centre)
        self.weigh = bool(weigh) and len(self.orders) == 2
        self.max_candidates = int(max_candidates)
        self.seed = int(seed)
        self.calls = self.hits = 0
        self.answers: dict[str, dict] = {}  # node|parents|order -> one answer
        self._offsets: dict[str, float] = {}
        self._reliability: dict[str, dict] = {}
        self._lock = threading.RLock()

    @property
    def model(self) -> str:
        return self.label

    @property
    def settings(self) -> dict:
        """How the terms are built (recorded next to every result that used this prior)."""
        return {"source": self.label, "orders": list(self.orders), "centre": self.centre, "weigh": self.weigh,
                "max_candidates": self.max_candidates}

    # -- one answer ------------------------------------------------------------
    def _judge(self, node: str, parents: list[str], order: str) -> dict:
        """One answer: ``{"logit": float or None, "source": ..., "reason": ...}`` (None = unusable)."""
        raise NotImplementedError

    def _check(self, node: str, parents: Sequence[str]) -> list[str]:
        if node not in self.nodes:
            raise ValueError(f"unknown node {node!r}; nodes are {self.nodes}")
        if isinstance(parents, str):
            raise ValueError(f"parents of {node!r} must be a list, got the string {parents!r}")
        bad = [p for p in parents if p not in self.nodes or p == node]
        if bad:
            raise ValueError(f"invalid parents {bad} for {node!r}; nodes are {self.nodes}")
        return sorted(set(parents))

    def answer(self, node: str, parents: Sequence[str], order: str) -> dict:
        """The (cached) answer to one question in one order."""
        ps = self._check(node, parents)
        key = _key(node, ps, order)
        with self._lock:
            if key in self.answers:
                self.hits += 1
                return self.answers[key]
            self.calls += 1
            rec = {"node": node, "parents": ps, "order": order, **self._judge(node, ps, order)}
            if rec.get("logit") is not None:
                rec["logit"] = max(-MAX_LOGIT, min(MAX_LOGIT, float(rec["logit"])))
                rec["p_yes"] = math.exp(log_sigmoid(rec["logit"]))
            else:
                rec["p_yes"] = None
                log.info("prior for %s <- %s (%s): %s", node, ps, order, rec.get("reason"))
            self.answers[key] = rec
            self._stored(rec)
            return rec

    def _stored(self, rec: dict) -> None:
        """Hook called after every new answer (the LLM prior saves its cache file)."""

    # -- one question (all orders) ---------------------------------------------
    def node_record(self, node: str, parents: Sequence[str]) -> dict:
        """Both orders of one question combined: ``logit`` (mean log-odds, None when unusable),
        ``p_yes``, ``logp`` (raw log p(yes), floored; log 0.5 when unusable), ``usable``, ``answers``."""
        ps = self._check(node, parents)
        answers = {o: self.answer(node, ps, o) for o in self.orders}
        logits = [a["logit"] for a in answers.values() if a.get("logit") is not None]
        usable = len(logits) == len(self.orders)
        logit = sum(logits) / len(logits) if usable else None
        lp = max(MIN_LOGP, log_sigmoid(logit)) if usable else math.log(NEUTRAL_P)
        reasons = [f"{o}: {a.get('reason')}" for o, a in answers.items() if a.get("logit") is None]
        return {"node": node, "parents": ps, "usable": usable, "logit": logit, "p_yes": math.exp(lp), "logp": lp,
                "answers": answers, "reason": "; ".join(reasons)}

    def candidate_sets(self, node: str) -> list[tuple[str, ...]]:
        return candidate_parent_sets(self.nodes, node, self.max_candidates, self.seed)

    def offset(self, node: str) -> float:
        """Mean raw log p(yes) of the node's usable candidate parent sets (0 when none is usable)."""
        with self._lock:
            if node not in self._offsets:
                lps = [r["logp"] for r in (self.node_record(node, s) for s in self.candidate_sets(node))
                       if r["usable"]]
                self._offsets[node] = sum(lps) / len(lps) if lps else 0.0
            return self._offsets[node]

    def reliability(self, node: str) -> dict:
        """How much of the node's answers survives swapping the answer order.

        Over the node's candidate parent sets with usable answers, ``r`` is the correlation between
        the log-odds asked with ``true`` first and with ``false`` first (two parallel forms of the same
        question).  The averaged answer's reliability is ``2r / (1 + r)`` (Spearman-Brown); ``weight``
        is that reliability when r is positive beyond chance (one-sided Fisher test at 5%), else 0.
        Answers that do not vary (a flat prior) get weight 0; answers identical in both orders, 1.
        """
        with self._lock:
            if node in self._reliability:
                return self._reliability[node]
            a, b = [], []
            for s in self.candidate_sets(node):
                rec = self.node_record(node, s)
                if rec["usable"] and len(self.orders) == 2:
                    a.append(rec["answers"][self.orders[0]]["logit"])
                    b.append(rec["answers"][self.orders[1]]["logit"])
            out = {"node": node, "n": len(a), "r": float("nan"), "z": float("nan"), "weight": 0.0}
            if len(a) >= 4:
                ma, mb = sum(a) / len(a), sum(b) / len(b)
                va = sum((x - ma) ** 2 for x in a)
                vb = sum((y - mb) ** 2 for y in b)
                if va > 1e-18 and vb > 1e-18:
                    r = sum((x - ma) * (y - mb) for x, y in zip(a, b)) / math.sqrt(va * vb)
                    r = max(-1.0, min(1.0, r))
                    z = math.atanh(min(r, 1 - 1e-12)) * math.sqrt(len(a) - 3)
                    out.update(r=r, z=z, weight=(2 * r / (1 + r)) if z > RELIABILITY_Z else 0.0)
            self._reliability[node] = out
            return out

    def node_log_prior(self, node: str, parents: Sequence[str]) -> float:
        """The node's term: centred log p(yes) (0 for an unusable answer) times the node's reliability
        weight (with both orders), or the raw log p(yes) with ``centre=False``."""
        rec = self.node_record(node, parents)
        if not self.centre:
            return rec["logp"]
        term = rec["logp"] - self.offset(node) if rec["usable"] else 0.0
        return term * self.reliability(node)["weight"] if self.weigh else term

    def node_terms(self, parents: Mapping[str, Sequence[str]]) -> dict[str, float]:
        """Per-node terms of a graph."""
        g = _as_parents(parents)
        return {v: self.node_log_prior(v, g[v]) for v in g}

    def log_prior(self, parents: Mapping[str, Sequence[str]]) -> float:
        """log p(E | V, L) up to a constant per node: the sum of the per-node terms."""
        return float(sum(self.node_terms(parents).values()))

    __call__ = log_prior

    def is_cached(self, node: str, parents: Sequence[str]) -> bool:
        ps = sorted(set(parents))
        return all(_key(node, ps, o) in self.answers for o in self.orders) and (
            not self.centre or node in self._offsets) and (not self.weigh or node in self._reliability)

    def prefetch(self, nodes: Sequence[str] | None = None, progress: bool = True) -> None:
        """Judge every candidate parent set of ``nodes`` (default: all) in every order."""
        from tqdm.auto import tqdm
        nodes = list(nodes) if nodes is not None else self.nodes
        todo = [(v, s) for v in nodes for s in self.candidate_sets(v)]
        for v, s in tqdm(todo, desc=f"prior questions ({self.label})", disable=not progress):
            self.node_record(v, s)
        for v in nodes:
            self.offset(v)
            if self.weigh:
                self.reliability(v)
        self.flush()

    def flush(self) -> None:
        """Write anything not yet saved (no-op for sources without a cache file)."""

    # -- reading the prior --------------------------------------------------------
    def table(self, nodes: Sequence[str] | None = None) -> list[dict]:
        """One row per (node, candidate parent set): p(yes) per order, combined, and the node's term."""
        rows = []
        for v in (list(nodes) if nodes is not None else self.nodes):
            for s in self.candidate_sets(v):
                rec = self.node_record(v, s)
                row = {"node": v, "parents": ", ".join(s) or "-", "n_parents": len(s)}
                for o in self.orders:
                    row[f"p_yes ({o})"] = rec["answers"][o].get("p_yes")
                row.update(p_yes=rec["p_yes"] if rec["usable"] else None, usable=rec["usable"],
                           term=self.node_log_prior(v, s))
                rows.append(row)
        return rows

    def edge_scores(self) -> dict[tuple[str, str], float]:
        """How much the source favours each edge u -> v: the node's mean term over candidate sets
        holding u minus its mean term over sets without u."""
        out = {}
        for v in self.nodes:
            terms = {s: self.node_log_prior(v, s) for s in self.candidate_sets(v)}
            for u in self.nodes:
                if u == v:
                    continue
                with_u = [t for s, t in terms.items() if u in s]
                without = [t for s, t in terms.items() if u not in s]
                out[(u, v)] = (sum(with_u) / len(with_u) if with_u else 0.0) - (
                    sum(without) / len(without) if without else 0.0)
        return out

    def summary(self) -> dict:
        """Counters: questions and answers, how many were usable, and why the others were not."""
        answers = list(self.answers.values())
        questions = {_key(a["node"], a["parents"]) for a in answers}
        unusable_q = sum(1 for q in questions
                         if any(self.answers.get(f"{q}|{o}", {}).get("logit") is None for o in self.orders))
        why: dict[str, int] = {}
        for a in answers:
            if a.get("logit") is None:
                r = str(a.get("reason") or "unknown")
                r = re.sub(r"\(.*", "", r).split(";")[0].strip()
                why[r] = why.get(r, 0) + 1
        return {"source": self.label, "orders": "+".join(self.orders), "centred": self.centre,
                "questions": len(questions), "answers": len(answers), "calls": self.calls, "hits": self.hits,
                "usable_answers": sum(a.get("logit") is not None for a in answers),
                "unusable_answers": sum(a.get("logit") is None for a in answers),
                "unusable_questions": unusable_q, "unusable_reasons": why,
                "reliability": {v: round(r["weight"], 3) for v, r in self._reliability.items()}}


class LLMPrior(StructurePrior):
    """The structure prior asked of an LLM (see the module doc); works with any chat client."""

    def __init__(self, chat: ChatClient, spec, nodes: Sequence[str] | None = None,
                 cache_path: str | Path | None = None, reasoning: bool = False,
                 top_logprobs: int = TOP_LOGPROBS, max_tokens: int | None = None,
                 orders: Sequence[str] = ORDERS, centre: bool = True, max_candidates: int = MAX_CANDIDATES,
                 seed: int = 0, cache: str | None = None):
        from ..llm import cache_mode
        nodes = list(nodes) if nodes is not None else bn_variables(spec)
        for n in nodes:
            spec.variable(n)
        super().__init__(nodes, orders=orders, centre=centre, max_candidates=max_candidates, seed=seed)
        self.chat = chat
        self.spec = spec
        self.exogenous = [v.name for v in spec.deterministic]
        self.reasoning = bool(reasoning)
        self.top_logprobs = int(top_logprobs)
        self.max_tokens = max_tokens or (REASONING_CHARS // 2 + 24 if reasoning else 12)
        self.cache_mode = cache_mode(cache)
        self.cache_path = Path(cache_path) if cache_path is not None and self.cache_mode != "off" else None
        self._unsaved = 0
        self._load()

    @property
    def label(self) -> str:  # type: ignore[override]
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
            mine = data.get(self.scope, {})
            self.answers.update({k: r for k, r in mine.items() if isinstance(r, dict) and r.get("order") in ORDERS})
        except (json.JSONDecodeError, OSError, AttributeError) as e:
            log.warning("prior cache %s unreadable (%s); starting empty", self.cache_path, e)

    def save(self) -> None:
        """Merge this prior's answers into the JSON cache file (atomic write; never in replay or off mode)."""
        if self.cache_path is None or self.cache_mode != "record":
            return
        with self._lock:
            data: dict = {}
            if self.cache_path.exists():
                try:
                    data = json.loads(self.cache_path.read_text())
                except (json.JSONDecodeError, OSError):
                    data = {}
            mine = data.setdefault(self.scope, {})
            mine.update({k: r for k, r in self.answers.items() if r.get("source") != "error"})
            atomic_write_text(self.cache_path, json.dumps(data, indent=0, sort_keys=True))
            self._unsaved = 0

    def _stored(self, rec: dict) -> None:
        if rec.get("source") != "error":
            self._unsaved += 1
            if self._unsaved >= SAVE_EVERY:
                self.save()

    def flush(self) -> None:
        if self._unsaved:
            self.save()

    def _judge(self, node: str, parents: list[str], order: str) -> dict:
        messages = [{"role": "system", "content": system_prompt(self.spec)},
                    {"role": "user", "content": prior_prompt(self.spec, node, parents, self.exogenous,
                                                              self.reasoning, order)}]
        rec: dict = {"model": self.model}
        try:
            reply = self.chat.chat(messages, schema=prior_schema(self.reasoning), logprobs=True,
                                   top_logprobs=self.top_logprobs, temperature=0.0, seed=0,
                                   max_tokens=self.max_tokens)
        except Exception as e:  # noqa: BLE001 - counted as an unusable answer, never fatal
            rec.update(logit=None, source="error", text=None,
                       reason=f"chat call failed ({type(e).__name__}: {e})")
            return rec
        rec["text"] = reply.text
        parsed = reply.parsed.get("answer") if isinstance(reply.parsed, dict) else None
        rec["answer"] = parsed if isinstance(parsed, bool) else None
        lp, why = answer_logprob(reply.text, reply.token_logprobs)
        if lp is None:
            rec.update(logit=None, source="unusable", reason=why)
        else:
            rec.update(logit=logit_of(max(MIN_LOGP, min(0.0, lp))), source="logprobs", reason=why)
        return rec


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


def rank_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count one half); NaN when
    one class is empty."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def prior_auc(prior: StructurePrior, true_edges: Iterable[Sequence[str]]) -> float:
    """Per-edge AUC of a prior against a true graph (evaluation only): how well its edge scores
    (:meth:`StructurePrior.edge_scores`) rank the true edges above the other ordered pairs.
    0.5 is chance; 1.0 puts every true edge first."""
    truth = {(str(a), str(b)) for a, b in true_edges}
    scores = prior.edge_scores()
    pairs = sorted(scores)
    return rank_auc([scores[p] for p in pairs], [p in truth for p in pairs])


__all__ = ["StructurePrior", "LLMPrior", "EdgeFrequencyPrior", "answer_logprob", "prior_prompt", "prior_schema",
           "candidate_parent_sets", "prior_auc", "rank_auc", "logit_of", "log_sigmoid", "ORDERS", "NEUTRAL_P",
           "MIN_LOGP", "MAX_LOGIT", "PRIOR_PROMPT_VERSION"]
