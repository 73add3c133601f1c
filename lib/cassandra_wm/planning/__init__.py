"""Planning over world models: open-loop MCTS and sampled-rollout MPC, action proposals, the data's support,
agent rosters, episode executors, tables and diagnostics.

Modules: :mod:`.mcts`, :mod:`.mpc`, :mod:`.rollouts` (planners); :mod:`.proposals` (the environments'
proposers); :mod:`.support` (keeping learned models inside their data); :mod:`.roster` (agents as data);
:mod:`.executor` (serial, local processes, Dask); :mod:`.episodes` (playing and storing episodes);
:mod:`.stats` (tables); :mod:`.diagnostics` (why an agent plans well or badly).
"""
from .episodes import heldout_seeds, layout_seeds, play_agents, play_episode
from .executor import make_executor
from .mcts import MCTS, MCTSAgent, MCTSConfig, PlanResult
from .mpc import MPCConfig, SampledMPCAgent
from .proposals import CoffeeShopProposer, Proposer, SpecProposer, ThemeParkProposer, make_proposer
from .roster import AgentSpec, build_agent, load_networks, standard_roster
from .rollouts import AgentRollout, RandomProposalRollout, WaitRollout, make_rollout_policy
from .support import DataSupport, GuardedProposer, GuardedRollout, SupportGuard

__all__ = ["MCTS", "MCTSAgent", "MCTSConfig", "PlanResult", "MPCConfig", "SampledMPCAgent", "Proposer",
           "CoffeeShopProposer", "SpecProposer", "ThemeParkProposer", "make_proposer", "WaitRollout",
           "RandomProposalRollout", "AgentRollout", "make_rollout_policy", "DataSupport", "SupportGuard",
           "GuardedProposer", "GuardedRollout", "AgentSpec", "build_agent", "standard_roster", "load_networks",
           "make_executor", "heldout_seeds", "layout_seeds", "play_agents", "play_episode"]
