"""Bayesian network: encoder, conditionals, cached data score, ancestral sampling, persistence."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from cassandra_wm.envs.base import ActionSpec, ArgSpec, EnvSpec, VariableSpec
from cassandra_wm.structure.bn import BayesNet, flag_off, one_step_errors, persistence_errors
from cassandra_wm.structure.conditionals import QuantileNet, interpolate_quantiles, quantile_levels
from cassandra_wm.structure.encoding import Z_CLIP, Encoder, spread
from cassandra_wm.structure.score import DataScorer

torch.set_num_threads(1)
FAST = {"max_epochs": 40, "patience": 5}


def toy_spec(a_high=60.0, a_integer=False):
    """price (deterministic), a -> b (b = 2a + noise), c independent, mood <- a (categorical)."""
    vs = (VariableSpec("price", "/price", "price set by the action", "deterministic", low=0, high=10),
          VariableSpec("a", "/shop/a", "a", "stochastic", low=-60, high=a_high, integer=a_integer),
          VariableSpec("b", "/shop/b", "b", "stochastic", low=-200, high=200),
          VariableSpec("c", "/c", "c", "stochastic", low=-50, high=50),
          VariableSpec("mood", "/mood", "mood", "stochastic", type="categorical", categories=("low", "high")))
    acts = (ActionSpec("set_price", "set the price", (ArgSpec("p", "float", low=0, high=10),)),
            ActionSpec("wait", "do nothing"))
    return EnvSpec("toy", "a toy", vs, acts)


def toy_data(n, seed, b_noise=0.5, a_integer=False):
    rng = np.random.default_rng(seed)
    recs, s = [], {"price": 5.0, "shop": {"a": 0.0, "b": 0.0}, "c": 0.0, "mood": "low"}
    for t in range(n):
        if rng.random() < 0.5:
            act = {"name": "set_price", "args": {"p": float(rng.uniform(0, 10))}}
            price = act["args"]["p"]
        else:
            act, price = {"name": "wait", "args": {}}, s["price"]
        a = 0.6 * s["shop"]["a"] - 0.5 * price + rng.normal(0, 1.5)
        if a_integer:
            a = float(np.round(a))
        b = 2.0 * a + (rng.normal(0, b_noise) if b_noise else 0.0)
        ns = {"price": price, "shop": {"a": a, "b": b}, "c": float(rng.normal(0, 1)),
              "mood": "high" if a + rng.normal(0, 0.5) > -3 else "low"}
        recs.append({"traj_id": t // 50, "t": t % 50, "state": s, "action": act, "valid": True, "error": None,
                     "next_state": ns})
        s = ns
    return recs


@pytest.fixture(scope="module")
def data():
    return toy_data(1500, 0), toy_data(500, 1)


TRUE = {"a": [], "b": ["a"], "c": [], "mood": ["a"]}


def test_encoder_layout_and_unknown_action(data):
    train, _ = data
    enc = Encoder(toy_spec()).fit(pd.DataFrame(train))
    assert enc.nodes == ["a", "b", "c", "mood"]
    x = enc.encode_exogenous([train[0]["state"]] * 2, [{"name": "nope", "args": {}}, "set_price(p=3.0)"],
                             [train[0]["next_state"]] * 2, [True, False])
    names = enc.feature_names
    assert x.shape == (2, enc.n_exo)
    assert x[0, names.index("action=set_price")] == 0 and x[0, names.index("action=wait")] == 0
    assert x[1, names.index("action=set_price")] == 1 and x[1, names.index("valid")] == 0
    y, mask = enc.targets(train)["b"]
    assert abs(float(y.mean())) < 0.1 and mask.all()
    with pytest.raises(ValueError):
        Encoder(toy_spec(), ["price"])  # deterministic variables are not nodes


def test_quantiles_are_ordered_even_for_random_weights():
    torch.manual_seed(0)
    net = QuantileNet(7, quantile_levels(19), hidden=16)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 3)
        q = net(torch.randn(500, 7) * 5)
    assert (q[:, 1:] - q[:, :-1] >= 0).all()
    u = torch.rand(500)
    z = interpolate_quantiles(q, net.levels, u)
    # a draw at u between two levels lies between those quantiles
    inner = (u > net.levels[0]) & (u < net.levels[-1])
    assert ((z[inner] >= q[inner, 0]) & (z[inner] <= q[inner, -1])).all()


def test_fitted_quantiles_ordered_and_calibrated(data):
    train, val = data
    bn = BayesNet(toy_spec(), TRUE, **FAST)
    bn.fit(train, val)
    prev, acts, nxt = [r["state"] for r in val], [r["action"] for r in val], [r["next_state"] for r in val]
    q = bn.predict_quantiles(prev, acts, nxt, observed=nxt)
    assert (np.diff(q["b"], axis=1) >= 0).all()
    # the true b should fall below the 0.5 quantile about half the time
    below = np.mean(np.array([r["next_state"]["shop"]["b"] for r in val]) < q["b"][:, 9])
    assert 0.35 < below < 0.65
    qs = bn.predict_quantiles(prev[:20], acts[:20], nxt[:20], n_samples=100, rng=0)
    assert (np.diff(qs["a"], axis=1) >= 0).all()
    assert np.allclose(bn.predict_quantiles(prev[:3], acts[:3], nxt[:3], observed=nxt[:3])["mood"].sum(1), 1, atol=1e-5)


def test_sampling_uses_sampled_parent_values():
    """b = a exactly: with identical inputs, b must track the sampled a; with no edge it cannot."""
    train, val = toy_data(1500, 2, b_noise=0.0), toy_data(400, 3, b_noise=0.0)
    spec = toy_spec()
    rows = [val[5]] * 3000
    args = ([r["state"] for r in rows], [r["action"] for r in rows], [r["next_state"] for r in rows])
    with_edge = BayesNet(spec, TRUE, **FAST)
    with_edge.fit(train, val)
    s = with_edge.sample(*args, rng=0)
    assert np.std(s["a"]) > 0.5  # a really varies across the repeated rows
    assert np.corrcoef(s["a"], s["b"])[0, 1] > 0.95
    assert np.median(np.abs(s["b"] - 2 * s["a"])) < 0.3 * np.std(s["b"])
    no_edge = BayesNet(spec, {"a": [], "b": [], "c": [], "mood": []}, **FAST)
    no_edge.fit(train, val)
    s = no_edge.sample(*args, rng=0)
    assert abs(np.corrcoef(s["a"], s["b"])[0, 1]) < 0.15


def test_sampling_order_follows_topology_not_key_order():
    spec = toy_spec()
    bn = BayesNet(spec, {"mood": ["b"], "c": [], "b": ["a"], "a": ["c"]})
    assert bn.order.index("c") < bn.order.index("a") < bn.order.index("b") < bn.order.index("mood")
    with pytest.raises(ValueError, match="cycle"):
        BayesNet(spec, {"a": ["b"], "b": ["a"]})
    with pytest.raises(ValueError, match="not nodes"):
        BayesNet(spec, {"a": ["price"]})  # deterministic variables are exogenous, never parents


def test_cache_never_returns_a_stale_score(data, tmp_path):
    train, val = data
    spec = toy_spec()
    sc = DataScorer(spec, train, val, fit_kwargs=FAST, cache_dir=tmp_path)
    t1 = sc.node_term("b", ["a"])
    assert (sc.misses, sc.hits) == (1, 0)
    assert sc.node_term("b", ["a"]) == t1 and sc.hits == 1
    t0 = sc.node_term("b", [])                      # other parents: refit
    assert sc.misses == 2 and t0 != t1
    sc.node_term("b", ["a", "c"])
    sc.node_term("b", ["c", "a"])                  # same set, other order: cached
    assert sc.misses == 3
    # a fresh scorer on the same data, seed and settings reads the disk cache
    same = DataScorer(spec, train, val, fit_kwargs=FAST, cache_dir=tmp_path)
    assert same.fingerprint == sc.fingerprint
    assert same.node_term("b", ["a"]) == t1 and same.disk_hits == 1 and same.misses == 0
    # other seed, other data, other settings: never a cached value
    for other in (DataScorer(spec, train, val, seed=1, fit_kwargs=FAST, cache_dir=tmp_path),
                  DataScorer(spec, train, toy_data(500, 7), fit_kwargs=FAST, cache_dir=tmp_path),
                  DataScorer(spec, train, val, fit_kwargs={**FAST, "hidden": 8}, cache_dir=tmp_path)):
        other.node_term("b", ["a"])
        assert other.misses == 1 and other.hits == 0
    # a disk entry whose stored key does not match is ignored
    path = sc._disk_path(sc.cache_key("b", ["a"]), "b")
    entry = json.loads(path.read_text())
    entry["key"] = entry["key"].replace('"seed": 0', '"seed": 99')
    entry["term"] = 123.0
    path.write_text(json.dumps(entry))
    fresh = DataScorer(spec, train, val, fit_kwargs=FAST, cache_dir=tmp_path)
    assert fresh.node_term("b", ["a"]) == pytest.approx(t1) and fresh.misses == 1
    # without the cache every call refits, to the same value (seeded)
    nc = DataScorer(spec, train, val, fit_kwargs=FAST, use_cache=False)
    assert nc.node_term("b", ["a"]) == pytest.approx(t1) and nc.node_term("b", ["a"]) == pytest.approx(t1)
    assert nc.misses == 2 and nc.hits == 0


def test_data_term_prefers_true_parents_linear_gaussian(data):
    train, val = data
    sc = DataScorer(toy_spec(), train, val, fit_kwargs=FAST)
    right = sc.node_term("b", ["a"])
    assert right > sc.node_term("b", []) + 0.02
    assert right > sc.node_term("b", ["c"]) + 0.02
    assert sc.node_term("mood", ["a"]) > sc.node_term("mood", ["c"])
    assert sc.data_term(TRUE) > sc.data_term({"a": [], "b": ["c"], "c": [], "mood": []})


def _count_spec():
    vs = (VariableSpec("price", "/price", "", "deterministic", low=1, high=10),
          VariableSpec("customers", "/customers", "", "stochastic", low=0, high=200, integer=True),
          VariableSpec("sales", "/sales", "", "stochastic", low=0, high=200, integer=True),
          VariableSpec("noise", "/noise", "", "stochastic", low=0, high=200, integer=True))
    return EnvSpec("counts", "", vs, (ActionSpec("set_price", "", (ArgSpec("p", "float", low=1, high=10),)),))


def _count_data(n, seed):
    rng = np.random.default_rng(seed)
    recs, s = [], {"price": 5.0, "customers": 10, "sales": 5, "noise": 10}
    for t in range(n):
        p = float(rng.uniform(1, 10))
        cust = int(rng.poisson(30 - 2.5 * p))
        ns = {"price": p, "customers": cust, "sales": int(rng.binomial(cust, 0.6)), "noise": int(rng.poisson(10))}
        recs.append({"state": s, "action": {"name": "set_price", "args": {"p": p}}, "valid": True, "next_state": ns})
        s = ns
    return recs


def test_data_term_prefers_true_parents_poisson_counts():
    spec = _count_spec()
    sc = DataScorer(spec, _count_data(1500, 0), _count_data(500, 1), fit_kwargs=FAST)
    right = sc.node_term("sales", ["customers"])
    assert right > sc.node_term("sales", []) + 0.01
    assert right > sc.node_term("sales", ["noise"]) + 0.01
    truth = {"customers": [], "sales": ["customers"], "noise": []}
    wrong = {"customers": [], "sales": ["noise"], "noise": []}
    assert sc.data_term(truth) > sc.data_term(wrong)
    res = sc.objective(truth, log_prior=-0.5)
    assert res["J"] == pytest.approx(res["data"] + res["sparsity"] + res["prior"])
    assert res["sparsity"] == pytest.approx(-10.0 * 1 / 9) and res["prior"] == pytest.approx(-50.0)
    with pytest.raises(ValueError, match="cycle"):
        sc.objective({"customers": ["sales"], "sales": ["customers"], "noise": []}, 0.0)
    with pytest.raises(ValueError):
        sc.objective({"customers": ["ghost"]}, 0.0)
    # integer variables are sampled as whole numbers within bounds
    bn = BayesNet(spec, truth, **FAST)
    bn.fit_from_scorer(sc)
    rows = _count_data(200, 5)
    out = bn.sample([r["state"] for r in rows], [r["action"] for r in rows], [r["next_state"] for r in rows], rng=1)
    assert np.all(out["sales"] == np.round(out["sales"])) and out["sales"].min() >= 0


def test_bounds_clipping_is_counted():
    # a's data reach about -12 .. 2, but the spec caps a at -5: most draws must be clipped
    spec = toy_spec(a_high=-5.0)
    train, val = toy_data(1000, 0), toy_data(300, 1)
    bn = BayesNet(spec, TRUE, **FAST)
    bn.fit(train, val)
    rows = val[:200]
    out = bn.sample([r["state"] for r in rows], [r["action"] for r in rows], [r["next_state"] for r in rows], rng=0)
    assert out["a"].max() <= -5.0
    assert bn.last_clip_counts["a"] > 20 and bn.clip_counts["a"] == bn.last_clip_counts["a"]
    assert bn.last_clip_counts["c"] == 0


def test_save_load_roundtrip(data, tmp_path):
    train, val = data
    spec = toy_spec(a_integer=True)
    bn = BayesNet(spec, TRUE, seed=3, **FAST)
    losses = bn.fit(train, val)
    assert set(losses) == set(bn.nodes) and all(np.isfinite(list(losses.values())))
    bn.save(tmp_path / "net", llm="none", graph="true")
    back = BayesNet.load(tmp_path / "net", spec)
    assert back.parents == bn.parents and back.seed == 3 and back.provenance["graph"] == "true"
    rows = val[:50]
    args = ([r["state"] for r in rows], [r["action"] for r in rows], [r["next_state"] for r in rows])
    s1, s2 = bn.sample(*args, rng=11), back.sample(*args, rng=11)
    for v in bn.nodes:
        assert np.array_equal(s1[v], s2[v])
    with pytest.raises(FileNotFoundError):
        BayesNet.load(tmp_path / "missing", spec)


def test_one_step_errors_beat_no_model_and_flag_broken_fits(data):
    train, val = data
    spec = toy_spec()
    bn = BayesNet(spec, TRUE, **FAST)
    bn.fit(train, val)
    err = one_step_errors(bn, val[:200], n_samples=50, rng=0)
    base = persistence_errors(spec, bn.nodes, val[:200])
    assert set(err) == set(bn.nodes) and 0 <= err["mood"] <= 1
    assert err["b"] < base["b"] and err["a"] < base["a"]
    assert flag_off(err, base, spec) == {}
    assert flag_off({"a": 1e6, "mood": 0.2}, base, spec, factor=10) == {"a": pytest.approx(1e6 / base["a"])}


def test_unseen_argument_values_stay_bounded():
    """An argument seen with one value in training used to be scaled by 1e-6 (issue 12)."""
    spec = toy_spec()
    train = toy_data(300, 0)
    for r in train:  # training only ever sets the price to 5
        if r["action"]["name"] == "set_price":
            r["action"] = {"name": "set_price", "args": {"p": 5.0}}
    enc = Encoder(spec).fit(train)
    m, sd = enc.arg_stats["set_price.p"]
    assert m == 5.0 and sd == pytest.approx(10 / np.sqrt(12))  # the declared range's spread
    st = train[0]["state"]
    x = enc.encode_exogenous([st, st], [{"name": "set_price", "args": {"p": 9.0}},
                                        {"name": "set_price", "args": {"p": 1e9}}], [st, st])
    col = enc.feature_names.index("arg.set_price.p")
    assert x[0, col] == pytest.approx((9.0 - 5.0) / sd, rel=1e-5)
    assert x[1, col] == Z_CLIP and enc.clipped_inputs == 1
    assert np.abs(x).max() <= max(Z_CLIP, np.abs(x[:, enc.prev_column("a")]).max())
    assert spread(np.array([3.0, 3.0])) == (3.0, 3.0) and spread(np.array([]), 0, 12) == (0.0, pytest.approx(12 / np.sqrt(12)))


def test_fast_path_matches_dict_path(data):
    train, val = data
    bn = BayesNet(toy_spec(), TRUE, **FAST)
    bn.fit(train, val)
    rows = val[:64]
    args = ([r["state"] for r in rows], [r["action"] for r in rows], [r["next_state"] for r in rows])
    x = bn.encoder.encode_exogenous(*args)
    fast = bn.sample_array(x, torch.Generator().manual_seed(4))
    slow = bn.sample(*args, rng=4)
    assert np.allclose(fast["b"], slow["b"])
    assert list(np.array(["low", "high"], dtype=object)[fast["mood"]]) == list(slow["mood"])
    with pytest.raises(ValueError):
        bn.sample_array(x[:, :3])


def test_level_targets_also_work(data):
    train, val = data
    bn = BayesNet(toy_spec(), TRUE, delta_targets=False, **FAST)
    bn.fit(train, val)
    assert not bn.encoder.delta
    rows = [val[7]] * 2000
    s = bn.sample([r["state"] for r in rows], [r["action"] for r in rows], [r["next_state"] for r in rows], rng=0)
    assert np.corrcoef(s["a"], s["b"])[0, 1] > 0.9
    with pytest.raises(ValueError, match="unknown fit settings"):
        BayesNet(toy_spec(), TRUE, hiddn=3)


def test_fits_carry_a_no_input_baseline_and_a_suspect_flag(data):
    from cassandra_wm.structure.conditionals import baseline_loss, fit_conditional, quantile_levels
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (x[:, 0] * 2 + 0.1 * rng.normal(size=400)).astype(np.float32)
    m = fit_conditional("y", "numeric", x[:300], y[:300], x[300:], y[300:], seed=0)
    assert m.info["val_loss"] < m.info["baseline_val_loss"] and not m.info["suspect"]
    levels = torch.as_tensor(quantile_levels(19), dtype=torch.float32)
    assert baseline_loss("numeric", y[:300], y[300:], levels) == pytest.approx(m.info["baseline_val_loss"])
    yc = rng.integers(0, 3, size=400)
    base = baseline_loss("categorical", yc[:300], yc[300:], n_classes=3)
    assert base == pytest.approx(np.log(3), abs=0.1)
