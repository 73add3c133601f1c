"""Data-collection agents for the coffee shop.

:class:`HeuristicAgent` plays like a sensible but imperfect manager: it restocks
when stock runs low, cleans when the shop gets dirty, nudges the price with the
customers' mood and upgrades now and then when cash allows.  Thresholds are
redrawn every day and the order of its priorities is sometimes shuffled, so the
data covers a spread of situations.  Each trajectory also draws a
"forgetfulness" in [0, ``neglect``]: the chance, per day, that it forgets to
restock.  Without it the data would hardly ever show a shop running out of
beans or milk, and a model fitted on it could not learn what a stock-out costs.  With ``invalid_rate`` > 0 it sometimes sends a
deliberately invalid action, of varied kinds: breaking the rules of the shop
(unaffordable or over-capacity purchases, too big a price jump, impossible
upgrade, cleaning a clean shop) or breaking the action format (unknown action,
wrong type, out-of-range or missing argument).
"""
from __future__ import annotations

import numpy as np

from ..agent_base import Agent, RandomAgent, spec_invalid_action
from ..base import EnvSpec
from .sim import CoffeeShopParams


class HeuristicAgent(Agent):
    """A rule-of-thumb manager with randomness (see the module docstring)."""

    name = "heuristic"

    def __init__(self, spec: EnvSpec, invalid_rate: float = 0.0, seed: int | None = None,
                 params: CoffeeShopParams | None = None, explore: float = 0.05, neglect: float = 0.5):
        super().__init__(spec, invalid_rate=invalid_rate, seed=seed)
        self.p = params or CoffeeShopParams()
        self.explore = float(explore)
        self.neglect = float(neglect)
        self.forget = float(np.random.default_rng(seed).uniform(0.0, self.neglect))

    def start_episode(self, rng: np.random.Generator) -> None:
        self.forget = float(rng.uniform(0.0, self.neglect))

    def describe(self) -> dict:
        d = super().describe()
        d["explore"] = self.explore
        d["neglect"] = self.neglect
        return d

    # -- normal play --------------------------------------------------------
    def candidates(self, state: dict, rng: np.random.Generator) -> list[dict]:
        """Actions the heuristic would like to take today, most urgent first."""
        p = self.p
        money = float(state["money"])
        level = int(state["upgrade_level"])
        served = max(int(state["customers"]), 10)
        beans_need = served * p.beans_per_cup * 1.2 + 1.0
        milk_need = served * p.milk_share * p.milk_per_drink * 1.2 + 1.0
        out: list[dict] = []

        if float(state["cleanliness"]) < rng.uniform(35, 55) and money >= p.clean_cost + 20:
            out.append({"name": "clean", "args": {}})
        restock = rng.random() >= self.forget
        for name, stock_key, need, cost, cap in (
                ("buy_beans", "coffee_beans", beans_need, p.bean_cost, p.bean_capacity),
                ("buy_milk", "milk", milk_need, p.milk_cost, p.milk_capacity)):
            stock = float(state[stock_key])
            if restock and stock < need * rng.uniform(1.5, 3.5):
                units = min(need * rng.uniform(4, 9), cap - stock, 0.8 * money / cost, p.buy_high)
                units = int(np.floor(units))
                if units >= p.buy_low:
                    out.append({"name": name, "args": {"units": units}})
        if level < p.max_level:
            cost = p.upgrade_cost * (level + 1)
            if money > cost + rng.uniform(400, 900) and rng.random() < 0.3:
                out.append({"name": "upgrade", "args": {}})
        price = float(state["price"])
        sat = float(state["satisfaction"])
        step = 0.0
        if sat < rng.uniform(45, 55):
            step = -float(rng.choice([0.25, 0.5]))
        elif sat > rng.uniform(62, 72):
            step = float(rng.choice([0.25, 0.5, 0.75]))
        elif rng.random() < 0.1:
            step = float(rng.choice([-0.25, 0.25]))
        new = min(max(price + step, p.price_low), p.price_high)
        if step and abs(new - price) > 1e-9:
            out.append({"name": "set_price", "args": {"price": round(new, 2)}})
        out.append({"name": "wait", "args": {}})
        return out

    def choose(self, state: dict, rng: np.random.Generator) -> dict:
        if rng.random() < self.explore:
            return self._explore(state, rng)
        cands = self.candidates(state, rng)
        if len(cands) > 2 and rng.random() < 0.15:  # sometimes pick a less urgent wish
            return cands[int(rng.integers(len(cands) - 1))]
        return cands[0]

    def _explore(self, state: dict, rng: np.random.Generator) -> dict:
        """A small random move that is usually valid."""
        p = self.p
        k = int(rng.integers(4))
        if k == 0:
            new = float(state["price"]) + float(rng.choice([-1.0, -0.5, 0.5, 1.0]))
            return {"name": "set_price", "args": {"price": round(min(max(new, p.price_low), p.price_high), 2)}}
        if k == 1:
            return {"name": "buy_beans", "args": {"units": int(rng.integers(1, 21))}}
        if k == 2:
            return {"name": "buy_milk", "args": {"units": int(rng.integers(1, 21))}}
        return {"name": "wait", "args": {}}

    # -- deliberate mistakes ------------------------------------------------------
    def invalid_action(self, state: dict, rng: np.random.Generator) -> dict:
        """Half the time a rule of the shop is broken, otherwise the action format."""
        if rng.random() < 0.5:
            options = self._rule_breaks(state, rng)
            if options:
                return options[int(rng.integers(len(options)))]
        return spec_invalid_action(self.spec, rng)

    def _rule_breaks(self, state: dict, rng: np.random.Generator) -> list[dict]:
        p = self.p
        money = float(state["money"])
        level = int(state["upgrade_level"])
        out = []
        for name, stock_key, cost, cap in (("buy_beans", "coffee_beans", p.bean_cost, p.bean_capacity),
                                           ("buy_milk", "milk", p.milk_cost, p.milk_capacity)):
            too_dear = int(np.floor(money / cost)) + 1
            if too_dear <= p.buy_high:
                out.append({"name": name, "args": {"units": int(rng.integers(too_dear, p.buy_high + 1))}})
            too_many = int(np.floor(cap - float(state[stock_key]))) + 1
            if max(too_many, p.buy_low) <= p.buy_high:
                out.append({"name": name,
                            "args": {"units": int(rng.integers(max(too_many, p.buy_low), p.buy_high + 1))}})
        price = float(state["price"])
        jump = p.max_price_change + float(rng.choice([0.5, 1.0, 2.0]))
        for new in (price + jump, price - jump):
            if p.price_low <= new <= p.price_high:
                out.append({"name": "set_price", "args": {"price": round(new, 2)}})
        if level >= p.max_level or p.upgrade_cost * (level + 1) > money:
            out.append({"name": "upgrade", "args": {}})
        if float(state["cleanliness"]) >= p.clean_block or money < p.clean_cost:
            out.append({"name": "clean", "args": {}})
        return out


AGENTS = {"heuristic": HeuristicAgent, "random": RandomAgent}
__all__ = ["HeuristicAgent", "AGENTS"]
