"""Planning over world models: open-loop MCTS with MPC, sampled-rollout MPC, action proposals, evaluation."""
from .mcts import MCTS, MCTSAgent, MCTSConfig, PlanResult
from .mpc import SampledMPCAgent
from .proposals import CoffeeShopProposer, Proposer, SpecProposer, ThemeParkProposer, make_proposer
from .rollouts import AgentRollout, RandomProposalRollout, WaitRollout, make_rollout_policy

__all__ = ["MCTS", "MCTSAgent", "MCTSConfig", "PlanResult", "SampledMPCAgent", "Proposer", "CoffeeShopProposer",
           "SpecProposer", "ThemeParkProposer", "make_proposer", "WaitRollout", "RandomProposalRollout", "AgentRollout",
           "make_rollout_policy"]
