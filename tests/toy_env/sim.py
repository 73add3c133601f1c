"""The lemonade stand: one price a day, random demand, sales limited by demand, money."""
from __future__ import annotations

from typing import Any

import numpy as np

from cassandra_wm.envs.base import (ActionParseError, ActionSpec, ArgSpec, EnvSpec, Environment, VariableSpec,
                                    check_args, coerce_action)

MANUAL = """You run a lemonade stand for a number of days.  Each morning you may set the price of a cup
(between 0.5 and 5.0) or wait.  Fewer people want lemonade when it is expensive and more when the
weather is hot.  You sell to everyone who wants a cup; each evening you pay 5 for ingredients.
If your money drops below zero you are bankrupt."""


def build_spec(horizon: int) -> EnvSpec:
    vs = (VariableSpec("day", "/day", "days played so far", "deterministic", low=0, high=horizon, integer=True),
          VariableSpec("price", "/price", "price of a cup", "deterministic", low=0.5, high=5.0),
          VariableSpec("heat", "/heat", "how hot the day was", "stochastic", type="categorical",
                       categories=("mild", "hot")),
          VariableSpec("demand", "/demand", "cups wanted today", "stochastic", low=0, high=200, integer=True),
          VariableSpec("money", "/money", "cash at the end of the day", "stochastic", low=-1000, high=100000))
    acts = (ActionSpec("set_price", "set the price of a cup", (ArgSpec("price", "float", "new price", 0.5, 5.0),)),
            ActionSpec("wait", "change nothing"))
    return EnvSpec("lemonade", MANUAL, vs, acts, horizon=horizon)


class LemonadeEnv(Environment):
    TRUE_EDGES = (("heat", "demand"), ("demand", "money"))

    def __init__(self, horizon: int = 20):
        self.spec = build_spec(int(horizon))
        self.state: dict | None = None
        self.rng = np.random.default_rng(0)

    def reset(self, seed: int | None = None) -> dict:
        self.rng = np.random.default_rng(seed)
        self.state = {"day": 0, "horizon": self.spec.horizon, "price": 2.0, "heat": "mild", "demand": 0,
                      "money": 50.0, "bankrupt": False}
        return dict(self.state)

    def step(self, action: Any) -> tuple[dict, bool, dict]:
        if self.state is None:
            self.reset()
        self.state, ok, info = self.transition(self.state, action, self.rng)
        return dict(self.state), ok, info

    def check_action(self, state: dict, action: Any) -> tuple[dict | None, str | None]:
        try:
            act = coerce_action(action)
        except ActionParseError as e:
            return None, str(e)
        try:
            aspec = self.spec.action(act["name"])
        except KeyError:
            return act, f"unknown action {act['name']!r}"
        return act, check_args(aspec, act["args"])

    def deterministic_step(self, state: dict, action: Any) -> tuple[dict, bool, str | None]:
        act, err = self.check_action(state, action)
        price = float(act["args"]["price"]) if err is None and act["name"] == "set_price" else float(state["price"])
        return {"day": int(state["day"]) + 1, "price": price}, err is None, err

    def transition(self, state: dict, action: Any, rng: np.random.Generator) -> tuple[dict, bool, dict]:
        det, ok, err = self.deterministic_step(state, action)
        heat = "hot" if rng.random() < 0.4 else "mild"
        mean = max(0.0, (30.0 if heat == "hot" else 15.0) - 4.0 * det["price"])
        demand = int(rng.poisson(mean))
        money = float(state["money"]) + demand * det["price"] - 5.0
        nxt = {**state, **det, "heat": heat, "demand": demand, "money": round(money, 2)}
        nxt["bankrupt"] = money < 0
        return nxt, ok, {"error": err, "done": self.is_done(nxt)}

    def true_graph(self) -> list[tuple[str, str]]:
        return list(self.TRUE_EDGES)
