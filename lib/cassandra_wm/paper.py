"""The paper's settings, in one place (CASSANDRA, appendices C and E).

Every module that needs one of these imports it from here; notebooks show them.  Values are the
paper's unless a comment says otherwise.
"""
from __future__ import annotations

# -- structure search (eq. 5, appendix E.3) ----------------------------------------
LAMBDA1 = 10.0    # sparsity weight: J pays lambda1 * |E| / |V|^2
LAMBDA2 = 100.0   # prior weight: J gains lambda2 * log p(E | V, L)
ANNEAL_ALPHA = 0.99  # geometric cooling factor of simulated annealing

# -- the graphs compared in tables 1, 2 and 5 ---------------------------------------
CASSANDRA = "CASSANDRA"  # LLM-sampled DAGs, annealed with data fit, sparsity and the LLM prior
CASS_IND = "CASS-Ind"    # no edges among the stochastic variables
CASS_L = "CASS-L"        # a random linear order (chain)
CASS_R = "CASS-R"        # annealing from random DAGs without the LLM prior
GRAPH_NAMES = (CASSANDRA, CASS_IND, CASS_L, CASS_R)

# -- planning (appendix C.4) ---------------------------------------------------------
MCTS_ITERATIONS = 90
MCTS_ROLLOUTS = 4      # rows simulated together per expanded node
MCTS_PROPOSALS = 100   # proposal draws per tree node, before de-duplication
# The appendix plans over "a horizon of 3 actions" and optimises the money at its end: every action of
# the look-ahead is a tree action, so the tree depth and the look-ahead are both 3 days, and nothing
# plays beyond the tree (the wait action fills a simulation that stops early in the tree).
MCTS_TREE_DEPTH = 3
MCTS_LOOKAHEAD = 3
MCTS_ROLLOUT_POLICY = "wait"

# -- sampled-rollout MPC (appendix A.1) -------------------------------------------------
MPC_STEPS = 4          # "rollout for k (4) steps"
MPC_SCORE = "max"      # "take the action with the highest-scoring rollout"

__all__ = ["LAMBDA1", "LAMBDA2", "ANNEAL_ALPHA", "CASSANDRA", "CASS_IND", "CASS_L", "CASS_R", "GRAPH_NAMES",
           "MCTS_ITERATIONS", "MCTS_ROLLOUTS", "MCTS_PROPOSALS", "MCTS_TREE_DEPTH", "MCTS_LOOKAHEAD",
           "MCTS_ROLLOUT_POLICY", "MPC_STEPS", "MPC_SCORE"]
