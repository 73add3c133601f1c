"""The manual L of the theme park: the rules a player (or an LLM) reads, in our own words.

It states the published parameter tables exactly and describes the game qualitatively; the
numbers we chose where the published rules are silent (arrival rates, rating formula,
littering ...) stay out of it, as they would for a player of the original game.
"""
from __future__ import annotations

from .params import (ATM_MIN_WITHDRAWAL, BILLBOARD_ATM_MONEY, CHOICES, GRID_SIZE, HORIZON, RIDES, SHOPS,
                     SPECIALTY_NAMES, STAFF, START_MONEY, TICKS_PER_DAY)


def _ride_table() -> str:
    rows = ["| ride | colour | building cost ($) | cost per operation ($) | capacity | max ticket ($) | "
            "excitement | intensity | breakdown rate |",
            "|---|---|---|---|---|---|---|---|---|"]
    for sub, by_colour in RIDES.items():
        for col, p in by_colour.items():
            rows.append(f"| {sub} | {col} | {p['building_cost']:g} | {p['cost_per_operation']:g} | "
                        f"{p['capacity']:g} | {p['max_price']:g} | {p['excitement']:g} | {p['intensity']:g} | "
                        f"{p['breakdown_rate']:g} |")
    return "\n".join(rows)


def _shop_effects(sub: str, col: str, p: dict) -> str:
    parts = []
    names = {"hunger_reduction": "hunger -{}", "thirst_reduction": "thirst -{}",
             "happiness_boost": "happiness +{}", "energy_boost": "energy +{}",
             "caffeinated_steps": "{} caffeinated steps", "money_withdrawal": "withdraw ${}",
             "thirst_boost": "thirst +{}", "hunger_boost": "hunger +{}"}
    for k, fmt in names.items():
        if k in p:
            parts.append(fmt.format(f"{p[k]:g}"))
    if sub == "specialty":
        parts.insert(0, SPECIALTY_NAMES[col])
    return "; ".join(parts) or "-"


def _shop_table() -> str:
    rows = ["| shop | colour | building cost ($) | operating cost ($/day) | max price ($) | what a purchase does |",
            "|---|---|---|---|---|---|"]
    for sub, by_colour in SHOPS.items():
        for col, p in by_colour.items():
            rows.append(f"| {sub} | {col} | {p['building_cost']:g} | {p['operating_cost']:g} | "
                        f"{p['max_price']:g} | {_shop_effects(sub, col, p)} |")
    return "\n".join(rows)


