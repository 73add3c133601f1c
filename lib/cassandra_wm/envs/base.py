"""The Environment protocol shared by every simulator in the bundle.

An environment exposes
  * ``spec``: an :class:`EnvSpec` (name, manual text, variables, actions);
  * ``reset(seed) -> state``: a JSON-serialisable dict;
  * ``step(action) -> (next_state, valid, info)``.

Actions are plain dicts ``{"name": str, "args": {...}}``; :func:`format_action`
and :func:`parse_action` convert them to and from the game's text form
``name(arg=value, ...)``.  An invalid action never raises from ``step``: the
day's own dynamics still run, ``valid`` is False and ``info["error"]`` says why.

Learners may read ``spec`` (manual, variable and action descriptions) and
observed transitions only.  ``true_graph()`` exists for evaluation alone.
"""
from __future__ import annotations

import abc
import ast
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal

Kind = Literal["deterministic", "stochastic"]
VarType = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class VariableSpec:
    """One observed variable of the state."""

    name: str
    path: str  # JSON pointer into the state, e.g. "/money"
    description: str
    kind: Kind
    type: VarType = "numeric"
    low: float | None = None
    high: float | None = None
    categories: tuple | None = None
    integer: bool = False

    def in_bounds(self, value: Any) -> bool:
        if self.type == "categorical":
            return self.categories is None or value in self.categories
        try:
            v = float(value)
        except (TypeError, ValueError):
            return False
        if v != v:  # NaN
            return False
        if self.low is not None and v < self.low - 1e-9:
            return False
        if self.high is not None and v > self.high + 1e-9:
            return False
        return True


@dataclass(frozen=True)
class ArgSpec:
    """One argument of an action."""

    name: str
    type: Literal["int", "float", "str"]
    description: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None


@dataclass(frozen=True)
class ActionSpec:
    name: str
    description: str
    args: tuple[ArgSpec, ...] = ()

    def arg(self, name: str) -> ArgSpec | None:
        for a in self.args:
            if a.name == name:
                return a
        return None


@dataclass(frozen=True)
class EnvSpec:
    name: str
    manual: str  # the text L, in plain language
    variables: tuple[VariableSpec, ...]
    actions: tuple[ActionSpec, ...]
    horizon: int = 50
    reward_variable: str = "money"
    # the stochastic variables the Bayesian network models; empty = all stochastic variables
    bn_variables: tuple[str, ...] = ()
    notes: dict = field(default_factory=dict)

    # -- look-ups -------------------------------------------------------
    def variable(self, name: str) -> VariableSpec:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"{self.name}: no variable named {name!r}; known: {self.variable_names()}")

    def action(self, name: str) -> ActionSpec:
        for a in self.actions:
            if a.name == name:
                return a
        raise KeyError(f"{self.name}: no action named {name!r}; known: {[a.name for a in self.actions]}")

    def variable_names(self, kind: Kind | None = None) -> list[str]:
        return [v.name for v in self.variables if kind is None or v.kind == kind]

    @property
    def stochastic(self) -> list[VariableSpec]:
        return [v for v in self.variables if v.kind == "stochastic"]

    @property
    def deterministic(self) -> list[VariableSpec]:
        return [v for v in self.variables if v.kind == "deterministic"]

    def to_dict(self) -> dict:
        return asdict(self)

    def describe_variables(self, kind: Kind | None = None) -> str:
        """Plain-language list of variables, as a learner may read it."""
        lines = []
        for v in self.variables:
            if kind is not None and v.kind != kind:
                continue
            rng = ""
            if v.type == "categorical" and v.categories:
                rng = f" one of {list(v.categories)}"
            elif v.low is not None or v.high is not None:
                rng = f" range [{v.low if v.low is not None else '-inf'}, {v.high if v.high is not None else 'inf'}]"
            lines.append(f"- {v.name} ({v.kind}, {v.type}{rng}, at {v.path}): {v.description}")
        return "\n".join(lines)

    def describe_actions(self) -> str:
        lines = []
        for a in self.actions:
            args = ", ".join(
                f"{x.name}: {x.type}"
                + (f" in [{x.low}, {x.high}]" if x.low is not None or x.high is not None else "")
                + (f" one of {list(x.choices)}" if x.choices else "")
                for x in a.args
            )
            lines.append(f"- {a.name}({args}): {a.description}")
        return "\n".join(lines)


