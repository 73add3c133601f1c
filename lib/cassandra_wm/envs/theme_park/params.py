"""Parameter sets of the theme park: numbers as data, two sets selectable by name.

* ``"paper"`` (the default): the ride, shop and staff tables of the CASSANDRA paper's appendix F,
  which is also what the manual the LLM reads states.  Shops cost a fixed amount per day to stock
  and a park whose money falls below zero at the end of a day is bankrupt (the paper's survival
  table counts solvent runs).  Numbers appendix F does not give (guest needs, rating weights,
  littering, work rates) are the game's.
* ``"game"``: the current configuration of the public Mini Amusement Parks game (its
  ``shared/config.yaml``): four tiers of janitors, mechanics and specialists, shops that buy
  ``order_quantity`` items each morning at an item cost, and no bankruptcy (the game never lets
  money go below zero: rides stay idle, staff are dismissed, stock is bought within budget).

``DESIGN_NOTES.md`` lists where the two differ.  Everything here is plain data: the engine reads a
:class:`Params` and nothing else.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

GRID_SIZE = 20
TICKS_PER_DAY = 500
HORIZON = 50            # easy mode
START_MONEY = 500       # easy mode
START_RATING = 20.0     # park rating before the first day
START_GUEST_HAPPINESS = 0.3

COLOURS = ("yellow", "blue", "green", "red")
RIDE_TYPES = ("carousel", "ferris_wheel", "roller_coaster")
SHOP_TYPES = ("drink", "food", "specialty")
STAFF_TYPES = ("janitor", "mechanic", "specialist")
KINDS = ("ride", "shop", "staff")
SPECIALTY_NAMES = {"yellow": "souvenir shop", "blue": "information booth", "green": "ATM", "red": "billboard"}
SPECIALIST_NAMES = {"yellow": "clown", "blue": "stocker", "green": "park crier", "red": "vendor"}


def _ride(bc, cpo, cap, maxp, exc, inten, br):
    return dict(building_cost=bc, cost_per_operation=cpo, capacity=cap, max_ticket_price=maxp,
                excitement=exc, intensity=inten, breakdown_rate=br)


# -- the game's current configuration ------------------------------------------------
_GAME_RIDES = {
    "carousel": {"yellow": _ride(250, 1, 6, 4, 1, 1, 0.001), "blue": _ride(1500, 2, 14, 6, 4, 3, 0.002),
                 "green": _ride(11500, 30, 26, 14, 3, 4, 0.003), "red": _ride(24000, 12, 24, 24, 8, 5, 0.005)},
    "ferris_wheel": {"yellow": _ride(600, 10, 10, 5, 2, 2, 0.006), "blue": _ride(7500, 20, 20, 7, 5, 3, 0.009),
                     "green": _ride(50000, 55, 40, 15, 4, 6, 0.024), "red": _ride(75000, 75, 30, 28, 9, 8, 0.032)},
    "roller_coaster": {"yellow": _ride(1000, 8, 4, 10, 3, 4, 0.01), "blue": _ride(18000, 25, 12, 20, 7, 7, 0.02),
                       "green": _ride(60000, 45, 28, 34, 6, 9, 0.025),
                       "red": _ride(100000, 100, 22, 50, 10, 10, 0.04)},
}
_GAME_SHOPS = {
    "drink": {"yellow": dict(building_cost=100, max_item_price=3, item_cost=0, thirst_reduction=0.24),
              "blue": dict(building_cost=2250, max_item_price=6, item_cost=1, thirst_reduction=0.60),
              "green": dict(building_cost=17500, max_item_price=17, item_cost=3, thirst_reduction=0.96,
                            happiness_boost=0.4),
              "red": dict(building_cost=48000, max_item_price=25, item_cost=5, thirst_reduction=0.72,
                          energy_boost=20, caffeinated_steps=50)},
    "food": {"yellow": dict(building_cost=200, max_item_price=5, item_cost=1, hunger_reduction=0.2),
             "blue": dict(building_cost=3600, max_item_price=9, item_cost=2, hunger_reduction=0.5),
             "green": dict(building_cost=28000, max_item_price=18, item_cost=4, hunger_reduction=0.8,
                           thirst_reduction=0.4),
             "red": dict(building_cost=60000, max_item_price=34, item_cost=8, hunger_reduction=1.0,
                         happiness_boost=0.6)},
    "specialty": {"yellow": dict(building_cost=250, max_item_price=15, item_cost=4, happiness_boost=0.5),
                  "blue": dict(building_cost=10000, max_item_price=5, item_cost=2),
                  "green": dict(building_cost=50000, max_item_price=5, item_cost=3, money_withdrawal=64,
                                min_withdrawal=16),
                  "red": dict(building_cost=10000, max_item_price=0, item_cost=0, thirst_boost=0.25,
                              hunger_boost=0.25, happiness_boost=0.25, money_threshold=25)},
}
_GAME_STAFF = {
    "janitor": {"yellow": dict(salary=25, clean_rate=0.028, cleaning_threshold=0.85, steps=1),
                "blue": dict(salary=100, clean_rate=0.075, cleaning_threshold=0.95, steps=2),
                "green": dict(salary=500, clean_rate=0.2, cleaning_threshold=1.0, steps=2),
                "red": dict(salary=2000, clean_rate=0.35, cleaning_threshold=1.2, steps=2)},
    "mechanic": {"yellow": dict(salary=15, repair_rate=2, steps=1), "blue": dict(salary=100, repair_rate=8, steps=2),
                 "green": dict(salary=250, repair_rate=20, steps=2), "red": dict(salary=1000, repair_rate=50, steps=2)},
    "specialist": {"yellow": dict(salary=60, happiness_boost=0.25),
                   "blue": dict(salary=350, stocking_rate=0.1, max_inventory=100, restock_threshold=0.25,
                                idle_ticks=30),
                   "green": dict(salary=250),
                   "red": dict(salary=300, happiness_boost=0.2, hunger_reduction=0.3, thirst_reduction=0.4)},
}

# guests, rating and tiles: the game's numbers (appendix F gives none of these)
_GAME_RULES = dict(
    guest_money=(150.0, 25.0),          # mean, sd of the money a guest brings
    guest_energy=(100.0, 20.0),         # mean, sd of energy (steps); floored
    guest_happiness=(0.9, 0.05), guest_hunger=(0.1, 0.05), guest_thirst=(0.1, 0.05),
    hunger_rate=0.012, thirst_rate=0.018,
    happiness_decay=0.04,               # per tick, times hunger (thirst) above the soft threshold; /5 base drift
    dirty_tile_decay=0.03,              # per tick on a tile below 0.8, 0.6, 0.4 cleanliness (stacking)
    soft_threshold=0.6, hard_threshold=0.82,
    rejection_penalty=0.2,              # happiness lost when an attraction turns a guest away
    litter_amount=0.005,                # cleanliness a piece of litter removes
    litter_low=0.06, litter_high=0.26,  # litter chance per tick = clip((1 - happiness) / 2, low, high)
    litter_exit_factor=0.4,
    wait_need_factor=0.75, wait_energy=0.25,
    pass_by_shop=0.125, pass_by_specialty=0.275,
    exit_distance=4,
    repair_work_share=0.045,            # repair work = round(building cost * share)
    sell_share=0.66,                    # a sale refunds floor(building cost * share)
    survey_cost=500, max_survey=25,
    park_capacity_factor=2.2,           # guests inside at once <= floor(2.2 * ride capacity)
    breakdown_free_days=5,              # no breakdowns on the first 5 days
    rating_base=25.0, rating_happiness=30.0, rating_excitement_factor=0.8, rating_excitement_max=60.0,
    rating_water_factor=0.2, rating_water_max=8.0, rating_intensity=5.0,
    rating_uptime_max=25.0, rating_clean_max=25.0, rating_min=5.0, rating_max=100.0,
    water_excitement=1,
)


# -- the paper's appendix F ---------------------------------------------------------
_PAPER_RIDES = {
    "carousel": {"yellow": _ride(250, 1, 7, 3, 1, 1, 0.001), "blue": _ride(1250, 2, 14, 6, 4, 5, 0.002),
                 "green": _ride(7500, 16, 26, 7, 2, 4, 0.003), "red": _ride(15000, 12, 18, 11, 7, 5, 0.005)},
    "ferris_wheel": {"yellow": _ride(500, 6, 10, 4, 3, 2, 0.006), "blue": _ride(3750, 8, 22, 5, 6, 3, 0.009),
                     "green": _ride(37500, 40, 42, 9, 5, 7, 0.023), "red": _ride(55000, 28, 24, 12, 9, 8, 0.018)},
    "roller_coaster": {"yellow": _ride(1000, 10, 5, 15, 4, 6, 0.01), "blue": _ride(10000, 25, 8, 20, 8, 8, 0.02),
                       "green": _ride(30000, 40, 16, 18, 6, 9, 0.03),
                       "red": _ride(75000, 50, 10, 50, 10, 10, 0.033)},
}
_PAPER_SHOPS = {
    "drink": {"yellow": dict(building_cost=100, operating_cost=16, max_item_price=2, thirst_reduction=0.5),
              "blue": dict(building_cost=1750, operating_cost=75, max_item_price=6, thirst_reduction=0.9),
              "green": dict(building_cost=17500, operating_cost=280, max_item_price=10, thirst_reduction=0.8,
                            happiness_boost=0.4),
              "red": dict(building_cost=48000, operating_cost=600, max_item_price=15, thirst_reduction=0.4,
                          energy_boost=50, caffeinated_steps=50)},
    "food": {"yellow": dict(building_cost=150, operating_cost=28, max_item_price=4, hunger_reduction=0.4),
             "blue": dict(building_cost=3000, operating_cost=150, max_item_price=10, hunger_reduction=0.8),
             "green": dict(building_cost=32000, operating_cost=500, max_item_price=18, hunger_reduction=0.6,
                           thirst_reduction=0.6),
             "red": dict(building_cost=60000, operating_cost=1000, max_item_price=25, hunger_reduction=0.9,
                         happiness_boost=0.5)},
    "specialty": {"yellow": dict(building_cost=250, operating_cost=80, max_item_price=12, happiness_boost=0.3),
                  "blue": dict(building_cost=10000, operating_cost=200, max_item_price=5),
                  "green": dict(building_cost=50000, operating_cost=500, max_item_price=2, money_withdrawal=50,
                                min_withdrawal=5),
                  "red": dict(building_cost=10000, operating_cost=0, max_item_price=0, thirst_boost=0.5,
                              hunger_boost=0.5, money_threshold=20)},
}
# appendix F: two kinds of staff, one salary each ($100 janitor, $25 mechanic); the appendix gives no
# work rates, so each takes those of the game's staff at the same salary (the game's $100 janitor is
# its blue one: faster cleaning, two steps a tick; its first mechanic tier once cost $25)
_PAPER_STAFF = {
    "janitor": {"yellow": dict(salary=100, clean_rate=0.075, cleaning_threshold=0.95, steps=2)},
    "mechanic": {"yellow": dict(salary=25, repair_rate=2, steps=1)},
    "specialist": {},
}


@dataclass(frozen=True)
class Params:
    """One parameter set.  ``rides[subtype][subclass]``, ``shops[...]``, ``staff[...]`` and ``rules``."""

    name: str
    rides: dict
    shops: dict
    staff: dict
    rules: dict
    shop_costs: str          # "fixed": operating_cost per stocked day (paper); "items": item_cost * quantity (game)
    bankruptcy: bool         # money below zero at the end of a day ends the game (paper) or cannot happen (game)
    description: str = ""
    extra: dict = field(default_factory=dict)

    def available(self) -> dict[str, list[str]]:
        """Subclasses that may be built or hired, per subtype (the game's ``available_entities``)."""
        out = {t: sorted(self.rides[t], key=COLOURS.index) for t in RIDE_TYPES}
        out.update({t: sorted(self.shops[t], key=COLOURS.index) for t in SHOP_TYPES})
        out.update({t: sorted(self.staff.get(t, {}), key=COLOURS.index) for t in STAFF_TYPES})
        return out

    def max_price(self, kind: str, subtype: str, subclass: str) -> int:
        table = self.rides if kind == "ride" else self.shops
        p = table[subtype][subclass]
        return int(p["max_ticket_price"] if kind == "ride" else p["max_item_price"])

    def building_cost(self, kind: str, subtype: str, subclass: str) -> int:
        return int((self.rides if kind == "ride" else self.shops)[subtype][subclass]["building_cost"])

    def cheapest_build(self) -> int:
        return min(int(p["building_cost"]) for table in (self.rides, self.shops)
                   for sub in table.values() for p in sub.values())


def _paper() -> Params:
    shops = copy.deepcopy(_PAPER_SHOPS)
    for sub in shops.values():
        for p in sub.values():
            p.setdefault("item_cost", 0)
    return Params(name="paper", rides=copy.deepcopy(_PAPER_RIDES), shops=shops, staff=copy.deepcopy(_PAPER_STAFF),
                  rules=dict(_GAME_RULES), shop_costs="fixed", bankruptcy=True,
                  description="the CASSANDRA paper's appendix F tables (fixed daily shop costs, janitor $100 "
                              "and mechanic $25, bankruptcy below $0); other rules as the game")


def _game() -> Params:
    return Params(name="game", rides=copy.deepcopy(_GAME_RIDES), shops=copy.deepcopy(_GAME_SHOPS),
                  staff=copy.deepcopy(_GAME_STAFF), rules=dict(_GAME_RULES), shop_costs="items", bankruptcy=False,
                  description="the public Mini Amusement Parks game's current configuration")


PARAMETER_SETS = ("paper", "game")
DEFAULT_PARAMETERS = "paper"
_CACHE: dict[str, Params] = {}


def get_params(name: str | Params = DEFAULT_PARAMETERS) -> Params:
    """The parameter set ``name`` ("paper" or "game"); a :class:`Params` is returned as it is."""
    if isinstance(name, Params):
        return name
    if name not in PARAMETER_SETS:
        raise ValueError(f"unknown parameter set {name!r}; choose one of {list(PARAMETER_SETS)}")
    if name not in _CACHE:
        _CACHE[name] = _paper() if name == "paper" else _game()
    return _CACHE[name]


def table_rows(params: str | Params) -> list[dict[str, Any]]:
    """Every ride, shop and staff entry of a set as flat rows (for tables and tests)."""
    p = get_params(params)
    rows = []
    for kind, table in (("ride", p.rides), ("shop", p.shops), ("staff", p.staff)):
        for sub, by_col in table.items():
            for col, vals in by_col.items():
                rows.append({"kind": kind, "subtype": sub, "subclass": col, **vals})
    return rows


__all__ = ["Params", "get_params", "PARAMETER_SETS", "DEFAULT_PARAMETERS", "table_rows", "GRID_SIZE",
           "TICKS_PER_DAY", "HORIZON", "START_MONEY", "START_RATING", "COLOURS", "RIDE_TYPES", "SHOP_TYPES",
           "STAFF_TYPES", "KINDS", "SPECIALTY_NAMES", "SPECIALIST_NAMES"]
