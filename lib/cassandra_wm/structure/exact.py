"""The exact optimum of J over all DAGs, and lambda2 chosen from held-out data.

J of eq. 5 is a sum over nodes of a term that depends only on the node and its parent set
(:func:`~.objective.objective_terms` per node).  For the bundle's graphs (6 modelled variables,
so 6 x 2^5 = 192 parent sets) every local term can be computed once and the best DAG found
exactly by dynamic programming over variable orders (Silander and Myllymaki's algorithm):

1. for every node v and every set C of other nodes, the best parent set of v inside C;
2. for every set W of nodes, the best DAG over W: its last node v (a sink) takes its best parent
   set inside W \\ {v}, and the rest is the best DAG over W \\ {v}.

The result is the graph annealing is trying to find, so it tells how far annealing got.

**Choosing lambda2.**  Every fitted conditional keeps its per-row losses on the validation rows
(:meth:`~.score.DataScorer.node_rows`), so the data term can be recomputed on any subset of those
rows without refitting.  :func:`choose_lambda2` splits the validation rows into folds (whole
trajectories when there are enough of them, else blocks of consecutive rows), and for each
lambda2 on a grid finds the exact optimum of J on all folds but one and scores the chosen graph's
data term on the fold left out.  The prior gets weight only when it beats lambda2 = 0 by more
than two standard errors, and then the largest lambda2 within one standard error of the best (see
:func:`choose_lambda2` for why).  The conditionals were trained on the training rows and early-stopped on all
validation rows, so the held-out score is slightly optimistic, equally for every graph.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..paper import LAMBDA1
from .dag import Parents
from .objective import objective_terms

LAMBDA2_GRID = (0.0, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


@dataclass
class LocalScores:
    """Per-(node, parent set) validation losses and prior terms: everything J needs, once."""

    nodes: list[str]
    sets: dict[str, list[tuple[str, ...]]]
    rows: dict[tuple[str, tuple[str, ...]], np.ndarray]
    prior: dict[tuple[str, tuple[str, ...]], float] = field(default_factory=dict)
    groups: list = field(default_factory=list)
    prior_label: str = "none"

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.rows.values())))

    def data(self, node: str, ps: Sequence[str], mask: np.ndarray | None = None) -> float:
        """The node's data term (minus its mean loss) on all validation rows, or on ``mask``."""
        r = self.rows[(node, _canon(self.nodes, ps))]
        if mask is not None:
            r = r[mask]
        r = r[np.isfinite(r)]
        return -float(r.mean()) if r.size else 0.0

    def log_prior(self, node: str, ps: Sequence[str]) -> float:
        return float(self.prior.get((node, _canon(self.nodes, ps)), 0.0))

    def with_prior(self, prior: Any, progress: bool = False) -> "LocalScores":
        """The same data terms with another prior's terms (None: no prior)."""
        table = _prior_table(self.nodes, self.sets, prior, progress)
        return LocalScores(self.nodes, self.sets, self.rows, table, self.groups, _label(prior))


def _label(prior: Any) -> str:
    return "none" if prior is None else str(getattr(prior, "label", None) or getattr(prior, "model", "prior"))


def _canon(nodes: Sequence[str], ps: Sequence[str]) -> tuple[str, ...]:
    s = set(ps)
    return tuple(n for n in nodes if n in s)


def _prior_table(nodes, sets, prior, progress) -> dict:
    from tqdm.auto import tqdm
    if prior is None:
        return {}
    items = [(v, s) for v in nodes for s in sets[v]]
    fn = prior.node_log_prior if hasattr(prior, "node_log_prior") else None
    out = {}
    for v, s in tqdm(items, desc=f"prior terms ({_label(prior)})", disable=not progress, leave=False):
        out[(v, s)] = float(fn(v, list(s))) if fn else float(prior({**{n: [] for n in nodes}, v: list(s)}))
    if hasattr(prior, "flush"):
        prior.flush()
    return out


def local_scores(scorer: Any, prior: Any = None, max_parents: int | None = None,
                 progress: bool = True) -> LocalScores:
    """Fit (or read from the scorer's cache) every (node, parent set) and ask the prior about each.

    ``scorer`` is a :class:`~.score.DataScorer`; with ``max_parents`` only parent sets up to that
    size are considered (the exact optimum is then over DAGs with that in-degree bound).
    """
    from tqdm.auto import tqdm
    nodes = list(scorer.nodes)
    cap = len(nodes) - 1 if max_parents is None else int(max_parents)
    sets = {v: [c for k in range(cap + 1) for c in itertools.combinations([n for n in nodes if n != v], k)]
            for v in nodes}
    items = [(v, s) for v in nodes for s in sets[v]]
    rows = {}
    for v, s in tqdm(items, desc="local fits (node, parent set)", disable=not progress):
        rows[(v, s)] = np.asarray(scorer.node_rows(v, list(s)), dtype=np.float64)
    return LocalScores(nodes, sets, rows, _prior_table(nodes, sets, prior, progress),
                       list(getattr(scorer, "val_groups", [])), _label(prior))


