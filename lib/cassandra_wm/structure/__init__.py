"""Stochastic stream: DAG utilities, encoding, neural conditionals, the Bayesian network and its score.

The LLM-facing parts (DAG sampling, the structure prior) and the annealing
search live in their own modules of this package and build on these.
"""
from .dag import (bn_variables, edge_precision_recall, edges, find_cycle, from_edges, is_acyclic, n_edges, shd,
                  topological_order, validate)

__all__ = ["bn_variables", "edge_precision_recall", "edges", "find_cycle", "from_edges", "is_acyclic",
           "n_edges", "shd", "topological_order", "validate", "BayesNet", "DataScorer", "Encoder", "FitSettings",
           "objective_terms"]


def __getattr__(name):
    # torch-backed parts are imported on first use so DAG utilities stay light
    if name == "BayesNet":
        from .bn import BayesNet
        return BayesNet
    if name == "objective_terms":
        from .objective import objective_terms
        return objective_terms
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
