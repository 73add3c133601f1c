"""OfflineWorldCoder (the paper's appendix A.2): REx over one monolithic program for the deterministic variables.

The program is one Python function written by the LLM::

    def step(state, action):
        ...
        return valid, changes   # valid: True/False; changes: {deterministic variable: new value}

``changes`` lists the deterministic variables that change in this step, whether or not the action
is allowed.  The program runs only in the bundle's sandbox (``codewm.sandbox``): our adapter, added
after the LLM's code, calls ``step`` once as a precondition of every action (its ``valid``) and
once as the dynamic function (its ``changes``, turned into a JSON patch of the variables' paths;
the action reaches it through the state under the key ``wc_action``).  Anything the program does
wrong (syntax, exceptions, time-outs, a wrong return shape, an unknown variable) is an E_exec
error of that transition.

REx (Tang et al., 2024), offline as the appendix describes: the replay buffer is the whole training
set; an initial program is written from the manual and a few training transitions; then each
iteration picks a program from the pool by Thompson sampling on
``Beta(1 + C h, 1 + C (1 - h) + N)`` (``h``: share of the buffer the program explains, ``N``: times
it was refined already), shows the LLM one transition it gets wrong, and adds the revised program
to the pool.  REx stops when a program explains everything, after ``patience`` (10) iterations
without a better program, at ``max_iterations``, or when the LLM budget is spent.  A transition is
explained when validity and every deterministic variable are right
(:func:`cassandra_wm.codewm.errors.error_type` is None).
"""
from __future__ import annotations

import ast
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..envs.base import EnvSpec
from .common import Budget, BudgetExhausted, ask, compact_json, reply_json, state_view
from .walle import action_text, as_transition, clean_rule_code

PROMPT_VERSION = "worldcoder-v1"
ACTION_KEY = "wc_action"
STATE_CHARS = 1500
PROGRAM_SCHEMA = {"type": "object", "properties": {"explanation": {"type": "string"}, "code": {"type": "string"}},
                  "required": ["explanation", "code"]}
_DEF = re.compile(r"^\s*def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", re.M)


