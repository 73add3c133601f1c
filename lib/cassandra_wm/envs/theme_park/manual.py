"""The manual L of the theme park: the rules a player (or an LLM) reads, in our own words.

It describes the game as the paper's appendix F does (qualitatively, with the parameter tables of
the selected set), plus the action text.  Numbers the appendix leaves out (guest needs, rating
weights, litter rates) stay out of it, as they would for a player of the original game.
"""
from __future__ import annotations

from .params import GRID_SIZE, HORIZON, SPECIALIST_NAMES, SPECIALTY_NAMES, START_MONEY, TICKS_PER_DAY, get_params

_EFFECTS = {"hunger_reduction": "hunger -{}", "thirst_reduction": "thirst -{}", "happiness_boost": "happiness +{}",
            "energy_boost": "energy +{}", "caffeinated_steps": "{} faster steps", "money_withdrawal": "withdraw ${}",
            "min_withdrawal": "at least ${}", "thirst_boost": "thirst +{}", "hunger_boost": "hunger +{}",
            "money_threshold": "sends guests under ${} to an ATM"}


def _ride_table(p) -> str:
    rows = ["| ride | subclass | price to build | cost of each run | riders per run | ticket price limit | "
            "excitement | intensity | chance of breaking down per run |", "|---|---|---|---|---|---|---|---|---|"]
    for sub, by in p.rides.items():
        for col, t in by.items():
            rows.append(f"| {sub} | {col} | {t['building_cost']} | {t['cost_per_operation']} | {t['capacity']} | "
                        f"{t['max_ticket_price']} | {t['excitement']} | {t['intensity']} | {t['breakdown_rate']:g} |")
    return "\n".join(rows)


def _shop_table(p) -> str:
    fixed = p.shop_costs == "fixed"
    cost_col = "operating cost per stocked day" if fixed else "cost per item stocked"
    rows = [f"| shop | subclass | building cost | {cost_col} | max item price | effect of one purchase |",
            "|---|---|---|---|---|---|"]
    for sub, by in p.shops.items():
        for col, t in by.items():
            eff = "; ".join(fmt.format(f"{t[k]:g}") for k, fmt in _EFFECTS.items() if k in t)
            if sub == "specialty":
                eff = SPECIALTY_NAMES[col] + (f": {eff}" if eff else "")
            cost = t["operating_cost"] if fixed else t["item_cost"]
            rows.append(f"| {sub} | {col} | {t['building_cost']} | {cost} | {t['max_item_price']} | {eff or '-'} |")
    return "\n".join(rows)


def _staff_table(p) -> str:
    rows = ["| staff | subclass | salary per day | work |", "|---|---|---|---|"]
    for sub, by in p.staff.items():
        for col, t in by.items():
            if sub == "janitor":
                work = f"cleans {t['clean_rate']:g} per tick, until a tile reaches {t['cleaning_threshold']:g}"
            elif sub == "mechanic":
                work = f"{t['repair_rate']} units of repair work per tick"
            else:
                work = SPECIALIST_NAMES[col]
            rows.append(f"| {sub} | {col} | {t['salary']} | {work} |")
    return "\n".join(rows)


