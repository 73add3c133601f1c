"""Simulators, the Environment protocol and the registry of environment kits."""
from .base import (ActionParseError, ActionSpec, ArgSpec, EnvSpec, Environment, VariableSpec,
                   check_args, coerce_action, copy_state, format_action, get_path, make_action,
                   parse_action, set_path, variable_values)
from .registry import BUILTIN, EnvKit, env_names, get_kit, make_env, register

ENV_NAMES = BUILTIN
__all__ = ["make_env", "ENV_NAMES", "EnvKit", "get_kit", "env_names", "register", "Environment", "EnvSpec", "VariableSpec", "ActionSpec", "ArgSpec",
           "get_path", "set_path", "variable_values", "make_action", "format_action", "parse_action",
           "coerce_action", "check_args", "ActionParseError", "copy_state"]