class Environment(abc.ABC):
    """Base class of every simulator: every method the pipeline calls is declared here.

    Required: :meth:`reset`, :meth:`step`, :meth:`transition` (the simulator as a function of any
    state, used by the oracle model and the reference planners) and :meth:`deterministic_step`
    (the deterministic part of a step, used as the world model's deterministic source when no
    code model is used).  :meth:`check_action`, :meth:`is_done`, :meth:`true_graph` and
    :attr:`bn_variables` have defaults that an environment may override.
    """

    spec: EnvSpec

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> dict:
        """Start an episode; returns the first state."""

    @abc.abstractmethod
    def step(self, action: dict | str) -> tuple[dict, bool, dict]:
        """Advance one day; returns (next_state, valid, info) and never raises on bad actions."""

    @abc.abstractmethod
    def transition(self, state: dict, action: Any, rng: Any) -> tuple[dict, bool, dict]:
        """One day from any ``state`` with the generator ``rng``; ``state`` is left untouched.

        Returns ``(next_state, valid, info)`` like :meth:`step`."""

    @abc.abstractmethod
    def deterministic_step(self, state: dict, action: Any) -> tuple[dict, bool, str | None]:
        """The deterministic part of a step: ``(values, valid, error)``.

        ``values`` is either ``{deterministic variable: next value}`` or a whole state after the
        action (when the action changes the state's structure, as a placed ride does); nothing
        random is drawn."""

    def check_action(self, state: dict, action: Any) -> tuple[dict | None, str | None]:
        """``(parsed action or None, error or None)``: is ``action`` valid in ``state``?"""
        try:
            act = coerce_action(action)
        except ActionParseError as e:
            return None, str(e)
        _, ok, err = self.deterministic_step(state, act)
        return act, None if ok else (err or "invalid action")

    def is_done(self, state: dict) -> bool:
        """Is the episode over in ``state``?  Default: ``bankrupt`` or ``game_over`` set, or
        ``day`` reached ``horizon`` (the spec's horizon when the state has none)."""
        if state.get("bankrupt") or state.get("game_over"):
            return True
        try:
            return "day" in state and int(state["day"]) >= int(state.get("horizon", self.spec.horizon))
        except (TypeError, ValueError):
            return False

    def true_graph(self) -> list[tuple[str, str]]:
        """Edges among stochastic variables (same step). Evaluation only."""
        return []

    @property
    def bn_variables(self) -> list[str]:
        """The stochastic variables the Bayesian network models (default: all of them)."""
        return list(self.spec.bn_variables or self.spec.variable_names("stochastic"))


# -- JSON pointer helpers ------------------------------------------------

def pointer_tokens(pointer: str) -> list[str]:
    """The unescaped reference tokens of a JSON pointer (RFC 6901): ``"/a~1b/0"`` -> ``["a/b", "0"]``."""
    if pointer in ("", "/"):
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"not a JSON pointer: {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def get_path(state: Any, pointer: str) -> Any:
    cur = state
    for tok in pointer_tokens(pointer):
        if isinstance(cur, list):
            cur = cur[int(tok)]
        else:
            cur = cur[tok]
    return cur


def set_path(state: Any, pointer: str, value: Any) -> None:
    toks = pointer_tokens(pointer)
    if not toks:
        raise ValueError("cannot set the root")
    cur = state
    for tok in toks[:-1]:
        cur = cur[int(tok)] if isinstance(cur, list) else cur[tok]
    last = toks[-1]
    if isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value


def variable_values(spec: EnvSpec, state: dict, names: Iterable[str] | None = None) -> dict:
    names = list(names) if names is not None else spec.variable_names()
    return {n: get_path(state, spec.variable(n).path) for n in names}


# -- actions ------------------------------------------------------------

def make_action(name: str, **args: Any) -> dict:
    return {"name": name, "args": dict(args)}


def format_action(action: dict) -> str:
    """``{"name": "buy_beans", "args": {"units": 5}}`` -> ``buy_beans(units=5)``."""
    args = ", ".join(f"{k}={v!r}" for k, v in (action.get("args") or {}).items())
    return f"{action['name']}({args})"


class ActionParseError(ValueError):
    pass


# Bounds on action text: an action is a short call such as ``set_price(price=3.5)``; anything far longer or
# deeper is garbage (or hostile) and must fail as a parse error, never as MemoryError or RecursionError.
MAX_ACTION_CHARS = 4096
MAX_ACTION_DEPTH = 12


