"""Data-collection and rollout agents for the coffee shop.

:class:`HeuristicAgent` plays like a sensible but imperfect manager: it restocks
when stock runs low, cleans when the shop gets dirty, sets prices and upgrades
when cash allows.  A model fitted on its transitions can only learn the effect of
what it varies, so every trajectory draws a *style* (:meth:`HeuristicAgent.start_episode`):

* pricing: ``reactive`` managers nudge the price with the customers' mood (down when
  they are unhappy, up when they are happy); ``target`` managers steer towards their
  own price, the fair price of their upgrade level plus a markup drawn from -1.5 to
  +3.5 and redrawn now and then, in steps of up to 0.25-2.0 a day; so the data show
  cheap and dear shops, and price jumps of every size the planners propose;
* upgrades: a cash reserve kept before upgrading (0-1,500) and an eagerness (daily chance
  when affordable), from managers who never upgrade to those who upgrade to the top;
* purchases: orders covering 2-10 days of need, so sizes span the allowed range;
* cleaning: a dirtiness threshold from 25 to 70;
* forgetfulness: a chance per day, from 0 to ``neglect``, of forgetting to restock
  (without it the data would hardly ever show a stock-out, and a model fitted on
  it could not learn what one costs);
* a small chance per day (``explore``) of a random price move or purchase.

:class:`SteadyAgent` (kind ``"steady"``) is the same manager with one fixed, sensible
style (reactive pricing, moderate upgrades, never forgetting): the planners' rollout
policy (kit default ``rollout_agent``), which keeps the shop running over a long look-ahead.

With ``invalid_rate`` > 0 either agent sometimes sends a deliberately invalid action, of
varied kinds: breaking the rules of the shop (unaffordable or over-capacity purchases,
too big a price jump, impossible upgrade, cleaning a clean shop) or breaking the action
format (unknown action, wrong type, out-of-range or missing argument).
"""
from __future__ import annotations

import numpy as np

from ..agent_base import Agent, RandomAgent, spec_invalid_action
from ..base import EnvSpec
from .sim import CoffeeShopParams

_STEPS = (0.25, 0.5, 1.0, 1.5, 2.0)
_U = 13  # uniform draws per decision
_WAIT = {"name": "wait", "args": {}}
_CLEAN = {"name": "clean", "args": {}}
_UPGRADE = {"name": "upgrade", "args": {}}


