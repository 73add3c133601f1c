"""Stochastic stream: DAG utilities, encoding, neural conditionals, the Bayesian network and its score.

The LLM-facing parts (DAG sampling, the structure prior) and the annealing
search live in their own modules of this package and build on these.
"""
from .dag import (bn_variables, edge_precision_recall, edges, find_cycle, from_edges, is_acyclic, n_edges, shd,
                  topological_order, validate)

__all__ = ["bn_variables", "edge_precision_recall", "edges", "find_cycle", "from_edges", "is_acyclic",
           "n_edges", "shd", "topological_order", "validate", "BayesNet", "apply_sample", "DataScorer",
           "Encoder", "FitSettings"]


def __getattr__(name):
    # torch-backed parts are imported on first use so DAG utilities stay light
    if name in ("BayesNet", "apply_sample"):
        from . import bn
        return getattr(bn, name)
    if name == "DataScorer":
        from .score import DataScorer
        return DataScorer
    if name == "Encoder":
        from .encoding import Encoder
        return Encoder
    if name == "FitSettings":
        from .conditionals import FitSettings
        return FitSettings
    raise AttributeError(name)
