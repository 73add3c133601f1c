"""The search objective J(E) of eq. 5, in one place.

Everything that reports or optimises J (the annealing search, the exact optimiser, the DAG
explorer, :meth:`~.score.DataScorer.objective`) calls :func:`objective_terms`.  This module
imports nothing heavy, so light callers (the search, the widgets) stay light.
"""
from __future__ import annotations

import math

from ..paper import LAMBDA1, LAMBDA2


def objective_terms(data: float, n_edges: int, n_nodes: int, log_prior: float, lam1: float = LAMBDA1,
                    lam2: float = LAMBDA2) -> dict:
    """J of eq. 5 from its parts, the one place the formula lives.

    ``J = data - lam1 * n_edges / n_nodes**2 + lam2 * log_prior``; returns
    ``{"J", "data", "sparsity", "prior", "n_edges", "log_prior"}`` with the weighted terms as they
    enter J (``sparsity = -lam1 |E| / |V|^2``, ``prior = lam2 log p``).  J is a sum over nodes, so
    calling this per node (a node's data term, its number of parents, its log-prior) and adding
    the results gives the graph's J: the exact search of :mod:`.exact` relies on that.
    """
    if n_nodes < 1:
        raise ValueError(f"n_nodes must be positive, got {n_nodes}")
    lp = float(log_prior)
    if not math.isfinite(lp):
        raise ValueError(f"log_prior is not finite ({lp})")
    data = float(data)
    sparsity = -float(lam1) * int(n_edges) / n_nodes ** 2
    prior = float(lam2) * lp if lam2 else 0.0  # lam2 = 0 switches the prior off, whatever its value
    return {"J": data + sparsity + prior, "data": data, "sparsity": sparsity, "prior": prior,
            "n_edges": int(n_edges), "log_prior": lp}


__all__ = ["objective_terms"]