def build_manual(horizon: int = HORIZON, start_money: float = START_MONEY, parameters: str = "paper") -> str:
    """The manual text L for a parameter set."""
    p = get_params(parameters)
    fixed = p.shop_costs == "fixed"
    sell = int(round(p.rules["sell_share"] * 100))
    ending = ("If your money is below zero at the end of a day you are bankrupt and the game ends."
              if p.bankruptcy else
              "Money never goes below zero: a ride waits when you cannot pay its run, staff you cannot pay are "
              "dismissed, and shops stock only what you can afford.")
    stock = (("Shops: each morning a shop with an order quantity above zero is stocked with that many items at "
              "its fixed operating cost for the day (whatever it sells); with an order quantity of zero it stays "
              "closed and costs nothing. A shop that runs out of items is out of service until the next morning.")
             if fixed else
             ("Shops: each morning a shop buys its order quantity of items at its item cost (if money is short, the "
              "money is shared out evenly between shops). A shop that runs out is out of service until the next "
              "morning."))
    staff_kinds = " and ".join(f"{k}s" for k, v in p.staff.items() if v)
    return f"""# Mini Amusement Parks: how the game works

You are the CEO of an amusement park on a {GRID_SIZE} x {GRID_SIZE} grid of tiles, for {horizon} days, starting
with ${start_money:g}. Each morning you take exactly one action; then the park opens and guests spend a day of
{TICKS_PER_DAY} ticks in it. The aim is to end with as much money as possible. {ending}

## The park
Tiles are addressed (x, y), both from 0 to {GRID_SIZE - 1}. Paths join the entrance to the exit; guests walk only on
paths. Water tiles cannot be built on, but each water tile touching a ride adds one to its excitement. Every ride
and shop must stand on an empty tile that touches a path tile (up, down, left or right).

## Rides
Rides draw guests and keep them happy. Each has a capacity (guests per run; the capacities of all rides together
decide how many guests may be in the park at once and how many come by), an excitement (makes riders happier and
raises the park rating), an intensity (the park rating suffers when the average intensity is far from 5), a
ticket price (up to its maximum; guests who cannot pay are turned away and get unhappier) and a cost per
operation (paid each time it runs; rides have no daily cost). A ride runs when guests have boarded, after a short
wait that is longer for big rides and shorter as more guests board; a full ride leaves at once. After a run a ride
may break down; a broken ride takes nobody until a mechanic has repaired it, and repairs cost money while they last.
Subtypes: carousels (cheap, rarely break), ferris wheels (big capacity), roller coasters (exciting, break more).
Subclasses yellow, blue, green, red go from starter rides to thrill rides.

{_ride_table(p)}

## Shops
Food shops ease hunger, drink shops ease thirst, specialty shops do other things (souvenir shop, information
booth, ATM, billboard). Guests never head for a specialty shop; they only drop in when they walk past one.
{stock} Guests who cannot pay, or find the shop closed or dirty, are turned away unhappier.

{_shop_table(p)}

## Staff
Staff are hired onto a path or attraction tile and paid every evening ({staff_kinds}). Janitors walk towards
dirty tiles and clean them; each tick of cleaning costs $1. Mechanics walk to broken rides and repair them; each
tick of repair work costs money. Several staff on one tile work together.

{_staff_table(p)}

## Guests
Guests arrive during the day while there is room; how many come depends on the total ride capacity and the
park rating. Each brings some money and energy; walking uses energy. Hunger and thirst grow through the day;
hungry guests look for food, thirsty ones for drinks, unhappy ones for rides, otherwise any ride, food or drink
shop. They prefer attractions that are near and that they have visited less, never the same one twice in a row,
and may step into an attraction they pass. They leave when out of money or energy, too hungry, too thirsty or
too unhappy, or when nothing appeals. Guests litter (unhappy ones more), dirty tiles make guests unhappier and
dirty attractions turn guests away.

## Park rating
A number from 5 to 100, set each morning from how happy yesterday's guests were, the rides' excitement, how
clean the park is, how much of yesterday the rides and shops were in service, and how close the average ride
intensity is to 5. It is the chance that a passer-by comes in.

## Actions (one per morning), written as text
- `place(x=X, y=Y, type='ride', subtype='carousel', subclass='yellow', price=P)` builds a ride; price is a
  whole number up to the maximum ticket price.
- `place(x=X, y=Y, type='shop', subtype='drink', subclass='yellow', price=P, order_quantity=Q)` builds a shop
  that stocks Q items each morning.
- `place(x=X, y=Y, type='staff', subtype='janitor', subclass='yellow')` hires staff onto a path or attraction.
- `modify(x=X, y=Y, type='ride', price=P)` or `modify(x=X, y=Y, type='shop', price=P, order_quantity=Q)` changes
  prices and stock.
- `move(x=X, y=Y, type=T, subtype=S, subclass=C, new_x=X2, new_y=Y2)` moves a ride, shop or staff member.
- `remove(x=X, y=Y, type=T, subtype=S, subclass=C)` sells a ride or shop for {sell}% of its building cost, or
  dismisses a staff member.
- `survey_guests(num_guests=K)` asks up to 25 of the day's guests why they left (${p.rules['survey_cost']} each).
- `wait()` does nothing.
Subtypes are written with underscores (`ferris_wheel`, `roller_coaster`). An action that breaks a rule
(too expensive, off the path, an occupied tile, a price above the maximum, a missing or extra argument, a
fractional price) is refused and the day runs as if you had waited.
"""


__all__ = ["build_manual"]
