"""Evolutionary refinement of phi on observed transitions: algorithms 1 and 2 of appendix D.

For each training transition that phi gets wrong, the error is typed (E_exec, E_pf, E_ps,
E_od), the LLM is asked for K candidate refinements (add, remove or replace one function), and
each candidate is scored:

* PERS (precondition error reduction score) for precondition candidates:
  ``1[candidate validity right] - 1[current validity right]``;
* ODRS (observation difference reduction score) for action and dynamic candidates: the
  candidate's ODRS minus the current ODRS, where ODRS compares, along every difference DeepDiff
  finds between the previous and the true deterministic state, whether the prediction moved to
  the true value.

A candidate's validation score VS is its mean score over the validation transitions V; only
candidates with VS > 0 are eligible, and among those the best score on the current transition
wins (ties go to the higher VS).

:meth:`Refiner.prune` (the removal gate, our addition) runs the same gate on "remove this
function" for every function of phi before refinement starts, so code that runs but predicts
worse than no code is dropped even when the LLM never proposes removing it.

Two deliberate readings of the paper's pseudocode (both switchable in :class:`ScoreOptions`):

* ``strict``: a numeric prediction scores +1 when it is *closer* to the truth than the previous
  value (the pseudocode's ``<=`` would give "no change" the same +1 as the exact answer, so no
  action-function fix could ever raise ODRS on numeric variables);
* ``count_spurious``: variables the prediction changed but the truth did not also score -1
  (the pseudocode only walks the true differences, so a candidate that corrupts unchanged
  variables would go unpunished).

A prediction with an execution error in a function of the scored kind counts as wrong (PERS) or
scores -1 (ODRS), so removing or fixing a crashing function is rewarded.
"""
from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from deepdiff import DeepDiff

from ..envs.base import EnvSpec
from .errors import (E_EXEC, Transition, culprit_functions, error_type, true_det, values_equal,
                     wrong_variables)
from .model import CodeModel, CodeStore, Proposal, Refinement, RefinementError
from .sandbox import HUNG, ExecResult, Sandbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreOptions:
    strict: bool = True
    count_spurious: bool = True
    tol: float = 1e-6


# -- algorithm 2 ------------------------------------------------------------------------------

def pers(true_valid: bool, base_valid: bool, cand_valid: bool, base_ok: bool = True, cand_ok: bool = True) -> int:
    """Precondition error reduction score for one transition (+1, 0 or -1)."""
    return int(cand_ok and cand_valid == true_valid) - int(base_ok and base_valid == true_valid)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not (isinstance(x, float) and math.isnan(x))


_NOTHING = object()


def _at(doc: Any, path: list) -> Any:
    cur = doc
    try:
        for k in path:
            cur = cur[k]
        return cur
    except (KeyError, IndexError, TypeError):
        return _NOTHING


def _paths(diff: DeepDiff) -> dict[tuple, str]:
    out = {}
    for dtype, levels in diff.items():
        for level in levels:
            out[tuple(level.path(output_format="list"))] = dtype
    return out


def odrs(prev: dict, true: dict, pred: dict, ok: bool = True, opts: ScoreOptions = ScoreOptions()) -> float:
    """Observation difference reduction score of one prediction, in [-1, 1] (1 = exactly right).

    ``prev``, ``true`` and ``pred`` are dicts of deterministic variables; ``ok`` False (the
    prediction hit an execution error) gives -1.  With nothing to compare (no true and no
    predicted change) the prediction is right and scores 1.
    """
    if not ok:
        return -1.0
    if values_equal(prev, true, opts.tol) and values_equal(prev, pred, opts.tol):
        return 1.0
    kw = dict(ignore_numeric_type_changes=True, math_epsilon=opts.tol, view="tree")
    true_paths = _paths(DeepDiff(prev, true, **kw))
    score, total = 0, 0
    for path, dtype in true_paths.items():
        total += 1
        if dtype != "values_changed":
            score -= 1
            continue
        v0, v, vp = _at(prev, list(path)), _at(true, list(path)), _at(pred, list(path))
        if _is_num(v) and _is_num(v0):
            if not _is_num(vp):
                score -= 1
            else:
                d_pred, d_prev = abs(v - vp), abs(v - v0)
                better = d_pred < d_prev or d_pred <= opts.tol if opts.strict else d_pred <= d_prev
                score += 1 if better else -1
        else:
            score += 1 if values_equal(v, vp, opts.tol) else -1
    if opts.count_spurious:
        for path in _paths(DeepDiff(prev, pred, **kw)):
            if path not in true_paths:
                total += 1
                score -= 1
    return score / total if total else 1.0


