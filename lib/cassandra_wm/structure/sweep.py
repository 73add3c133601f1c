"""How good must knowledge be for the structure prior to help?  One knowledge source through the
whole structure pipeline, scored against the simulator's graph (evaluation only).

:func:`run_source` takes a knowledge source (an LLM, a simulated expert at some error rate, or
None for no knowledge) and, on one shared table of local scores (every node and parent set fitted
once, see :mod:`.exact`):

1. samples ``n_dags`` initial DAGs from it (none: random DAGs with as many edges as ``random_edges``);
2. builds its calibrated structure prior (both answer orders, centred, reliability-weighted) and the
   paper's raw one-order prior, and what lambda2 held-out folds would choose (:func:`~.exact.choose_lambda2`);
3. for each setting (:data:`SETTINGS`): the exact optimum of J and simulated annealing from each
   initial DAG over ``search_seeds``;
4. reports SHD and edge precision/recall of every result against the true graph, the prior's AUC,
   and (with ``test``) table 5's one-step error of the network fitted on the annealed graph.

Annealing here reads the scorer's cache (every parent set is already fitted), so a step costs
microseconds and many seeds are cheap.
"""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

import numpy as np

from ..paper import LAMBDA1, LAMBDA2
from .ablations import random_dag
from .dag import edge_precision_recall, n_edges, shd
from .exact import LAMBDA2_GRID, LocalScores, choose_lambda2, exact_optimum
from .prior import prior_auc
from .search import anneal

NO_KNOWLEDGE = "no knowledge (no prior; random initial DAGs)"


class _TableScorer:
    """The data term read from a local-score table (what the annealing needs, no fitting)."""

    def __init__(self, local: LocalScores):
        self.local = local
        self.nodes = local.nodes

    def data_term(self, parents) -> float:
        return sum(self.local.data(v, parents[v]) for v in self.local.nodes)


class _TablePrior:
    def __init__(self, local: LocalScores):
        self.local = local

    def log_prior(self, parents) -> float:
        return sum(self.local.log_prior(v, parents[v]) for v in self.local.nodes)


def _shd_row(g, true_edges) -> dict:
    p, r = edge_precision_recall(g, true_edges)
    return {"shd": shd(g, true_edges), "precision": p, "recall": r, "edges": n_edges(g)}


SETTINGS = ("no prior", "lambda2 from data", "calibrated prior, paper's lambda2", "paper's prior")


