"""Planning extensions for the theme park: a value other than money, the rollout policy's action as the
default candidate, survival statistics with Wilson intervals, seeds spread over the held-out layouts."""
from __future__ import annotations

import numpy as np
import pytest

from cassandra_wm.planning import MCTS, MCTSConfig, layout_seeds
from cassandra_wm.planning import stats
from cassandra_wm.planning.roster import AgentSpec, build_agent, standard_roster
from cassandra_wm.planning.rollouts import PolicyProposer
from test_planning import START, DelayedRewardModel, ToyProposer


class Always:
    """A rollout policy that always plays one action."""

    def __init__(self, name):
        self.name = name

    def __call__(self, states, rng):
        return [{"name": self.name, "args": {}} for _ in states]


def test_the_policys_action_is_proposed_and_kept_unless_clearly_beaten():
    # decoys (-0.1 a day) are within noise of each other; the policy plays decoy3 and the search keeps it
    # unless a candidate is better by more than a standard error
    cfg = MCTSConfig(iterations=40, rollouts=4, n_proposals=3, tree_depth=1, lookahead=1, rollout_policy="wait",
                     propose_policy=True)

    class Decoys(ToyProposer):
        names = [f"decoy{i}" for i in range(6)]
    planner = MCTS(DelayedRewardModel(noise=1.0), Decoys(), cfg, rollout_policy=Always("decoy3"), seed=0)
    res = planner.plan(START, np.random.default_rng(0))
    texts = [c["action"] for c in res.candidates]
    assert any(t.startswith("decoy3") for t in texts)  # offered although the proposer may not draw it
    own = next(c for c in res.candidates if c["action"].startswith("decoy3"))
    chosen = next(c for c in res.candidates if c["action"].startswith(res.action["name"]))
    assert res.action["name"] == "decoy3" or chosen["mean"] - own["mean"] > 0
    # a clearly better action (quick: +3) replaces the policy's
    cfg2 = MCTSConfig(iterations=40, rollouts=4, n_proposals=30, tree_depth=1, lookahead=1, rollout_policy="wait",
                      propose_policy=True)
    res2 = MCTS(DelayedRewardModel(noise=0.5), ToyProposer(), cfg2, rollout_policy=Always("decoy3"),
                seed=0).plan(START, np.random.default_rng(1))
    assert res2.action["name"] == "quick"


def test_policy_proposer_skips_an_invalid_policy_action():
    class Checked(ToyProposer):
        def check(self, state, action):
            return action["name"] != "invest", "refused"
    p = PolicyProposer(Checked(), Always("invest"))
    acts = p.propose(START, np.random.default_rng(0), n=5)
    assert p.last_own is None and p.stats_policy["invalid"] == 1
    assert "invest" not in [a["name"] for a in acts[:1]]
    p2 = PolicyProposer(ToyProposer(), Always("decoy14"))
    acts2 = p2.propose(START, np.random.default_rng(0), n=2)
    assert acts2[0]["name"] == "wait" and acts2[1]["name"] == "decoy14" and p2.last_own == "decoy14()"


def test_planning_value_replaces_money_and_bad_names_fail():
    from cassandra_wm.envs import make_env
    from cassandra_wm.envs.theme_park.kit import worth
    cfg = MCTSConfig.for_env("theme_park", iterations=2, rollouts=1, n_proposals=2)
    assert cfg.value.endswith(":worth") and cfg.propose_policy
    env = make_env("theme_park", split="test")
    agent = build_agent(AgentSpec("MCTS+oracle", "mcts", "oracle", None, standard_roster(
        "theme_park", graphs=[], include_mpc=False, include_c4=False)[0].config), env)
    s = env.reset(layout_seeds(1)[0])
    ride = next(a for a in agent.planner.proposer.propose(s, np.random.default_rng(0), 40) if a["name"] == "place"
                and a["args"].get("type") == "ride")
    s2, ok, _ = env.step(ride)
    assert ok and agent.model.reward([s2])[0] == worth(s2) > s2["money"]  # what was built counts
    assert worth(s2) == pytest.approx(s2["value"], abs=1)
    with pytest.raises(ValueError, match="cannot import"):
        MCTSConfig(value="cassandra_wm.nowhere:f").validate()
    # the coffee shop's roster keeps its settings (and results keys): the new options are left out there
    assert "value" not in standard_roster("coffee_shop", graphs=["CASSANDRA"])[0].config


def _rec(agent, seed, money, bankrupt_day=None, days=20, invalid=0):
    m = [500.0] * ((bankrupt_day or days) + 1)
    m[-1] = money
    return {"agent": agent, "seed": seed, "run": seed, "fit_seed": None, "final_money": money, "money": m,
            "days": bankrupt_day or days, "days_budget": days, "bankrupt": bankrupt_day is not None,
            "invalid_actions": invalid, "seconds_per_decision": 0.1}


def test_survival_table_counts_solvent_runs_with_wilson_intervals():
    recs = [_rec("A", s, 900.0) for s in range(4)] + [_rec("B", 0, -5.0, bankrupt_day=7, invalid=2),
                                                      _rec("B", 1, -1.0, bankrupt_day=15),
                                                      _rec("B", 2, 700.0), _rec("B", 3, 600.0)]
    t = stats.survival_table(recs, days=(10, 20, 30), oracle="A", heuristic=None).set_index("agent")
    assert "solvent_d30" not in t.columns  # beyond the 20 days played
    assert t.loc["A", "solvent_d10"] == 1.0 and t.loc["A", "solvent_d10_low"] < 1.0  # Wilson: never [1, 1]
    assert t.loc["B", "solvent_d10"] == 0.75 and t.loc["B", "solvent_d20"] == 0.5
    assert t.loc["B", "bankruptcies"] == 2 and t.loc["B", "bankruptcy_day_mean"] == 11.0
    assert t.loc["B", "invalid_actions_per_run"] == 0.5
    assert t.loc["B", "vs_oracle"] == pytest.approx(np.mean([-5, -1, 700, 600]) - 900)
    txt = stats.survival_text(t.reset_index(), days=(10, 20))
    assert txt.loc[1, "day 20"].startswith("50% [")
    curves = stats.survival_curves(recs)
    b = curves[curves.agent == "B"].set_index("day")["solvent"]
    assert b[6] == 1.0 and b[7] == 0.75 and b[20] == 0.5


def test_layout_seeds_spread_episodes_evenly_over_the_layouts():
    from cassandra_wm.envs import make_env
    seeds = layout_seeds(6, seed=0)
    assert [s % 3 for s in seeds] == [0, 1, 2, 0, 1, 2] and min(seeds) >= 2 ** 32
    env = make_env("theme_park", split="test")
    names = [env.reset(s)["hidden"]["layout"] for s in seeds[:3]]
    assert len(set(names)) == 3
    with pytest.raises(ValueError):
        layout_seeds(0)
