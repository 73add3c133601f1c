"""Exact optimum of J by dynamic programming over orders, held-out choice of lambda2, the simulated expert."""
from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from cassandra_wm.structure.dag import is_acyclic, shd
from cassandra_wm.structure.exact import (LocalScores, best_dag, choose_lambda2, exact_optimum, folds,
                                          graph_terms, local_scores, pick_lambda2)
from cassandra_wm.structure.expert import ExpertPrior, SimulatedExpert
from cassandra_wm.structure.objective import objective_terms
from cassandra_wm.structure.prior import candidate_parent_sets, prior_auc, rank_auc
from cassandra_wm.structure.search import anneal

NODES = list("abcd")
TRUE = {"a": [], "b": [], "c": ["a", "b"], "d": ["c"]}
TRUE_EDGES = [("a", "c"), ("b", "c"), ("c", "d")]


def all_dags(nodes):
    sets = {v: candidate_parent_sets(nodes, v) for v in nodes}
    for combo in itertools.product(*(sets[v] for v in nodes)):
        g = {v: list(ps) for v, ps in zip(nodes, combo)}
        if is_acyclic(g):
            yield g


def test_all_dags_of_four_nodes_are_543():
    assert sum(1 for _ in all_dags(NODES)) == 543


@pytest.mark.parametrize("seed", range(5))
def test_best_dag_matches_brute_force(seed):
    rng = random.Random(seed)
    score = {(v, s): rng.gauss(0, 1) - 0.3 * len(s) for v in NODES for s in candidate_parent_sets(NODES, v)}
    g, total = best_dag(NODES, score)
    brute = max(sum(score[(v, tuple(p))] for v, p in d.items()) for d in all_dags(NODES))
    assert is_acyclic(g)
    assert total == pytest.approx(brute)
    assert sum(score[(v, tuple(g[v]))] for v in NODES) == pytest.approx(brute)


def test_best_dag_respects_allowed_sets():
    score = {(v, ()): 0.0 for v in NODES}
    score[("d", ("a",))] = 1.0
    g, total = best_dag(NODES, score)
    assert g == {"a": [], "b": [], "c": [], "d": ["a"]} and total == 1.0
    with pytest.raises(ValueError):
        best_dag(NODES, {("a", ()): 0.0})


def linear_rows(n_train, n_val, seed):
    """Per-row held-out Gaussian losses of least-squares fits for every (node, parent set)."""
    rng = np.random.default_rng(seed)

    def draw(n):
        a, b = rng.normal(size=n), rng.normal(size=n)
        c = a - b + 0.5 * rng.normal(size=n)
        d = 0.8 * c + 0.5 * rng.normal(size=n)
        return {"a": a, "b": b, "c": c, "d": d}

    tr, va = draw(n_train), draw(n_val)
    rows = {}
    for v in NODES:
        for s in candidate_parent_sets(NODES, v):
            X = np.column_stack([np.ones(n_train)] + [tr[p] for p in s])
            beta, *_ = np.linalg.lstsq(X, tr[v], rcond=None)
            sig2 = np.mean((tr[v] - X @ beta) ** 2)
            Xv = np.column_stack([np.ones(n_val)] + [va[p] for p in s])
            r = va[v] - Xv @ beta
            rows[(v, s)] = 0.5 * np.log(2 * np.pi * sig2) + r ** 2 / (2 * sig2)
    return rows


def local_from_rows(rows, n_val, prior=None):
    sets = {v: candidate_parent_sets(NODES, v) for v in NODES}
    loc = LocalScores(NODES, sets, rows, groups=list(range(n_val)))
    return loc.with_prior(prior) if prior is not None else loc


def test_exact_optimum_finds_the_generating_graph_and_annealing_agrees():
    loc = local_from_rows(linear_rows(2000, 1000, 0), 1000)
    g, terms = exact_optimum(loc, lam1=1.0, lam2=0.0)
    assert shd(g, TRUE) == 0
    assert terms == graph_terms(loc, g, 1.0, 0.0)
    n = len(NODES)
    assert terms["J"] == pytest.approx(sum(objective_terms(loc.data(v, g[v]), len(g[v]), n, 0.0, 1.0, 0.0)["J"]
                                           for v in NODES))

    class TableScorer:
        def data_term(self, parents):
            return sum(loc.data(v, parents[v]) for v in NODES)

    res = anneal({v: [] for v in NODES}, TableScorer(), None, steps=300, lam1=1.0, lam2=0.0, seed=1, t0=0.5)
    assert res.best_terms["J"] <= terms["J"] + 1e-9  # annealing can never beat the exact optimum


