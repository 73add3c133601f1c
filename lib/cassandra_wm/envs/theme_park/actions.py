"""The game's action text, its validity checks and their reasons, and applying an action to a state.

Actions are the game's text form ``name(key=value, ...)`` (or the dict ``{"name", "args"}``).  The
checks follow the game in its order: first the text is parsed and the arguments checked against
the action's argument list and types, then the park checks kinds, coordinates, prices, the tile,
adjacency to a path and money.  Every refusal has a ``reason`` code (:data:`REASONS`) and a
message worded like the game's.  Easy mode accepts ``place``, ``move``, ``remove``, ``modify``,
``survey_guests`` and ``wait``; ``set_research`` and the terrain actions are understood and refused.
"""
from __future__ import annotations

import ast
import math
from typing import Any

from ..base import ActionSpec, ArgSpec
from .params import COLOURS, GRID_SIZE, RIDE_TYPES, SHOP_TYPES, STAFF_TYPES, Params, get_params
from .state import new_ride, new_shop, new_staff, occupant, refresh, sort_attractions

# argument names of every action the game knows (its action list), and their types
ACTION_ARGS: dict[str, tuple[str, ...]] = {
    "place": ("x", "y", "type", "subtype", "subclass", "price", "order_quantity"),
    "move": ("type", "subtype", "subclass", "x", "y", "new_x", "new_y"),
    "remove": ("type", "subtype", "subclass", "x", "y"),
    "modify": ("type", "subtype", "subclass", "x", "y", "price", "order_quantity"),
    "set_research": ("research_speed", "research_topics"),
    "survey_guests": ("num_guests",),
    "add_path": ("x", "y"), "remove_path": ("x", "y"), "add_water": ("x", "y"), "remove_water": ("x", "y"),
    "wait": (),
}
ARG_TYPES = {"x": int, "y": int, "new_x": int, "new_y": int, "price": int, "order_quantity": int,
             "num_guests": int, "type": str, "subtype": str, "subclass": str, "research_speed": str,
             "research_topics": list}
EASY_ACTIONS = ("place", "move", "remove", "modify", "survey_guests", "wait")

REASONS = {
    "malformed": "the text is not a call name(key=value, ...)",
    "unknown_action": "no action of that name",
    "missing_argument": "a required argument is missing",
    "extra_argument": "an argument the action does not take",
    "bad_argument_type": "an argument has the wrong type (whole numbers for coordinates, prices and quantities)",
    "unknown_kind": "no such type, subtype or subclass",
    "not_available": "that subclass cannot be built or hired with these parameters",
    "out_of_bounds": "coordinates outside the 20 x 20 park",
    "not_adjacent_to_path": "attractions must touch a path tile",
    "occupied": "the tile is not empty",
    "not_affordable": "not enough money",
    "negative_price": "price below zero",
    "price_above_max": "price above the maximum for that attraction",
    "negative_quantity": "order quantity below zero",
    "wrong_type_at_tile": "the tile holds something else than the given type",
    "no_staff": "no such staff member on that tile",
    "bad_staff_tile": "staff must stand on a path or an attraction",
    "not_in_easy_mode": "research and terrain actions are for medium and hard mode",
    "too_many_guests": "at most 25 guests can be surveyed",
    "game_over": "the game has ended",
}


