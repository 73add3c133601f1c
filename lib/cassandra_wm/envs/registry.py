"""The environment registry: one :class:`EnvKit` per environment, registered once.

A kit names everything the pipeline needs from an environment, as ``"module:attribute"``
strings resolved on first use (a leading ``.`` is relative to the kit's package), so listing
the environments imports none of them:

* ``env``: the :class:`~cassandra_wm.envs.base.Environment` subclass (or any factory taking
  keyword arguments);
* ``agents``: a dict ``{kind: Agent class}`` (the data-collection agents; ``"heuristic"`` is
  also the planners' default rollout policy);
* ``proposer``: the planners' action proposer class (a
  :class:`~cassandra_wm.envs.proposer_base.Proposer`); ``None`` means the generic
  :class:`~cassandra_wm.envs.proposer_base.SpecProposer`;
* ``views``: a module of notebook helpers for the environment's own figures (optional);
* ``defaults``: plain settings other stages read, e.g. ``anneal_steps`` (the paper's
  simulated-annealing steps for this environment).

The built-in kits live in ``envs/<name>/kit.py`` and are listed in :data:`BUILTIN`; anything
else (a user's environment, a test's toy one) calls :func:`register` with its kit.
See ``envs/ADDING_AN_ENVIRONMENT.md``.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

BUILTIN = ("coffee_shop", "theme_park", "maps")

_KITS: dict[str, "EnvKit"] = {}


def _resolve(ref: Any, package: str) -> Any:
    """``"module:attr"`` (``.module`` relative to ``package``) -> the object; other values as they are."""
    if not isinstance(ref, str):
        return ref
    mod, _, attr = ref.partition(":")
    module = importlib.import_module(mod, package if mod.startswith(".") else None)
    return getattr(module, attr) if attr else module


@dataclass(frozen=True)
class EnvKit:
    """Everything the pipeline needs from one environment (see the module docstring)."""

    name: str
    env: Any
    agents: Any = None
    proposer: Any = None
    views: Any = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    package: str = ""  # what relative references are resolved against
    description: str = ""

    def env_class(self) -> Any:
        return _resolve(self.env, self.package)

    def agent_classes(self) -> dict[str, Any]:
        return dict(_resolve(self.agents, self.package) or {})

    def proposer_class(self) -> Any:
        if self.proposer is None:
            from .proposer_base import SpecProposer
            return SpecProposer
        return _resolve(self.proposer, self.package)

    def views_module(self) -> Any:
        return _resolve(self.views, self.package) if self.views is not None else None

    def default(self, key: str, fallback: Any = None) -> Any:
        return self.defaults.get(key, fallback)


def register(kit: EnvKit, replace: bool = False) -> EnvKit:
    """Add ``kit`` to the registry (``replace=True`` to override one of the same name)."""
    if not isinstance(kit, EnvKit):
        raise TypeError(f"register expects an EnvKit, got {type(kit).__name__}")
    if kit.name in _KITS and not replace and _KITS[kit.name] is not kit:
        raise ValueError(f"an environment named {kit.name!r} is already registered")
    _KITS[kit.name] = kit
    return kit


def unregister(name: str) -> None:
    _KITS.pop(name, None)


def get_kit(name: str) -> EnvKit:
    """The kit of environment ``name``; built-in kits are imported on first use."""
    if not isinstance(name, str):
        raise TypeError(f"environment name must be a string, got {type(name).__name__}")
    kit = _KITS.get(name)
    if kit is None and name in BUILTIN:
        kit = register(importlib.import_module(f"{__package__}.{name}.kit").KIT)
    if kit is None:
        raise ValueError(f"unknown environment {name!r}; known: {env_names()}")
    return kit


def env_names() -> list[str]:
    """Built-in environments first, then registered ones."""
    return list(BUILTIN) + [n for n in _KITS if n not in BUILTIN]


def make_env(name: str, **kwargs: Any) -> Any:
    """Build environment ``name`` with ``kwargs`` (its constructor's keyword arguments)."""
    return get_kit(name).env_class()(**kwargs)


def make_agent(env: Any, kind: str = "heuristic", invalid_rate: float = 0.0, seed: int | None = None) -> Any:
    """An agent of ``kind`` for ``env`` (an Environment or its EnvSpec), from the env's kit.

    ``"random"`` falls back to the generic spec-driven :class:`RandomAgent` when the kit has none.
    """
    from .agent_base import RandomAgent
    from .base import EnvSpec
    spec = env if isinstance(env, EnvSpec) else getattr(env, "spec", None)
    if not isinstance(spec, EnvSpec):
        raise TypeError(f"make_agent needs an Environment or EnvSpec, got {type(env).__name__}")
    table = get_kit(spec.name).agent_classes()
    cls = table.get(kind)
    if cls is None and kind == "random":
        cls = RandomAgent
    if cls is None:
        known = sorted(set(table) | {"random"})
        raise ValueError(f"unknown agent kind {kind!r} for {spec.name!r}; known: {known}")
    params = inspect.signature(cls).parameters
    offered = {"spec": spec, "env": env, "invalid_rate": invalid_rate, "seed": seed}
    kwargs = {k: v for k, v in offered.items() if k in params}
    if "spec" not in kwargs and "env" not in kwargs:
        return cls(spec, **kwargs)
    return cls(**kwargs)


def make_proposer(spec: Any, validity: Any, **kwargs: Any) -> Any:
    """The kit's action proposer for ``spec`` (an EnvSpec), checking validity with ``validity``."""
    return get_kit(spec.name).proposer_class()(spec, validity, **kwargs)


__all__ = ["EnvKit", "BUILTIN", "register", "unregister", "get_kit", "env_names", "make_env", "make_agent",
           "make_proposer"]