def test_folds_keep_groups_together_or_make_blocks():
    ms = folds([0] * 4 + [1] * 4 + [2] * 4, 12, n_folds=3)
    assert len(ms) == 3 and all(m.sum() == 4 for m in ms)
    assert sum(m.astype(int) for m in ms).tolist() == [1] * 12
    blocks = folds([7] * 10, 10, n_folds=5)  # one trajectory: consecutive blocks
    assert [np.flatnonzero(m).tolist() for m in blocks][:2] == [[0, 1], [2, 3]]
    with pytest.raises(ValueError):
        folds([], 1)


def pair_rows(n_train, n_val, seed):
    """x -> y (strong), z independent: the data cannot tell x -> y from y -> x."""
    rng = np.random.default_rng(seed)

    def draw(n):
        x = rng.normal(size=n)
        return {"x": x, "y": x + 0.3 * rng.normal(size=n), "z": rng.normal(size=n)}

    tr, va = draw(n_train), draw(n_val)
    rows = {}
    for v in "xyz":
        for s in candidate_parent_sets(list("xyz"), v):
            X = np.column_stack([np.ones(n_train)] + [tr[p] for p in s])
            beta, *_ = np.linalg.lstsq(X, tr[v], rcond=None)
            sig2 = np.mean((tr[v] - X @ beta) ** 2)
            Xv = np.column_stack([np.ones(n_val)] + [va[p] for p in s])
            rows[(v, s)] = 0.5 * np.log(2 * np.pi * sig2) + (va[v] - Xv @ beta) ** 2 / (2 * sig2)
    return LocalScores(list("xyz"), {v: candidate_parent_sets(list("xyz"), v) for v in "xyz"}, rows,
                       groups=list(range(n_val)))


class TablePrior:
    def __init__(self, fn):
        self.fn, self.label = fn, "test prior"

    def node_log_prior(self, v, ps):
        return self.fn(v, ps)


def test_pick_lambda2_needs_evidence_then_takes_the_largest_within_one_se():
    rows = lambda scores: [{"lam2": l, "fold_scores": f} for l, f in scores]
    # the prior helps on every fold by about 1.0 (+-0.1): clear evidence; 10 and 30 tie with the best
    t = rows([(0.0, [-5, -5, -5, -5, -5]), (1.0, [-4.5, -4.6, -4.4, -4.5, -4.5]),
              (10.0, [-4.0, -4.1, -3.9, -4.0, -4.0]), (30.0, [-4.0, -4.1, -3.95, -4.0, -4.0]),
              (100.0, [-6, -6, -6, -6, -6])])
    lam2, why = pick_lambda2(t)
    assert lam2 == 30.0 and "standard errors" in why
    assert [r["within_1se"] for r in t] == [False, False, True, True, False]
    # a gain that is noise (mean 0.1, fold differences spread +-1): no weight at all
    t = rows([(0.0, [-5, -5, -5, -5, -5]), (10.0, [-4, -6, -4.5, -5.5, -4.5])])
    lam2, why = pick_lambda2(t)
    assert lam2 == 0.0 and "does not beat" in why


def test_choose_lambda2_keeps_noise_and_contradictions_out():
    loc = pair_rows(500, 300, 0)
    truth = [("x", "y")]
    # a prior that denies the strong x - y dependence costs held-out fit: no weight
    deny = TablePrior(lambda v, ps: -5.0 * len(ps))
    c = choose_lambda2(loc.with_prior(deny), lam1=1.0, grid=[0, 1, 10, 100])
    assert c["lam2"] == 0 and not c["table"][-1]["within_1se"] and c["folds"] == 5
    assert [r["lam2"] for r in c["table"]] == [0, 1, 10, 100]
    g, _ = exact_optimum(loc.with_prior(deny), 1.0, c["lam2"])
    assert shd(g, truth) in (0, 1) and sum(map(len, g.values())) == 1  # the data keeps its edge
    # a coin-flip expert is flat: nothing to choose
    flip = ExpertPrior(list("xyz"), truth, error=0.5)
    assert all(abs(flip.node_log_prior(v, s)) < 1e-9 for v in "xyz" for s in candidate_parent_sets(list("xyz"), v))
    c3 = choose_lambda2(loc.with_prior(flip), lam1=1.0, grid=[0, 1, 10])
    assert c3["lam2"] == 0 and not c3["prior_changes_graph"]
    # the orientation is not in the data: a correct expert changes it at no held-out cost, but gets no
    # weight either, since held-out fit cannot show that it helps
    good = ExpertPrior(list("xyz"), truth, error=0.0)
    c4 = choose_lambda2(loc.with_prior(good), lam1=1.0, grid=[0, 1, 10])
    assert c4["lam2"] == 0 and abs(c4["table"][-1]["gap"]) < 0.05


