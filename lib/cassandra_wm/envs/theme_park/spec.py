"""The theme park's EnvSpec: variables at the game's JSON paths, actions and notes.

Deterministic variables follow from yesterday's state and the morning action (what is built and
hired, the day count, the rating's excitement term); stochastic ones come out of the guests' day.
The Bayesian network models six of them (``BN_VARIABLES``, as the paper's six high-impact
variables); the rest are treated independently.  Every variable has finite, plausible bounds.
"""
from __future__ import annotations

from ..base import EnvSpec, VariableSpec
from .actions import REASONS, action_specs
from .layouts import TEST_LAYOUTS, TRAIN_LAYOUTS
from .manual import build_manual
from .params import GRID_SIZE, HORIZON, START_MONEY, TICKS_PER_DAY, get_params

BN_VARIABLES = ("park_rating", "total_guests", "ride_min_uptime", "min_cleanliness", "profit", "money")

# Same-day causal edges among BN_VARIABLES implied by the engine (evaluation only; see DESIGN_NOTES.md).
TRUE_GRAPH: tuple[tuple[str, str], ...] = (
    ("park_rating", "total_guests"),        # the morning rating is each arrival's chance to come in
    ("total_guests", "ride_min_uptime"),     # more rides run, more breakdowns
    ("total_guests", "min_cleanliness"),     # guests litter
    ("total_guests", "profit"),              # tickets and sales
    ("ride_min_uptime", "profit"),           # a broken ride sells no tickets and costs repairs
    ("min_cleanliness", "profit"),           # guests refuse dirty attractions
    ("profit", "money"),                     # money = yesterday's money + profit (action costs included)
)

MAX_ATTRACTIONS = GRID_SIZE * GRID_SIZE


def _v(name: str, path: str, kind: str, desc: str, low: float, high: float, integer: bool = False) -> VariableSpec:
    return VariableSpec(name=name, path=path, description=desc, kind=kind,  # type: ignore[arg-type]
                        low=float(low), high=float(high), integer=integer)


def build_variables(horizon: int = HORIZON, start_money: int = START_MONEY) -> tuple[VariableSpec, ...]:
    D, S = "deterministic", "stochastic"
    big = 5_000_000 + 10 * int(start_money)          # money stays far below this in 50 easy days
    day_cash = 500_000                               # a day's revenue or costs stay far below this
    guests = 20_000
    return (
        # deterministic
        _v("step", "/step", D, "days played so far", 0, horizon, True),
        _v("total_rides", "/rides/total_rides", D, "rides in the park", 0, MAX_ATTRACTIONS, True),
        _v("total_capacity", "/rides/total_capacity", D, "sum of ride capacities", 0, 50 * MAX_ATTRACTIONS, True),
        _v("total_excitement", "/rides/total_excitement", D,
           "the rating's excitement term: ride excitement, repeats of a kind counting half each time, "
           "times 0.8, at most 60", 0, 60),
        _v("avg_intensity", "/rides/avg_intensity", D, "mean ride intensity (0 without rides)", 0, 10),
        _v("total_shops", "/shops/total_shops", D, "shops in the park", 0, MAX_ATTRACTIONS, True),
        _v("yellow_janitors", "/staff/total_janitors/0", D, "yellow janitors employed", 0, 1000, True),
        _v("yellow_mechanics", "/staff/total_mechanics/0", D, "yellow mechanics employed", 0, 1000, True),
        # stochastic
        _v("money", "/money", S, "money after the day", -day_cash, big),
        _v("value", "/value", S, "money plus the resale value of rides and shops", -day_cash, 2 * big),
        _v("revenue", "/revenue", S, "the day's income: tickets, sales and any sale refund", 0, day_cash),
        _v("expenses", "/expenses", S, "the day's spending: building, stock, ride runs, cleaning, repairs, "
                                       "salaries, surveys", 0, day_cash),
        _v("profit", "/profit", S, "revenue minus expenses of the day", -day_cash, day_cash),
        _v("park_rating", "/park_rating", S, "park rating (5..100) that drew the day's guests", 0, 100),
        _v("total_guests", "/guests/total_guests", S, "guests who came in during the day", 0, guests, True),
        _v("avg_money_spent", "/guests/avg_money_spent", S, "mean money a guest spent", 0, 1000),
        _v("avg_time_in_park", "/guests/avg_time_in_park", S, "mean ticks a guest stayed", 0, TICKS_PER_DAY + 50),
        _v("avg_rides_visited", "/guests/avg_rides_visited", S, "mean rides a guest rode", 0, 200),
        _v("avg_food_shops_visited", "/guests/avg_food_shops_visited", S, "mean food purchases a guest made", 0, 200),
        _v("avg_drink_shops_visited", "/guests/avg_drink_shops_visited", S, "mean drink purchases", 0, 200),
        _v("avg_specialty_shops_visited", "/guests/avg_specialty_shops_visited", S, "mean specialty visits", 0, 200),
        _v("ride_min_uptime", "/rides/min_uptime", S, "lowest share of the day any ride was in service (1 without "
                                                     "rides)", 0, 1),
        _v("ride_operating_cost", "/rides/total_operating_cost", S, "cost of the day's ride runs", 0, day_cash),
        _v("ride_revenue", "/rides/total_revenue_generated", S, "the day's ticket sales", 0, day_cash),
        _v("shop_revenue", "/shops/total_revenue_generated", S, "the day's shop sales", 0, day_cash),
        _v("shop_operating_cost", "/shops/total_operating_cost", S, "the day's stock cost", 0, day_cash),
        _v("shop_min_uptime", "/shops/min_uptime", S, "lowest share of a shop's visitors it could serve", 0, 1),
        _v("salaries", "/staff/total_salary_paid", S, "salaries paid in the evening", 0, day_cash),
        _v("staff_operating_cost", "/staff/total_operating_cost", S, "what cleaning and repairs cost the day",
           0, day_cash),
        _v("min_cleanliness", "/min_cleanliness", S, "cleanliness of the dirtiest path or attraction (about 0..1)",
           0, 1.2),
        VariableSpec(name="bankrupt", path="/bankrupt", kind=S, type="categorical", categories=(False, True),
                     description="money below zero at the end of a day (paper parameters: the game ends)"),
    )


def build_spec(horizon: int = HORIZON, start_money: int = START_MONEY, parameters: str = "paper") -> EnvSpec:
    """The theme park's spec for a parameter set ("paper" or "game")."""
    p = get_params(parameters)
    return EnvSpec(
        name="theme_park",
        manual=build_manual(horizon, start_money, p.name),
        variables=build_variables(horizon, start_money),
        actions=action_specs(p.name),
        horizon=horizon,
        reward_variable="money",
        bn_variables=tuple(BN_VARIABLES),
        notes={
            "parameters": p.name,
            "grid_size": GRID_SIZE,
            "ticks_per_day": TICKS_PER_DAY,
            "start_money": start_money,
            "train_layouts": list(TRAIN_LAYOUTS),
            "test_layouts": list(TEST_LAYOUTS),
            "invalid_reasons": dict(REASONS),
            "markov": "guests live for one day; the state JSON (the game's observation plus its unseen "
                      "carry-over under /hidden and a few raw fields) fixes the next day's distribution",
            "lists": "rides at /rides/ride_list, shops at /shops/shop_list, staff at /staff/staff_list; tiles "
                     "are (x, y) as in the game",
        },
    )


__all__ = ["build_spec", "build_variables", "BN_VARIABLES", "TRUE_GRAPH"]
