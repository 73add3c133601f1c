"""Evaluation of a code model on held-out transitions (the deterministic columns of tables 3 and 4).

* table 3: action-validity accuracy and F1 (positive class: the action is valid);
* table 4 (deterministic part): categorical accuracy, min-max-normalised RMSE of numeric
  variables and the invalid-value rate, plus the time per predicted transition.

Also :class:`SandboxedCodeModel`, the adapter the world model uses to run phi
(``predict`` / ``predict_batch``).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from ..envs.base import EnvSpec
from ..metrics import accuracy, f1_score, observation_metrics
from .errors import E_EXEC, Transition, error_type, true_det
from .model import CodeModel
from .sandbox import ExecResult, Sandbox


def evaluate_code_model(spec: EnvSpec, sandbox: Sandbox, model: CodeModel, transitions: Sequence[Transition],
                        label: str = "") -> dict:
    """Predict every transition with ``model`` and compute the table-3/4 numbers.

    Returns ``{"summary": {...}, "per_variable": [...], "results": [ExecResult, ...]}``.  The
    summary holds ``sigma_acc``, ``sigma_f1``, ``cat_acc_D``, ``num_rmse_D``, ``inv_D``,
    ``exec_error_rate``, ``seconds_per_transition`` and the counts of each error type.
    """
    trs = list(transitions)
    if not trs:
        raise ValueError("evaluate_code_model: no transitions to evaluate on")
    sandbox.start(model)  # start-up (and the model's worker) is not prediction time
    t0 = time.perf_counter()
    res = sandbox.evaluate(model, [(t.state, t.action) for t in trs])
    secs = time.perf_counter() - t0
    y_true = {v.name: [] for v in spec.deterministic}
    y_pred = {v.name: [] for v in spec.deterministic}
    for r, t in zip(res, trs):
        truth = true_det(spec, t.next_state)
        for v in spec.deterministic:
            y_true[v.name].append(truth[v.name])
            y_pred[v.name].append(None if v.name in r.missing else r.det.get(v.name))
    rows, obs = observation_metrics(spec.deterministic, y_true, y_pred)
    types = [error_type(spec, r, t) for r, t in zip(res, trs)]
    summary = {"model": label, "version": model.version, "n": len(trs),
               "n_valid": sum(t.valid for t in trs),
               "sigma_acc": accuracy([t.valid for t in trs], [r.valid for r in res]),
               "sigma_f1": f1_score([t.valid for t in trs], [r.valid for r in res]),
               "cat_acc_D": obs["cat_acc"], "num_rmse_D": obs["num_rmse"], "inv_D": obs["inv"],
               "all_correct": sum(x is None for x in types) / len(trs),
               "exec_error_rate": sum(x == E_EXEC for x in types) / len(trs),
               "seconds_per_transition": secs / len(trs),
               **{f"n_{k}": sum(x == k for x in types) for k in ("E_exec", "E_pf", "E_ps", "E_od")}}
    for r in rows:
        r["model"] = label
    return {"summary": summary, "per_variable": rows, "results": res}


class SandboxedCodeModel:
    """phi plus its sandbox behind the interface ``world_model.CodeModelDeterministic`` expects.

    ``predict(state, action) -> (next_state, valid, error)`` and the batched ``predict_batch``.
    ``next_state`` carries the predicted deterministic variables (stochastic ones are copied from
    the input for the Bayesian network to replace); ``error`` joins the execution errors, if any.
    """

    def __init__(self, model: CodeModel, sandbox: Sandbox, spec: EnvSpec | None = None):
        self.model = model
        self.sandbox = sandbox
        self.spec = spec or sandbox.spec
        self.name = f"phi-v{model.version:03d}"

    def predict_batch(self, states: Sequence[dict], actions: Sequence[Any]) -> list[tuple[dict, bool, str | None]]:
        res = self.sandbox.evaluate(self.model, list(zip(states, actions)))
        return [(r.next_state(s, self.spec), r.valid, _err(r)) for r, s in zip(res, states)]

    def predict(self, state: dict, action: Any) -> tuple[dict, bool, str | None]:
        return self.predict_batch([state], [action])[0]

    def close(self) -> None:
        self.sandbox.close()


evaluate = evaluate_code_model  # the old name, for callers not yet renamed


def _err(r: ExecResult) -> str | None:
    return "; ".join(f"{fid}: {msg}" for fid, msg in r.errors) if r.errors else None


__all__ = ["evaluate_code_model", "SandboxedCodeModel"]