def build_manual(horizon: int = HORIZON, start_money: float = START_MONEY) -> str:
    """The manual text L."""
    sell = int(CHOICES["sell_back_fraction"] * 100)
    return f"""# Theme park: how the game works

You run an amusement park on a {GRID_SIZE} x {GRID_SIZE} grid for {horizon} days, starting with ${start_money:g}.
Each morning you take exactly one action; then the park opens and guests spend a day of
{TICKS_PER_DAY} ticks in it. The aim is to end with as much money as possible. If your money is
below zero at the end of a day you are bankrupt and the game ends.

## The grid
Tiles are empty, paths, or hold one attraction. The entrance and the exit are path tiles on the
border, joined by paths; paths never change. Guests and staff walk only on paths. A ride or shop
goes on an empty tile that touches a path tile (up, down, left or right); one attraction per tile.
Coordinates are x (column) and y (row), both 0..{GRID_SIZE - 1}.

## Money
- Building a ride or shop costs its building cost at once. Selling one refunds {sell}% of it.
- Rides cost their cost per operation every time they run; a ride runs only when guests are on it.
- Shops cost their operating cost every day, used or not.
- Staff are paid every evening: janitor ${STAFF['janitor']['salary']:g} a day, mechanic ${STAFF['mechanic']['salary']:g} a day.
  Hiring needs at least one day's salary in hand.
- Revenue is ride tickets plus shop sales. Profit = revenue - expenses of the day
  (ride operations + shop operating costs + salaries); money changes by profit minus what the
  morning's action cost.

## Rides
Carousels are cheap and reliable; ferris wheels hold the most guests; roller coasters are the most
exciting and intense and break down the most. Yellow is the starter colour, blue a step up, green
has the biggest capacity but duller rides, red are thrill rides with the highest prices that break
down often. A ride waits a few ticks after its first guest boards (longer when many seats are
empty) and leaves at once when full. After a run it may break down (its breakdown rate is the chance
per run). A broken ride takes nobody until a mechanic repairs it; broken rides stay broken
overnight.

{_ride_table()}

## Shops
Food shops feed hungry guests, drink shops serve thirsty ones; blue versions work better, green
ones do two things, red ones are luxury (coffee caffeinates: more energy and double walking speed for
a while; luxury food also cheers guests up). Guests never walk to a specialty shop on purpose; they
only step in when passing one. Souvenirs cheer guests up less with every further souvenir. The
information booth tells guests which rides they can afford. An ATM lets guests withdraw money, a
smaller amount each time (never below ${ATM_MIN_WITHDRAWAL}). A billboard is free to the guest: it makes
guests hungrier and thirstier, makes them forget which attractions they have already tried, and
sends guests with less than ${BILLBOARD_ATM_MONEY} to an ATM.

{_shop_table()}

## Staff
Janitors walk toward the dirtiest nearby spots and clean the path tile they stand on and the
attractions touching it. Mechanics walk to the nearest broken ride and repair it; a repair takes a
while. Several staff of the same kind on one tile work proportionally faster. Staff stay where they
finish the day.

## Guests
Only rides give the park capacity: the total capacity of your rides caps how many guests can be
inside at once and sets how many people consider coming. A park without rides gets no visitors.
The park rating decides what share of them come in. Guests arrive with some money, energy, hunger,
thirst and happiness. Walking uses energy; hunger and thirst grow over the day and hurt happiness
when high. Hungry guests head for food, thirsty ones for drinks, unhappy ones for rides; otherwise
they pick any ride, food or drink shop, preferring nearby attractions and ones they have tried less,
and never the same attraction twice in a row. On the way they may drop into attractions they pass.
A guest turned away (ride broken, or too expensive) loses happiness; so does one who waits too long
in a queue. Guests leave when out of money, energy or patience, or when too hungry, thirsty or unhappy;
everyone leaves at closing time. Guests litter, unhappy ones more; dirt stays until a janitor cleans
it. Dirty paths make guests unhappy and guests may refuse a dirty ride.

## Park rating
A number from 0 to 100, updated every evening. It moves toward a score that rises with the total
excitement of your rides and with the number of guests who leave happy, and falls when the park is
dirty (its dirtiest tile counts), when rides were broken for part of the day, or when the average
intensity of your rides is far from 5. Tomorrow's visitors depend on tonight's rating.

## Actions (one per day)
- place(x, y, type, subtype, subclass, price): build a ride (type='ride', subtype carousel,
  ferris_wheel or roller_coaster) or shop (type='shop', subtype drink, food or specialty) of a colour
  (subclass yellow, blue, green or red) with a price from 0 up to its maximum; or hire staff
  (type='staff', subtype janitor or mechanic, standing on a path tile; subclass and price unused).
- remove(x, y, type, subtype): sell the ride or shop on the tile, or dismiss a staff member there
  (subtype says janitor or mechanic).
- modify(x, y, price): set a new price for the ride or shop on the tile.
- move(x, y, new_x, new_y, subtype): send a staff member to another path tile.
- wait(): do nothing.
Written as text, e.g. place(x=1, y=2, type='ride', subtype='carousel', subclass='yellow', price=2).
An action that is not allowed (unaffordable, out of bounds, tile taken, not next to a path, staff
off the paths, price above the maximum or negative, unknown kind, nothing there to remove) changes
nothing, and the day runs anyway.
"""


MANUAL = build_manual()

__all__ = ["MANUAL", "build_manual"]