def test_expert_samples_and_prior_follow_the_error_rate():
    from cassandra_wm.envs.base import EnvSpec, VariableSpec
    spec = EnvSpec("toy", "", tuple(VariableSpec(v, f"/{v}", v, "stochastic") for v in NODES), ())
    exact = SimulatedExpert(TRUE_EDGES, error=0.0, seed=0)
    s = exact.sample_dag(spec, sample_index=0)
    assert shd(s.parents, TRUE) == 0 and "evaluation control" in s.model
    noisy = SimulatedExpert(TRUE_EDGES, error=0.3, seed=0)
    dists = [shd(noisy.sample_dag(spec, sample_index=i).parents, TRUE) for i in range(30)]
    assert np.mean(dists) > 0.5 and all(is_acyclic(noisy.sample_dag(spec, i).parents) for i in range(5))
    assert noisy.sample_dag(spec, 3).parents == noisy.sample_dag(spec, 3).parents  # seeded by the index
    aucs = [prior_auc(ExpertPrior(NODES, TRUE_EDGES, e, seed=k), TRUE_EDGES) for e in (0.1, 0.4) for k in range(8)]
    assert np.mean(aucs[:8]) > np.mean(aucs[8:])
    with pytest.raises(ValueError):
        SimulatedExpert(TRUE_EDGES, error=0.7)
    p = exact.structure_prior(spec)
    assert p.summary()["unusable_answers"] == 0 and "evaluation control" in p.label


def test_rank_auc():
    assert rank_auc([3, 2, 1], [True, False, False]) == 1.0
    assert rank_auc([1, 1], [True, False]) == 0.5
    assert math.isnan(rank_auc([1, 2], [True, True]))


def test_local_scores_with_the_real_scorer(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from cassandra_wm import data
    from cassandra_wm.envs import make_env
    from cassandra_wm.structure.score import DataScorer

    env = make_env("coffee_shop")
    recs = data.collect(env, "heuristic", 5, 8, seed=0, progress=False)
    train = [r for r in recs if r["traj_id"] < 4]
    val = [r for r in recs if r["traj_id"] == 4]
    nodes = ["customers", "money", "milk"]
    scorer = DataScorer(env.spec, train, val, nodes=nodes, fit_kwargs={"max_epochs": 2}, cache_dir=tmp_path)
    loc = local_scores(scorer, None, progress=False)
    assert len(loc.rows) == 3 * 4
    g, terms = exact_optimum(loc, lam1=10.0, lam2=0.0)
    assert terms["data"] == pytest.approx(scorer.data_term(g))
    # the rows are kept on disk: a new scorer reads them back without fitting
    again = DataScorer(env.spec, train, val, nodes=nodes, fit_kwargs={"max_epochs": 2}, cache_dir=tmp_path)
    assert np.allclose(again.node_rows("money", ["customers"]), scorer.node_rows("money", ["customers"]),
                       equal_nan=True)
    assert again.misses == 0


def test_run_source_compares_settings_for_an_expert_and_for_no_knowledge():
    from cassandra_wm.envs.base import EnvSpec, VariableSpec
    from cassandra_wm.structure.sweep import SETTINGS, run_source
    spec = EnvSpec("toy", "", tuple(VariableSpec(v, f"/{v}", v, "stochastic") for v in NODES), ())
    loc = local_from_rows(linear_rows(60, 200, 3), 200)
    good = run_source(SimulatedExpert(TRUE_EDGES, 0.0), spec, loc, TRUE_EDGES, n_dags=2, search_seeds=[0, 1],
                      steps=60, lam1=1.0, lam2=10.0)
    s = good["summary"]
    assert s["prior_auc"] == 1.0 and s["evaluation_control"] and s["init_shd"] == 0
    assert s["shd calibrated prior, paper's lambda2"] == 0 and s["exact shd paper's prior"] == 0
    assert {r["setting"] for r in good["runs"]} == set(SETTINGS)
    assert len([r for r in good["runs"] if r["method"] == "annealing"]) == 4 * 2 * 2
    none = run_source(None, spec, loc, TRUE_EDGES, n_dags=2, search_seeds=[0], steps=20, lam1=1.0)
    assert {r["setting"] for r in none["runs"]} == {"no prior"} and math.isnan(none["summary"]["prior_auc"])