class Refusal(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


def _literal(node: ast.AST) -> Any:
    """Argument values as the game's parser reads them: literals, lists, dicts, negated numbers."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        try:
            return -1 * int(node.operand.value)  # the game truncates negated numbers to integers
        except (AttributeError, TypeError, ValueError):
            return None
    return None


def parse_text(text: str) -> tuple[str, dict]:
    """``"place(x=1, ...)"`` -> ``("place", {...})``, raising :class:`Refusal` ("malformed")."""
    if not isinstance(text, str):
        raise Refusal("malformed", f"Error parsing action: expected text, got {type(text).__name__}")
    try:
        tree = ast.parse(text)
        call = tree.body[0].value
        name = call.func.id
        args = {kw.arg: _literal(kw.value) for kw in call.keywords}
    except Exception as e:  # noqa: BLE001 - any parse failure is a malformed action
        raise Refusal("malformed", f"Error parsing action: {e}") from None
    return name, args


def normalise(action: Any) -> tuple[str, dict, str]:
    """Action text or dict -> (name, arguments, text) after the game's argument checks."""
    if isinstance(action, dict) and isinstance(action.get("name"), str):
        args = action.get("args") or {}
        if not isinstance(args, dict):
            raise Refusal("malformed", "Error parsing action: arguments must be a mapping")
        name, args = action["name"], dict(args)
        text = format_game_action(name, args)
    else:
        text = action if isinstance(action, str) else repr(action)
        name, args = parse_text(action)
    if name not in ACTION_ARGS:
        raise Refusal("unknown_action", f"Invalid action type: {name} must be in {list(ACTION_ARGS)}")
    kind = args.get("type")
    if name == "place" and kind == "staff":
        args.setdefault("price", 1)
        args.setdefault("order_quantity", -1)
    if name in ("place", "modify") and kind == "ride":
        args["order_quantity"] = -1
    if name == "modify":
        args.setdefault("subtype", "")
        args.setdefault("subclass", "")
    want = set(ACTION_ARGS[name])
    have = set(args)
    if not have >= want:
        raise Refusal("missing_argument", f"Invalid action: {text} is missing the arguments {sorted(want - have)}")
    if not have <= want:
        raise Refusal("extra_argument", f"Invalid action: {text} has excess arguments {sorted(have - want)}")
    for k in sorted(args):
        t = ARG_TYPES[k]
        v = args[k]
        if t is list:
            if not isinstance(v, list) or not all(isinstance(i, str) for i in v):
                raise Refusal("bad_argument_type", f"Invalid action: {text} has argument {k} that is not a list of strings")
        elif not isinstance(v, t):
            raise Refusal("bad_argument_type", f"Invalid action: {text} has argument {k} of type {type(v)} "
                                               f"but expected type {t}")
    return name, args, text


_MESSAGE_REASONS = (
    ("Error parsing action", "malformed"), ("Invalid action type", "unknown_action"),
    ("is missing the arguments", "missing_argument"), ("has excess arguments", "extra_argument"),
    ("has argument", "bad_argument_type"), ("must be an integer", "bad_argument_type"),
    ("must be ride, shop, or staff", "unknown_kind"), ("Invalid ride type", "unknown_kind"),
    ("Invalid shop type", "unknown_kind"), ("Invalid ride subclass", "unknown_kind"),
    ("Invalid shop subclass", "unknown_kind"), ("Invalid staff type", "unknown_kind"),
    ("Invalid staff subclass", "unknown_kind"), ("has not been researched", "not_available"),
    ("within park bounds", "out_of_bounds"), ("adjacent to a path", "not_adjacent_to_path"),
    ("Tile already contains", "occupied"), ("Insufficient funds", "not_affordable"),
    ("cannot be negative: ", "negative_price"), ("Max ticket price", "price_above_max"),
    ("Max item price", "price_above_max"), ("does not match the type", "wrong_type_at_tile"),
    ("No ", "no_staff"), ("Must be on a path or in an attraction", "bad_staff_tile"),
    ("only be modified in hard mode", "not_in_easy_mode"), ("Research cannot be set", "not_in_easy_mode"),
    ("guests to survey", "too_many_guests"), ("game has ended", "game_over"),
)


def reason_of(message: str) -> str:
    """The reason code of one of the game's refusal messages ("other" when none fits)."""
    msg = str(message or "")
    if "order_quantity cannot be negative" in msg:
        return "negative_quantity"
    for pattern, code in _MESSAGE_REASONS:
        if pattern in msg:
            return code
    return "other"


def format_game_action(name: str, args: dict) -> str:
    return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"


def _in_bounds(x: Any, y: Any) -> bool:
    return isinstance(x, int) and isinstance(y, int) and 0 <= x < GRID_SIZE and 0 <= y < GRID_SIZE


def _adjacent_to_path(state: dict, x: int, y: int) -> bool:
    paths = {(t["x"], t["y"]) for t in state["paths"]}
    return any((x + dx, y + dy) in paths for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)))


def _water_adjacent(state: dict, x: int, y: int) -> int:
    waters = {(t["x"], t["y"]) for t in state["waters"]}
    return sum((x + dx, y + dy) in waters for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)))


def _check_price(kind: str, p: Params, subtype: str, subclass: str, price: int, quantity: Any = None) -> None:
    word = "Ticket" if kind == "ride" else "Item"
    if price < 0:
        raise Refusal("negative_price", f"{word} price cannot be negative: {price}")
    top = p.max_price(kind, subtype, subclass)
    if price > top:
        raise Refusal("price_above_max", f"Invalid {word.lower()} price: {price}. Max {word.lower()} price: {top}")
    if kind == "shop" and quantity is not None and quantity < 0:
        raise Refusal("negative_quantity", f"Inventory order_quantity cannot be negative: {quantity}")