@dataclass
class Scored:
    """A transition prepared for scoring: deterministic values before and after, and validity."""

    tr: Transition
    prev: dict
    true: dict


def prepare(spec: EnvSpec, transitions: Sequence[Transition]) -> list[Scored]:
    return [Scored(t, true_det(spec, t.state), true_det(spec, t.next_state)) for t in transitions]


def _kind_ok(model: CodeModel, res: ExecResult, kinds: tuple[str, ...]) -> bool:
    """No execution error in a function of these kinds (a dead worker counts for every kind)."""
    for fid, _ in res.errors:
        if fid == HUNG:
            return False
        f = model.functions.get(fid)
        if f is None or f.kind in kinds:
            return False
    return True


def item_score(kind: str, s: Scored, base_model: CodeModel, base: ExecResult, cand_model: CodeModel,
               cand: ExecResult, opts: ScoreOptions = ScoreOptions()) -> float:
    """Refinement score of one transition: PERS for preconditions, ODRS difference otherwise."""
    if kind == "precondition":
        return float(pers(s.tr.valid, base.valid, cand.valid,
                          _kind_ok(base_model, base, ("precondition",)),
                          _kind_ok(cand_model, cand, ("precondition",))))
    kinds = ("action", "dynamic")
    return (odrs(s.prev, s.true, _pred(cand), _kind_ok(cand_model, cand, kinds), opts)
            - odrs(s.prev, s.true, _pred(base), _kind_ok(base_model, base, kinds), opts))


def _pred(res: ExecResult) -> dict:
    return {k: v for k, v in res.det.items() if k not in res.missing}


def refinement_score(kind: str, items: Sequence[Scored], base_model: CodeModel, base: Sequence[ExecResult],
                     cand_model: CodeModel, cand: Sequence[ExecResult], n: int | None = None,
                     opts: ScoreOptions = ScoreOptions()) -> float:
    """Mean item score; ``n`` is the denominator when unchanged transitions were skipped (they score 0)."""
    n = len(items) if n is None else n
    if n == 0:
        return 0.0
    return sum(item_score(kind, s, base_model, b, cand_model, c, opts)
               for s, b, c in zip(items, base, cand)) / n


# -- choosing the transitions ---------------------------------------------------------------

