"""The lemonade stand's kit: the one object the registry needs."""
from cassandra_wm.envs.registry import EnvKit

KIT = EnvKit(
    name="lemonade",
    package=__package__,
    env=".sim:LemonadeEnv",
    agents=".agents:AGENTS",
    proposer=None,  # the generic SpecProposer is enough here
    defaults={"anneal_steps": 10},
    description="a toy lemonade stand (tests/toy_env)",
)
