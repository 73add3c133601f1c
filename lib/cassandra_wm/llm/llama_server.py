"""Start llama-cpp-python's OpenAI-compatible server with repeatable answers and faster log-probabilities.

Run as a script (``python llama_server.py <llama_cpp.server arguments>``); it takes the same
arguments as ``python -m llama_cpp.server`` and changes two things inside the server process:

1. Repeatable answers.  Between requests llama-cpp-python keeps the evaluated tokens and
   re-uses the longest common prefix with the next prompt, evaluating only the rest.  The
   logits then depend on how the prompt was cut into batches (a one-token decode and a
   64-token batch round differently), so the same temperature-0 request can give other
   log-probabilities, and sometimes other text, depending on what was asked before.  Here a
   prefix is re-used only up to a multiple of the batch size, and only over positions that
   were themselves evaluated as prompt: the remaining tokens are then cut into exactly the
   batches a fresh evaluation would use, so a reply depends on the request alone, while
   prompts that share a long beginning (the environment manual) still skip most of it.
2. Faster log-probabilities (see :class:`_LogprobRows` and :func:`_ranked_zip`).
"""
from __future__ import annotations

import builtins
import functools
import os
import sys
import threading
import time


def patch_repeatable_reuse() -> None:
    """Make ``Llama.generate`` re-use only batch-aligned prompt prefixes (see the module docstring)."""
    from llama_cpp import Llama

    original = Llama.generate
    if getattr(original, "_cassandra_aligned", False):
        return

    @functools.wraps(original)
    def generate(self, tokens, *args, **kwargs):
        if not kwargs.get("reset", True):
            return original(self, tokens, *args, **kwargs)
        tokens = list(tokens)
        keep = 0
        clean = min(getattr(self, "_cassandra_prompt_len", 0), self.n_tokens)
        if clean > 0 and not (self._is_recurrent or self._is_hybrid):
            common = 0
            for a, b in zip(self.input_ids[:clean].tolist(), tokens):
                if a != b:
                    break
                common += 1
            # keep whole batches only, and at least one prompt token to evaluate for fresh logits
            keep = (min(common, len(tokens) - 1) // self.n_batch) * self.n_batch
        self._cassandra_prompt_len = len(tokens)  # positions evaluated in prompt batches from here on
        if keep <= 0:
            self.reset()  # n_tokens = 0: eval() then clears the whole KV cache
            return original(self, tokens, *args, **kwargs)
        self.n_tokens = keep  # eval() drops the cached positions from here on
        self._requires_eval = True
        kwargs["reset"] = False
        return original(self, tokens[keep:], *args, **kwargs)

    generate._cassandra_aligned = True
    Llama.generate = generate


class _Row(list):
    """The log-probabilities of one position as Python floats, with the numpy array kept for ranking."""

    __slots__ = ("array",)


class _LogprobRows:
    """Log-probability rows computed one at a time, as :class:`_Row` lists.

    llama-cpp-python turns the logits of *every* evaluated position into log-probabilities,
    although it only reports the completion's; lazy rows skip the prompt's.
    """

    def __init__(self, logits, convert, start: int = 0):
        self._logits, self._convert, self._start = logits, convert, start

    def __len__(self) -> int:
        return max(len(self._logits) - self._start, 0)

    def _row(self, i: int) -> _Row:
        arr = self._convert(self._logits[i])
        row = _Row(arr.tolist())
        row.array = arr
        return row

    def __getitem__(self, key):
        if isinstance(key, slice) and key.step in (None, 1) and key.stop is None and (key.start or 0) >= 0:
            return _LogprobRows(self._logits, self._convert, self._start + (key.start or 0))
        if isinstance(key, int):
            return self._row(self._start + key if key >= 0 else len(self._logits) + key)
        raise TypeError(f"unsupported index {key!r}")

    def __iter__(self):
        for i in range(self._start, len(self._logits)):
            yield self._row(i)


def _ranked_zip(*args, **kwargs):
    """``zip`` that, for ``zip(row, range(len(row)))`` over a :class:`_Row`, returns the pairs ranked.

    llama-cpp-python then sorts those (value, token id) pairs in reverse to find the top
    alternatives of each generated token: in Python that costs tens of milliseconds per token.
    Handing ``sorted`` the pairs already in its output order (descending value, ties by the
    larger id, as a reverse tuple sort puts them) leaves it one linear pass; the result is the same.
    """
    if (len(args) == 2 and not kwargs and type(args[0]) is _Row and type(args[1]) is range
            and args[1] == range(len(args[0]))):
        import numpy as np

        arr = args[0].array
        if not np.isnan(arr).any():
            order = np.argsort(arr, kind="stable")[::-1]  # ties keep id order, so reversed: larger id first
            return list(builtins.zip(arr[order].tolist(), order.tolist()))
    return builtins.zip(*args, **kwargs)


def patch_fast_logprobs() -> None:
    """Faster log-probabilities: lazy rows (see _LogprobRows) and pre-ranked pairs (see _ranked_zip)."""
    import numpy as np
    import llama_cpp.llama as llama_module
    from llama_cpp import Llama

    original = Llama.logits_to_logprobs
    if getattr(original, "_cassandra_lazy", False):
        return

    def logits_to_logprobs(logits, axis: int = -1):
        if isinstance(logits, np.ndarray) and logits.ndim == 2 and axis in (-1, 1):
            return _LogprobRows(logits, original)
        return original(logits, axis=axis)

    logits_to_logprobs._cassandra_lazy = True
    Llama.logits_to_logprobs = staticmethod(logits_to_logprobs)
    llama_module.zip = _ranked_zip  # a module global: shadows the builtin inside llama.py only


def exit_with_parent() -> None:
    """Exit when the process named by ``$CASSANDRA_LLM_PARENT_PID`` is gone (it died without stopping us)."""
    parent = os.environ.get("CASSANDRA_LLM_PARENT_PID")
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    exit_with_parent()
    patch_repeatable_reuse()
    patch_fast_logprobs()
    from llama_cpp.server.__main__ import main as server_main

    sys.argv[0] = "llama_cpp.server"
    server_main()


if __name__ == "__main__":
    main()
