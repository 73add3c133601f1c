"""CoffeeShopSimulator: a small daily business with stochastic customers.

The paper's simulator is not public; this one follows its published rules in
spirit (appendix F) with our own mechanics and numbers.

One step is one day: the agent takes one action, the shop opens, customers come
and buy, the shop closes.  Observed variables (JSON pointers into the state):

====================  ============  ==========================================
variable              kind          meaning
====================  ============  ==========================================
``/money``            stochastic    cash at closing (the reward)
``/coffee_beans``     stochastic    bean stock at closing (units of 10 cups)
``/milk``             stochastic    milk stock at closing (litres)
``/customers``        stochastic    customers served today
``/satisfaction``     stochastic    today's mood, 0..100
``/cleanliness``      stochastic    cleanliness at closing, 0..100
``/price``            deterministic price of a cup, set by ``set_price``
``/upgrade_level``    deterministic 0..5, raised by ``upgrade``
====================  ============  ==========================================

The state also carries ``day``, ``horizon`` and ``bankrupt`` (bookkeeping, not
variables).  The state is Markov: the next-state distribution is a function of
(state, action) and the constructor parameters alone.

Dynamics of day t (``prev`` = yesterday's closing state, after the action's
deterministic effects: price, level, purchases, cleaning):

1. satisfaction_t = clip(0.55 * satisfaction_prev + 0.45 * target + N(0, 6)), where
   target = 50 + 6 * level + 0.3 * (clean_start - 60) - price_penalty(price - fair_price(level)).
2. arrivals ~ Poisson(area(level) * appeal(satisfaction_t) * buzz(prev) * LogNormal(0, 0.2)),
   capped at ``max_customers``; appeal rises with *today's* satisfaction (the same-day
   effect the manual does not state), buzz is yesterday's word of mouth.
3. customers_t = arrivals served before beans run out; a Binomial share wants milk and
   is served while milk lasts (the others leave).
4. coffee_beans_t, milk_t: stock minus what was served (milk also spoils overnight).
5. money_t = money_prev - purchases + price * cups + premium * milk drinks - running cost.
6. cleanliness_t = clean_start - customers_t * dirt(satisfaction_t) + N(0, 2).

Same-day edges among the stochastic variables (``true_graph``, evaluation only)::

    satisfaction -> customers, satisfaction -> cleanliness,
    customers -> coffee_beans, customers -> milk, customers -> money,
    customers -> cleanliness, milk -> money

Lagged dependencies (yesterday's value or today's action/deterministic variables -> today)::

    satisfaction_prev, cleanliness_prev, price, upgrade_level, action(clean)  -> satisfaction
    customers_prev, satisfaction_prev, upgrade_level, coffee_beans_prev, milk_prev -> customers
    coffee_beans_prev, action(buy_beans)                                     -> coffee_beans
    milk_prev, action(buy_milk)                                              -> milk
    money_prev, price, upgrade_level, action (purchases, upgrade, clean)     -> money
    cleanliness_prev, action(clean)                                          -> cleanliness
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ..base import (ActionParseError, ActionSpec, ArgSpec, EnvSpec, Environment, VariableSpec,
                    check_args, coerce_action)
from . import manual as _manual

STOCHASTIC = ("money", "coffee_beans", "milk", "customers", "satisfaction", "cleanliness")
DETERMINISTIC = ("price", "upgrade_level")
WAIT = {"name": "wait", "args": {}}

TRUE_EDGES = (
    ("satisfaction", "customers"),
    ("satisfaction", "cleanliness"),
    ("customers", "coffee_beans"),
    ("customers", "milk"),
    ("customers", "money"),
    ("customers", "cleanliness"),
    ("milk", "money"),
)


@dataclass(frozen=True)
class CoffeeShopParams:
    """Fixed rules of the shop (constructor parameters, identical for every episode)."""

    start_money: float = 1000.0
    # prices and purchases
    price_low: float = 1.0
    price_high: float = 10.0
    max_price_change: float = 2.0
    buy_low: int = 1
    buy_high: int = 100
    bean_cost: float = 5.0       # per unit of beans (10 cups)
    milk_cost: float = 1.2       # per litre
    bean_capacity: int = 200
    milk_capacity: int = 150
    upgrade_cost: float = 400.0  # level L -> L+1 costs upgrade_cost * (L + 1)
    max_level: int = 5
    clean_cost: float = 30.0
    clean_block: float = 95.0    # cleaning refused at or above this cleanliness
    # running the shop
    base_daily_cost: float = 50.0
    level_daily_cost: float = 20.0
    beans_per_cup: float = 0.1
    milk_per_drink: float = 0.2
    milk_share: float = 0.6
    milk_premium: float = 0.5
    milk_spoil: float = 0.03
    max_customers: int = 400
    # customer behaviour (not in the manual in this form)
    fair_price_base: float = 3.5
    fair_price_per_level: float = 0.5
    area_base: float = 60.0
    area_per_level: float = 25.0
    mood_memory: float = 0.55
    mood_noise: float = 6.0
    demand_noise: float = 0.2
    dirt_base: float = 0.15
    dirt_unhappy: float = 0.25
    dirt_noise: float = 2.0


class CoffeeShopEnv(Environment):
    """The coffee-shop simulator (see the module docstring for the dynamics).

    ``step`` accepts an action dict ``{"name", "args"}`` or its text form
    ``buy_beans(units=20)`` and never raises on a bad action.  ``transition`` and
    ``deterministic_step`` are pure functions of their inputs, usable by a planner.
    """

    def __init__(self, horizon: int = 50, params: CoffeeShopParams | None = None, **overrides: Any):
        if not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
        p = params or CoffeeShopParams()
        if overrides:
            unknown = set(overrides) - set(asdict(p))
            if unknown:
                raise ValueError(f"unknown CoffeeShopParams fields: {sorted(unknown)}")
            p = replace(p, **overrides)
        self.params = p
        self.horizon = horizon
        self.spec = _build_spec(p, horizon)
        self.state: dict | None = None
        self.rng: np.random.Generator | None = None

    # -- protocol ---------------------------------------------------------
    def reset(self, seed: int | None = None) -> dict:
        """Start an episode; the seed fixes the (slightly jittered) first day and all later noise."""
        self.rng = np.random.default_rng(seed)
        self.state = self.initial_state(self.rng)
        return dict(self.state)

    def initial_state(self, rng: np.random.Generator) -> dict:
        """A fresh shop, with small random differences between episodes."""
        p = self.params
        return {
            "day": 0, "horizon": self.horizon, "bankrupt": False,
            "money": round(p.start_money + float(rng.uniform(-100, 100)), 2),
            "coffee_beans": round(float(rng.uniform(20, 40)), 1),
            "milk": round(float(rng.uniform(20, 40)), 2),
            "customers": int(rng.integers(30, 51)),
            "satisfaction": round(float(rng.uniform(55, 65)), 1),
            "cleanliness": round(float(rng.uniform(80, 94)), 1),
            "price": float(rng.choice([3.5, 3.75, 4.0])),
            "upgrade_level": 0,
        }

    def step(self, action: dict | str) -> tuple[dict, bool, dict]:
        """Advance one day with ``action``; returns (next_state, valid, info)."""
        if self.state is None or self.rng is None:
            raise RuntimeError("call reset() before step()")
        nxt, valid, info = self.transition(self.state, action, self.rng)
        self.state = nxt
        return dict(nxt), valid, info

    def true_graph(self) -> list[tuple[str, str]]:
        """Same-day edges among the stochastic variables (for evaluation only)."""
        return list(TRUE_EDGES)

    def is_done(self, state: dict) -> bool:
        return bool(state.get("bankrupt")) or int(state["day"]) >= int(state.get("horizon", self.horizon))

    # -- pure model -------------------------------------------------------
    def check_action(self, state: dict, action: Any) -> tuple[dict | None, str | None]:
        """Parse ``action`` and test its preconditions in ``state``.

        Returns ``(action_dict, None)`` when valid, else ``(action_dict_or_None, message)``.
        """
        try:
            act = coerce_action(action)
        except ActionParseError as e:
            return None, str(e)
        try:
            aspec = self.spec.action(act["name"])
        except KeyError:
            names = ", ".join(a.name for a in self.spec.actions)
            return act, f"unknown action {act['name']!r}; available: {names}"
        try:
            err = check_args(aspec, act["args"])
        except (ValueError, TypeError, OverflowError) as e:  # e.g. an infinite or huge number
            err = f"{aspec.name}: bad argument value ({e})"
        if err:
            return act, err
        p = self.params
        name, args = act["name"], act["args"]
        money = float(state["money"])
        if name == "set_price":
            new = float(args["price"])
            if abs(new - float(state["price"])) > p.max_price_change + 1e-9:
                return act, (f"set_price: cannot move the price from {state['price']:.2f} to {new:.2f} "
                             f"in one day (at most {p.max_price_change:.2f})")
        elif name in ("buy_beans", "buy_milk"):
            units = int(args["units"])
            unit_cost, stock_key, cap = ((p.bean_cost, "coffee_beans", p.bean_capacity) if name == "buy_beans"
                                         else (p.milk_cost, "milk", p.milk_capacity))
            cost = units * unit_cost
            if cost > money + 1e-9:
                return act, f"{name}: {units} units cost {cost:.2f} but only {money:.2f} is available"
            if float(state[stock_key]) + units > cap + 1e-9:
                return act, (f"{name}: stock {float(state[stock_key]):g} + {units} would exceed the "
                             f"capacity of {cap}")
        elif name == "upgrade":
            level = int(state["upgrade_level"])
            if level >= p.max_level:
                return act, f"upgrade: already at the top level {p.max_level}"
            cost = p.upgrade_cost * (level + 1)
            if cost > money + 1e-9:
                return act, f"upgrade: level {level + 1} costs {cost:.2f} but only {money:.2f} is available"
        elif name == "clean":
            if p.clean_cost > money + 1e-9:
                return act, f"clean: costs {p.clean_cost:.2f} but only {money:.2f} is available"
            if float(state["cleanliness"]) >= p.clean_block:
                return act, (f"clean: the shop is already clean ({float(state['cleanliness']):.1f} >= "
                             f"{p.clean_block:.0f})")
        return act, None

    def deterministic_step(self, state: dict, action: Any) -> tuple[dict, bool, str | None]:
        """Next-day deterministic variables and validity, without sampling anything."""
        _check_state(state)
        if self.is_done(state):
            return {k: state[k] for k in DETERMINISTIC}, False, "the episode is over"
        act, err = self.check_action(state, action)
        eff = _effects(self.params, state, act if err is None else WAIT)
        return {"price": eff["price"], "upgrade_level": eff["upgrade_level"]}, err is None, err

    def transition(self, state: dict, action: Any, rng: np.random.Generator) -> tuple[dict, bool, dict]:
        """Sample the next day from (state, action) with ``rng``; pure apart from ``rng``.

        Returns ``(next_state, valid, info)``; ``info`` has ``error`` (None when valid),
        ``done`` and a few diagnostics of the day (arrivals, revenue, costs).
        """
        _check_state(state)
        if self.is_done(state):
            return dict(state), False, {"error": "the episode is over; call reset()", "done": True}
        p = self.params
        act, err = self.check_action(state, action)
        valid = err is None
        eff = _effects(p, state, act if valid else WAIT)
        price, level = eff["price"], eff["upgrade_level"]

        # 1. satisfaction
        fair = p.fair_price_base + p.fair_price_per_level * level
        gap = price - fair
        penalty = 10.0 * gap + 3.0 * gap * gap if gap > 0 else 5.0 * max(gap, -2.0)
        target = 50.0 + 6.0 * level + 0.3 * (eff["clean_start"] - 60.0) - penalty
        sat = p.mood_memory * float(state["satisfaction"]) + (1 - p.mood_memory) * target
        sat = _clip(sat + float(rng.normal(0.0, p.mood_noise)), 0.0, 100.0)
        sat = round(sat, 1)

        # 2. arrivals: area potential x today's appeal x yesterday's word of mouth x daily shock
        area = p.area_base + p.area_per_level * level
        appeal = 0.25 + 1.1 * (sat / 100.0) ** 2
        buzz = min(max(float(state["customers"]) / area, 0.0), 2.0) * float(state["satisfaction"]) / 100.0
        wom = 0.85 + 0.3 * buzz
        lam = area * appeal * wom * float(rng.lognormal(0.0, p.demand_noise))
        arrivals = min(int(rng.poisson(lam)), p.max_customers)

        # 3. serving, capped by stock
        beans0, milk0 = eff["coffee_beans"], eff["milk"]
        cups_from_beans = int(math.floor(beans0 / p.beans_per_cup + 1e-6))
        n = min(arrivals, cups_from_beans)
        want_milk = int(rng.binomial(n, p.milk_share)) if n > 0 else 0
        milk_cups = int(math.floor(milk0 / p.milk_per_drink + 1e-6))
        milk_served = min(want_milk, milk_cups)
        served = n - want_milk + milk_served

        # 4. stock
        beans = round(max(beans0 - served * p.beans_per_cup, 0.0), 1)
        milk = round(max(milk0 - milk_served * p.milk_per_drink, 0.0) * (1.0 - p.milk_spoil), 2)

        # 5. money
        revenue = served * price + milk_served * p.milk_premium
        running = p.base_daily_cost + p.level_daily_cost * level
        money = round(eff["money"] + revenue - running, 2)

        # 6. cleanliness
        dirt = served * (p.dirt_base + p.dirt_unhappy * (1.0 - sat / 100.0))
        clean = _clip(eff["clean_start"] - dirt + float(rng.normal(0.0, p.dirt_noise)), 0.0, 100.0)
        clean = round(clean, 1)

        bankrupt = money < 0
        nxt = {
            "day": int(state["day"]) + 1, "horizon": int(state.get("horizon", self.horizon)),
            "bankrupt": bool(bankrupt),
            "money": money, "coffee_beans": beans, "milk": milk, "customers": int(served),
            "satisfaction": sat, "cleanliness": clean, "price": price, "upgrade_level": level,
        }
        info = {
            "error": err, "done": self.is_done(nxt), "action": act if valid else WAIT,
            "arrivals": arrivals, "turned_away": arrivals - served, "milk_drinks": milk_served,
            "revenue": round(revenue, 2), "running_cost": running, "spent": round(eff["spent"], 2),
        }
        return nxt, valid, info


# -- helpers -----------------------------------------------------------------

def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


_REQUIRED = ("day", "money", "coffee_beans", "milk", "customers", "satisfaction", "cleanliness", "price",
             "upgrade_level")


def _check_state(state: Any) -> None:
    if not isinstance(state, dict):
        raise ValueError(f"coffee_shop: a state must be a dict, got {type(state).__name__}")
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ValueError(f"coffee_shop: state lacks {missing}")


def _effects(p: CoffeeShopParams, state: dict, act: dict) -> dict:
    """Deterministic consequences of a *valid* action, before the shop opens."""
    eff = {"price": float(state["price"]), "upgrade_level": int(state["upgrade_level"]),
           "money": float(state["money"]), "coffee_beans": float(state["coffee_beans"]),
           "milk": float(state["milk"]), "clean_start": float(state["cleanliness"]), "spent": 0.0}
    name, args = act["name"], act.get("args") or {}
    if name == "set_price":
        eff["price"] = round(float(args["price"]), 2)
    elif name == "buy_beans":
        eff["spent"] = int(args["units"]) * p.bean_cost
        eff["coffee_beans"] += int(args["units"])
    elif name == "buy_milk":
        eff["spent"] = int(args["units"]) * p.milk_cost
        eff["milk"] += int(args["units"])
    elif name == "upgrade":
        eff["spent"] = p.upgrade_cost * (eff["upgrade_level"] + 1)
        eff["upgrade_level"] += 1
    elif name == "clean":
        eff["spent"] = p.clean_cost
        eff["clean_start"] = 100.0
    eff["money"] -= eff["spent"]
    return eff


def _build_spec(p: CoffeeShopParams, horizon: int) -> EnvSpec:
    d = _manual.VARIABLE_DESCRIPTIONS
    money_low = -(p.base_daily_cost + p.level_daily_cost * p.max_level)
    variables = (
        VariableSpec("money", "/money", d["money"], "stochastic", low=money_low),
        VariableSpec("coffee_beans", "/coffee_beans", d["coffee_beans"], "stochastic", low=0.0,
                     high=float(p.bean_capacity)),
        VariableSpec("milk", "/milk", d["milk"], "stochastic", low=0.0, high=float(p.milk_capacity)),
        VariableSpec("customers", "/customers", d["customers"], "stochastic", low=0, high=p.max_customers,
                     integer=True),
        VariableSpec("satisfaction", "/satisfaction", d["satisfaction"], "stochastic", low=0.0, high=100.0),
        VariableSpec("cleanliness", "/cleanliness", d["cleanliness"], "stochastic", low=0.0, high=100.0),
        VariableSpec("price", "/price", d["price"], "deterministic", low=p.price_low, high=p.price_high),
        VariableSpec("upgrade_level", "/upgrade_level", d["upgrade_level"].format(max_level=p.max_level),
                     "deterministic", low=0, high=p.max_level, integer=True),
    )
    a, ad = _manual.ACTION_DESCRIPTIONS, _manual.ARG_DESCRIPTIONS
    actions = (
        ActionSpec("set_price", a["set_price"],
                   (ArgSpec("price", "float", ad[("set_price", "price")], p.price_low, p.price_high),)),
        ActionSpec("buy_beans", a["buy_beans"],
                   (ArgSpec("units", "int", ad[("buy_beans", "units")], p.buy_low, p.buy_high),)),
        ActionSpec("buy_milk", a["buy_milk"],
                   (ArgSpec("units", "int", ad[("buy_milk", "units")], p.buy_low, p.buy_high),)),
        ActionSpec("upgrade", a["upgrade"]),
        ActionSpec("clean", a["clean"]),
        ActionSpec("wait", a["wait"]),
    )
    return EnvSpec(name="coffee_shop", manual=_manual.build_manual(p, horizon), variables=variables,
                   actions=actions, horizon=horizon, reward_variable="money",
                   notes={"bookkeeping": ["day", "horizon", "bankrupt"],
                          "step": "one action per day, then the shop opens and closes"})