def _check_kind(kind: str, p: Params, subtype: str, subclass: str) -> None:
    table = p.rides if kind == "ride" else p.shops
    allowed = RIDE_TYPES if kind == "ride" else SHOP_TYPES
    if subtype not in allowed:
        raise Refusal("unknown_kind", f"Invalid {kind} type: {subtype}. Valid types: {', '.join(sorted(allowed))}")
    if subclass not in COLOURS:
        raise Refusal("unknown_kind", f"Invalid {kind} subclass: {subclass}. Valid subclasses: "
                                      f"{', '.join(sorted(COLOURS))}")
    if subclass not in table[subtype]:
        raise Refusal("not_available", f"{kind.capitalize()} has not been researched yet: {subclass}. "
                                       f"Researched subclasses: {', '.join(table[subtype])}")


def _oob(x, y, what: str = "Invalid x, y coordinates.") -> Refusal:
    return Refusal("out_of_bounds", f"{what} ({x}, {y}) must each be within park bounds, i.e., >= 0 and "
                                    f"<{GRID_SIZE}.")


def _find(state: dict, kind: str, x: int, y: int) -> tuple[list, int]:
    lst = state["rides" if kind == "ride" else "shops"]["ride_list" if kind == "ride" else "shop_list"]
    for i, a in enumerate(lst):
        if a["x"] == x and a["y"] == y:
            return lst, i
    return lst, -1


def _clean_grid(state: dict) -> list:
    return state["hidden"]["cleanliness"]


def apply_checked(state: dict, name: str, a: dict, p: Params) -> tuple[int, int, str]:
    """Apply a parsed action to ``state`` in place; returns (cost, refund, message) or raises Refusal."""
    if name == "wait":
        return 0, 0, "Noop called successfully"
    if name == "set_research":
        raise Refusal("not_in_easy_mode", "Research cannot be set in easy mode, all research is unlocked from "
                                          "the beginning")
    if name in ("add_path", "remove_path"):
        raise Refusal("not_in_easy_mode", "Path tiles can only be modified in hard mode")
    if name in ("add_water", "remove_water"):
        raise Refusal("not_in_easy_mode", "Water tiles can only be modified in hard mode")
    if name == "survey_guests":
        n = a["num_guests"]
        if n > p.rules["max_survey"]:
            raise Refusal("too_many_guests", f"Number of guests to survey must be less than or equal to "
                                             f"{p.rules['max_survey']}")
        if n < 0:
            raise Refusal("too_many_guests", "Number of guests to survey must be at least 1")
        cost = int(p.rules["survey_cost"]) * n
        if state["money"] < cost:
            raise Refusal("not_affordable", f"Insufficient funds to survey guests. Required: {cost}, Available: "
                                            f"{state['money']}")
        state["hidden"]["survey_pending"] = n
        return cost, 0, "Number of guests to survey set successfully"

    kind = a["type"]
    if kind not in ("ride", "shop", "staff"):
        verb = {"place": "place", "move": "move", "modify": "move", "remove": "remove"}[name]
        raise Refusal("unknown_kind", f"Object to {verb} must be ride, shop, or staff, got {kind}")
    x, y = a["x"], a["y"]
    if kind == "staff":
        return _staff_action(state, name, a, p)
    if name == "place":
        sub, col, price = a["subtype"], a["subclass"], a["price"]
        _check_kind(kind, p, sub, col)
        _check_price(kind, p, sub, col, price, a.get("order_quantity"))
        if not _in_bounds(x, y):
            raise _oob(x, y, f"Invalid placement for {'ride' if kind == 'ride' else 'attraction'}.")
        if not _adjacent_to_path(state, x, y):
            raise Refusal("not_adjacent_to_path", f"Invalid placement for {kind}. Must be adjacent to a path tile.")
        cost = p.building_cost(kind, sub, col)
        if state["money"] < cost:
            raise Refusal("not_affordable", f"Insufficient funds to add {kind}. Required: {cost}, Available: "
                                            f"{state['money']}")
        occ = occupant(state, x, y)
        if occ != "empty":
            what = "water" if occ == "water" else f"a {occ}"
            raise Refusal("occupied", f"Failed to add {kind} to {x},{y}. Tile already contains {what}.")
        if kind == "ride":
            state["rides"]["ride_list"].append(new_ride(p, x, y, sub, col, price, _water_adjacent(state, x, y)))
        else:
            state["shops"]["shop_list"].append(new_shop(p, x, y, sub, col, price, a["order_quantity"]))
        _clean_grid(state)[x][y] = 1.0
        sort_attractions(state)
        return cost, 0, f"Placed {sub} at {x},{y}"
    if not _in_bounds(x, y):
        raise _oob(x, y)
    occ = occupant(state, x, y)
    if occ != kind:
        raise Refusal("wrong_type_at_tile", f"The provided type ({kind}) does not match the type occupying the tile "
                                            f"({occ})")
    lst, i = _find(state, kind, x, y)
    att = lst[i]
    if name == "remove":
        refund = int(math.floor(p.building_cost(kind, att["subtype"], att["subclass"]) * p.rules["sell_share"]))
        del lst[i]
        _clean_grid(state)[x][y] = 1.0
        _forget_target(state, x, y)
        return 0, refund, f"Sold {att['subtype']} at {x},{y} for {refund}"
    if name == "modify":
        price, qty = a["price"], a.get("order_quantity")
        try:
            _check_price(kind, p, att["subtype"], att["subclass"], price, qty if kind == "shop" else None)
        except Refusal as r:
            raise Refusal(r.reason, f"Failed to modify {kind}. {r.message}") from None
        if kind == "ride":
            att["ticket_price"] = price
        else:
            att["item_price"] = price
            att["order_quantity"] = qty
        return 0, 0, f"Modified {att['subtype']} at {x},{y}"
    # move
    nx, ny = a["new_x"], a["new_y"]
    if not _in_bounds(nx, ny):
        raise _oob(nx, ny, "Invalid placement for attraction.")
    if not _adjacent_to_path(state, nx, ny):
        raise Refusal("not_adjacent_to_path", "Invalid placement for attraction. Must be adjacent to a path tile.")
    occ = occupant(state, nx, ny)
    if occ != "empty":
        what = "water" if occ == "water" else f"a {occ}"
        raise Refusal("occupied", f"Failed to move attraction to {nx},{ny}. Tile already contains {what}.")
    grid = _clean_grid(state)
    grid[nx][ny], grid[x][y] = grid[x][y], 1.0
    att["x"], att["y"] = nx, ny
    sort_attractions(state)  # a moved ride keeps the water bonus it was built with, as in the game
    _forget_target(state, x, y)
    return 0, 0, f"Moved {att['subtype']} to {nx},{ny}"


