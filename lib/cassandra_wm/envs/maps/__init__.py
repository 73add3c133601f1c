"""The real Mini Amusement Parks game behind the Environment interface (the ``maps`` environment).

``MapsEnv`` drives a user-installed game (its Node server on 127.0.0.1); ``client`` holds the HTTP
adapter and the observation formatter; ``fidelity`` the side-by-side comparison with the Python
port (``theme_park`` with ``parameters="game"``).
"""
from .client import GameClient, GameError, GameServer, observation_from_raw
from .env import MapsEnv

__all__ = ["MapsEnv", "GameClient", "GameServer", "GameError", "observation_from_raw"]