def best_dag(nodes: Sequence[str], node_score: Mapping[tuple[str, tuple[str, ...]], float]) -> tuple[Parents, float]:
    """The DAG maximising a sum of per-node scores; ``node_score[(v, parent tuple in node order)]``
    lists the allowed parent sets (a set not listed is not allowed).  Returns (parents, total)."""
    nodes = list(nodes)
    n = len(nodes)
    idx = {v: i for i, v in enumerate(nodes)}
    full = (1 << n) - 1

    def mask(ps) -> int:
        return sum(1 << idx[p] for p in ps)

    local = [dict() for _ in range(n)]
    for (v, ps), sc in node_score.items():
        if math.isfinite(sc):
            local[idx[v]][mask(ps)] = float(sc)
    # best parent set of v inside every mask C (v's own bit never set)
    best_in: list[dict[int, tuple[float, int]]] = []
    for i in range(n):
        table: dict[int, tuple[float, int]] = {}
        others = full & ~(1 << i)
        subs = sorted((c for c in range(full + 1) if c & others == c), key=lambda c: bin(c).count("1"))
        for c in subs:
            cand = (local[i][c], c) if c in local[i] else (-math.inf, -1)
            for j in range(n):
                if c >> j & 1:
                    cand = max(cand, table[c & ~(1 << j)])
            table[c] = cand
        best_in.append(table)
    # best DAG over every set of nodes, by its last node (a sink)
    best = {0: (0.0, -1)}
    for w in sorted(range(1, full + 1), key=lambda c: bin(c).count("1")):
        cand = (-math.inf, -1)
        for i in range(n):
            if w >> i & 1:
                rest = w & ~(1 << i)
                cand = max(cand, (best[rest][0] + best_in[i][rest][0], i))
        best[w] = cand
    if not math.isfinite(best[full][0]):
        raise ValueError("no DAG is allowed by the given parent sets")
    parents: Parents = {v: [] for v in nodes}
    w = full
    while w:
        i = best[w][1]
        rest = w & ~(1 << i)
        pm = best_in[i][rest][1]
        parents[nodes[i]] = [nodes[j] for j in range(n) if pm >> j & 1]
        w = rest
    return parents, best[full][0]


def exact_optimum(local: LocalScores, lam1: float = LAMBDA1, lam2: float = 0.0,
                  mask: np.ndarray | None = None) -> tuple[Parents, dict]:
    """The DAG with the highest J (data on all validation rows, or on ``mask``) and its terms."""
    n = len(local.nodes)
    score = {(v, s): objective_terms(local.data(v, s, mask), len(s), n, local.log_prior(v, s), lam1, lam2)["J"]
             for v in local.nodes for s in local.sets[v]}
    g, _ = best_dag(local.nodes, score)
    return g, graph_terms(local, g, lam1, lam2, mask)


def graph_terms(local: LocalScores, parents: Mapping[str, Sequence[str]], lam1: float = LAMBDA1,
                lam2: float = 0.0, mask: np.ndarray | None = None) -> dict:
    """J and its terms for one graph from the local tables."""
    data = sum(local.data(v, parents[v], mask) for v in local.nodes)
    lp = sum(local.log_prior(v, parents[v]) for v in local.nodes)
    ne = sum(len(parents[v]) for v in local.nodes)
    return objective_terms(data, ne, len(local.nodes), lp, lam1, lam2)


def folds(groups: Sequence, n_rows: int, n_folds: int = 5) -> list[np.ndarray]:
    """Boolean masks of held-out folds: whole groups (trajectories) dealt round-robin when there are
    at least ``n_folds`` of them, else ``n_folds`` blocks of consecutive rows."""
    if n_rows < 2:
        raise ValueError(f"need at least 2 validation rows to make folds, got {n_rows}")
    k = max(2, min(int(n_folds), n_rows))
    ids = list(dict.fromkeys(groups)) if groups and len(groups) == n_rows else []
    out = []
    if len(ids) >= k:
        g = np.asarray([ids.index(x) for x in groups])
        for f in range(k):
            out.append(np.isin(g, [i for i in range(len(ids)) if i % k == f]))
    else:
        edges = np.linspace(0, n_rows, k + 1).round().astype(int)
        for f in range(k):
            m = np.zeros(n_rows, dtype=bool)
            m[edges[f]:edges[f + 1]] = True
            out.append(m)
    return [m for m in out if m.any()]


EVIDENCE_SE = 2.0  # the prior must beat lambda2 = 0 on held-out folds by this many standard errors


