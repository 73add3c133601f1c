"""Action proposals for the planners: the base class, the generic fallback and the look-up.

The proposers themselves belong to the environments: the shared rules and
:class:`SpecProposer` live in :mod:`cassandra_wm.envs.proposer_base`, each environment's own
proposer in its kit (``envs/<name>/proposer.py``).  :func:`make_proposer` builds the one
registered for an environment.
"""
from ..envs.coffee_shop.proposer import CoffeeShopProposer
from ..envs.proposer_base import Proposer, SpecProposer
from ..envs.registry import make_proposer
from ..envs.theme_park.proposer import ThemeParkProposer

__all__ = ["Proposer", "CoffeeShopProposer", "ThemeParkProposer", "SpecProposer", "make_proposer"]
