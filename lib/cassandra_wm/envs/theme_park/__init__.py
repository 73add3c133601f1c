"""Theme park simulator built from the published Mini Amusement Parks (MAPs) rules, easy mode.

``ThemeParkEnv`` is the Environment; ``transition``/``simulate_day`` run the engine from any
state; ``layouts`` has the 7 training and 3 held-out path layouts; ``agents`` the heuristic and
random agents; ``render.render_park`` draws a state.
"""
from .env import ThemeParkEnv
from .layouts import LAYOUTS, TEST_LAYOUTS, TRAIN_LAYOUTS, get_layout
from .sim import simulate_day, transition
from .spec import BN_VARIABLES, TRUE_GRAPH, build_spec

__all__ = ["ThemeParkEnv", "transition", "simulate_day", "build_spec", "BN_VARIABLES", "TRUE_GRAPH",
           "LAYOUTS", "TRAIN_LAYOUTS", "TEST_LAYOUTS", "get_layout"]
