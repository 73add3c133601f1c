"""The ``maps`` kit: the real game, with the theme park's agents, proposer and views."""
from ..registry import EnvKit

KIT = EnvKit(
    name="maps",
    package=__package__,
    env=".env:MapsEnv",
    agents="..theme_park.agents:AGENTS",
    proposer="..theme_park.proposer:ThemeParkProposer",
    views="..theme_park.views",
    defaults={"anneal_steps": 200},
    description="the real Mini Amusement Parks game (user-installed Node server on 127.0.0.1)",
)
