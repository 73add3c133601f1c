"""Deterministic stream: LLM-written code model phi, sandboxed execution, error typing, refinement.

* :mod:`.model`: phi as functions (source + manifest), edits, a versioned store on disk;
* :mod:`.sandbox`: running phi in a resource-limited worker process, many transitions per call;
* :mod:`.errors`: E_exec / E_pf / E_ps / E_od typing of a prediction;
* :mod:`.refine`: algorithms 1 (refinement loop) and 2 (PERS / ODRS scores) of the paper;
* :mod:`.llm_code`: prompts and reply parsing for initial code and refinement proposals;
* :mod:`.evaluate`: tables 3 and 4 for the deterministic part.
"""
from .model import CodeFunction, CodeModel, CodeStore, Proposal, Refinement, RefinementError, make_function

__all__ = ["CodeFunction", "CodeModel", "CodeStore", "Proposal", "Refinement", "RefinementError", "make_function"]
