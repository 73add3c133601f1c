"""Mini Amusement Parks (easy mode) in Python: the public game's rules, action text and observation JSON.

``ThemeParkEnv`` is the Environment; ``transition``/``simulate_day`` run the engine from any state;
``layouts`` has the game's named layouts (7 for training, 3 held out); ``params`` the two parameter
sets ("paper", "game"); ``agents`` the heuristic and random agents; ``render.render_park`` draws a state.
"""
from .env import ThemeParkEnv
from .layouts import LAYOUTS, TEST_LAYOUTS, TRAIN_LAYOUTS, get_layout
from .params import PARAMETER_SETS, get_params
from .sim import simulate_day, transition
from .spec import BN_VARIABLES, TRUE_GRAPH, build_spec

__all__ = ["ThemeParkEnv", "transition", "simulate_day", "build_spec", "BN_VARIABLES", "TRUE_GRAPH",
           "LAYOUTS", "TRAIN_LAYOUTS", "TEST_LAYOUTS", "get_layout", "PARAMETER_SETS", "get_params"]
