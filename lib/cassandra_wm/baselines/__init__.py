"""The paper's baselines (appendix A), with the same interfaces as CASSANDRA's models.

* :mod:`.walle`: WALL-E-MAPs, an LLM next-state predictor with retrieved few-shot examples and
  learned code rules for validity; :class:`~.walle.WallEModel` is a planning model
  (``sample_next``, ``reward``, ``is_terminal``) and a validity source (``check``).
* :mod:`.worldcoder`: OfflineWorldCoder, REx over one monolithic program for the deterministic
  variables; its programs run in the code stream's sandbox like CASSANDRA's code model.
* :mod:`.embedding`: all-MiniLM-L6-v2 sentence embeddings from a PyPI wheel, offline.
* :mod:`.evaluate`: tables 2, 3 and 4 for any model; :mod:`.agents`: the WALL-E planning roster.
* :mod:`.common`: LLM budgets, calls, reply parsing and value repair shared by both.

Nothing is imported here eagerly, so ``import cassandra_wm.baselines`` loads neither torch nor the
sandbox.
"""