def entry_point(source: str) -> str:
    """``step`` when the program defines it, else its first top-level function (``step`` if none)."""
    try:
        names = [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        names = _DEF.findall(source)
    return "step" if "step" in names or not names else names[0]


@dataclass
class Program:
    """One program of the pool and how well it explains the buffer."""

    pid: int
    source: str
    parent: int | None
    iteration: int
    explained: float = 0.0  # share of the buffer explained
    refined: int = 0  # times it was picked for revision
    mask: list = field(default_factory=list, repr=False)  # per buffer transition: explained?
    note: str = ""

    def sandbox_source(self, spec: EnvSpec) -> str:
        """The program plus our adapters (see the module docstring)."""
        paths = {v.name: v.path for v in spec.deterministic}
        fn = entry_point(self.source)
        return (self.source.rstrip() + "\n\n\n"
                f"WC_PATHS = {json.dumps(paths)}\n\n\n"
                "def wc_run(state):\n"
                "    s = dict(state)\n"
                f"    act = s.pop({ACTION_KEY!r}, None)\n"
                f"    out = {fn}(s, act)\n"
                "    if not (isinstance(out, (tuple, list)) and len(out) == 2):\n"
                "        raise TypeError('step must return (valid, changes), got ' + repr(out)[:60])\n"
                "    if out[0] is not True and out[0] is not False:\n"
                "        raise TypeError('valid must be True or False, got ' + repr(out[0])[:60])\n"
                "    if not isinstance(out[1], dict):\n"
                "        raise TypeError('changes must be a dict, got ' + repr(out[1])[:60])\n"
                "    return out\n\n\n"
                "def wc_valid(state, action):\n"
                "    return (wc_run(state)[0], 'the program refuses the action')\n\n\n"
                "def wc_changes(state):\n"
                "    patch = []\n"
                "    for name, value in wc_run(state)[1].items():\n"
                "        if name not in WC_PATHS:\n"
                "            raise KeyError('not a deterministic variable: ' + repr(name))\n"
                "        patch.append({'op': 'replace', 'path': WC_PATHS[name], 'value': value})\n"
                "    return patch\n")

    def code_model(self, spec: EnvSpec):
        """The program as a code model: one precondition per action and one dynamic function."""
        from ..codewm.model import CodeFunction, CodeModel
        src = self.sandbox_source(spec)
        fns = {"dyn": CodeFunction(fid="dyn", kind="dynamic", name="wc_changes", source=src, origin="llm")}
        for i, a in enumerate(spec.actions):
            fid = f"valid_{i}"
            fns[fid] = CodeFunction(fid=fid, kind="precondition", name="wc_valid", source=src, action=a.name,
                                    origin="llm")
        return CodeModel(fns, version=self.pid, env_name=spec.name, notes={"source": "OfflineWorldCoder"})


def _items(transitions: Sequence[Any]) -> list[tuple[dict, dict]]:
    return [({**t.state, ACTION_KEY: t.action}, t.action) for t in transitions]


def run_program(program: Program, spec: EnvSpec, sandbox: Any, transitions: Sequence[Any]) -> list:
    """ExecResults of ``program`` on ``transitions`` (validity and deterministic values)."""
    return sandbox.evaluate(program.code_model(spec), _items(transitions))


def _show_state(spec: EnvSpec, state: dict) -> str:
    s = json.dumps(state, separators=(",", ":"), default=str)
    return s if len(s) <= STATE_CHARS else compact_json(state_view(spec, state))


def _header(spec: EnvSpec, include_manual: bool) -> str:
    det = ", ".join(v.name for v in spec.deterministic)
    return (f"You write the transition program of a simulated business, '{spec.name}', in Python.\n\n"
            + (f"MANUAL:\n{spec.manual.strip()}\n\n" if include_manual else "")
            + f"VARIABLES:\n{spec.describe_variables()}\n\nACTIONS:\n{spec.describe_actions()}\n\n"
            "Write ONE function:\n"
            "def step(state, action):\n"
            "    # state: the state dict before the step; action: {\"name\": ..., \"args\": {...}}\n"
            "    # return (valid, changes): valid is True if the action is allowed, False if it is refused;\n"
            f"    # changes is a dict {{variable: new value}} for the deterministic variables ({det}) that change\n"
            "    # in this step ({} when none does). A refused action changes nothing by itself.\n"
            "Plain Python, no classes; you may import math. Reply with one JSON object: "
            + json.dumps({"explanation": "...", "code": "def step(state, action):\n    ...\n    return True, {}"}))


def _show_transition(spec: EnvSpec, t: Any) -> str:
    det_after = {v.name: state_view(spec, t.next_state, [v])[v.name] for v in spec.deterministic}
    outcome = "allowed" if t.valid else f"refused ({t.error})" if t.error else "refused"
    return (f"state: {_show_state(spec, t.state)}\naction: {action_text(t.action)}\nobserved: the action was "
            f"{outcome}; deterministic variables after the step: {compact_json(det_after)}")


def init_messages(spec: EnvSpec, examples: Sequence[Any], include_manual: bool = True) -> list[dict]:
    user = "Some observed steps:\n\n" + "\n\n".join(_show_transition(spec, t) for t in examples)
    user += "\n\nWrite step(state, action) so that it reproduces these steps and follows the manual."
    return [{"role": "system", "content": _header(spec, include_manual)}, {"role": "user", "content": user}]


def revise_messages(spec: EnvSpec, program: Program, t: Any, result: Any, include_manual: bool = True) -> list[dict]:
    pred = "refused" if not result.valid else "allowed"
    got = {n: result.det.get(n) for n in (v.name for v in spec.deterministic)}
    errs = "; ".join(f"{m}" for _, m in result.errors[:3])
    user = (f"The current program:\n```python\n{program.source.rstrip()}\n```\n\n"
            f"It gets this step wrong:\n{_show_transition(spec, t)}\n"
            f"program's prediction: the action is {pred}; deterministic variables after the step: {compact_json(got)}"
            + (f"\nerrors while running it: {errs[:600]}" if errs else "")
            + "\n\nWrite the whole corrected program step(state, action).")
    return [{"role": "system", "content": _header(spec, include_manual)}, {"role": "user", "content": user}]


def parse_program(reply: Any) -> tuple[str, str]:
    """``(source, note)``; an empty source when the reply holds no function."""
    obj, err = reply_json(reply)
    code = clean_rule_code(obj.get("code")) if isinstance(obj, dict) else ""
    note = "" if isinstance(obj, dict) else f"reply is not a JSON object ({err})"
    if not code:
        m = re.search(r"```(?:python|py)?\s*\n(.*?)```", reply.text or "", re.S)
        code = clean_rule_code(m.group(1)) if m else ""
        if code:
            note = (note + "; " if note else "") + "code taken from a fenced block"
    if code and not _DEF.search(code):
        return "", "reply code has no function definition"
    return code, note or ("" if code else "reply holds no code")


@dataclass
class RExResult:
    """The pool, the best program and one row per iteration (share of the buffer explained)."""

    programs: list[Program]
    best: Program | None
    history: list[dict]
    stopped: str
    calls: list[dict] = field(default_factory=list)


class OfflineWorldCoder:
    """REx over monolithic programs, offline (see the module docstring).

    ``buffer``: the training transitions (records or Transitions); ``c``: REx's exploration
    constant C; ``patience``: iterations without a better program before stopping (the paper: 10).
    """

    def __init__(self, chat: Any, spec: EnvSpec, buffer: Sequence[Any], sandbox: Any = None, c: float = 5.0,
                 patience: int = 10, max_iterations: int = 50, n_examples: int = 4, budget: Budget | None = None,
                 max_tokens: int = 768, temperature: float = 0.0, seed: int = 0, include_manual: bool = True,
                 stage: str | None = "06_baselines"):
        if patience < 1 or max_iterations < 0 or n_examples < 0 or c <= 0:
            raise ValueError("patience >= 1, max_iterations >= 0, n_examples >= 0 and c > 0 are required")
        self.chat = chat
        self.spec = spec
        self.buffer = [as_transition(t) for t in buffer]
        if not self.buffer:
            raise ValueError("OfflineWorldCoder needs a non-empty replay buffer")
        if sandbox is None:
            from ..codewm.sandbox import Sandbox
            sandbox = Sandbox(spec)
        self.sandbox = sandbox
        self.c, self.patience, self.max_iterations, self.n_examples = float(c), int(patience), int(max_iterations), int(n_examples)
        self.budget = budget
        self.max_tokens, self.temperature, self.seed = int(max_tokens), float(temperature), int(seed)
        self.include_manual = include_manual
        self.stage = stage

    def score(self, program: Program) -> list:
        """Run ``program`` on the buffer; sets ``explained`` and ``mask``; returns the ExecResults."""
        from ..codewm.errors import error_type
        res = run_program(program, self.spec, self.sandbox, self.buffer)
        program.mask = [error_type(self.spec, r, t) is None for r, t in zip(res, self.buffer)]
        program.explained = float(np.mean(program.mask))
        return res

    def _ask(self, msgs: list[dict], sample_index: int, calls: list[dict], what: str) -> tuple[str, str]:
        reply, err, use = ask(self.chat, msgs, self.budget, schema=PROGRAM_SCHEMA, max_tokens=self.max_tokens,
                              temperature=self.temperature, seed=self.seed, sample_index=sample_index, stage=self.stage)
        src, note = ("", err) if reply is None else parse_program(reply)
        calls.append({"what": what, "usable": bool(src), "note": note, **use,
                      "reply_excerpt": (reply.text[:600] if reply is not None else "")})
        return src, note

    def run(self, progress: bool = True) -> RExResult:
        """Initial program, then REx iterations until a stopping rule holds (see the class docstring)."""
        from tqdm.auto import tqdm
        rng = np.random.default_rng(self.seed)
        calls: list[dict] = []
        pool: list[Program] = []
        history: list[dict] = []
        results: dict[int, list] = {}
        valid = [i for i, t in enumerate(self.buffer) if t.valid]
        invalid = [i for i, t in enumerate(self.buffer) if not t.valid]
        half = self.n_examples // 2
        pick = list(rng.choice(invalid, size=min(len(invalid), half), replace=False)) if invalid else []
        pick += list(rng.choice(valid, size=min(len(valid), self.n_examples - len(pick)), replace=False)) if valid else []
        examples = [self.buffer[int(i)] for i in sorted(int(i) for i in pick)]
        try:
            src, note = self._ask(init_messages(self.spec, examples, self.include_manual), 0, calls, "initial")
        except BudgetExhausted as e:
            return RExResult([], None, [], f"budget spent before the initial program: {e}", calls)
        p0 = Program(0, src or "def step(state, action):\n    return True, {}\n", None, 0,
                     note=note if src else f"no usable initial program ({note}); REx starts from an empty one")
        results[0] = self.score(p0)
        pool.append(p0)
        best = p0
        history.append({"iteration": 0, "program": 0, "parent": None, "explained": p0.explained,
                        "best_explained": best.explained, "usable": bool(src), "note": p0.note})
        since, stopped = 0, ""
        bar = tqdm(total=self.max_iterations, desc="OfflineWorldCoder REx", unit="iteration", disable=not progress)
        try:
            for it in range(1, self.max_iterations + 1):
                if best.explained >= 1.0:
                    stopped = f"a program explains the whole buffer (iteration {it - 1})"
                    break
                if since >= self.patience:
                    stopped = f"no better program for {self.patience} iterations"
                    break
                cand = [p for p in pool if p.explained < 1.0]
                theta = [rng.beta(1 + self.c * p.explained, 1 + self.c * (1 - p.explained) + p.refined) for p in cand]
                parent = cand[int(np.argmax(theta))]
                wrong = [i for i, ok in enumerate(parent.mask) if not ok]
                i = int(wrong[int(rng.integers(len(wrong)))])
                parent.refined += 1
                msgs = revise_messages(self.spec, parent, self.buffer[i], results[parent.pid][i], self.include_manual)
                try:
                    src, note = self._ask(msgs, it, calls, f"revise program {parent.pid}")
                except BudgetExhausted as e:
                    stopped = str(e)
                    break
                row = {"iteration": it, "parent": parent.pid, "transition": i, "usable": bool(src), "note": note}
                if src:
                    p = Program(len(pool), src, parent.pid, it, note=note)
                    results[p.pid] = self.score(p)
                    pool.append(p)
                    row.update(program=p.pid, explained=p.explained, fixes_shown=bool(p.mask[i]))
                    if p.explained > best.explained:
                        best, since = p, 0
                    else:
                        since += 1
                else:
                    row.update(program=None, explained=None, fixes_shown=False)
                    since += 1
                row["best_explained"] = best.explained
                history.append(row)
                bar.update(1)
            else:
                stopped = f"max_iterations={self.max_iterations} reached"
        finally:
            bar.close()
        if best.explained >= 1.0 and not stopped.startswith("a program"):
            stopped = "a program explains the whole buffer"
        return RExResult(pool, best, history, stopped or "done", calls)


__all__ = ["OfflineWorldCoder", "Program", "RExResult", "run_program", "parse_program", "entry_point",
           "init_messages", "revise_messages", "PROGRAM_SCHEMA", "PROMPT_VERSION", "ACTION_KEY"]
