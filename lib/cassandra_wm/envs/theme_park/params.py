"""Parameter tables of the theme park, as published in the MAPs gameplay rules.

The first half of this module copies the published numbers (appendix F of the
CASSANDRA paper: every ride, shop and staff figure, easy-mode settings).  The
second half, :data:`CHOICES`, holds the numbers the rules do not give (arrival
model, rating formula, littering, patience, movement, repair speed, sell-back
value); they are our own choices, documented in ``DESIGN_NOTES.md`` and fixed.
"""
from __future__ import annotations

# -- published: easy mode -----------------------------------------------------
GRID_SIZE = 20          # the park is a 20 x 20 grid
TICKS_PER_DAY = 500     # guests act for 500 ticks each day
HORIZON = 50            # easy mode: 50 days
START_MONEY = 500       # easy mode starting budget, dollars

COLOURS = ("yellow", "blue", "green", "red")
RIDE_TYPES = ("carousel", "ferris_wheel", "roller_coaster")
SHOP_TYPES = ("drink", "food", "specialty")
STAFF_TYPES = ("janitor", "mechanic")
KINDS = ("ride", "shop", "staff")

# -- published: rides ---------------------------------------------------------
# building_cost ($), cost_per_operation ($), capacity (guests), max_price ($ per ticket),
# excitement, intensity, breakdown_rate (probability per operation)
RIDES: dict[str, dict[str, dict[str, float]]] = {
    "carousel": {
        "yellow": dict(building_cost=250, cost_per_operation=1, capacity=7, max_price=3,
                       excitement=1, intensity=1, breakdown_rate=0.001),
        "blue": dict(building_cost=1250, cost_per_operation=2, capacity=14, max_price=6,
                     excitement=4, intensity=5, breakdown_rate=0.002),
        "green": dict(building_cost=7500, cost_per_operation=16, capacity=26, max_price=7,
                      excitement=2, intensity=4, breakdown_rate=0.003),
        "red": dict(building_cost=15000, cost_per_operation=12, capacity=18, max_price=11,
                    excitement=7, intensity=5, breakdown_rate=0.005),
    },
    "ferris_wheel": {
        "yellow": dict(building_cost=500, cost_per_operation=6, capacity=10, max_price=4,
                       excitement=3, intensity=2, breakdown_rate=0.006),
        "blue": dict(building_cost=3750, cost_per_operation=8, capacity=22, max_price=5,
                     excitement=6, intensity=3, breakdown_rate=0.009),
        "green": dict(building_cost=37500, cost_per_operation=40, capacity=42, max_price=9,
                      excitement=5, intensity=7, breakdown_rate=0.023),
        "red": dict(building_cost=55000, cost_per_operation=28, capacity=24, max_price=12,
                    excitement=9, intensity=8, breakdown_rate=0.018),
    },
    "roller_coaster": {
        "yellow": dict(building_cost=1000, cost_per_operation=10, capacity=5, max_price=15,
                       excitement=4, intensity=6, breakdown_rate=0.01),
        "blue": dict(building_cost=10000, cost_per_operation=25, capacity=8, max_price=20,
                     excitement=8, intensity=8, breakdown_rate=0.02),
        "green": dict(building_cost=30000, cost_per_operation=40, capacity=16, max_price=18,
                      excitement=6, intensity=9, breakdown_rate=0.03),
        "red": dict(building_cost=75000, cost_per_operation=50, capacity=10, max_price=50,
                    excitement=10, intensity=10, breakdown_rate=0.033),
    },
}

# -- published: shops ---------------------------------------------------------
# building_cost ($), operating_cost ($ per day), max_price ($ per item) and the item's effects.
# Effects missing from a shop's entry are zero (see SHOP_EFFECTS).
SHOPS: dict[str, dict[str, dict[str, float]]] = {
    "drink": {
        "yellow": dict(building_cost=100, operating_cost=16, max_price=2, thirst_reduction=0.5),
        "blue": dict(building_cost=1750, operating_cost=75, max_price=6, thirst_reduction=0.9),
        "green": dict(building_cost=17500, operating_cost=280, max_price=10, thirst_reduction=0.8,
                      happiness_boost=0.4),
        "red": dict(building_cost=48000, operating_cost=600, max_price=15, thirst_reduction=0.4,
                    energy_boost=50, caffeinated_steps=50),
    },
    "food": {
        "yellow": dict(building_cost=150, operating_cost=28, max_price=4, hunger_reduction=0.4),
        "blue": dict(building_cost=3000, operating_cost=150, max_price=10, hunger_reduction=0.8),
        "green": dict(building_cost=32000, operating_cost=500, max_price=18, hunger_reduction=0.6,
                      thirst_reduction=0.6),
        "red": dict(building_cost=60000, operating_cost=1000, max_price=25, hunger_reduction=0.9,
                    happiness_boost=0.5),
    },
    "specialty": {
        # yellow: souvenir shop; blue: information booth; green: ATM; red: billboard
        "yellow": dict(building_cost=250, operating_cost=80, max_price=12, happiness_boost=0.3),
        "blue": dict(building_cost=10000, operating_cost=200, max_price=5),
        "green": dict(building_cost=50000, operating_cost=500, max_price=2, money_withdrawal=50),
        "red": dict(building_cost=10000, operating_cost=0, max_price=0, thirst_boost=0.5,
                    hunger_boost=0.5),
    },
}
SPECIALTY_NAMES = {"yellow": "souvenir shop", "blue": "information booth", "green": "ATM",
                   "red": "billboard"}