def select_transitions(transitions: Sequence[Transition], n: int, valid_ratio: float | None = 0.5,
                       seed: int = 0, exclude: set | None = None) -> list[Transition]:
    """Pick ``n`` transitions; with ``valid_ratio`` given, that share of valid ones (the paper's 1:1).

    When one class is short, all of it is taken and the other fills the rest (logged).  The result
    is shuffled.  ``exclude`` holds ``Transition.key()`` values to leave out.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    pool = [t for t in transitions if not exclude or t.key() not in exclude]
    if valid_ratio is None:
        pool = pool[:]
        rng.shuffle(pool)
        return pool[:n]
    if not 0.0 <= valid_ratio <= 1.0:
        raise ValueError(f"valid_ratio must be in [0, 1], got {valid_ratio}")
    good = [t for t in pool if t.valid]
    bad = [t for t in pool if not t.valid]
    rng.shuffle(good)
    rng.shuffle(bad)
    n_good = round(n * valid_ratio)
    n_bad = n - n_good
    if len(bad) < n_bad:
        log.info("only %d invalid transitions for %d wanted; filling with valid ones", len(bad), n_bad)
        n_good += n_bad - len(bad)
        n_bad = len(bad)
    if len(good) < n_good:
        log.info("only %d valid transitions for %d wanted; filling with invalid ones", len(good), n_good)
        extra = n_good - len(good)
        n_good = len(good)
        n_bad = min(len(bad), n_bad + extra)
    out = good[:n_good] + bad[:n_bad]
    rng.shuffle(out)
    return out


# -- algorithm 1 ------------------------------------------------------------------------------

Proposer = Callable[..., Proposal]


@dataclass
class LoopRecord:
    """One refinement loop: the failing transition, the candidates and what happened to them."""

    loop: int
    train_index: int
    traj_id: Any
    t: Any
    error_type: str
    wrong: list[str]
    candidates: list[dict]
    accepted: dict | None
    version_before: int
    version_after: int
    prompt_tokens: int
    completion_tokens: int
    llm_seconds: float
    seconds: float
    notes: list[str] = field(default_factory=list)
    diff: str = ""


@dataclass
class RefineResult:
    model: CodeModel
    loops: list[LoopRecord]
    curve: list[dict]  # metrics on V after each loop (loop 0 = before refinement)
    visited: int  # training transitions looked at
    passed: int  # of those, already predicted right


def summarize(spec: EnvSpec, results: Sequence[ExecResult], transitions: Sequence[Transition]) -> dict:
    """Headline numbers of a set of predictions: validity accuracy, exact observations, error types."""
    n = len(transitions)
    if n == 0:
        return {"n": 0}
    types = [error_type(spec, r, t) for r, t in zip(results, transitions)]
    return {"n": n,
            "valid_acc": sum(r.valid == t.valid for r, t in zip(results, transitions)) / n,
            "obs_exact": sum(not wrong_variables(spec, r, t) for r, t in zip(results, transitions)) / n,
            "correct": sum(x is None for x in types) / n,
            "exec_error_rate": sum(x == E_EXEC for x in types) / n,
            **{f"n_{k}": sum(x == k for x in types) for k in ("E_exec", "E_pf", "E_ps", "E_od")}}


class Refiner:
    """Algorithm 1: one pass (or more) over the training transitions, refining phi as it goes.

    Parameters
    ----------
    spec, sandbox: environment spec and the sandbox phi runs in.
    propose: ``propose(model=..., transition=..., result=..., error_type=..., culprits=..., k=...)``
        returning a :class:`Proposal` (normally :func:`cassandra_wm.codewm.llm_code.propose_refinements`
        bound to a chat client).
    train, val: training transitions (those refined on) and validation transitions V.
    k: candidates asked for per failing transition (the paper's K = 3).
    max_loops: cap on refinement loops (LLM calls); None for no cap.
    passes: passes over the training transitions (the paper makes one).
    store: where accepted versions are written (each as its own folder).
    probes: spec-built (state, action) items (:func:`~cassandra_wm.codewm.admit.probe_items`); when given,
        a candidate's new function must run on them without error before it is scored (the
        admission check of initial code, applied to refinements too).
    """

    def __init__(self, spec: EnvSpec, sandbox: Sandbox, propose: Proposer, train: Sequence[Transition],
                 val: Sequence[Transition], k: int = 3, max_loops: int | None = None, passes: int = 1,
                 store: CodeStore | None = None, opts: ScoreOptions = ScoreOptions(), progress: bool = True,
                 on_loop: Callable[[LoopRecord], None] | None = None, probes: Sequence[tuple] | None = None):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        if not val:
            raise ValueError("the validation set V is empty: the acceptance gate VS > 0 needs transitions")
        self.spec, self.sandbox, self.propose = spec, sandbox, propose
        self.train, self.val = list(train), list(val)
        self.val_items = prepare(spec, self.val)
        self.k, self.max_loops, self.passes = k, max_loops, passes
        self.store, self.opts, self.progress, self.on_loop = store, opts, progress, on_loop
        self.probes = list(probes) if probes is not None else None

    def _eval(self, model: CodeModel, trs: Sequence[Transition]) -> list[ExecResult]:
        return self.sandbox.evaluate(model, [(t.state, t.action) for t in trs])

    def validation_score(self, model: CodeModel, cand_model: CodeModel, ref: Refinement,
                         base_val: list[ExecResult]) -> dict:
        """VS of a candidate over V (only the transitions the edit can affect are rerun)."""
        kind = ref.kind(model)
        acts = ref.affected_actions(model)
        idx = [i for i, s in enumerate(self.val_items) if acts is None or s.tr.action.get("name") in acts]
        cand_val = self._eval(cand_model, [self.val_items[i].tr for i in idx])
        vs = refinement_score(kind, [self.val_items[i] for i in idx], model, [base_val[i] for i in idx],
                              cand_model, cand_val, n=len(self.val_items), opts=self.opts)
        return {"kind": kind, "vs": vs, "idx": idx, "cand_val": cand_val}

    def score_candidate(self, model: CodeModel, cand_model: CodeModel, ref: Refinement,
                        base_val: list[ExecResult], cur: Scored, base_cur: ExecResult) -> dict:
        """VS over V and RS on the current transition."""
        out = self.validation_score(model, cand_model, ref, base_val)
        cand_cur = self._eval(cand_model, [cur.tr])[0]
        out["rs"] = item_score(out["kind"], cur, model, base_cur, cand_model, cand_cur, self.opts)
        changed = {fid for fid, f in cand_model.functions.items() if model.functions.get(fid) != f}
        out["fixes_current"] = error_type(self.spec, cand_cur, cur.tr) is None
        out["exec_errors"] = sorted({e for r in out["cand_val"] + [cand_cur] for e, _ in r.errors if e in changed})
        return out

    def prune(self, model: CodeModel) -> tuple[CodeModel, list[dict]]:
        """The removal gate: each function whose removal scores VS > 0 on V is removed, one at a time
        (best VS first, rescoring after each removal).  Not in the paper's algorithm 1 (there the LLM
        would have to propose the removal); it keeps admitted code that runs but predicts worse than
        no code from staying in phi.  Returns the pruned model and one row per removal tried."""
        rows: list[dict] = []
        base_val = self._eval(model, self.val)
        while True:
            best = None
            for fid in sorted(model.functions):
                ref = Refinement("remove", target=fid, note="removal gate")
                cand = ref.apply(model)
                sc = self.validation_score(model, cand, ref, base_val)
                if sc["vs"] > 0 and (best is None or sc["vs"] > best[2]["vs"]):
                    best = (fid, cand, sc)
            if best is None:
                break
            fid, cand, sc = best
            rows.append({"function": fid, "kind": sc["kind"], "vs": sc["vs"], "version_before": model.version,
                         "version_after": cand.version})
            for i2, r2 in zip(sc["idx"], sc["cand_val"]):
                base_val[i2] = r2
            model = cand
            if self.store is not None:
                self.store.save(model, {"source": "removal gate", "removed": fid, "vs": sc["vs"]})
            log.info("removal gate: removed %s (VS = %.3f)", fid, sc["vs"])
        return model, rows

    def run(self, model: CodeModel) -> RefineResult:
        """Refine ``model``; returns the final model, a record per loop and the validation curve."""
        from tqdm.auto import tqdm

        base_val = self._eval(model, self.val)
        curve = [{"loop": 0, "version": model.version, "prompt_tokens": 0, "completion_tokens": 0,
                  "seconds": 0.0, **summarize(self.spec, base_val, self.val)}]
        loops: list[LoopRecord] = []
        visited = passed = 0
        tokens_in = tokens_out = 0
        secs = 0.0
        order = [(p, i) for p in range(self.passes) for i in range(len(self.train))]
        bar = tqdm(total=self.max_loops if self.max_loops is not None else len(order),
                   desc="refinement loops" if self.max_loops is not None else "training transitions",
                   disable=not self.progress)
        for _, i in order:
            if self.max_loops is not None and len(loops) >= self.max_loops:
                break
            tr = self.train[i]
            cur = prepare(self.spec, [tr])[0]
            res = self._eval(model, [tr])[0]
            visited += 1
            if self.max_loops is None:
                bar.update(1)
            et = error_type(self.spec, res, tr)
            if et is None:
                passed += 1
                continue
            t0 = time.perf_counter()
            culprits = culprit_functions(model, res, tr, et)
            try:
                prop = self.propose(model=model, transition=tr, result=res, error_type=et,
                                    culprits=culprits, k=self.k)
            except Exception as e:  # an LLM failure costs this loop, not the run
                log.warning("refinement proposal failed on transition %s: %s", tr.key(), e)
                prop = Proposal(notes=[f"proposal failed: {type(e).__name__}: {e}"])
            scored, best = [], None
            for j, ref in enumerate(prop.candidates):
                entry = {"index": j, "refinement": ref.describe(), "op": ref.op, "note": ref.note,
                         "target": ref.target, "source": ref.function.source if ref.function is not None else None}
                if self.probes is not None and ref.function is not None:
                    from .admit import check_function
                    why = check_function(self.sandbox, ref.function, self.probes, model.env_name)
                    if why is not None:
                        entry.update(kind=ref.function.kind, vs=None, rs=None, status=f"not admitted: {why}"[:300])
                        scored.append(entry)
                        continue
                try:
                    cand_model = ref.apply(model)
                    sc = self.score_candidate(model, cand_model, ref, base_val, cur, res)
                except (RefinementError, KeyError, ValueError) as e:
                    entry.update(kind=None, vs=None, rs=None, status=f"not applicable: {e}")
                    scored.append(entry)
                    continue
                entry.update(kind=sc["kind"], vs=sc["vs"], rs=sc["rs"], fixes_current=sc["fixes_current"],
                             status="eligible" if sc["vs"] > 0 else "rejected by the validation gate (VS <= 0)")
                if sc["exec_errors"]:
                    entry["status"] += f"; execution errors in {sc['exec_errors']}"
                scored.append(entry)
                if sc["vs"] > 0 and (best is None or (sc["rs"], sc["vs"]) > (best[2]["rs"], best[2]["vs"])):
                    best = (j, cand_model, sc)
            v_before = model.version
            accepted, diff = None, ""
            if best is not None:
                j, cand_model, sc = best
                diff = model.diff(cand_model)
                for i2, r2 in zip(sc["idx"], sc["cand_val"]):
                    base_val[i2] = r2
                model = cand_model
                scored[j]["status"] = "accepted"
                accepted = {"index": j, "refinement": scored[j]["refinement"], "kind": sc["kind"],
                            "vs": sc["vs"], "rs": sc["rs"], "op": scored[j]["op"], "target": scored[j]["target"],
                            "source": scored[j]["source"]}
                if self.store is not None:
                    self.store.save(model, {"source": "refinement", "loop": len(loops) + 1,
                                            "refinement": scored[j]["refinement"], "vs": sc["vs"],
                                            "rs": sc["rs"], "error_type": et, "parent": v_before})
            usage = prop.usage or {}
            tokens_in += int(usage.get("prompt_tokens") or 0)
            tokens_out += int(usage.get("completion_tokens") or 0)
            dt = time.perf_counter() - t0
            secs += dt
            rec = LoopRecord(loop=len(loops) + 1, train_index=i, traj_id=tr.traj_id, t=tr.t, error_type=et,
                             wrong=wrong_variables(self.spec, res, tr) if et == "E_od" else [],
                             candidates=scored, accepted=accepted, version_before=v_before,
                             version_after=model.version, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                             completion_tokens=int(usage.get("completion_tokens") or 0),
                             llm_seconds=float(usage.get("seconds") or 0.0), seconds=dt, notes=list(prop.notes),
                             diff=diff)
            loops.append(rec)
            curve.append({"loop": rec.loop, "version": model.version, "prompt_tokens": tokens_in,
                          "completion_tokens": tokens_out, "seconds": secs,
                          **summarize(self.spec, base_val, self.val)})
            if self.on_loop is not None:
                self.on_loop(rec)
            if self.max_loops is not None:
                bar.update(1)
            log.info("loop %d: %s on %s -> %s", rec.loop, et, tr.key(),
                     accepted["refinement"] if accepted else "no candidate accepted")
        bar.close()
        return RefineResult(model=model, loops=loops, curve=curve, visited=visited, passed=passed)


__all__ = ["ScoreOptions", "pers", "odrs", "item_score", "refinement_score", "prepare", "Scored",
           "select_transitions", "Refiner", "RefineResult", "LoopRecord", "summarize"]
