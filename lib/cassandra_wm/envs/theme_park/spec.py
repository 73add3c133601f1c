"""The theme park's EnvSpec: variables (deterministic or stochastic), actions and notes.

Deterministic variables follow from the previous state and the action alone (what is built,
prices, staff, the costs an action incurs); stochastic ones come out of the guests' day.  The
Bayesian network models six high-impact stochastic variables (``BN_VARIABLES``); the other
stochastic ones are treated as independent, as in the paper.
"""
from __future__ import annotations

from ..base import EnvSpec, VariableSpec
from .actions import ACTION_SPECS, REASONS
from .layouts import TEST_LAYOUTS, TRAIN_LAYOUTS
from .manual import build_manual
from .params import GRID_SIZE, HORIZON, START_MONEY, TICKS_PER_DAY

BN_VARIABLES = ("guests_today", "uptime", "min_cleanliness", "profit", "park_rating", "money")

# Same-day causal edges among BN_VARIABLES implied by the engine (evaluation only; see DESIGN_NOTES.md).
TRUE_GRAPH: tuple[tuple[str, str], ...] = (
    ("guests_today", "uptime"),           # more riders -> more ride runs -> more breakdowns
    ("guests_today", "min_cleanliness"),  # guests litter
    ("guests_today", "profit"),           # tickets and sales (and ride running costs)
    ("guests_today", "park_rating"),      # happy departures count toward the rating
    ("uptime", "min_cleanliness"),        # turned-away guests get unhappy and litter more
    ("uptime", "profit"),                 # broken rides sell no tickets
    ("uptime", "park_rating"),            # downtime lowers the rating
    ("min_cleanliness", "profit"),        # dirty rides get refused, dirt drives guests out early
    ("min_cleanliness", "park_rating"),   # the dirtiest tile lowers the rating
    ("profit", "money"),                  # money = yesterday's money - action cost + profit
)


def _v(name: str, kind: str, desc: str, low: float | None = None, high: float | None = None,
       integer: bool = False, **kw) -> VariableSpec:
    return VariableSpec(name=name, path=f"/{name}", description=desc, kind=kind,  # type: ignore[arg-type]
                        low=low, high=high, integer=integer, **kw)


def build_variables(horizon: int = HORIZON) -> tuple[VariableSpec, ...]:
    D, S = "deterministic", "stochastic"
    return (
        # deterministic: follow from yesterday's state and today's action
        _v("day", D, "days simulated so far", 0, horizon, True),
        _v("num_rides", D, "number of rides", 0, GRID_SIZE * GRID_SIZE, True),
        _v("num_shops", D, "number of shops", 0, GRID_SIZE * GRID_SIZE, True),
        _v("num_drink_shops", D, "number of drink shops", 0, GRID_SIZE * GRID_SIZE, True),
        _v("num_food_shops", D, "number of food shops", 0, GRID_SIZE * GRID_SIZE, True),
        _v("num_specialty_shops", D, "number of specialty shops", 0, GRID_SIZE * GRID_SIZE, True),
        _v("num_staff", D, "number of staff", 0, None, True),
        _v("num_janitors", D, "number of janitors", 0, None, True),
        _v("num_mechanics", D, "number of mechanics", 0, None, True),
        _v("total_capacity", D, "sum of ride capacities (guests allowed inside at once)", 0, None, True),
        _v("total_excitement", D, "sum of ride excitement", 0, None),
        _v("avg_intensity", D, "mean intensity of the rides (0 without rides)", 0, 10),
        _v("park_value", D, "sum of building costs of the rides and shops standing", 0, None),
        _v("daily_fixed_costs", D, "shop operating costs plus staff salaries charged each evening", 0, None),
        _v("shop_operating_costs", D, "shop operating costs charged on the last day", 0, None),
        _v("salaries", D, "staff salaries charged on the last day", 0, None),
        _v("action_cost", D, "money the last action took (building cost; negative for a sale refund)"),
        # stochastic: outcomes of the guests' day
        _v("money", S, "cash at the start of the day, after yesterday's results"),
        _v("revenue", S, "ticket and shop sales of the last day", 0, None),
        _v("ride_revenue", S, "ticket sales of the last day", 0, None),
        _v("shop_revenue", S, "shop sales of the last day", 0, None),
        _v("ride_operating_costs", S, "cost of all ride runs on the last day", 0, None),
        _v("expenses", S, "ride runs + shop operating costs + salaries of the last day", 0, None),
        _v("profit", S, "revenue minus expenses of the last day"),
        _v("guests_today", S, "guests who entered the park on the last day", 0, None, True),
        _v("happy_departures", S, "guests who left happy on the last day", 0, None, True),
        _v("avg_happiness", S, "mean happiness of guests as they left (0..1)", 0, 1),
        _v("peak_guests", S, "most guests inside at once on the last day", 0, None, True),
        _v("turned_away", S, "arrivals refused because the park was full", 0, None, True),
        _v("park_rating", S, "park rating (0..100) after the last day", 0, 100),
        _v("min_cleanliness", S, "cleanliness (0..1) of the dirtiest path or attraction tile", 0, 1),
        _v("mean_cleanliness", S, "mean cleanliness (0..1) of path and attraction tiles", 0, 1),
        _v("uptime", S, "share of the last day the rides were working (1 without rides)", 0, 1),
        _v("broken_rides", S, "rides broken down at the end of the last day", 0, None, True),
        VariableSpec(name="bankrupt", path="/bankrupt", kind=S, type="categorical", categories=(False, True),
                     description="money fell below zero at the end of a day (the game ends)"),
    )


def build_spec(horizon: int = HORIZON, start_money: float = START_MONEY) -> EnvSpec:
    """The theme park's spec (manual text, variables, actions, notes)."""
    return EnvSpec(
        name="theme_park",
        manual=build_manual(horizon, start_money),
        variables=build_variables(horizon),
        actions=ACTION_SPECS,
        horizon=horizon,
        reward_variable="money",
        bn_variables=tuple(BN_VARIABLES),
        notes={
            "grid_size": GRID_SIZE,
            "ticks_per_day": TICKS_PER_DAY,
            "start_money": start_money,
            "train_layouts": list(TRAIN_LAYOUTS),
            "test_layouts": list(TEST_LAYOUTS),
            "invalid_reasons": dict(REASONS),
            "markov": "each day starts with an empty park; the state JSON plus the constructor settings "
                      "determine the next day's distribution",
            "lists": "rides, shops and staff are lists at /rides, /shops, /staff; /cleanliness is a "
                     f"{GRID_SIZE}x{GRID_SIZE} grid indexed [y][x]",
        },
    )


__all__ = ["build_spec", "build_variables", "BN_VARIABLES", "TRUE_GRAPH"]
