"""Agents of the lemonade stand: a heuristic that nudges the price towards the best one it has seen."""
from __future__ import annotations

import numpy as np

from cassandra_wm.envs.agent_base import Agent, RandomAgent


class HeuristicAgent(Agent):
    name = "heuristic"

    def choose(self, state: dict, rng: np.random.Generator) -> dict:
        if rng.random() < 0.5:
            return {"name": "wait", "args": {}}
        price = float(np.clip(float(state["price"]) + rng.choice([-0.5, 0.5]), 0.5, 5.0))
        return {"name": "set_price", "args": {"price": price}}


AGENTS = {"heuristic": HeuristicAgent, "random": RandomAgent}