def _forget_target(state: dict, x: int, y: int) -> None:
    for s in state["staff"]["staff_list"]:
        if s.get("target") == [x, y]:
            s["target"] = None


def _staff_action(state: dict, name: str, a: dict, p: Params) -> tuple[int, int, str]:
    x, y, sub, col = a["x"], a["y"], a["subtype"], a["subclass"]
    staff = state["staff"]["staff_list"]
    if name == "place":
        if not _in_bounds(x, y):
            raise _oob(x, y, "Invalid location to place staff.")
        if sub not in STAFF_TYPES:
            raise Refusal("unknown_kind", f"Invalid staff type: {sub}. Must be janitor or mechanic.")
        if col not in COLOURS:
            raise Refusal("unknown_kind", f"Invalid staff subclass: {col}. Must be yellow, blue, green, or red.")
        if col not in p.staff.get(sub, {}):
            raise Refusal("not_available", f"Staff has not been researched yet: {col}. Researched subclasses: "
                                           f"{', '.join(p.staff.get(sub, {}))}")
        if occupant(state, x, y) in ("empty", "water"):
            raise Refusal("bad_staff_tile", "Invalid location for staff. Must be on a path or in an attraction.")
        staff.append(new_staff(p, x, y, sub, col))
        return 0, 0, f"Hired {sub} at {x},{y}"
    if name == "remove":
        if not _in_bounds(x, y):
            raise _oob(x, y, "Invalid x, y coordinates for fire staff.")
        for i, s in enumerate(staff):
            if s["subtype"] == sub and s["subclass"] == col and s["x"] == x and s["y"] == y:
                del staff[i]
                return 0, 0, f"Dismissed {sub} at {x},{y}"
        raise Refusal("no_staff", f"No {sub} found at {x},{y}")
    # move (modify of staff reaches the game's staff move without a destination)
    nx, ny = a.get("new_x"), a.get("new_y")
    if not _in_bounds(x, y):
        raise _oob(x, y, "Invalid x, y coordinates for current location.")
    if not _in_bounds(nx, ny):
        raise _oob(nx, ny, "Invalid x, y coordinates for new location.")
    for s in staff:
        if s["subtype"] == sub and s["subclass"] == col and s["x"] == x and s["y"] == y:
            if occupant(state, nx, ny) in ("empty", "water"):
                raise Refusal("bad_staff_tile", "Invalid location for staff. Must be on a path or in an attraction.")
            s["x"], s["y"] = nx, ny
            return 0, 0, f"Moved {sub} to {nx},{ny}"
    where = ", ".join(f"{s['x']},{s['y']}" for s in staff if s["subtype"] == sub)
    raise Refusal("no_staff", f"No {sub} found at {x},{y}. Existing {sub}s locations: {where}")


