"""Notebook helpers for the coffee shop: its own figure in notebook 01."""
from __future__ import annotations

from typing import Any


def figures(spec: Any, flat: Any, **_: Any) -> list[dict]:
    """The economics of a day: price against customers served, and customers against the cash change.

    ``flat`` is the transitions as :func:`cassandra_wm.data.flatten` lays them out."""
    import matplotlib.pyplot as plt

    ok = flat[flat["valid"]]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    sc = a1.scatter(ok["next_price"], ok["next_customers"], c=ok["next_upgrade_level"], cmap="viridis", s=8, alpha=0.6)
    a1.set_xlabel("price")
    a1.set_ylabel("customers served")
    a2.scatter(ok["next_customers"], ok["next_money"] - ok["money"], c=ok["next_upgrade_level"], cmap="viridis",
               s=8, alpha=0.6)
    a2.axhline(0, color="0.5", lw=0.8)
    a2.set_xlabel("customers served")
    a2.set_ylabel("cash change over the day")
    fig.colorbar(sc, ax=[a1, a2], label="upgrade level")
    return [{"name": "data_coffee_shop_economics", "figure": fig, "caption": (
        "**The economics of a day.** Each point is one valid day: the price charged against customers served, and "
        "the day's cash change, coloured by upgrade level. A higher level draws more customers and makes people "
        "accept a higher price; purchases and upgrades show up as negative cash changes.")}]


__all__ = ["figures"]
