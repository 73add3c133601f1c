"""The theme park's kit: what the pipeline needs from this environment (see ``envs/registry.py``)."""
from ..registry import EnvKit


def worth(state: dict) -> float:
    """What the planners maximise in the park: money plus what the rides and shops would fetch if sold (the
    game's resale share of their building cost; the park's ``value`` as the game computes it).  Read from the
    state's lists, so a learned model's sampled money and its deterministic layout give it."""
    from .params import get_params
    from .state import asset_value
    p = get_params((state.get("hidden") or {}).get("parameters", "paper"))
    return float(state["money"]) + float(asset_value(state, p))

KIT = EnvKit(
    name="theme_park",
    package=__package__,
    env=".env:ThemeParkEnv",
    agents=".agents:AGENTS",
    proposer=".proposer:ThemeParkProposer",
    views=".views",
    defaults={
        "anneal_steps": 200,  # the paper's simulated-annealing steps for the theme park
        # The planners' defaults (MCTSConfig.for_env).  A ride or shop is paid at once and repaid over days, so
        # two tree actions are followed by the heuristic manager for a look-ahead of 6 days (with 2 days and
        # nothing beyond, even the real simulator as model hires a mechanic, fires him and ends below waiting),
        # and a plan is worth money plus the resale value of what was built (with money alone a 6-day look-ahead
        # sees a new ride as its price lost and sells what it built for the refund).
        "planning": {"tree_depth": 2, "lookahead": 6, "rollout_policy": "heuristic", "batch": 4,
                     "value": "cassandra_wm.envs.theme_park.kit:worth", "propose_policy": True},
        "mpc": {"n_first": 16, "rollouts": 4, "lookahead": 6, "rollout_policy": "heuristic", "score": "mean"},
        "rollout_agent": "heuristic",  # the agent kind the "heuristic" rollout policy plays
    },
    description="the Mini Amusement Parks game's rules, action text and observation JSON in Python, easy mode",
)