def apply_action(state: dict, action: Any, params: str | Params | None = None) -> tuple[dict, bool, str | None, dict]:
    """Apply the morning ``action`` to a copy of ``state``.

    Returns ``(new_state, valid, error, info)``; ``info`` has ``reason``, ``message``, ``cost``,
    ``refund``, ``parse_error`` (True when the text never reached the park: the game then leaves
    yesterday's revenue and expenses in place) and the parsed ``action``.  An invalid action
    leaves the state unchanged.
    """
    from .state import copy_park_state
    p = get_params(params if params is not None else state["hidden"]["parameters"])
    new = copy_park_state(state)
    info = {"reason": None, "message": "", "cost": 0, "refund": 0, "parse_error": False, "action": None}
    if state.get("game_over"):
        info.update(reason="game_over", message="The game has ended")
        return new, False, info["message"], info
    try:
        name, args, _ = normalise(action)
    except Refusal as r:
        info.update(reason=r.reason, message=r.message, parse_error=True)
        return new, False, r.message, info
    info["action"] = {"name": name, "args": args}
    try:
        cost, refund, msg = apply_checked(new, name, args, p)
    except Refusal as r:
        info.update(reason=r.reason, message=r.message)
        return copy_park_state(state), False, r.message, info
    new["money"] = int(new["money"] - cost + refund)
    info.update(message=msg, cost=cost, refund=refund)
    refresh(new, p)
    return new, True, None, info


def action_specs(params: str | Params = "paper") -> tuple[ActionSpec, ...]:
    """The actions as the spec lists them (easy mode), with argument ranges."""
    p = get_params(params)
    coord = dict(type="int", low=0, high=GRID_SIZE - 1)
    kinds = ("ride", "shop", "staff")
    subtypes = RIDE_TYPES + SHOP_TYPES + STAFF_TYPES
    top = max(p.max_price(k, s, c) for k, t in (("ride", p.rides), ("shop", p.shops)) for s in t for c in t[s])
    return (
        ActionSpec("place", "build a ride or shop next to a path (price; shops also order_quantity, the items "
                            "stocked each morning) or hire staff onto a path or attraction tile",
                   (ArgSpec("x", description="column", **coord), ArgSpec("y", description="row", **coord),
                    ArgSpec("type", "str", choices=kinds), ArgSpec("subtype", "str", choices=subtypes),
                    ArgSpec("subclass", "str", choices=COLOURS),
                    ArgSpec("price", "int", "ticket or item price (whole dollars; rides and shops)", 0, top),
                    ArgSpec("order_quantity", "int", "items a shop stocks each morning (shops only)", 0, 500))),
        ActionSpec("move", "move a ride, shop or staff member to another tile",
                   (ArgSpec("type", "str", choices=kinds), ArgSpec("subtype", "str", choices=subtypes),
                    ArgSpec("subclass", "str", choices=COLOURS), ArgSpec("x", **coord), ArgSpec("y", **coord),
                    ArgSpec("new_x", **coord), ArgSpec("new_y", **coord))),
        ActionSpec("remove", "sell a ride or shop (refund: a share of its building cost) or dismiss staff",
                   (ArgSpec("type", "str", choices=kinds), ArgSpec("subtype", "str", choices=subtypes),
                    ArgSpec("subclass", "str", choices=COLOURS), ArgSpec("x", **coord), ArgSpec("y", **coord))),
        ActionSpec("modify", "change the price (and a shop's order_quantity) of an attraction",
                   (ArgSpec("type", "str", choices=("ride", "shop")), ArgSpec("subtype", "str", choices=subtypes),
                    ArgSpec("subclass", "str", choices=COLOURS), ArgSpec("x", **coord), ArgSpec("y", **coord),
                    ArgSpec("price", "int", "new price", 0, top),
                    ArgSpec("order_quantity", "int", "new order quantity (shops only)", 0, 500))),
        ActionSpec("survey_guests", "ask up to 25 of today's guests why they left (costs per guest)",
                   (ArgSpec("num_guests", "int", "guests to survey", 0, 25),)),
        ActionSpec("wait", "do nothing this morning"),
    )


__all__ = ["apply_action", "reason_of", "normalise", "parse_text", "format_game_action", "action_specs", "REASONS",
           "Refusal", "ACTION_ARGS", "EASY_ACTIONS"]