def run_source(source: Any, spec, local: LocalScores, true_edges, n_dags: int = 2, search_seeds: Sequence[int] = (0,),
               steps: int = 200, lam1: float = LAMBDA1, lam2: float = LAMBDA2,
               grid: Sequence[float] = LAMBDA2_GRID, temperature: float = 0.7, random_edges: int | None = None,
               prior_kwargs: dict | None = None, scorer: Any = None, test: Sequence[dict] | None = None,
               n_samples: int = 100, seed: int = 0, progress: bool = False, inits: Sequence | None = None,
               prior: Any = None, paper_prior: Any = None) -> dict:
    """Everything one knowledge source leads to (see the module doc).

    ``source``: an object with ``model``, ``sample_dag`` and ``structure_prior`` (an
    :class:`~cassandra_wm.knowledge.LLMKnowledge` or a
    :class:`~cassandra_wm.structure.expert.SimulatedExpert`), or None.  Settings compared, each by the
    exact optimum and by annealing from the source's DAGs over ``search_seeds``:

    * ``no prior``: lambda2 = 0;
    * ``lambda2 from data``: the calibrated prior (both answer orders, centred, weighted by each
      node's reliability) at the lambda2 :func:`~.exact.choose_lambda2` picks on held-out folds;
    * ``calibrated prior, paper's lambda2``: the calibrated prior at ``lam2`` (the paper's 100);
    * ``paper's prior``: one answer order, raw log p(yes), at ``lam2`` (the paper's setting).

    ``inits``, ``prior`` and ``paper_prior`` replace the source's own samples and priors (notebook 03
    passes the ones it has).  Returns ``{"summary", "runs", "lambda2", "samples", "prior", "inits"}``.
    """
    t0 = time.perf_counter()
    nodes = local.nodes
    label = NO_KNOWLEDGE if source is None else str(source.model)
    samples: list = []
    tables = {"no prior": local.with_prior(None)}
    prior_info, auc, choice = {}, float("nan"), {"lam2": 0.0, "table": [], "folds": 0}
    if source is None:
        k = random_edges if random_edges is not None else len(nodes)
        if inits is None:
            inits = [random_dag(nodes, n_edges=max(k, 1), seed=seed * 1000 + i) for i in range(n_dags)]
    else:
        if inits is None:
            samples = [source.sample_dag(spec, sample_index=i, temperature=temperature, nodes=nodes)
                       for i in range(n_dags)]
            inits = [s.parents for s in samples]
        kw = dict(prior_kwargs or {})
        if prior is None:
            prior = source.structure_prior(spec, nodes=nodes, **kw)
        if paper_prior is None:
            paper_prior = source.structure_prior(spec, nodes=nodes, **dict(kw, orders=("true_first",), centre=False))
        calibrated = local.with_prior(prior, progress=progress)
        tables["lambda2 from data"] = tables["calibrated prior, paper's lambda2"] = calibrated
        tables["paper's prior"] = local.with_prior(paper_prior, progress=progress)
        prior_info = prior.summary()
        auc = prior_auc(prior, true_edges)
        choice = choose_lambda2(calibrated, lam1, grid)
    weights = {"no prior": 0.0, "lambda2 from data": choice["lam2"], "calibrated prior, paper's lambda2": lam2,
               "paper's prior": lam2}
    runs = []
    for name in SETTINGS:
        if name not in tables:
            continue
        table, lam2_s = tables[name], weights[name]
        pr = _TablePrior(table) if name != "no prior" else None
        g, terms = exact_optimum(table, lam1, lam2_s)
        runs.append({"setting": name, "lam2": lam2_s, "method": "exact optimum", "search_seed": None,
                     "J": terms["J"], **_shd_row(g, true_edges), "graph": g})
        for s in search_seeds:
            for i, init in enumerate(inits):
                res = anneal(init, _TableScorer(table), pr, steps=steps, lam1=lam1, lam2=lam2_s,
                             seed=int(s) * 100 + i)
                runs.append({"setting": name, "lam2": lam2_s, "method": "annealing", "search_seed": int(s),
                             "start": i, "J": res.best_terms["J"], **_shd_row(res.best_parents, true_edges),
                             "graph": res.best_parents})

    def pick(setting, method="annealing"):
        return [r for r in runs if r["setting"] == setting and r["method"] == method]

    def mean_shd(setting):
        xs = [r["shd"] for r in pick(setting)]
        return float(np.mean(xs)) if xs else float("nan")

    def exact_shd(setting):
        xs = pick(setting, "exact optimum")
        return float(xs[0]["shd"]) if xs else float("nan")

    def best_run(setting):  # the run with the best J per search seed, as notebook 03 keeps it
        out = []
        for s in search_seeds:
            rs = [r for r in pick(setting) if r["search_seed"] == int(s)]
            if rs:
                out.append(max(rs, key=lambda r: r["J"]))
        return out

    rel = prior_info.get("reliability", {})
    main = "lambda2 from data" if source is not None else "no prior"
    summary = {"source": label, "evaluation_control": bool(getattr(source, "is_evaluation_control", False)),
               "prior_auc": auc, "mean_reliability": float(np.mean(list(rel.values()))) if rel else float("nan"),
               "lam2_from_data": choice["lam2"], "lam2_paper": lam2,
               "init_shd": float(np.mean([shd(g, true_edges) for g in inits])),
               **{f"shd {k}": mean_shd(k) for k in SETTINGS},
               **{f"exact shd {k}": exact_shd(k) for k in SETTINGS},
               "unusable_prior_answers": prior_info.get("unusable_answers", 0),
               "prior_answers": prior_info.get("answers", 0)}
    chosen = best_run(main)
    if test is not None and scorer is not None and chosen:
        summary.update(table5(spec, scorer, chosen[0]["graph"], test, n_samples, seed))
        if source is not None:
            base = best_run("no prior")
            summary["rmse_ratio no prior"] = table5(spec, scorer, base[0]["graph"], test, n_samples, seed)["rmse_ratio"]
    summary["seconds"] = time.perf_counter() - t0
    return {"summary": summary, "runs": runs, "lambda2": choice, "samples": [s.to_dict() for s in samples],
            "prior": prior_info, "inits": inits}


def table5(spec, scorer: Any, graph, test: Sequence[dict], n_samples: int = 100, seed: int = 0) -> dict:
    """Table 5 for one graph: the network's per-variable one-step error on ``test`` and its mean ratio
    to the no-model error over numeric variables (``rmse_ratio``; below 1 beats "tomorrow = today")."""
    from .bn import BayesNet, flag_off, one_step_errors, persistence_errors
    bn = BayesNet(spec, graph, nodes=scorer.nodes, seed=scorer.seed, **_settings(scorer))
    bn.fit_from_scorer(scorer)
    err = one_step_errors(bn, test, n_samples=n_samples, rng=seed)
    base = persistence_errors(spec, scorer.nodes, test)
    numeric = [v for v in scorer.nodes if spec.variable(v).type != "categorical"]
    ratios = [err[v] / base[v] for v in numeric if base[v] > 0 and math.isfinite(err[v])]
    out = {f"rmse {v}": err[v] for v in numeric}
    out["rmse_ratio"] = float(np.mean(ratios)) if ratios else float("nan")
    out["flagged"] = ", ".join(sorted(flag_off(err, base, spec))) or ""
    return out


def _settings(scorer) -> dict:
    import json
    return json.loads(scorer.settings.key())


__all__ = ["run_source", "table5", "NO_KNOWLEDGE", "SETTINGS"]
