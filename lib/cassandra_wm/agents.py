"""Agents that generate data and serve as references: the base classes and a look-up by kind.

The base classes live in :mod:`cassandra_wm.envs.agent_base` (environment kits subclass them
there, so no environment imports anything above ``envs``); environment-specific agents live in
each kit's ``agents`` module.  :func:`make_agent` builds one by kind from the environment's kit.
"""
from .envs.agent_base import (INVALID_KINDS, Agent, RandomAgent, sample_action, sample_arg,
                              spec_invalid_action)
from .envs.registry import make_agent

__all__ = ["Agent", "RandomAgent", "make_agent", "sample_action", "sample_arg", "spec_invalid_action",
           "INVALID_KINDS"]