def _ast_depth(node: ast.AST, limit: int) -> int:
    """Depth of an AST, walked without recursion; stops counting once past ``limit``."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        cur, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(cur))
    return deepest


def parse_action(text: str) -> dict:
    """Parse ``name(k=v, ...)`` (literals only) into an action dict.

    Raises :class:`ActionParseError` with a readable message on anything else, including text longer
    than :data:`MAX_ACTION_CHARS` or nested deeper than :data:`MAX_ACTION_DEPTH`.
    """
    if not isinstance(text, str) or not text.strip():
        raise ActionParseError("empty action text")
    src = text.strip()
    if len(src) > MAX_ACTION_CHARS:
        raise ActionParseError(f"action text is {len(src)} characters long (at most {MAX_ACTION_CHARS}): "
                               f"{src[:60]!r}...")
    if src.isidentifier():
        return {"name": src, "args": {}}
    try:
        node = ast.parse(src, mode="eval").body
    except SyntaxError as e:
        raise ActionParseError(f"cannot parse action {_short(text)}: {e.msg}") from None
    except (MemoryError, RecursionError, ValueError):  # the parser's own stack or digit limits
        raise ActionParseError(f"action text is too deeply nested or too large to parse: {_short(text)}") from None
    if _ast_depth(node, MAX_ACTION_DEPTH) > MAX_ACTION_DEPTH:
        raise ActionParseError(f"action text is nested deeper than {MAX_ACTION_DEPTH} levels: {_short(text)}")
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ActionParseError(f"expected name(arg=value, ...), got {_short(text)}")
    if node.args:
        raise ActionParseError(f"arguments must be named (k=v) in {_short(text)}")
    args = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise ActionParseError(f"**kwargs not allowed in {_short(text)}")
        try:
            args[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ActionParseError(f"argument {kw.arg!r} is not a literal in {_short(text)}") from None
    return {"name": node.func.id, "args": args}


def _short(text: str, limit: int = 200) -> str:
    """``repr`` of an action text, cut so that error messages stay readable."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def coerce_action(action: Any) -> dict:
    """Accept an action dict or its text form; raise ActionParseError otherwise."""
    if isinstance(action, str):
        return parse_action(action)
    if isinstance(action, dict) and isinstance(action.get("name"), str):
        args = action.get("args") or {}
        if not isinstance(args, dict):
            raise ActionParseError(f"action args must be a dict, got {type(args).__name__}")
        return {"name": action["name"], "args": dict(args)}
    raise ActionParseError(f"not an action: {action!r}")


def check_args(spec: ActionSpec, args: dict) -> str | None:
    """Type and range check of arguments against the spec; returns an error or None."""
    for k in args:
        if spec.arg(k) is None:
            return f"{spec.name}: unknown argument {k!r}"
    for a in spec.args:
        if a.name not in args:
            return f"{spec.name}: missing argument {a.name!r}"
        v = args[a.name]
        if a.type in ("int", "float"):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return f"{spec.name}: {a.name} must be a number, got {v!r}"
            try:
                fv = float(v)
            except OverflowError:
                return f"{spec.name}: {a.name}={v!r} is out of range"
            if not math.isfinite(fv):
                return f"{spec.name}: {a.name} must be a finite number, got {v!r}"
            if a.type == "int" and fv != int(fv):
                return f"{spec.name}: {a.name} must be an integer, got {v!r}"
        elif a.type == "str":
            if not isinstance(v, str):
                return f"{spec.name}: {a.name} must be a string, got {v!r}"
        if a.choices is not None and v not in a.choices:
            return f"{spec.name}: {a.name} must be one of {list(a.choices)}, got {v!r}"
        if a.low is not None and isinstance(v, (int, float)) and v < a.low:
            return f"{spec.name}: {a.name}={v!r} is below the minimum {a.low}"
        if a.high is not None and isinstance(v, (int, float)) and v > a.high:
            return f"{spec.name}: {a.name}={v!r} is above the maximum {a.high}"
    return None


def copy_state(state: dict) -> dict:
    """Deep copy that also proves the state is JSON-serialisable."""
    return json.loads(json.dumps(state))


__all__ = [
    "VariableSpec", "ArgSpec", "ActionSpec", "EnvSpec", "Environment",
    "get_path", "set_path", "pointer_tokens", "variable_values", "make_action", "format_action",
    "parse_action", "coerce_action", "check_args", "ActionParseError", "copy_state",
]