def pick_lambda2(table: list[dict], evidence: float = EVIDENCE_SE) -> tuple[float, str]:
    """The decision of :func:`choose_lambda2` from its table rows (``lam2``, ``fold_scores``; the row
    with lam2 = 0 first).  Adds ``heldout``, ``gap``, ``gap_se`` and ``within_1se`` to every row and
    returns ``(lambda2, why)``."""
    k = len(table[0]["fold_scores"])
    for r in table:
        r["heldout"] = float(np.mean(r["fold_scores"]))
    best = max(table, key=lambda r: (r["heldout"], -r["lam2"]))
    for r in table:
        diff = np.asarray(best["fold_scores"]) - np.asarray(r["fold_scores"])
        r["gap"] = float(diff.mean())
        r["gap_se"] = float(diff.std(ddof=1) / math.sqrt(k)) if k > 1 else 0.0
        r["within_1se"] = bool(r["gap"] <= r["gap_se"] + 1e-12)
    zero = next(r for r in table if r["lam2"] == 0.0)
    if best is zero or zero["gap"] <= evidence * zero["gap_se"] + 1e-12:
        return 0.0, (f"the prior does not beat lambda2 = 0 on held-out folds by more than {evidence:g} standard "
                     f"errors (gain {zero['gap']:.3f}, standard error {zero['gap_se']:.3f})")
    chosen = max(r["lam2"] for r in table if r["within_1se"])
    return chosen, (f"the prior improves held-out fit by {zero['gap']:.3f} ({zero['gap'] / max(zero['gap_se'], 1e-12):.1f} "
                    f"standard errors); the largest lambda2 within one standard error of the best")


def choose_lambda2(local: LocalScores, lam1: float = LAMBDA1, grid: Sequence[float] = LAMBDA2_GRID,
                   n_folds: int = 5, evidence: float = EVIDENCE_SE) -> dict:
    """lambda2 from held-out folds of the validation rows: evidence first, then the one-standard-error rule.

    For each lambda2 of the grid and each fold, the exact optimum of J on the other folds is scored
    on the fold left out (its data term).  The prior gets weight only when the held-out folds show
    that it helps: the best lambda2 must beat lambda2 = 0 by more than ``evidence`` standard errors
    of the per-fold differences; otherwise lambda2 = 0.  When it does, the prior is treated as a
    regulariser and the choice follows the one-standard-error rule for regularisation strength
    (Breiman et al. 1984; Hastie, Tibshirani and Friedman, section 7.10): the largest lambda2 whose
    held-out score is within one standard error of the best.  So noise cannot outvote the data, and
    knowledge the data confirms is used as far as the data allows.

    Held-out fit rewards prediction, not causal direction: where wrong directions predict as well
    or better (deterministic links, per-node standardised losses), even correct knowledge is held
    back.  Notebooks 03 and 07 report the paper's fixed lambda2 beside this choice.

    Returns ``{"lam2", "why", "best_lam2", "prior_changes_graph", "table": [{"lam2", "heldout",
    "heldout_sd", "gap", "gap_se", "within_1se", "fold_scores", "n_edges"}], "folds", "prior"}``.
    """
    grid = sorted({float(x) for x in grid})
    if not grid or grid[0] < 0:
        raise ValueError(f"the lambda2 grid must hold values >= 0, got {grid}")
    if grid[0] != 0.0:
        grid = [0.0] + grid  # the no-prior reference is always on the grid
    ms = folds(local.groups, local.n_rows, n_folds)
    table, graphs = [], {}
    for lam2 in grid:
        scores, edges_, gs = [], [], []
        for m in ms:
            g, _ = exact_optimum(local, lam1, lam2, mask=~m)
            gs.append(g)
            scores.append(sum(local.data(v, g[v], m) for v in local.nodes))
            edges_.append(sum(len(p) for p in g.values()))
        gs.append(exact_optimum(local, lam1, lam2)[0])
        graphs[lam2] = gs
        table.append({"lam2": lam2, "heldout_sd": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
                      "fold_scores": [float(x) for x in scores], "n_edges": float(np.mean(edges_))})
    chosen, why = pick_lambda2(table, evidence)
    best = max(table, key=lambda r: (r["heldout"], -r["lam2"]))
    return {"lam2": chosen, "why": why, "best_lam2": best["lam2"],
            "prior_changes_graph": bool(any(graphs[l] != graphs[0.0] for l in graphs)), "table": table,
            "folds": len(ms), "prior": local.prior_label}


__all__ = ["LocalScores", "local_scores", "best_dag", "exact_optimum", "graph_terms", "folds", "choose_lambda2",
           "pick_lambda2", "LAMBDA2_GRID", "EVIDENCE_SE"]
