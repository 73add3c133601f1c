"""Actions of the theme park: their specs, validity checks and deterministic effects.

One action is taken each morning, before the park opens:

* ``place(x, y, type, subtype, subclass, price)``: build a ride or shop (paying its building
  cost now), or hire a janitor or mechanic (``type='staff'``; subclass and price are not used);
* ``remove(x, y, type, subtype=None)``: sell the ride or shop on a tile (refund: half its
  building cost) or dismiss a staff member standing there;
* ``modify(x, y, price, type=None)``: change the price of the ride or shop on a tile;
* ``move(x, y, new_x, new_y, subtype=None)``: send a staff member to another path tile;
* ``wait()``: do nothing.

:func:`apply_action` never raises on bad input: it returns ``(state, valid, error, reason)``
where ``reason`` is one of :data:`REASONS` for invalid actions.
"""
from __future__ import annotations

import math
from typing import Any

from ..base import ActionParseError, ActionSpec, ArgSpec, coerce_action
from .params import CHOICES, COLOURS, GRID_SIZE, KINDS, RIDE_TYPES, RIDES, SHOP_TYPES, SHOPS, STAFF, STAFF_TYPES
from .state import cents, copy_park_state, dollars, refresh_totals, ride_record, shop_record, staff_record

# Why an action can be invalid.
REASONS = {
    "malformed": "the action text or dict could not be read",
    "unknown_action": "no action with that name",
    "bad_argument": "an argument is missing, unknown or of the wrong type",
    "unknown_kind": "type, subtype or subclass is not one of the known kinds",
    "out_of_bounds": "a coordinate lies outside the 20 x 20 grid",
    "occupied": "the tile already holds a path or an attraction",
    "not_adjacent_to_path": "attractions must touch a path tile (up, down, left or right)",
    "not_on_path": "staff can only stand on path tiles",
    "not_affordable": "not enough money for the building cost (or for a day's salary)",
    "negative_price": "prices cannot be negative",
    "price_above_max": "the price is above the attraction's maximum price",
    "no_attraction": "there is no matching ride or shop on that tile",
    "no_staff": "there is no matching staff member on that tile",
    "game_over": "the game has ended (bankrupt or out of days)",
}

_XY = dict(type="int", low=0, high=GRID_SIZE - 1)
ACTION_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("place", "Build a ride or shop on an empty tile next to a path, paying its building cost now, "
               "or hire a janitor or mechanic onto a path tile (salary paid every evening; subclass and price "
               "are then ignored and may be left out).",
               (ArgSpec("x", description="column of the tile", **_XY),
                ArgSpec("y", description="row of the tile", **_XY),
                ArgSpec("type", "str", "what to place", choices=KINDS),
                ArgSpec("subtype", "str", "ride: carousel, ferris_wheel, roller_coaster; shop: drink, food, "
                        "specialty; staff: janitor, mechanic", choices=RIDE_TYPES + SHOP_TYPES + STAFF_TYPES),
                ArgSpec("subclass", "str", "colour of the ride or shop", choices=COLOURS),
                ArgSpec("price", "float", "ticket or item price in dollars, at most the published maximum",
                        low=0))),
    ActionSpec("remove", "Sell the ride or shop on a tile (refund: half its building cost) or dismiss a staff "
               "member standing there (subtype picks janitor or mechanic).",
               (ArgSpec("x", description="column", **_XY), ArgSpec("y", description="row", **_XY),
                ArgSpec("type", "str", "what to remove", choices=KINDS),
                ArgSpec("subtype", "str", "optional; for staff: janitor or mechanic",
                        choices=RIDE_TYPES + SHOP_TYPES + STAFF_TYPES))),
    ActionSpec("modify", "Change the price of the ride or shop on a tile (free).",
               (ArgSpec("x", description="column", **_XY), ArgSpec("y", description="row", **_XY),
                ArgSpec("price", "float", "new price in dollars", low=0),
                ArgSpec("type", "str", "optional: ride or shop", choices=("ride", "shop")))),
    ActionSpec("move", "Send a staff member from one path tile to another (free).",
               (ArgSpec("x", description="column now", **_XY), ArgSpec("y", description="row now", **_XY),
                ArgSpec("new_x", description="column to go to", **_XY),
                ArgSpec("new_y", description="row to go to", **_XY),
                ArgSpec("subtype", "str", "optional: janitor or mechanic", choices=STAFF_TYPES))),
    ActionSpec("wait", "Do nothing today."),
)
ACTIONS = {a.name: a for a in ACTION_SPECS}
_REQUIRED = {"place": ("x", "y", "type", "subtype"), "remove": ("x", "y", "type"),
             "modify": ("x", "y", "price"), "move": ("x", "y", "new_x", "new_y"), "wait": ()}


