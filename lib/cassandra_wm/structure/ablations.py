"""Graphs of the structure ablations of section 4 of the CASSANDRA paper.

* CASS-Ind: no edges; every node is predicted from the previous state, the action and the
  deterministic variables only (:func:`independent_graph`).
* CASS-L: "a randomly ordered linear DAG".  We read it as a chain: a random permutation
  v1, ..., vn of the nodes with edges v1 -> v2 -> ... -> vn, each node having the previous one as
  its only same-day parent (:func:`random_chain`).  (The other reading, every earlier node a
  parent of every later one, would be a fully connected DAG; the chain is what "linear" suggests.)
* CASS-R: simulated annealing from random initial DAGs without the LLM prior; the starting
  graphs come from :func:`random_dag` (the search itself is :func:`~.search.search` with
  ``prior=None``).  To compare fairly with CASSANDRA, give ``random_dag`` the mean edge count
  of the LLM-sampled DAGs.
"""
from __future__ import annotations

import random
from typing import Sequence

from .dag import Parents


def _nodes(nodes: Sequence[str]) -> list[str]:
    nodes = list(nodes)
    if not nodes:
        raise ValueError("no nodes given")
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"repeated node names in {nodes}")
    return nodes


def independent_graph(nodes: Sequence[str]) -> Parents:
    """CASS-Ind: the empty graph."""
    return {v: [] for v in _nodes(nodes)}


def random_chain(nodes: Sequence[str], seed: int = 0) -> Parents:
    """CASS-L: a chain v1 -> v2 -> ... -> vn over a random permutation of ``nodes`` (seeded)."""
    nodes = _nodes(nodes)
    order = list(nodes)
    random.Random(seed).shuffle(order)
    g: Parents = {v: [] for v in nodes}
    for a, b in zip(order, order[1:]):
        g[b] = [a]
    return g


def random_dag(nodes: Sequence[str], n_edges: int | None = None, seed: int = 0,
               edge_prob: float | None = None) -> Parents:
    """A random DAG: a random order, then ``n_edges`` forward pairs drawn without replacement
    (or each forward pair kept with ``edge_prob``).  Default: as many edges as nodes (capped)."""
    nodes = _nodes(nodes)
    rng = random.Random(seed)
    order = list(nodes)
    rng.shuffle(order)
    pairs = [(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))]
    if edge_prob is not None:
        if n_edges is not None:
            raise ValueError("give n_edges or edge_prob, not both")
        if not 0 <= edge_prob <= 1:
            raise ValueError(f"edge_prob must be in [0, 1], got {edge_prob}")
        chosen = [e for e in pairs if rng.random() < edge_prob]
    else:
        k = len(nodes) if n_edges is None else int(n_edges)
        if k < 0:
            raise ValueError(f"n_edges must be >= 0, got {n_edges}")
        chosen = rng.sample(pairs, min(k, len(pairs)))
    g: Parents = {v: [] for v in nodes}
    for a, b in chosen:
        g[b].append(a)
    return {v: sorted(ps, key=order.index) for v, ps in g.items()}


__all__ = ["independent_graph", "random_chain", "random_dag"]
