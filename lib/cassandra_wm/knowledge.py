"""Everything CASSANDRA asks of an LLM, behind one interface.

``LLMKnowledge(chat)`` works with any :class:`~cassandra_wm.llm.base.ChatClient`:
the bundled local model, a user's OpenAI-compatible endpoint, a replay cache or a
scripted client in tests.  The prompts themselves live next to the code that
uses them (``structure/llm_dag.py``, ``structure/prior.py``, ``codewm/llm_code.py``).
"""
from __future__ import annotations

from .llm.base import ChatClient


class LLMKnowledge:
    def __init__(self, chat: ChatClient):
        self.chat = chat

    @property
    def model(self) -> str:
        return self.chat.model

    # -- stochastic stream ----------------------------------------------
    def order_variables(self, spec, sample_index: int = 0, temperature: float = 0.7):
        from .structure.llm_dag import order_variables
        return order_variables(self.chat, spec, sample_index=sample_index, temperature=temperature)

    def elicit_parents(self, spec, variable: str, candidates: list[str], sample_index: int = 0,
                       temperature: float = 0.7):
        from .structure.llm_dag import elicit_parents
        return elicit_parents(self.chat, spec, variable, candidates, sample_index=sample_index,
                              temperature=temperature)

    def sample_dag(self, spec, sample_index: int = 0, temperature: float = 0.7):
        from .structure.llm_dag import sample_dag
        return sample_dag(self.chat, spec, sample_index=sample_index, temperature=temperature)

    def structure_logprior(self, spec, parents: dict[str, list[str]]):
        from .structure.prior import LLMPrior
        return LLMPrior(self.chat, spec).log_prior(parents)

    # -- deterministic stream -------------------------------------------
    def init_code(self, spec, **kwargs):
        from .codewm.llm_code import init_code
        return init_code(self.chat, spec, **kwargs)

    def refine_code(self, spec, **kwargs):
        from .codewm.llm_code import propose_refinements
        return propose_refinements(self.chat, spec, **kwargs)
