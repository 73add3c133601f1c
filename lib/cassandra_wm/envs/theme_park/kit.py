"""The theme park's kit: what the pipeline needs from this environment (see ``envs/registry.py``)."""
from ..registry import EnvKit

KIT = EnvKit(
    name="theme_park",
    package=__package__,
    env=".env:ThemeParkEnv",
    agents=".agents:AGENTS",
    proposer=".proposer:ThemeParkProposer",
    views=".views",
    defaults={"anneal_steps": 200},  # the paper's simulated-annealing steps for the theme park
    description="the Mini Amusement Parks game's rules, action text and observation JSON in Python, easy mode",
)
