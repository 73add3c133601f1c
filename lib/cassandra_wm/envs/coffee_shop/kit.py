"""The coffee shop's kit: what the pipeline needs from this environment (see ``envs/registry.py``)."""
from ..registry import EnvKit

KIT = EnvKit(
    name="coffee_shop",
    package=__package__,
    env=".sim:CoffeeShopEnv",
    agents=".agents:AGENTS",
    proposer=".proposer:CoffeeShopProposer",
    views=".views",
    defaults={
        "anneal_steps": 100,  # the paper's simulated-annealing steps for the coffee shop
        # The planners' defaults (MCTSConfig.for_env / MPCConfig.for_env).  An upgrade is paid at once and
        # repaid over about ten days, so the look-ahead is 10 days: 3 tree actions, then the steady manager
        # keeps the shop stocked and clean to the end (with the paper's 3 days and waiting, even the real
        # simulator as model never upgrades and ends below the heuristic agent).
        "planning": {"tree_depth": 3, "lookahead": 10, "rollout_policy": "heuristic", "batch": 10},
        "mpc": {"n_first": 30, "rollouts": 8, "lookahead": 10, "rollout_policy": "heuristic", "score": "mean"},
        "rollout_agent": "steady",  # the agent kind the "heuristic" rollout policy plays
    },
    description="our coffee shop (the paper's is not public): 8 variables, 6 stochastic",
)
