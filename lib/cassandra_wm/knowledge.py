"""Everything CASSANDRA asks of a knowledge source, behind one interface.

A knowledge source answers the questions of both streams:

* stochastic stream: the variable ordering and parent questions of algorithm 3
  (:meth:`sample_dag`, :meth:`order_variables`, :meth:`elicit_parents`) and the structure prior
  (:meth:`structure_prior`, a :class:`~cassandra_wm.structure.prior.StructurePrior`);
* deterministic stream: the initial code model and refinement candidates (:meth:`init_code`,
  :meth:`refine_code`).

:class:`LLMKnowledge` asks any :class:`~cassandra_wm.llm.base.ChatClient`: the bundled local model,
a user's OpenAI-compatible endpoint, a replay cache or a scripted client in tests.  The prompts
live next to the code that uses them (``structure/llm_dag.py``, ``structure/prior.py``,
``codewm/llm_code.py``).

:class:`~cassandra_wm.structure.expert.SimulatedExpert` answers the structure questions from the
simulator's true graph with a chosen error rate.  It is an **evaluation control** (it reads ground
truth; ``is_evaluation_control`` is True), never a default, and every result it makes says so.

Every source has ``model`` (the name written into tables and figures).
"""
from __future__ import annotations

from typing import Sequence

from .llm.base import ChatClient
from .structure.expert import SimulatedExpert


class LLMKnowledge:
    """The paper's knowledge source: an LLM behind a chat client."""

    is_evaluation_control = False

    def __init__(self, chat: ChatClient):
        self.chat = chat

    @property
    def model(self) -> str:
        return self.chat.model

    label = model

    # -- stochastic stream ----------------------------------------------
    def order_variables(self, spec, sample_index: int = 0, temperature: float = 0.7,
                        nodes: Sequence[str] | None = None, log_to: dict | None = None) -> list[str]:
        from .structure.llm_dag import order_variables
        return order_variables(self.chat, spec, sample_index=sample_index, temperature=temperature,
                               nodes=list(nodes) if nodes is not None else None, log_to=log_to)

    def elicit_parents(self, spec, variable: str, candidates: list[str], sample_index: int = 0,
                       temperature: float = 0.7, log_to: dict | None = None) -> list[str]:
        from .structure.llm_dag import elicit_parents
        return elicit_parents(self.chat, spec, variable, candidates, sample_index=sample_index,
                              temperature=temperature, log_to=log_to)

    def sample_dag(self, spec, sample_index: int = 0, temperature: float = 0.7, nodes: Sequence[str] | None = None):
        from .structure.llm_dag import sample_dag
        return sample_dag(self.chat, spec, sample_index=sample_index, temperature=temperature,
                          nodes=list(nodes) if nodes is not None else None)

    def structure_prior(self, spec, nodes: Sequence[str] | None = None, **kwargs):
        """An :class:`~cassandra_wm.structure.prior.LLMPrior` on this client (keyword arguments go to it:
        ``cache_path``, ``reasoning``, ``orders``, ``centre``, ``max_candidates``...)."""
        from .structure.prior import LLMPrior
        return LLMPrior(self.chat, spec, nodes=nodes, **kwargs)

    # -- deterministic stream -------------------------------------------
    def init_code(self, spec, **kwargs):
        from .codewm.llm_code import init_code
        return init_code(self.chat, spec, **kwargs)

    def refine_code(self, spec, **kwargs):
        from .codewm.llm_code import propose_refinements
        return propose_refinements(self.chat, spec, **kwargs)


__all__ = ["LLMKnowledge", "SimulatedExpert"]
