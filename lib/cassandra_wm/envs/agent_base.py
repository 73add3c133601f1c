"""Agents that generate data: a common base and a spec-driven random agent.

Every agent answers ``act(state, rng) -> action dict`` (``{"name", "args"}``), drawing
all its randomness from the generator it is given, so a collection run is fixed by
its seed.  ``invalid_rate`` is the fraction of steps on which an agent deliberately
sends a broken action, so the data shows the model what refusals look like.

Environment-specific agents live in their kit (``cassandra_wm.envs.<env>.agents``) and
subclass :class:`Agent`; :func:`cassandra_wm.agents.make_agent` builds them by kind.
"""
from __future__ import annotations

import abc
from typing import Any

import numpy as np

from .base import ActionSpec, ArgSpec, EnvSpec

_DEFAULT_RANGE = (0.0, 100.0)


class Agent(abc.ABC):
    """Base class: subclasses implement :meth:`choose`; :meth:`act` mixes in invalid actions."""

    name = "agent"

    def __init__(self, spec: EnvSpec, invalid_rate: float = 0.0, seed: int | None = None):
        if not 0.0 <= float(invalid_rate) <= 1.0:
            raise ValueError(f"invalid_rate must be in [0, 1], got {invalid_rate!r}")
        self.spec = spec
        self.invalid_rate = float(invalid_rate)
        self.seed = seed

    def start_episode(self, rng: np.random.Generator) -> None:
        """Called at the start of every trajectory; agents with per-episode traits redraw them here."""

    def act(self, state: dict, rng: np.random.Generator) -> dict:
        """The next action: deliberately invalid with probability ``invalid_rate``."""
        if self.invalid_rate > 0 and rng.random() < self.invalid_rate:
            return self.invalid_action(state, rng)
        return self.choose(state, rng)

    @abc.abstractmethod
    def choose(self, state: dict, rng: np.random.Generator) -> dict:
        """A normal (intended valid) action."""

    def invalid_action(self, state: dict, rng: np.random.Generator) -> dict:
        """A deliberately broken action; the default breaks the spec (name, types, ranges)."""
        return spec_invalid_action(self.spec, rng)

    def describe(self) -> dict:
        """JSON-friendly description, stored with collected data."""
        return {"kind": self.name, "class": type(self).__name__, "invalid_rate": self.invalid_rate}


def _arg_range(a: ArgSpec) -> tuple[float, float]:
    lo = a.low if a.low is not None else _DEFAULT_RANGE[0]
    hi = a.high if a.high is not None else max(lo + 1.0, _DEFAULT_RANGE[1])
    return float(lo), float(hi)


def sample_arg(a: ArgSpec, rng: np.random.Generator) -> Any:
    """A value for argument ``a`` drawn uniformly from its declared range or choices."""
    if a.choices:
        return a.choices[int(rng.integers(len(a.choices)))]
    lo, hi = _arg_range(a)
    if a.type == "int":
        return int(rng.integers(int(np.ceil(lo)), int(np.floor(hi)) + 1))
    if a.type == "float":
        return round(float(rng.uniform(lo, hi)), 2)
    return f"x{int(rng.integers(1000))}"


def sample_action(spec: EnvSpec, rng: np.random.Generator, action: ActionSpec | None = None) -> dict:
    """A uniformly chosen action with arguments inside their declared ranges."""
    if action is None:
        action = spec.actions[int(rng.integers(len(spec.actions)))]
    return {"name": action.name, "args": {a.name: sample_arg(a, rng) for a in action.args}}


INVALID_KINDS = ("unknown_action", "out_of_range", "wrong_type", "missing_argument", "extra_argument")


def spec_invalid_action(spec: EnvSpec, rng: np.random.Generator, kind: str | None = None) -> dict:
    """An action the spec itself rejects: unknown name, out-of-range or wrongly typed argument,
    missing or extra argument.  Kinds that the chosen action cannot show fall back to others."""
    with_args = [a for a in spec.actions if a.args]
    kinds = list(INVALID_KINDS) if with_args else ["unknown_action", "extra_argument"]
    if kind is None or kind not in kinds:
        kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "unknown_action":
        bogus = ["sell_shop", "hire_barista", "teleport", "open_second_shop", "advertise"]
        name = bogus[int(rng.integers(len(bogus)))]
        while any(a.name == name for a in spec.actions):
            name += "_x"
        return {"name": name, "args": {}}
    if kind == "extra_argument":
        act = sample_action(spec, rng)
        act["args"]["speed"] = int(rng.integers(1, 10))
        return act
    aspec = with_args[int(rng.integers(len(with_args)))]
    act = sample_action(spec, rng, aspec)
    arg = aspec.args[int(rng.integers(len(aspec.args)))]
    if kind == "missing_argument":
        del act["args"][arg.name]
    elif kind == "wrong_type":
        act["args"][arg.name] = ["lots", None, "ten", [1, 2]][int(rng.integers(4))]
        if arg.type == "str" and not arg.choices:
            act["args"][arg.name] = 12345
    else:  # out_of_range
        if arg.choices:
            act["args"][arg.name] = "not_a_choice"
        else:
            lo, hi = _arg_range(arg)
            width = max(hi - lo, 1.0)
            v = hi + width * float(rng.uniform(0.1, 1.0)) if rng.random() < 0.5 else lo - width * float(
                rng.uniform(0.1, 1.0))
            act["args"][arg.name] = int(round(v)) if arg.type == "int" else round(v, 2)
            if arg.type == "str":
                act["args"][arg.name] = 12345
    return act


class RandomAgent(Agent):
    """Uniform over actions, arguments uniform in their declared ranges (careless by design)."""

    name = "random"

    def choose(self, state: dict, rng: np.random.Generator) -> dict:
        return sample_action(self.spec, rng)


__all__ = ["Agent", "RandomAgent", "sample_action", "sample_arg", "spec_invalid_action", "INVALID_KINDS"]