class HeuristicAgent(Agent):
    """A rule-of-thumb manager whose style varies by trajectory (see the module docstring)."""

    name = "heuristic"
    variety = True

    def __init__(self, spec: EnvSpec, invalid_rate: float = 0.0, seed: int | None = None,
                 params: CoffeeShopParams | None = None, explore: float = 0.05, neglect: float = 0.5):
        super().__init__(spec, invalid_rate=invalid_rate, seed=seed)
        self.p = params or CoffeeShopParams()
        self.explore = float(explore)
        self.neglect = float(neglect)
        self.start_episode(np.random.default_rng(seed))

    def start_episode(self, rng: np.random.Generator) -> None:
        """Draw this trajectory's style."""
        if not self.variety:
            self.forget, self.pricing, self.markup, self.price_speed = 0.0, "reactive", 0.0, 0.5
            self.reserve, self.eagerness, self.order_days, self.clean_at = 300.0, 0.3, 6.5, 45.0
            return
        self.forget = float(rng.uniform(0.0, self.neglect))
        self.pricing = "reactive" if rng.random() < 0.4 else "target"
        self.markup = float(rng.uniform(-1.5, 3.5))
        self.price_speed = float(rng.choice(_STEPS))
        self.reserve = float(rng.uniform(0.0, 1500.0))
        self.eagerness = float(rng.uniform(0.05, 0.9))
        self.order_days = float(rng.uniform(2.0, 10.0))
        self.clean_at = float(rng.uniform(25.0, 70.0))

    def describe(self) -> dict:
        d = super().describe()
        d.update({"explore": self.explore, "neglect": self.neglect, "variety": self.variety})
        return d

    # -- normal play --------------------------------------------------------
    # One call to rng.random(_U) per day supplies every uniform draw a decision needs: the agent is
    # also the planners' rollout policy, called thousands of times per decision.
    def _new_price(self, state: dict, u: np.ndarray) -> float | None:
        p = self.p
        price = float(state["price"])
        step = 0.0
        if self.pricing == "reactive":
            sat = float(state["satisfaction"])
            if sat < 45 + 10 * u[8]:
                step = -(0.25, 0.5)[int(u[9] * 2)]
            elif sat > 62 + 10 * u[8]:
                step = (0.25, 0.5, 0.75)[int(u[9] * 3)]
            elif u[10] < 0.1:
                step = -0.25 if u[10] < 0.05 else 0.25
        else:
            if u[10] < 0.05:  # a change of mind
                self.markup = -1.5 + 5.0 * float(u[9])
            fair = p.fair_price_base + p.fair_price_per_level * int(state["upgrade_level"])
            gap = fair + self.markup - price
            if abs(gap) >= 0.25 and u[8] < 0.6:
                step = (1.0 if gap > 0 else -1.0) * min(abs(gap), self.price_speed)
        new = round(min(max(round((price + step) * 4) / 4, p.price_low), p.price_high), 2)
        return new if step and abs(new - price) > 1e-9 else None

    def candidates(self, state: dict, rng: np.random.Generator, u: np.ndarray | None = None) -> list[dict]:
        """Actions the manager would like to take today, most urgent first."""
        if u is None:
            u = rng.random(_U)
        p = self.p
        money = float(state["money"])
        level = int(state["upgrade_level"])
        served = max(int(state["customers"]), 10)
        out: list[dict] = []
        if float(state["cleanliness"]) < self.clean_at - 10 + 20 * u[0] and money >= p.clean_cost + 20:
            out.append(_CLEAN)
        if u[1] >= self.forget:
            for name, stock_key, need, cost, cap, k in (
                    ("buy_beans", "coffee_beans", served * p.beans_per_cup * 1.2 + 1.0, p.bean_cost, p.bean_capacity,
                     2),
                    ("buy_milk", "milk", served * p.milk_share * p.milk_per_drink * 1.2 + 1.0, p.milk_cost,
                     p.milk_capacity, 4)):
                stock = float(state[stock_key])
                if stock < need * (1.5 + 2.0 * u[k]):
                    units = min(need * self.order_days * (0.7 + 0.6 * u[k + 1]), cap - stock, 0.8 * money / cost,
                                p.buy_high)
                    units = int(units // 1)
                    if units >= p.buy_low:
                        out.append({"name": name, "args": {"units": units}})
        if level < p.max_level:
            cost = p.upgrade_cost * (level + 1)
            if money > cost + self.reserve * (0.7 + 0.6 * u[6]) and u[7] < self.eagerness:
                out.append(_UPGRADE)
        new = self._new_price(state, u)
        if new is not None:
            out.append({"name": "set_price", "args": {"price": new}})
        out.append(_WAIT)
        return [dict(a) if a is not _WAIT else {"name": "wait", "args": {}} for a in out]

    def choose(self, state: dict, rng: np.random.Generator) -> dict:
        u = rng.random(_U)
        if self.explore and u[11] < self.explore:
            return self._explore(state, rng)
        cands = self.candidates(state, rng, u)
        if len(cands) > 2 and u[12] < 0.15:  # sometimes pick a less urgent wish
            return cands[int(u[12] / 0.15 * (len(cands) - 1))]
        return cands[0]

    def _explore(self, state: dict, rng: np.random.Generator) -> dict:
        """A small random move that is usually valid."""
        p = self.p
        k = int(rng.integers(4))
        if k == 0:
            new = float(state["price"]) + float(rng.choice(_STEPS)) * float(rng.choice([-1.0, 1.0]))
            return {"name": "set_price", "args": {"price": round(min(max(new, p.price_low), p.price_high), 2)}}
        if k == 1:
            return {"name": "buy_beans", "args": {"units": int(rng.integers(1, 41))}}
        if k == 2:
            return {"name": "buy_milk", "args": {"units": int(rng.integers(1, 41))}}
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


class SteadyAgent(HeuristicAgent):
    """The heuristic manager with one fixed sensible style and no exploration: the rollout policy."""

    name = "steady"
    variety = False

    def __init__(self, spec: EnvSpec, invalid_rate: float = 0.0, seed: int | None = None,
                 params: CoffeeShopParams | None = None):
        super().__init__(spec, invalid_rate=invalid_rate, seed=seed, params=params, explore=0.0, neglect=0.0)


AGENTS = {"heuristic": HeuristicAgent, "steady": SteadyAgent, "random": RandomAgent}
__all__ = ["HeuristicAgent", "SteadyAgent", "AGENTS"]
