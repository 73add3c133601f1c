"""A third environment added by following envs/ADDING_AN_ENVIRONMENT.md runs through the pipeline.

The toy lemonade stand (tests/toy_env) is registered as a kit and goes through data collection, a
short structure search, fitting a Bayesian network and one planning decision on the learned model,
with no change anywhere else in the package.
"""
import numpy as np
import pytest
import torch

from cassandra_wm import data
from cassandra_wm.agents import make_agent
from cassandra_wm.envs import get_kit, make_env, register
from cassandra_wm.envs.registry import unregister
from cassandra_wm.planning import MCTSAgent, MCTSConfig, make_proposer
from cassandra_wm.structure.bn import BayesNet
from cassandra_wm.structure.ablations import independent_graph
from cassandra_wm.structure.score import DataScorer
from cassandra_wm.structure.search import anneal
from cassandra_wm.world_model import SimulatorDeterministic, WorldModel

from toy_env import KIT

torch.set_num_threads(1)
FAST = {"max_epochs": 30, "patience": 5}


@pytest.fixture(scope="module")
def kit():
    register(KIT, replace=True)
    yield get_kit("lemonade")
    unregister("lemonade")


def test_toy_environment_runs_through_the_pipeline(kit, tmp_path):
    env = make_env("lemonade", horizon=15)
    assert make_agent(env, "heuristic").name == "heuristic"
    recs = data.collect(env, "heuristic", n_trajectories=12, horizon=15, seed=0, progress=False, invalid_rate=0.1)
    assert len(recs) == 12 * 15
    assert any(not r["valid"] for r in recs)  # the generic invalid actions reach the environment
    meta = data.save_transitions(recs, tmp_path / "transitions.jsonl", meta={"env": "lemonade"})
    train = [r for r in recs if r["traj_id"] in meta["splits"]["train"]]
    val = [r for r in recs if r["traj_id"] not in meta["splits"]["train"]]

    scorer = DataScorer(env.spec, train, val, seed=0, fit_kwargs=FAST)
    assert scorer.nodes == ["heat", "demand", "money"]
    start = independent_graph(scorer.nodes)
    steps = int(kit.default("anneal_steps"))
    result = anneal(start, scorer, steps=steps, seed=0)
    assert result.best_terms["J"] >= result.init_terms["J"] - 1e-9

    net = BayesNet(env.spec, result.best_parents, seed=0, **FAST)
    net.fit(train, val, scorer=scorer)
    model = WorldModel(env.spec, SimulatorDeterministic(env), net, name="toy")
    proposer = make_proposer(env.spec, SimulatorDeterministic(env))
    agent = MCTSAgent(model, proposer, MCTSConfig(iterations=6, rollouts=2, n_proposals=10, tree_depth=2, lookahead=2), seed=0)
    state = env.reset(seed=5)
    action = agent.act(state)
    assert action["name"] in {"set_price", "wait"}
    nxt, valid = model.sample_next([state], [action], n=3, rng=np.random.default_rng(0))
    assert len(nxt) == 3 and all(s["day"] == 1 for s in nxt) and valid.all()


def test_unknown_environment_names_the_registered_ones():
    with pytest.raises(ValueError, match="coffee_shop"):
        make_env("no_such_env")
