"""A simulated expert: an evaluation control that answers CASSANDRA's structure questions from the
simulator's true graph, wrong at a chosen rate.

**This reads the simulator's ground truth.**  It is never a learner's default and every result it
produces is labelled "simulated expert (error e; evaluation control)".  It exists to answer one
question the bundled 135M-parameter LLM cannot: how good must a knowledge source be for the prior
to help?  At error 0 it knows the true graph; at error 0.5 every yes/no is a coin flip and it knows
nothing.

How it answers (``error`` = e):

* **Beliefs.**  For every ordered pair (u, v) of modelled nodes the expert holds a belief "u is a
  same-day parent of v", equal to the truth flipped with probability e (drawn once per expert
  seed).  Its beliefs may contain cycles; nothing else reads them.
* **Ordering and parents (algorithm 3).**  Each sample draws fresh answers: the next variable is a
  node whose true parents are all placed, except that with probability e it names a random
  remaining node instead; asked for the parents of v among earlier nodes, it says yes for each
  candidate u with the truth flipped with probability e.  Samples are seeded by the sample index.
* **Prior questions.**  "Is S exactly the parent set of v?" gets
  p(yes) = prod over the other nodes u of (1 - e') when S agrees with the belief about u -> v, and
  e' when it does not, with e' = clip(e, 0.01, 0.5) (a calibrated expert; the floor keeps an
  error-free expert finite).  The answer does not depend on the order the options are listed in.
"""
from __future__ import annotations

import math
import random
import time
import zlib
from typing import Sequence

from .dag import Parents, validate
from .llm_dag import DagSample
from .prior import StructurePrior

MIN_CONFIDENCE_ERROR = 0.01


def expert_label(error: float) -> str:
    return f"simulated expert (error {error:g}; evaluation control, reads the true graph)"


def _rng(*parts) -> random.Random:
    return random.Random(zlib.crc32("|".join(str(p) for p in parts).encode()))


def _true_parents(nodes: Sequence[str], true_edges) -> Parents:
    nodes = list(nodes)
    g: Parents = {v: [] for v in nodes}
    for a, b in true_edges:
        if a in g and b in g:
            g[b].append(a)
    return validate(g, nodes)


class ExpertPrior(StructurePrior):
    """The expert's answers to the prior questions (see the module doc)."""

    def __init__(self, nodes: Sequence[str], true_edges, error: float, seed: int = 0, **kw):
        super().__init__(nodes, seed=seed, **kw)
        if not 0.0 <= float(error) <= 0.5:
            raise ValueError(f"error must be in [0, 0.5], got {error}")
        self.error = float(error)
        truth = _true_parents(self.nodes, true_edges)
        rng = _rng("expert-beliefs", seed, self.error)
        self.beliefs = {(u, v): (u in truth[v]) != (rng.random() < self.error)
                        for v in self.nodes for u in self.nodes if u != v}

    @property
    def label(self) -> str:  # type: ignore[override]
        return expert_label(self.error)

    def _judge(self, node: str, parents: list[str], order: str) -> dict:
        e = min(max(self.error, MIN_CONFIDENCE_ERROR), 0.5)
        ps = set(parents)
        logp = sum(math.log1p(-e) if (u in ps) == self.beliefs[(u, node)] else math.log(e)
                   for u in self.nodes if u != node)
        logit = logp - math.log(-math.expm1(logp)) if logp < 0 else 30.0
        return {"logit": logit, "source": "simulated expert", "reason": f"beliefs with error {self.error:g}"}


class SimulatedExpert:
    """The structure half of a knowledge source that reads the true graph (evaluation control only).

    Same calls as :class:`~cassandra_wm.knowledge.LLMKnowledge` for the stochastic stream:
    ``sample_dag``, ``order_variables``, ``elicit_parents`` and ``structure_prior``.
    """

    is_evaluation_control = True

    def __init__(self, true_edges, error: float, seed: int = 0):
        if not 0.0 <= float(error) <= 0.5:
            raise ValueError(f"error must be in [0, 0.5], got {error}")
        self.true_edges = [tuple(e) for e in true_edges]
        self.error = float(error)
        self.seed = int(seed)

    @property
    def model(self) -> str:
        return expert_label(self.error)

    label = model

    def _truth(self, nodes: Sequence[str]) -> Parents:
        return _true_parents(nodes, self.true_edges)

    def order_variables(self, spec, sample_index: int = 0, nodes: Sequence[str] | None = None) -> list[str]:
        """Deterministic variables first, then the modelled ones: a true topological order, with each
        pick replaced by a random remaining node with probability ``error``."""
        from .dag import bn_variables
        nodes = list(nodes) if nodes is not None else bn_variables(spec)
        truth = self._truth(nodes)
        rng = _rng("expert-order", self.seed, self.error, sample_index)
        placed: list[str] = []
        remaining = list(nodes)
        while remaining:
            ready = [v for v in remaining if all(p in placed for p in truth[v])] or remaining
            pick = rng.choice(remaining) if rng.random() < self.error else rng.choice(ready)
            placed.append(pick)
            remaining.remove(pick)
        return [v.name for v in spec.deterministic] + placed

    def elicit_parents(self, spec, variable: str, candidates: Sequence[str], sample_index: int = 0) -> list[str]:
        """Each candidate is named a parent when it truly is one, flipped with probability ``error``."""
        truth = self._truth(list(dict.fromkeys(list(candidates) + [variable])))
        rng = _rng("expert-parents", self.seed, self.error, sample_index, variable)
        return [u for u in candidates if (u in truth[variable]) != (rng.random() < self.error)]

    def sample_dag(self, spec, sample_index: int = 0, temperature: float = 0.0,
                   nodes: Sequence[str] | None = None) -> DagSample:
        """Algorithm 3 with the expert's answers; acyclic by construction."""
        from .dag import bn_variables
        t0 = time.perf_counter()
        nodes = list(nodes) if nodes is not None else bn_variables(spec)
        order = self.order_variables(spec, sample_index, nodes)
        stoch = [v for v in order if v in nodes]
        parents = {v: self.elicit_parents(spec, v, stoch[:i], sample_index) for i, v in enumerate(stoch)}
        parents = validate({v: parents[v] for v in nodes}, nodes)
        return DagSample(parents=parents, order=order, model=self.model, sample_index=sample_index,
                         temperature=temperature, seconds=time.perf_counter() - t0)

    def structure_prior(self, spec=None, nodes: Sequence[str] | None = None, **kw) -> ExpertPrior:
        from .dag import bn_variables
        nodes = list(nodes) if nodes is not None else bn_variables(spec)
        kw = {k: v for k, v in kw.items() if k in ("orders", "centre", "max_candidates")}
        return ExpertPrior(nodes, self.true_edges, self.error, seed=self.seed, **kw)


__all__ = ["SimulatedExpert", "ExpertPrior", "expert_label"]
