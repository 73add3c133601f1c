"""Small DAG utilities over the stochastic variables of an environment.

A graph is a ``parents`` dict: every modelled node is a key and maps to the list
of its same-step parents, e.g. ``{"customers": [], "sales": ["customers"]}``.
Edges are ``(parent, child)`` tuples.  Functions here never modify their input.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

Parents = dict[str, list[str]]
Edge = tuple[str, str]


def bn_variables(spec) -> list[str]:
    """The variables the Bayesian network models, in spec order.

    ``spec.bn_variables`` when the environment names them (e.g. the theme park, where
    some stochastic variables are left out), else every stochastic variable.  Raises
    ValueError when a listed name is not a stochastic variable.
    """
    listed = getattr(spec, "bn_variables", None)
    stochastic = [v.name for v in spec.variables if v.kind == "stochastic"]
    if not listed:
        return stochastic
    unknown = [n for n in listed if n not in stochastic]
    if unknown:
        raise ValueError(f"{spec.name}: bn_variables {unknown} are not stochastic variables; "
                         f"stochastic: {stochastic}")
    return list(listed)


def validate(parents: Mapping[str, Sequence[str]], nodes: Sequence[str] | None = None) -> Parents:
    """Check a parents dict and return a clean copy (lists, node order kept).

    Raises ValueError on a parent that is not a node, a self-loop, a repeated
    parent, or (with ``nodes`` given) a key that is not a node.  Nodes of
    ``nodes`` missing from ``parents`` get an empty parent list.
    """
    if not isinstance(parents, Mapping):
        raise ValueError(f"parents must be a dict of lists, got {type(parents).__name__}")
    keys = list(nodes) if nodes is not None else list(parents)
    known = set(keys)
    extra = [k for k in parents if k not in known]
    if extra:
        raise ValueError(f"unknown nodes {extra}; nodes are {keys}")
    out: Parents = {}
    for v in keys:
        ps = parents.get(v, []) or []
        if isinstance(ps, str):
            raise ValueError(f"parents of {v!r} must be a list, got the string {ps!r}")
        ps = list(ps)
        bad = [p for p in ps if p not in known]
        if bad:
            raise ValueError(f"parents {bad} of {v!r} are not nodes; nodes are {keys}")
        if v in ps:
            raise ValueError(f"self-loop on {v!r}")
        if len(set(ps)) != len(ps):
            raise ValueError(f"repeated parent in {v!r}: {ps}")
        out[v] = ps
    return out


def to_networkx(parents: Mapping[str, Sequence[str]]):
    """The graph as a ``networkx.DiGraph`` (edges parent -> child; every key is a node)."""
    import networkx as nx
    g = nx.DiGraph()
    g.add_nodes_from(parents)
    g.add_edges_from((p, v) for v, ps in parents.items() for p in ps)
    return g


def find_cycle(parents: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One directed cycle as a node list ``[a, b, ..., a]`` (following edges), or None."""
    import networkx as nx
    try:
        cyc = nx.find_cycle(to_networkx(parents))
    except nx.NetworkXNoCycle:
        return None
    return [u for u, _ in cyc] + [cyc[0][0]]


def is_acyclic(parents: Mapping[str, Sequence[str]]) -> bool:
    """True when the graph has no directed cycle."""
    import networkx as nx
    return nx.is_directed_acyclic_graph(to_networkx(parents))


def topological_order(parents: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes ordered so every parent comes before its children.

    Ties are broken by the order of the keys, so the result is deterministic.
    Raises ValueError naming a cycle when there is one.
    """
    import networkx as nx
    cycle = find_cycle(parents)
    if cycle is not None:
        raise ValueError("graph has a cycle: " + " -> ".join(cycle))
    g = to_networkx(parents)
    rank = {v: i for i, v in enumerate(g.nodes)}
    return list(nx.lexicographical_topological_sort(g, key=rank.__getitem__))


def edges(parents: Mapping[str, Sequence[str]]) -> list[Edge]:
    """Edge list ``[(parent, child), ...]`` in node order."""
    return [(p, v) for v, ps in parents.items() for p in ps]


def from_edges(nodes: Sequence[str], edge_list: Iterable[Sequence[str]]) -> Parents:
    """Parents dict over ``nodes`` from ``(parent, child)`` pairs.

    Raises ValueError on an unknown node, a self-loop or a repeated edge.
    """
    nodes = list(nodes)
    out: Parents = {v: [] for v in nodes}
    for e in edge_list:
        if len(e) != 2:
            raise ValueError(f"an edge is a (parent, child) pair, got {e!r}")
        p, c = e
        if p not in out or c not in out:
            raise ValueError(f"edge {p!r} -> {c!r} names an unknown node; nodes are {nodes}")
        if p == c:
            raise ValueError(f"self-loop on {p!r}")
        if p in out[c]:
            raise ValueError(f"repeated edge {p!r} -> {c!r}")
        out[c].append(p)
    return out


def n_edges(parents: Mapping[str, Sequence[str]]) -> int:
    """Number of edges."""
    return sum(len(ps) for ps in parents.values())


def _edge_set(g) -> set[Edge]:
    if isinstance(g, Mapping):
        return set(edges(g))
    return {(str(a), str(b)) for a, b in g}


def shd(a, b) -> int:
    """Structural Hamming distance between two graphs (parents dicts or edge lists).

    The number of unordered node pairs whose connection differs: an edge present
    in one graph only counts 1, an edge reversed counts 1.
    """
    ea, eb = _edge_set(a), _edge_set(b)
    pairs = {frozenset(e) for e in ea | eb}
    dist = 0
    for pair in pairs:
        x, y = sorted(pair)
        if ((x, y) in ea, (y, x) in ea) != ((x, y) in eb, (y, x) in eb):
            dist += 1
    return dist


def edge_precision_recall(pred, true_edges) -> tuple[float, float]:
    """Directed-edge precision and recall of ``pred`` against ``true_edges``.

    Either argument may be a parents dict or an edge list.  Precision is NaN
    when ``pred`` has no edges, recall is NaN when the true graph has none
    (the ratios are undefined there, and reporting 0 or 1 would mislead).
    """
    ep, et = _edge_set(pred), _edge_set(true_edges)
    tp = len(ep & et)
    precision = tp / len(ep) if ep else float("nan")
    recall = tp / len(et) if et else float("nan")
    return precision, recall


def read_graphs(path) -> tuple[dict, dict]:
    """A graphs file written by notebook 03 (``structure/graphs.json``): ``(body, provenance)``.

    Accepts the file with or without its ``{"provenance", "data"}`` wrapper.  Raises FileNotFoundError
    naming the stage to run when it is missing.
    """
    import json
    from pathlib import Path
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run notebook 03 (03_dag_sampling_search) first, e.g. "
                                f"`python run_all.py --only 03`, or point at another graphs file")
    raw = json.loads(path.read_text())
    if isinstance(raw, dict) and set(raw) == {"provenance", "data"}:
        return raw["data"], raw["provenance"] or {}
    return raw, {}


__all__ = ["read_graphs", "Parents", "Edge", "bn_variables", "validate", "to_networkx", "find_cycle", "is_acyclic", "topological_order",
           "edges", "from_edges", "n_edges", "shd", "edge_precision_recall"]
