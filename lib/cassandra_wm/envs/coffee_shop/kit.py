"""The coffee shop's kit: what the pipeline needs from this environment (see ``envs/registry.py``)."""
from ..registry import EnvKit

KIT = EnvKit(
    name="coffee_shop",
    package=__package__,
    env=".sim:CoffeeShopEnv",
    agents=".agents:AGENTS",
    proposer=".proposer:CoffeeShopProposer",
    views=".views",
    defaults={"anneal_steps": 100},  # the paper's simulated-annealing steps for the coffee shop
    description="our coffee shop (the paper's is not public): 8 variables, 6 stochastic",
)
