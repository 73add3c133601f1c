"""Admission of generated code: every function is tried on states and actions built from the spec
before any data is used, and a function that cannot run there is not admitted.

Why: a function that crashes, or returns something that is not a JSON patch (or an ``(ok, feedback)``
pair for a precondition), turns every transition it touches into an E_exec error, so one broken
template copy (``def dynamic(state): ...`` returns None on every step) makes a model worse than no
code at all.  Without such a function the slot falls back to the empty function (no
precondition, no patch), which is what the empty model predicts there.

Probes (:func:`probe_items`), from the spec alone:

* states: every declared variable at its lower bound (0 when unbounded below) and at its upper
  bound (lower bound + 100 when unbounded above), plus ``n_random`` seeded states with values drawn
  inside those ranges (integers rounded, categories drawn from the declared ones); bookkeeping
  keys the spec lists in ``notes["bookkeeping"]`` are set to 0 (``horizon`` to the spec's horizon);
* actions: every action with its numeric arguments at the low end, the middle and the high end of
  their declared ranges (string arguments at each declared choice).

Each function is run on every probe item where it would run: preconditions and action functions
on the items of their action, dynamic functions on all of them.  Action functions are probed in a
model without preconditions, so a precondition that blocks a probe does not hide them.  A function
with any execution error on any probe is not admitted (:class:`AdmissionReport` says which, on
which probe and why).  Compilation is counted separately (``ast.parse``).
"""
from __future__ import annotations

import ast
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from ..envs.base import EnvSpec
from .model import CodeModel
from .sandbox import Sandbox

KINDS = ("action", "precondition", "dynamic")


def _set(state: dict, path: str, value: Any) -> None:
    toks = [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]
    cur = state
    for tok in toks[:-1]:
        cur = cur.setdefault(tok, {})
    if toks:
        cur[toks[-1]] = value


def _range(v) -> tuple[float, float]:
    lo = float(v.low) if v.low is not None else 0.0
    hi = float(v.high) if v.high is not None else lo + 100.0
    return lo, max(lo, hi)


def _value(v, where: str, rng: random.Random) -> Any:
    if v.type == "categorical":
        cats = list(v.categories or [""])
        return cats[0] if where == "low" else cats[-1] if where == "high" else rng.choice(cats)
    lo, hi = _range(v)
    x = lo if where == "low" else hi if where == "high" else rng.uniform(lo, hi)
    return int(round(x)) if v.integer else round(float(x), 3)


def probe_states(spec: EnvSpec, n_random: int = 6, seed: int = 0) -> list[dict]:
    """States built from the spec alone (see the module doc)."""
    rng = random.Random(seed)
    books = list((spec.notes or {}).get("bookkeeping", []))
    out = []
    for where in ["low", "high"] + ["random"] * int(n_random):
        st: dict = {}
        for b in books:
            st[b] = spec.horizon if b == "horizon" else 0
        for v in spec.variables:
            _set(st, v.path, _value(v, where, rng))
        out.append(st)
    return out