SHOP_EFFECTS = ("hunger_reduction", "thirst_reduction", "happiness_boost", "energy_boost",
                "caffeinated_steps", "money_withdrawal", "thirst_boost", "hunger_boost")

# -- published: staff ---------------------------------------------------------
STAFF: dict[str, dict[str, float]] = {
    "janitor": dict(salary=100),   # dollars per day
    "mechanic": dict(salary=25),   # dollars per day
}
ATM_MIN_WITHDRAWAL = 5             # ATM withdrawals shrink with each use, never below $5
BILLBOARD_ATM_MONEY = 20           # billboards send guests with less than $20 to an ATM


# -- our choices (the rules are silent on these; see DESIGN_NOTES.md) ---------
CHOICES: dict[str, float] = dict(
    # money
    sell_back_fraction=0.5,        # selling an attraction refunds half its building cost
    start_rating=30.0,             # park rating (0..100) on day 0
    # arrivals: potential visitors per tick ~ Poisson(arrival_per_capacity * total capacity)
    arrival_per_capacity=0.04,
    arrival_ticks=400,             # the gates admit new guests during the first 400 ticks
    enter_prob_base=0.15,          # P(enter) = base + slope * rating / 100
    enter_prob_slope=0.75,
    # guests on arrival
    money_low=10, money_high=40,   # dollars, uniform integers
    energy_low=80, energy_high=200,  # steps they can walk (a ride costs ride_energy)
    need_low=0.0, need_high=0.4,   # initial hunger and thirst, uniform
    happy_low=0.5, happy_high=0.8,
    patience_low=60, patience_high=160,  # ticks they will stand in queues in total
    pref_intensity_mean=5.0, pref_intensity_sd=2.0,
    # needs over time (per tick)
    hunger_rate=0.0015, thirst_rate=0.002, happiness_drift=-0.001,
    need_threshold=0.5,            # hungry / thirsty above this: seek food / drink
    buy_need=0.2,                  # food or drink is bought only above this hunger / thirst
    need_pain=0.7,                 # above this, hunger and thirst cost happiness
    need_pain_rate=0.002,          # happiness lost per tick per painful need
    unhappy_threshold=0.4,         # below this, guests favour rides
    leave_happiness=0.15,          # guests leave below this happiness
    happy_exit=0.6,                # a departure with happiness >= 0.6 counts as happy
    min_money=1.0,                 # guests with less than $1 leave
    update_every=20,               # needs, litter and patience are updated every 20 ticks
    decision_every=5,              # guests act (arrive, visit, choose, plan walks) every 5 ticks
    # choosing targets
    need_boost=6.0, unhappy_ride_boost=3.0, near_scale=8.0,
    # rides
    ride_duration_carousel=4, ride_duration_ferris_wheel=8, ride_duration_roller_coaster=6,
    ride_wait_per_seat=0.5,        # wait after first boarding = ceil(0.5 * empty seats) ticks
    ride_happy_base=0.05, ride_happy_excitement=0.04, ride_happy_intensity_gap=0.02,
    ride_energy=15,
    shop_time=6,                   # ticks a shop takes to serve a guest (no queue limit)
    # unpleasant events (happiness)
    reject_penalty=0.1,            # cannot afford, or ride broken down
    dirty_refuse_penalty=0.05,
    queue_quit_penalty=0.1,
    dirty_ride=0.4,                # rides dirtier than this may be refused, P = (0.4 - c) / 0.4
    dirty_tile=0.5,                # standing on tiles below this cleanliness costs happiness
    dirty_tile_rate=0.004,         # per tick, times (0.5 - cleanliness)
    # litter (probability per tick; unhappy guests litter more)
    litter_base=0.002, litter_unhappy=0.01, litter_amount=0.01, shop_litter_prob=0.05,
    # passing by attractions
    pass_ride=0.10, pass_need=0.5, pass_shop=0.05, pass_souvenir=0.3, pass_info=0.2,
    pass_atm_poor=0.5, pass_atm=0.05, pass_billboard=0.3,
    # specialty shops
    souvenir_decay=0.5, atm_decay=0.5, billboard_cap=0.95,
    # staff
    clean_rate=0.05,               # dirt removed per janitor per tick (tile and adjacent attractions)
    clean_chunk=5,                 # a janitor who starts cleaning keeps at it for 5 ticks
    janitor_radius=8,              # janitors look for dirt within 8 path steps
    janitor_retarget=20,           # and pick a new spot every 20 ticks
    janitor_threshold=0.05,        # dirt below this is not worth a trip
    janitor_distance_cost=0.01,
    repair_work=25.0,              # one mechanic needs 25 ticks to repair a ride
    # park rating (0..100), updated at the end of each day
    rating_excitement=35.0, rating_excitement_scale=25.0,
    rating_happy=25.0, rating_happy_half=50.0,
    rating_clean=15.0, rating_uptime=15.0, rating_open_bonus=10.0,
    rating_intensity=2.5, rating_memory=0.6,
)
