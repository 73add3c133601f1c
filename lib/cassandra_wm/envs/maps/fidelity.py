"""Side by side: the Python port (``theme_park``, game parameters) against the real game (``maps``).

* :data:`POLICIES`: scripted policies that read only the observation, so both games can play them:
  a lone cheap ride, a ride with a janitor, a growing park at maximum prices, a large park with a
  big budget.
* :func:`play`: one episode of a policy in an environment, as per-day figures.
* :func:`agreement`: per-day means over seeds, and whether they agree (within 25% of the real
  game's mean, or within two standard errors of the difference).
* :func:`validity_cases` and :func:`compare_validity`: a varied set of valid and invalid action
  texts, and whether both games give the same validity and reason.

``benchmarks/maps_fidelity.py`` runs all of it and prints the tables.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..theme_park.actions import reason_of
from ..theme_park.state import free_sites

METRICS = {"money": "/money", "revenue": "/revenue", "guests": "/guests/total_guests",
           "park_rating": "/park_rating", "min_cleanliness": "/min_cleanliness"}
MAX_PRICE = {  # the game's maximum prices (its configuration), used by the scripted policies
    ("ride", "carousel", "yellow"): 4, ("ride", "carousel", "blue"): 6, ("ride", "ferris_wheel", "yellow"): 5,
    ("ride", "roller_coaster", "yellow"): 10, ("ride", "ferris_wheel", "blue"): 7,
    ("ride", "roller_coaster", "blue"): 20, ("ride", "carousel", "green"): 14, ("ride", "carousel", "red"): 24,
    ("ride", "ferris_wheel", "green"): 15, ("ride", "ferris_wheel", "red"): 28,
    ("ride", "roller_coaster", "green"): 34, ("ride", "roller_coaster", "red"): 50,
    ("shop", "drink", "yellow"): 3, ("shop", "food", "yellow"): 5, ("shop", "specialty", "yellow"): 15,
    ("shop", "drink", "blue"): 6, ("shop", "food", "blue"): 9,
}
COST = {("ride", "carousel", "yellow"): 250, ("ride", "ferris_wheel", "yellow"): 600,
        ("ride", "roller_coaster", "yellow"): 1000, ("shop", "drink", "yellow"): 100, ("shop", "food", "yellow"): 200,
        ("shop", "specialty", "yellow"): 250}


def _place(state: dict, kind: str, sub: str, col: str, k: int = 0, quantity: int = 60) -> str:
    sites = free_sites(state)
    if not sites:
        return "wait()"
    x, y = sites[min(k, len(sites) - 1)]
    price = MAX_PRICE.get((kind, sub, col), 1)
    extra = f", order_quantity={quantity}" if kind == "shop" else ""
    return f"place(x={x}, y={y}, type='{kind}', subtype='{sub}', subclass='{col}', price={price}{extra})"


def _path_next_to(state: dict, x: int, y: int) -> tuple[int, int]:
    paths = {(t["x"], t["y"]) for t in state["paths"]}
    for dx, dy in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        if (x + dx, y + dy) in paths:
            return x + dx, y + dy
    return next(iter(sorted(paths)))


def lone_ride(state: dict, day: int) -> str:
    return _place(state, "ride", "carousel", "yellow") if day == 0 else "wait()"


def ride_and_janitor(state: dict, day: int) -> str:
    if day == 0:
        return _place(state, "ride", "carousel", "yellow")
    if day == 1 and state["rides"]["ride_list"]:
        r = state["rides"]["ride_list"][0]
        x, y = _path_next_to(state, r["x"], r["y"])
        return f"place(x={x}, y={y}, type='staff', subtype='janitor', subclass='yellow')"
    return "wait()"


_GROWTH = [("ride", "carousel", "yellow"), ("shop", "drink", "yellow"), ("shop", "food", "yellow"),
           ("ride", "ferris_wheel", "yellow"), ("ride", "roller_coaster", "yellow"), ("shop", "specialty", "yellow")]


def growing_park(state: dict, day: int) -> str:
    """Every day, the next build of a fixed cycle of cheap attractions at maximum prices, when affordable."""
    built = state["rides"]["total_rides"] + state["shops"]["total_shops"]
    kind, sub, col = _GROWTH[built % len(_GROWTH)]
    if state["money"] < COST[(kind, sub, col)]:
        return "wait()"
    return _place(state, kind, sub, col)


_BIG = ([("ride", t, c) for c in ("yellow", "blue", "green", "red") for t in ("carousel", "ferris_wheel",
                                                                             "roller_coaster")] * 2)[:25] + \
       [("shop", "drink", "yellow"), ("shop", "food", "yellow"), ("shop", "drink", "blue"), ("shop", "food", "blue")]


def large_park(state: dict, day: int) -> str:
    """A big budget: 25 rides and 4 shops, one a day, then two janitors and two mechanics."""
    if day < len(_BIG):
        kind, sub, col = _BIG[day]
        return _place(state, kind, sub, col, quantity=200)
    k = day - len(_BIG)
    if k < 4 and state["rides"]["ride_list"]:
        r = state["rides"]["ride_list"][(k * 7) % len(state["rides"]["ride_list"])]
        x, y = _path_next_to(state, r["x"], r["y"])
        who = "janitor" if k < 2 else "mechanic"
        return f"place(x={x}, y={y}, type='staff', subtype='{who}', subclass='yellow')"
    return "wait()"


POLICIES: dict[str, tuple[Callable[[dict, int], str], dict]] = {
    "lone_ride": (lone_ride, {}),
    "ride_and_janitor": (ride_and_janitor, {}),
    "growing_park": (growing_park, {}),
    "large_park": (large_park, {"start_money": 1_000_000}),
}


def _get(state: dict, pointer: str) -> float:
    cur: Any = state
    for tok in pointer[1:].split("/"):
        cur = cur[tok]
    return float(cur)


def play(env: Any, policy: Callable[[dict, int], str], seed: int, days: int) -> dict[str, list[float]]:
    """One episode; returns per-day figures (after each day) and the validity of each action."""
    s = env.reset(seed)
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    out["valid"] = []
    for day in range(days):
        a = policy(s, day)
        s, valid, _ = env.step(a)
        for m, p in METRICS.items():
            out[m].append(_get(s, p))
        out["valid"].append(float(valid))
        if env.is_done(s):
            break
    return out


def agreement(real: list[dict], ours: list[dict], tol: float = 0.25) -> dict[str, dict]:
    """Per metric: per-day means and standard errors of both, and the share of days that agree."""
    res = {}
    for m in METRICS:
        days = min(min(len(r[m]) for r in real), min(len(o[m]) for o in ours))
        a = np.array([r[m][:days] for r in real])
        b = np.array([o[m][:days] for o in ours])
        ma, mb = a.mean(0), b.mean(0)
        se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b)) if len(a) > 1 and len(b) > 1 \
            else np.zeros(days)
        ok = (np.abs(ma - mb) <= tol * np.abs(ma) + 1e-9) | (np.abs(ma - mb) <= 2 * se)
        res[m] = {"real": ma.tolist(), "ours": mb.tolist(), "se": se.tolist(), "agree": ok.tolist(),
                  "share": float(ok.mean()) if days else float("nan"), "real_mean": float(ma.mean()),
                  "ours_mean": float(mb.mean())}
    return res


# -- action validity -----------------------------------------------------------------

def validity_setup(state: dict) -> list[str]:
    """Three mornings that build a small park: a carousel, a drink shop, a janitor next to the carousel."""
    sites = free_sites(state)
    (x0, y0), (x1, y1) = sites[0], sites[1]
    px, py = _path_next_to(state, x0, y0)
    return [f"place(x={x0}, y={y0}, type='ride', subtype='carousel', subclass='yellow', price=4)",
            f"place(x={x1}, y={y1}, type='shop', subtype='drink', subclass='yellow', price=3, order_quantity=20)",
            f"place(x={px}, y={py}, type='staff', subtype='janitor', subclass='yellow')"]


def validity_cases(state: dict) -> list[str]:
    """A varied set of valid and invalid action texts for the park :func:`validity_setup` built."""
    sites = free_sites(state)
    fx, fy = sites[0]
    r = state["rides"]["ride_list"][0]
    s = state["shops"]["shop_list"][0]
    j = state["staff"]["staff_list"][0]
    rx, ry, sx, sy, jx, jy = r["x"], r["y"], s["x"], s["y"], j["x"], j["y"]
    px, py = state["paths"][0]["x"], state["paths"][0]["y"]
    ex, ey = state["entrance"]
    far = next((x, y) for x in range(20) for y in range(20)
               if all(abs(x - t["x"]) + abs(y - t["y"]) > 1 for t in state["paths"])
               and (x, y) not in {(w["x"], w["y"]) for w in state["waters"]})
    wx, wy = (state["waters"][0]["x"], state["waters"][0]["y"]) if state["waters"] else far
    ride = "type='ride', subtype='carousel', subclass='yellow'"
    return [
        "wait()", "wait", "wait(", "noop()", "Wait()", "place()", "wait(x=1)",
        f"place(x={fx}, y={fy}, {ride}, price=4)",
        f"place(x={fx}, y={fy}, {ride}, price=2)",
        f"place(x={fx}, y={fy}, {ride}, price=5)",
        f"place(x={fx}, y={fy}, {ride}, price=-1)",
        f"place(x={fx}, y={fy}, {ride}, price=2.0)",
        f"place(x={fx}, y={fy}, {ride}, price='2')",
        f"place(x={fx}, y={fy}, {ride})",
        f"place(x={fx}, y={fy}, {ride}, price=4, order_quantity=10)",
        f"place(x={fx}, y={fy}, type='ride', subtype='ferris wheel', subclass='yellow', price=4)",
        f"place(x={fx}, y={fy}, type='ride', subtype='carousel', subclass='purple', price=4)",
        f"place(x={fx}, y={fy}, type='ride', subtype='roller_coaster', subclass='red', price=50)",
        f"place(x={fx}, y={fy}, type='attraction', subtype='carousel', subclass='yellow', price=4)",
        f"place(x=25, y={fy}, {ride}, price=4)",
        f"place(x={fx}, y=-1, {ride}, price=4)",
        f"place(x={far[0]}, y={far[1]}, {ride}, price=4)",
        f"place(x={px}, y={py}, {ride}, price=4)",
        f"place(x={rx}, y={ry}, {ride}, price=4)",
        f"place(x={wx}, y={wy}, {ride}, price=4)",
        f"place(x={fx}, y={fy}, type='shop', subtype='food', subclass='yellow', price=5, order_quantity=10)",
        f"place(x={fx}, y={fy}, type='shop', subtype='food', subclass='yellow', price=5)",
        f"place(x={fx}, y={fy}, type='shop', subtype='food', subclass='yellow', price=6, order_quantity=10)",
        f"place(x={fx}, y={fy}, type='shop', subtype='food', subclass='yellow', price=5, order_quantity=-3)",
        f"place(x={fx}, y={fy}, type='shop', subtype='snacks', subclass='yellow', price=1, order_quantity=1)",
        f"place(x={fx}, y={fy}, type='shop', subtype='drink', subclass='green', price=1, order_quantity=1)",
        f"place(x={px}, y={py}, type='staff', subtype='janitor', subclass='yellow')",
        f"place(x={px}, y={py}, type='staff', subtype='mechanic', subclass='yellow', price=3)",
        f"place(x={px}, y={py}, type='staff', subtype='janitor')",
        f"place(x={px}, y={py}, type='staff', subtype='cleaner', subclass='yellow')",
        f"place(x={px}, y={py}, type='staff', subtype='janitor', subclass='pink')",
        f"place(x={far[0]}, y={far[1]}, type='staff', subtype='janitor', subclass='yellow')",
        f"place(x={rx}, y={ry}, type='staff', subtype='mechanic', subclass='yellow')",
        f"place(x={ex}, y={ey}, type='staff', subtype='janitor', subclass='yellow')",
        f"place(x=30, y=0, type='staff', subtype='janitor', subclass='yellow')",
        f"place(x={px}, y={py}, type='staff', subtype='specialist', subclass='yellow')",
        f"place(x={px}, y={py}, type='staff', subtype='janitor', subclass='blue')",
        f"remove(x={rx}, y={ry}, {ride})",
        f"remove(x={rx}, y={ry}, type='ride', subtype='ferris_wheel', subclass='red')",
        f"remove(x={rx}, y={ry}, type='shop', subtype='drink', subclass='yellow')",
        f"remove(x={sx}, y={sy}, type='shop', subtype='drink', subclass='yellow')",
        f"remove(x={rx}, y={ry}, type='ride')",
        f"remove(x={fx}, y={fy}, {ride})",
        f"remove(x=-2, y={ry}, {ride})",
        f"remove(x={jx}, y={jy}, type='staff', subtype='janitor', subclass='yellow')",
        f"remove(x={jx}, y={jy}, type='staff', subtype='mechanic', subclass='yellow')",
        f"remove(x={jx}, y={jy}, type='staff', subtype='janitor', subclass='blue')",
        f"remove(x={fx}, y={fy}, type='staff', subtype='janitor', subclass='yellow')",
        f"modify(x={rx}, y={ry}, type='ride', price=3)",
        f"modify(x={rx}, y={ry}, type='ride', price=9)",
        f"modify(x={rx}, y={ry}, type='ride', price=-2)",
        f"modify(x={rx}, y={ry}, type='ride', price=3.5)",
        f"modify(x={rx}, y={ry}, type='ride')",
        f"modify(x={sx}, y={sy}, type='shop', price=2, order_quantity=40)",
        f"modify(x={sx}, y={sy}, type='shop', price=2)",
        f"modify(x={sx}, y={sy}, type='shop', price=4, order_quantity=40)",
        f"modify(x={sx}, y={sy}, type='ride', price=2)",
        f"modify(x={fx}, y={fy}, type='ride', price=2)",
        f"modify(x=20, y={fy}, type='ride', price=2)",
        f"move(x={rx}, y={ry}, {ride}, new_x={fx}, new_y={fy})",
        f"move(x={rx}, y={ry}, {ride}, new_x={far[0]}, new_y={far[1]})",
        f"move(x={rx}, y={ry}, {ride}, new_x={sx}, new_y={sy})",
        f"move(x={rx}, y={ry}, {ride}, new_x=40, new_y=1)",
        f"move(x={rx}, y={ry}, type='shop', subtype='drink', subclass='yellow', new_x={fx}, new_y={fy})",
        f"move(x={rx}, y={ry}, new_x={fx}, new_y={fy})",
        f"move(x={jx}, y={jy}, type='staff', subtype='janitor', subclass='yellow', new_x={px}, new_y={py})",
        f"move(x={jx}, y={jy}, type='staff', subtype='janitor', subclass='yellow', new_x={far[0]}, new_y={far[1]})",
        f"move(x={px}, y={py}, type='staff', subtype='mechanic', subclass='yellow', new_x={jx}, new_y={jy})",
        "survey_guests(num_guests=0)", "survey_guests(num_guests=30)", "survey_guests(num_guests=1)",
        "survey_guests(num_guests=-1)", "survey_guests()",
        "set_research(research_speed='fast', research_topics=['carousel'])",
        f"add_path(x={fx}, y={fy})", f"remove_path(x={px}, y={py})", f"add_water(x={fx}, y={fy})",
        "place(x=1, y=2, type='ride', subtype='carousel', subclass='yellow', price=4, colour='red')",
        "place(1, 2)", "42", "", "place(x=1, y=2, type=ride, subtype='carousel', subclass='yellow', price=4)",
    ]


def compare_validity(real_env: Any, our_env: Any, seed: int = 3) -> list[dict]:
    """Each case of :func:`validity_cases` in both games, from the same small park; validity and reason."""
    s0 = our_env.reset(seed)
    setup = validity_setup(s0)
    for a in setup:
        s0, ok, info = our_env.step(a)
        if not ok:
            raise RuntimeError(f"setup action refused by the Python port: {a}: {info.get('error')}")
    cases = validity_cases(s0)
    rows = []
    for text in cases:
        outcomes = []
        for env in (real_env, our_env):
            s = env.reset(seed)
            for a in setup:
                s, ok, info = env.step(a)
            _, valid, info = env.step(text)
            reason = info.get("reason") or (reason_of(info.get("error") or "") if not valid else None)
            outcomes.append((bool(valid), reason, info.get("error")))
        rows.append({"action": text, "real_valid": outcomes[0][0], "real_reason": outcomes[0][1],
                     "real_message": outcomes[0][2], "ours_valid": outcomes[1][0], "ours_reason": outcomes[1][1],
                     "ours_message": outcomes[1][2],
                     "same": outcomes[0][:2] == outcomes[1][:2], "same_text": outcomes[0][2] == outcomes[1][2]})
    return rows


__all__ = ["POLICIES", "METRICS", "play", "agreement", "validity_cases", "validity_setup", "compare_validity"]