def probe_actions(spec: EnvSpec) -> list[dict]:
    """Every action with its arguments at the low end, the middle and the high end of their ranges."""
    out = []
    for a in spec.actions:
        choices = []
        for arg in a.args:
            if arg.choices:
                choices.append([(arg.name, c) for c in arg.choices])
            elif arg.type in ("int", "float"):
                lo = float(arg.low) if arg.low is not None else 0.0
                hi = float(arg.high) if arg.high is not None else lo + 10.0
                vals = [lo, (lo + hi) / 2, hi]
                if arg.type == "int":
                    vals = [int(round(x)) for x in vals]
                choices.append([(arg.name, x) for x in dict.fromkeys(vals)])
            else:
                choices.append([(arg.name, "x")])
        if not choices:
            out.append({"name": a.name, "args": {}})
            continue
        # each argument sweeps its values while the others sit at their middle value
        mids = [c[len(c) // 2] for c in choices]
        seen = set()
        for i, c in enumerate(choices):
            for val in c:
                args = dict(mids[:i] + [val] + mids[i + 1:])
                key = tuple(sorted(args.items()))
                if key not in seen:
                    seen.add(key)
                    out.append({"name": a.name, "args": args})
    return out


def probe_items(spec: EnvSpec, n_random: int = 6, seed: int = 0) -> list[tuple[dict, dict]]:
    """Every probe state with every probe action."""
    return list(itertools.product(probe_states(spec, n_random, seed), probe_actions(spec)))


def compiles(source: str) -> bool:
    try:
        ast.parse(source)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


@dataclass
class AdmissionReport:
    """What admission did: per function whether it compiled and ran, and why it was dropped."""

    functions: list[dict] = field(default_factory=list)  # fid, kind, action, compiles, runs, admitted, reason
    n_probes: int = 0

    @property
    def dropped(self) -> list[str]:
        return [f["fid"] for f in self.functions if not f["admitted"]]

    def counts(self) -> list[dict]:
        """Per function kind: generated, compiling, running on the probes (= admitted)."""
        rows = []
        for k in KINDS:
            fs = [f for f in self.functions if f["kind"] == k]
            rows.append({"kind": k, "generated": len(fs), "compile": sum(f["compiles"] for f in fs),
                         "run": sum(f["runs"] for f in fs), "admitted": sum(f["admitted"] for f in fs)})
        return rows


def admit(spec: EnvSpec, sandbox: Sandbox, model: CodeModel, n_random: int = 6,
          seed: int = 0) -> tuple[CodeModel, AdmissionReport]:
    """Run every function of ``model`` on the spec's probes; return the model without the functions
    that failed, and the report.  A dropped action's slot is recorded in ``empty_actions``; the
    admitted model's ``notes["admission"]`` holds the counts."""
    items = probe_items(spec, n_random, seed)
    report = AdmissionReport(n_probes=len(items))
    first_error: dict[str, str] = {}
    if len(model):
        no_pre = CodeModel({fid: f for fid, f in model.functions.items() if f.kind != "precondition"},
                           model.version, model.env_name, model.llm)
        runs = [(model, items)]
        if len(no_pre) and len(no_pre) < len(model):
            runs.append((no_pre, items))
        for m, its in runs:
            for (state, action), res in zip(its, sandbox.evaluate(m, its)):
                for fid, msg in res.errors:
                    if fid in model.functions and fid not in first_error:
                        first_error[fid] = f"{msg} (probe action {action['name']}{action.get('args') or ''})"
                    elif fid not in model.functions and "__all__" not in first_error:
                        first_error["__all__"] = msg  # the worker died: blame every function
    out = model.copy()
    for f in model.ordered():
        ok_src = compiles(f.source)
        why = first_error.get(f.fid) or (first_error.get("__all__") and f"worker failed: {first_error['__all__']}")
        if not ok_src and not why:
            why = "does not compile"
        admitted = why is None
        report.functions.append({"fid": f.fid, "kind": f.kind, "action": f.action, "compiles": ok_src,
                                 "runs": admitted, "admitted": admitted, "reason": why or ""})
        if not admitted:
            out = out.without(f.fid)
            if f.action and out.action_function(f.action) is None and not out.preconditions(f.action):
                out.empty_actions[f.action] = f"its functions failed admission: {why}"[:300]
    out.notes = dict(out.notes, admission={"probes": len(items), "dropped": report.dropped,
                                           "counts": report.counts()})
    return out, report


def check_function(sandbox: Sandbox, fn, items, env_name: str = "") -> str | None:
    """Run one function alone on the probe items where it would run; the first failure, or None."""
    if not compiles(fn.source):
        return "does not compile"
    model = CodeModel({fn.fid: fn}, 0, env_name)
    its = [(s, a) for s, a in items if fn.kind == "dynamic" or a.get("name") == fn.action]
    for (state, action), res in zip(its, sandbox.evaluate(model, its)):
        for fid, msg in res.errors:
            return f"{msg} (probe action {action['name']}{action.get('args') or ''})"
    return None


def function_report(spec: EnvSpec, sandbox: Sandbox, model: CodeModel, transitions, admission: AdmissionReport | None = None,
                    generated: CodeModel | None = None) -> list[dict]:
    """Per function kind: generated, compile, run (admitted), correct.

    ``correct``: the function is in ``model`` and is never among the functions blamed for an error
    (:func:`~.errors.culprit_functions`) on ``transitions`` (evaluation only).  Blame is coarse (a
    too-permissive action blames all its preconditions), so this counts conservatively.
    """
    from .errors import culprit_functions, error_type
    res = sandbox.evaluate(model, [(t.state, t.action) for t in transitions])
    blamed: set[str] = set()
    for r, t in zip(res, transitions):
        et = error_type(spec, r, t)
        if et is not None:
            blamed.update(culprit_functions(model, r, t, et))
    rows = []
    gen = generated if generated is not None else model
    adm = {f["fid"]: f for f in (admission.functions if admission else [])}
    for k in KINDS:
        fs = [f for f in gen.functions.values() if f.kind == k]
        rows.append({"kind": k, "generated": len(fs),
                     "compile": sum(compiles(f.source) for f in fs),
                     "run": sum(adm[f.fid]["runs"] if f.fid in adm else True for f in fs),
                     "in final model": sum(f.fid in model.functions for f in fs),
                     "correct": sum(f.fid in model.functions and f.fid not in blamed for f in fs)})
    return rows


__all__ = ["check_function", "function_report", "probe_states", "probe_actions", "probe_items", "compiles", "admit", "AdmissionReport"]
