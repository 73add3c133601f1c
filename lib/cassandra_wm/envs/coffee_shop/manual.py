"""What a learner may read about the coffee shop: the manual L and plain descriptions.

Written for this bundle in its own words, after the spirit of the coffee-shop rules
in appendix F of the CASSANDRA paper.  The numbers quoted here are the simulator's
defaults (``CoffeeShopParams``); :func:`build_manual` fills them in so the text and
the code cannot drift apart.
"""
from __future__ import annotations

MANUAL_TEMPLATE = """\
You run a small coffee shop, one day at a time, for up to {horizon} days. Each day you take exactly \
one action, then the shop opens, serves whoever shows up, and closes. Your score is the cash you hold.

How happy your customers are (satisfaction, 0 to 100) drives everything. It depends on how nice the \
shop is (upgrades and cleanliness help a lot) and on whether your price feels fair: customers have a \
price in mind, and charging above it annoys them much more than charging below it pleases them. A \
nicer shop makes people willing to pay more. Moods carry over, so yesterday's satisfaction pulls on \
today's.

Customers come because of reputation: a busy shop full of happy people spreads the word and brings \
more people on the following days. The upgrade level sets how many people in the neighbourhood might \
come at all. Demand is random from day to day. Every cup needs coffee beans ({cup_beans} unit per \
cup) and about {milk_share_pct}% of customers also want milk in their drink ({cup_milk} litre each); \
when you run out, the remaining customers leave without buying. The shop can serve at most \
{max_customers} customers a day.

At closing time you collect price times cups sold, plus {milk_premium:.2f} extra for every drink with \
milk, and you pay the day's running costs: {base_cost:.0f} plus {level_cost:.0f} per upgrade level. \
About {spoil_pct}% of the milk left at closing goes sour overnight and is thrown away. Every customer \
leaves the shop a bit dirtier.

If your cash is below zero at the end of a day the shop goes bankrupt and the game is over.

Actions (one per day):
- set_price(price): new price of a cup, from {price_low:.2f} to {price_high:.2f}; it may move at most \
{max_price_change:.2f} away from the current price in one day.
- buy_beans(units): buy {bean_low} to {bean_high} units of beans at {bean_cost:.2f} each; you need the \
cash, and stock may not exceed {bean_capacity} units.
- buy_milk(units): buy {milk_low} to {milk_high} litres of milk at {milk_cost:.2f} each; you need the \
cash, and stock may not exceed {milk_capacity} litres.
- upgrade(): raise the upgrade level by one (at most {max_level}); going from level L to L+1 costs \
{upgrade_cost:.0f} times (L+1).
- clean(): costs {clean_cost:.0f} and makes the shop spotless before opening; not allowed when \
cleanliness is already {clean_block:.0f} or more.
- wait(): do nothing special today.
Purchases are paid at once, before the shop opens. An action that breaks one of these rules is \
refused with a message, and the day runs as if you had waited.
"""

VARIABLE_DESCRIPTIONS = {
    "money": "Cash on hand at the end of the day, in dollars; below zero means bankruptcy.",
    "coffee_beans": "Units of coffee beans in stock at closing; one unit makes ten cups.",
    "milk": "Litres of milk in stock at closing, after the overnight spoilage.",
    "customers": "Number of customers served today (people turned away for lack of stock are not counted).",
    "satisfaction": "Today's customer satisfaction, 0 (furious) to 100 (delighted).",
    "cleanliness": "How clean the shop is at closing, 0 (filthy) to 100 (spotless).",
    "price": "Price of a cup of coffee in dollars; changes only through set_price.",
    "upgrade_level": "How fancy the shop is, 0 to {max_level}; changes only through upgrade.",
}

ACTION_DESCRIPTIONS = {
    "set_price": "Change the price of a cup (limited step per day).",
    "buy_beans": "Buy coffee beans, paid at once; one unit makes ten cups.",
    "buy_milk": "Buy milk in litres, paid at once.",
    "upgrade": "Improve the shop by one level; the cost grows with the level.",
    "clean": "Pay for a thorough cleaning before opening.",
    "wait": "Take no special action today.",
}

ARG_DESCRIPTIONS = {
    ("set_price", "price"): "new price in dollars",
    ("buy_beans", "units"): "units of beans to buy",
    ("buy_milk", "units"): "litres of milk to buy",
}


def build_manual(p, horizon: int) -> str:
    """Fill the manual template with the numbers of parameter set ``p``."""
    return MANUAL_TEMPLATE.format(
        horizon=horizon, cup_beans=p.beans_per_cup, milk_share_pct=round(100 * p.milk_share),
        cup_milk=p.milk_per_drink, max_customers=p.max_customers, milk_premium=p.milk_premium,
        base_cost=p.base_daily_cost, level_cost=p.level_daily_cost, spoil_pct=round(100 * p.milk_spoil),
        price_low=p.price_low, price_high=p.price_high, max_price_change=p.max_price_change,
        bean_low=p.buy_low, bean_high=p.buy_high, bean_cost=p.bean_cost, bean_capacity=p.bean_capacity,
        milk_low=p.buy_low, milk_high=p.buy_high, milk_cost=p.milk_cost, milk_capacity=p.milk_capacity,
        max_level=p.max_level, upgrade_cost=p.upgrade_cost, clean_cost=p.clean_cost,
        clean_block=p.clean_block)
