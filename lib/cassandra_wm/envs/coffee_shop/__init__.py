"""The coffee-shop environment: ``CoffeeShopEnv`` (simulator), its manual and its agents."""
from .sim import DETERMINISTIC, STOCHASTIC, CoffeeShopEnv, CoffeeShopParams

__all__ = ["CoffeeShopEnv", "CoffeeShopParams", "STOCHASTIC", "DETERMINISTIC"]
