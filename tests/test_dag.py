"""DAG utilities: validation, cycles, topological order, SHD, edge precision/recall."""
import math

import pytest

from cassandra_wm.envs.base import EnvSpec, VariableSpec
from cassandra_wm.structure.dag import (bn_variables, edge_precision_recall, edges, find_cycle, from_edges,
                                        is_acyclic, n_edges, shd, topological_order, validate)

CHAIN = {"a": [], "b": ["a"], "c": ["b"]}


def test_topological_order_puts_parents_first():
    g = {"c": ["a", "b"], "b": ["a"], "a": [], "d": []}
    order = topological_order(g)
    assert sorted(order) == ["a", "b", "c", "d"]
    for v, ps in g.items():
        assert all(order.index(p) < order.index(v) for p in ps)


def test_cycle_is_named_and_rejected():
    g = {"a": ["c"], "b": ["a"], "c": ["b"], "d": []}
    assert not is_acyclic(g)
    cyc = find_cycle(g)
    assert cyc[0] == cyc[-1] and set(cyc) == {"a", "b", "c"}
    with pytest.raises(ValueError, match="cycle"):
        topological_order(g)
    assert is_acyclic(CHAIN) and find_cycle(CHAIN) is None


def test_edges_roundtrip_and_count():
    es = edges(CHAIN)
    assert es == [("a", "b"), ("b", "c")]
    assert from_edges(["a", "b", "c"], es) == CHAIN
    assert n_edges(CHAIN) == 2


@pytest.mark.parametrize("bad", [[("a", "zz")], [("a", "a")], [("a", "b"), ("a", "b")], [("a",)]])
def test_from_edges_rejects_bad_edges(bad):
    with pytest.raises(ValueError):
        from_edges(["a", "b"], bad)


def test_validate_rejects_unknown_names_and_fills_missing_nodes():
    assert validate({"b": ["a"]}, ["a", "b"]) == {"a": [], "b": ["a"]}
    with pytest.raises(ValueError, match="not nodes"):
        validate({"a": ["x"]}, ["a", "b"])
    with pytest.raises(ValueError, match="unknown nodes"):
        validate({"x": []}, ["a", "b"])
    with pytest.raises(ValueError, match="self-loop"):
        validate({"a": ["a"]}, ["a"])
    with pytest.raises(ValueError, match="list"):
        validate({"a": "b"}, ["a", "b"])


def test_shd_counts_missing_extra_and_reversed_edges():
    assert shd(CHAIN, CHAIN) == 0
    assert shd(CHAIN, {"a": [], "b": ["a"], "c": []}) == 1         # one missing
    assert shd(CHAIN, {"a": ["b"], "b": [], "c": ["b"]}) == 1      # one reversed
    assert shd(CHAIN, {"a": [], "b": [], "c": ["a"]}) == 3         # two missing, one extra
    assert shd(CHAIN, [("a", "b"), ("b", "c")]) == 0               # edge lists work too


def test_edge_precision_recall():
    p, r = edge_precision_recall({"a": [], "b": ["a"], "c": ["a"]}, [("a", "b"), ("b", "c")])
    assert p == pytest.approx(0.5) and r == pytest.approx(0.5)
    p, r = edge_precision_recall({"a": [], "b": [], "c": []}, [("a", "b")])
    assert math.isnan(p) and r == 0.0
    p, r = edge_precision_recall(CHAIN, [])
    assert p == 0.0 and math.isnan(r)


def test_bn_variables_default_and_notes():
    vs = (VariableSpec("d", "/d", "", "deterministic"), VariableSpec("x", "/x", "", "stochastic"),
          VariableSpec("y", "/y", "", "stochastic"))
    assert bn_variables(EnvSpec("e", "", vs, ())) == ["x", "y"]
    assert bn_variables(EnvSpec("e", "", vs, (), bn_variables=("y",))) == ["y"]
    with pytest.raises(ValueError):
        bn_variables(EnvSpec("e", "", vs, (), bn_variables=("d",)))
