"""Episode executors: the same records whatever the engine, dead workers retried or reported, bad input refused."""
from __future__ import annotations

import os

import pytest

from cassandra_wm.envs import make_env
from cassandra_wm.planning import AgentSpec, DataSupport, heldout_seeds, play_agents
from cassandra_wm.planning.episodes import TIMING_FIELDS
from cassandra_wm.planning.executor import DaskExecutor, LocalExecutor, make_executor



def dying_agent(env, network, support, seed, marker="", always=False):
    """A custom roster agent whose worker process dies on its first move (every time with ``always``;
    else only the first time for each seed, tracked by a marker file)."""
    from cassandra_wm.planning.roster import WaitAgent

    class Dying(WaitAgent):
        def act(self, state, rng):
            flag = f"{marker}.{seed}"
            if always or not os.path.exists(flag):
                open(flag, "w").close()
                os._exit(3)
            return super().act(state, rng)

    return Dying()


@pytest.fixture(scope="module")
def small_network():
    """A tiny fitted coffee-shop network and the support of its training data."""
    import torch
    torch.set_num_threads(1)
    from cassandra_wm import data
    from cassandra_wm.structure.bn import BayesNet
    env = make_env("coffee_shop")
    recs = data.collect(env, "heuristic", 6, 12, seed=0, progress=False, invalid_rate=0.1)
    parents = {"money": ["customers"], "coffee_beans": ["customers"], "milk": ["customers"],
               "customers": ["satisfaction"], "satisfaction": [], "cleanliness": []}
    bn = BayesNet(env.spec, parents, seed=0, max_epochs=3, hidden=8)
    cut = int(0.8 * len(recs))
    bn.fit(recs[:cut], recs[cut:])
    return bn, DataSupport.from_transitions(env.spec, recs[:cut])


def _roster():
    small = {"iterations": 6, "rollouts": 2, "n_proposals": 20, "tree_depth": 2, "lookahead": 3,
             "rollout_policy": "heuristic", "batch": 3}
    return [AgentSpec("wait only", "wait"),
            AgentSpec("heuristic", "agent", agent="heuristic"),
            AgentSpec("MCTS+oracle", "mcts", "oracle", config=small),
            AgentSpec("MCTS+tiny", "mcts", "tiny", 0, config={**small, "support_penalty": 1.0}, guard="on"),
            AgentSpec("MPC+tiny", "mpc", "tiny", 0, config={"n_first": 4, "rollouts": 2, "lookahead": 3}, guard="on")]


def _strip(records):
    out = []
    for r in records:
        r = {k: v for k, v in r.items() if k not in TIMING_FIELDS}
        r["decisions"] = [{k: v for k, v in d.items() if k != "seconds"} for d in r.get("decisions", [])]
        out.append(r)
    return sorted(out, key=lambda r: (r["agent"], r["seed"]))


def test_executors_give_identical_records(small_network, tmp_path):
    bn, sup = small_network
    nets = {("tiny", 0): bn}
    seeds = heldout_seeds(2, seed=5)
    kw = dict(networks=nets, support=sup, progress=False, keep_states=True)
    serial = play_agents("coffee_shop", _roster(), seeds, 3, executor="serial", **kw)
    local = play_agents("coffee_shop", _roster(), seeds, 3, executor=LocalExecutor(workers=2), **kw)
    dask = DaskExecutor("local", workers=2)
    try:
        distributed = play_agents("coffee_shop", _roster(), seeds, 3, executor=dask, **kw)
    finally:
        dask.close()
    assert len(serial) == 2 * len(_roster())
    assert _strip(serial) == _strip(local) == _strip(distributed)
    tiny = [r for r in serial if r["agent"] == "MCTS+tiny"]
    assert tiny[0]["model_counters"]["network_rows"] > 0 and "proposals_checked" in tiny[0]["model_counters"]


def test_local_executor_retries_or_reports_a_dead_worker(tmp_path):
    marker = str(tmp_path / "died")
    roster = [AgentSpec("wait only", "wait"),
              AgentSpec("dies once", "custom", builder="test_executor:dying_agent", config={"marker": marker}),
              AgentSpec("always dies", "custom", builder="test_executor:dying_agent",
                        config={"marker": marker, "always": True})]
    seeds = heldout_seeds(1, seed=9)
    path = tmp_path / "runs.jsonl"
    with pytest.warns(RuntimeWarning, match="1 episode.s. failed"):
        recs = play_agents("coffee_shop", roster, seeds, 3, executor=LocalExecutor(workers=2, retries=0),
                           results_path=path, progress=False)
    by = {}
    for r in recs:
        by.setdefault(r["agent"], []).append(r)
    assert len(by["wait only"]) == 1 and len(by["dies once"]) == 1  # replayed alone in a fresh process
    assert "always dies" not in by  # reported, not recorded
    failures = (tmp_path / "runs.failures.jsonl").read_text().splitlines()
    assert len(failures) == 1 and "died" in failures[0]
    assert len(path.read_text().splitlines()) == 2


def test_dask_executor_reports_a_dead_worker(tmp_path):
    marker = str(tmp_path / "died")
    roster = [AgentSpec("wait only", "wait"),
              AgentSpec("always dies", "custom", builder="test_executor:dying_agent",
                        config={"marker": marker, "always": True})]
    dask = DaskExecutor("local", workers=2, retries=0)
    try:
        with pytest.warns(RuntimeWarning, match="1 episode.s. failed"):
            recs = play_agents("coffee_shop", roster, heldout_seeds(1, seed=3), 3, executor=dask, progress=False)
    finally:
        dask.close()
    assert [r["agent"] for r in recs] == ["wait only"]


def test_bad_executor_settings_are_refused():
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("ray")
    with pytest.raises(ValueError, match="only applies to executor='dask'"):
        make_executor("local", address="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="not a Dask scheduler address"):
        make_executor("dask", address="my-cluster")
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"):
        DaskExecutor("tcp://127.0.0.1:9", timeout=1.0)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        LocalExecutor(workers=0)