class InvalidAction(Exception):
    """Raised inside this module only; carries a reason code from :data:`REASONS`."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _norm_kind(v: Any) -> str | None:
    """Lower-case a kind name and accept spaces or hyphens for underscores ('ferris wheel')."""
    if v is None:
        return None
    if isinstance(v, str):
        return v.strip().lower().replace(" ", "_").replace("-", "_")
    raise InvalidAction("unknown_kind", f"kind names must be strings, got {v!r}")


def _int(args: dict, name: str) -> int:
    v = args.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
        raise InvalidAction("bad_argument", f"{name} must be an integer, got {v!r}")
    if float(v) != int(v):
        raise InvalidAction("bad_argument", f"{name} must be an integer, got {v!r}")
    return int(v)


def _xy(args: dict, xname: str = "x", yname: str = "y") -> tuple[int, int]:
    x, y = _int(args, xname), _int(args, yname)
    if not (0 <= x < GRID_SIZE and 0 <= y < GRID_SIZE):
        raise InvalidAction("out_of_bounds", f"tile ({x}, {y}) is outside the {GRID_SIZE}x{GRID_SIZE} park")
    return x, y


def _price(args: dict, max_price: float, what: str) -> int:
    v = args.get("price")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise InvalidAction("bad_argument", f"price must be a number, got {v!r}")
    if v < 0:
        raise InvalidAction("negative_price", f"price {v} is negative")
    c = cents(v)
    if c > cents(max_price):
        raise InvalidAction("price_above_max", f"price ${v} is above the maximum ${max_price:g} for {what}")
    return c


def _params_for(kind: str, subtype: Any, subclass: Any) -> dict:
    table = {"ride": RIDES, "shop": SHOPS}[kind]
    if subtype not in table:
        raise InvalidAction("unknown_kind", f"unknown {kind} subtype {subtype!r}; choose from {list(table)}")
    if subclass not in COLOURS:
        raise InvalidAction("unknown_kind", f"unknown subclass {subclass!r}; choose from {list(COLOURS)}")
    return table[subtype][subclass]


def _occupant(state: dict, x: int, y: int) -> str:
    for r in state["rides"]:
        if r["x"] == x and r["y"] == y:
            return "ride"
    for s in state["shops"]:
        if s["x"] == x and s["y"] == y:
            return "shop"
    return "path" if [x, y] in state["paths"] else "empty"


def _is_path(state: dict, x: int, y: int) -> bool:
    return [x, y] in state["paths"]


def _find_attraction(state: dict, x: int, y: int, kind: str | None) -> tuple[str, int]:
    for k in ("ride", "shop"):
        if kind not in (None, k):
            continue
        for i, a in enumerate(state[k + "s"]):
            if a["x"] == x and a["y"] == y:
                return k, i
    what = kind or "ride or shop"
    raise InvalidAction("no_attraction", f"there is no {what} at ({x}, {y})")


def _find_staff(state: dict, x: int, y: int, subtype: str | None) -> int:
    for i, s in enumerate(state["staff"]):
        if s["x"] == x and s["y"] == y and subtype in (None, s["subtype"]):
            return i
    what = subtype or "staff member"
    raise InvalidAction("no_staff", f"there is no {what} at ({x}, {y})")


def _check_arg_names(name: str, args: dict) -> None:
    spec = ACTIONS[name]
    for k in args:
        if spec.arg(k) is None:
            raise InvalidAction("bad_argument", f"{name}: unknown argument {k!r}; "
                                f"expected {[a.name for a in spec.args]}")
    for k in _REQUIRED[name]:
        if k not in args or args[k] is None:
            raise InvalidAction("bad_argument", f"{name}: missing argument {k!r}")


def _place(state: dict, args: dict) -> int:
    kind = _norm_kind(args.get("type"))
    if kind not in KINDS:
        raise InvalidAction("unknown_kind", f"unknown type {args.get('type')!r}; choose from {list(KINDS)}")
    subtype = _norm_kind(args.get("subtype"))
    money = cents(state["money"])
    if kind == "staff":
        if subtype not in STAFF:
            raise InvalidAction("unknown_kind", f"unknown staff subtype {args.get('subtype')!r}; "
                                f"choose from {list(STAFF_TYPES)}")
        x, y = _xy(args)
        if not _is_path(state, x, y):
            raise InvalidAction("not_on_path", f"staff must be placed on a path tile; ({x}, {y}) is not a path")
        salary = cents(STAFF[subtype]["salary"])
        if money < salary:
            raise InvalidAction("not_affordable", f"a {subtype} costs ${dollars(salary):g} a day; "
                                f"you have ${dollars(money):.2f}")
        state["staff"].append(staff_record(state["next_id"], x, y, subtype))
        state["next_id"] += 1
        return 0
    if "subclass" not in args or args["subclass"] is None:
        raise InvalidAction("bad_argument", "place: missing argument 'subclass'")
    if "price" not in args or args["price"] is None:
        raise InvalidAction("bad_argument", "place: missing argument 'price'")
    subclass = _norm_kind(args.get("subclass"))
    p = _params_for(kind, subtype, subclass)
    x, y = _xy(args)
    price = _price(args, p["max_price"], f"a {subclass} {subtype}")
    occ = _occupant(state, x, y)
    if occ != "empty":
        raise InvalidAction("occupied", f"tile ({x}, {y}) already holds a {occ}")
    if not any(_is_path(state, x + dx, y + dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))):
        raise InvalidAction("not_adjacent_to_path", f"tile ({x}, {y}) does not touch a path")
    cost = cents(p["building_cost"])
    if money < cost:
        raise InvalidAction("not_affordable", f"a {subclass} {subtype} costs ${dollars(cost):g}; "
                            f"you have ${dollars(money):.2f}")
    make = ride_record if kind == "ride" else shop_record
    state[kind + "s"].append(make(state["next_id"], x, y, subtype, subclass, dollars(price)))
    state["next_id"] += 1
    state["cleanliness"][y][x] = 1.0
    return cost


def _remove(state: dict, args: dict) -> int:
    kind = _norm_kind(args.get("type"))
    if kind not in KINDS:
        raise InvalidAction("unknown_kind", f"unknown type {args.get('type')!r}; choose from {list(KINDS)}")
    subtype = _norm_kind(args.get("subtype"))
    if kind == "staff":
        if subtype is not None and subtype not in STAFF:
            raise InvalidAction("unknown_kind", f"unknown staff subtype {args.get('subtype')!r}")
        x, y = _xy(args)
        state["staff"].pop(_find_staff(state, x, y, subtype))
        return 0
    table = RIDES if kind == "ride" else SHOPS
    if subtype is not None and subtype not in table:
        raise InvalidAction("unknown_kind", f"unknown {kind} subtype {args.get('subtype')!r}")
    x, y = _xy(args)
    k, i = _find_attraction(state, x, y, kind)
    if subtype is not None and state[k + "s"][i]["subtype"] != subtype:
        raise InvalidAction("no_attraction", f"the {kind} at ({x}, {y}) is not a {subtype}")
    rec = state[k + "s"].pop(i)
    state["cleanliness"][y][x] = 1.0
    return -int(round(cents(rec["building_cost"]) * CHOICES["sell_back_fraction"]))


def _modify(state: dict, args: dict) -> int:
    kind = _norm_kind(args.get("type"))
    if kind is not None and kind not in ("ride", "shop"):
        raise InvalidAction("unknown_kind", f"modify: type must be 'ride' or 'shop', got {args.get('type')!r}")
    x, y = _xy(args)
    k, i = _find_attraction(state, x, y, kind)
    rec = state[k + "s"][i]
    table = RIDES if k == "ride" else SHOPS
    price = _price(args, table[rec["subtype"]][rec["subclass"]]["max_price"],
                   f"a {rec['subclass']} {rec['subtype']}")
    rec["price"] = dollars(price)
    return 0


def _move(state: dict, args: dict) -> int:
    subtype = _norm_kind(args.get("subtype"))
    if subtype is not None and subtype not in STAFF:
        raise InvalidAction("unknown_kind", f"unknown staff subtype {args.get('subtype')!r}")
    x, y = _xy(args)
    nx, ny = _xy(args, "new_x", "new_y")
    i = _find_staff(state, x, y, subtype)
    if not _is_path(state, nx, ny):
        raise InvalidAction("not_on_path", f"staff can only move to path tiles; ({nx}, {ny}) is not a path")
    state["staff"][i]["x"], state["staff"][i]["y"] = nx, ny
    return 0


_HANDLERS = {"place": _place, "remove": _remove, "modify": _modify, "move": _move,
             "wait": lambda state, args: 0}


def read_action(action: Any) -> tuple[dict | None, str | None, str | None]:
    """Action dict or text -> (action dict, None, None), or (None, error, reason) when unreadable."""
    try:
        act = coerce_action(action)
    except ActionParseError as e:
        return None, str(e), "malformed"
    except Exception as e:  # anything odd in the input is reported, never raised
        return None, f"cannot read action {action!r}: {e}", "malformed"
    if act["name"] not in ACTIONS:
        return None, f"unknown action {act['name']!r}; known: {list(ACTIONS)}", "unknown_action"
    return act, None, None


def apply_action(state: dict, action: Any) -> tuple[dict, bool, str | None, str | None]:
    """Apply one action's deterministic effect to a copy of ``state``.

    Returns ``(new_state, valid, error, reason)``.  For invalid actions ``new_state`` is an
    unchanged copy with ``action_cost`` 0.  The park's totals are refreshed either way.
    """
    new = copy_park_state(state)
    new["action_cost"] = 0.0
    if state.get("game_over"):
        return new, False, "the game is over; no more actions are accepted", "game_over"
    act, err, reason = read_action(action)
    if act is None:
        return refresh_totals(new), False, err, reason
    try:
        _check_arg_names(act["name"], act["args"])
        # handlers check everything first and change ``new`` only once the action is known valid
        cost = _HANDLERS[act["name"]](new, act["args"])
    except InvalidAction as e:
        return refresh_totals(copy_park_state(state) | {"action_cost": 0.0}), False, str(e), e.reason
    except Exception as e:  # odd argument values (nested lists, huge numbers ...) are bad input, not crashes
        return (refresh_totals(copy_park_state(state) | {"action_cost": 0.0}), False,
                f"{act['name']}: cannot use these arguments ({type(e).__name__}: {e})", "bad_argument")
    new["money"] = dollars(cents(new["money"]) - cost)
    new["action_cost"] = dollars(cost)
    return refresh_totals(new), True, None, None


__all__ = ["ACTION_SPECS", "ACTIONS", "REASONS", "apply_action", "read_action", "InvalidAction"]
