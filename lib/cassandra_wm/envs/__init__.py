"""Simulators and the Environment protocol."""
from .base import (ActionParseError, ActionSpec, ArgSpec, EnvSpec, Environment, VariableSpec,
                   check_args, coerce_action, copy_state, format_action, get_path, make_action,
                   parse_action, set_path, variable_values)


def make_env(name: str, **kwargs) -> Environment:
    """Build an environment by name: ``coffee_shop`` or ``theme_park``."""
    if name == "coffee_shop":
        from .coffee_shop import CoffeeShopEnv
        return CoffeeShopEnv(**kwargs)
    if name == "theme_park":
        from .theme_park import ThemeParkEnv
        return ThemeParkEnv(**kwargs)
    raise ValueError(f"unknown environment {name!r}; choose 'coffee_shop' or 'theme_park'")


ENV_NAMES = ("coffee_shop", "theme_park")
__all__ = ["make_env", "ENV_NAMES", "Environment", "EnvSpec", "VariableSpec", "ActionSpec", "ArgSpec",
           "get_path", "set_path", "variable_values", "make_action", "format_action", "parse_action",
           "coerce_action", "check_args", "ActionParseError", "copy_state"]
