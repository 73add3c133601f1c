"""Where a fitted model has seen data, and the guards that keep planning there.

A network fitted on the data-collection agent's transitions is only trustworthy where those
transitions are.  Driven outside (a price the data never showed, an upgrade level nobody reached,
satisfaction sampled past anything observed), its predictions are extrapolations and the search
happily exploits them.  :class:`DataSupport` records the region the training transitions cover:

* ``levels``: per numeric variable, the smallest and largest value seen in the states (widened by
  ``margin`` of the range on each side);
* ``changes``: per numeric variable, the range of its day-to-day change;
* ``actions``: how often each action was played validly, and per numeric argument its range;
* ``categories``: per categorical variable, the values seen;
* ``accumulators``: variables whose level drifts past the data by design (the reward, money): for
  them the day's *change* is checked, not the level (see :class:`~cassandra_wm.world_model.WorldModel`,
  which also feeds the network the nearest level the data show and carries the predicted change over).

Three guards use it, each counted in the world model's guard-rail counters:

1. :class:`GuardedProposer`: a proposed action outside the support is not proposed
   (``proposals_out_of_support`` of ``proposals_checked``): an action the data never played validly,
   an argument outside the data's range, or one that moves a deterministic variable (price, upgrade
   level) to a level or by a step the data never showed.
2. :class:`GuardedRollout`: the same test for the rollout policy's actions, which are replaced by the
   wait action (``rollout_actions_out_of_support`` of ``rollout_actions_checked``).
3. :class:`~cassandra_wm.world_model.WorldModel` with ``support=``: sampled values outside the
   support are clipped into it (``out_of_support:<var>``, rows ``out_of_support_rows`` of
   ``network_rows``), and the planners may subtract a penalty per out-of-support step
   (``support_penalty`` in :class:`~cassandra_wm.planning.mcts.MCTSConfig`).
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from typing import Any, Sequence

import numpy as np

from ..envs.base import EnvSpec, coerce_action, format_action, get_path

WAIT_NAME = "wait"


def _num(x: Any) -> float:
    if x is None or isinstance(x, (str, bool)):
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


CLOCKS = ("day", "step")  # day counters (the world model's bookkeeping advances them): never a reason to refuse

class DataSupport:
    """The region of states and actions covered by a set of training transitions (module docstring)."""

    def __init__(self, spec_name: str, levels: dict, changes: dict, actions: dict, args: dict,
                 categories: dict, accumulators: Sequence[str], reward_scale: float, n_transitions: int,
                 margin: float, deterministic: Sequence[str] = (), min_count: int = 5):
        self.spec_name = spec_name
        self.levels = {k: (float(a), float(b)) for k, (a, b) in levels.items()}
        self.changes = {k: (float(a), float(b)) for k, (a, b) in changes.items()}
        self.actions = {k: int(v) for k, v in actions.items()}
        self.args = {k: (float(a), float(b)) for k, (a, b) in args.items()}
        self.categories = {k: list(v) for k, v in categories.items()}
        self.accumulators = tuple(accumulators)
        self.reward_scale = float(reward_scale)
        self.n_transitions = int(n_transitions)
        self.margin = float(margin)
        self.deterministic = tuple(deterministic)
        self.min_count = int(min_count)

    # -- building ------------------------------------------------------------------
    @classmethod
    def from_transitions(cls, spec: EnvSpec, transitions: Sequence[dict], margin: float = 0.02,
                         accumulators: Sequence[str] | None = None, min_count: int = 5,
                         ignore_args: Sequence[str] = ()) -> "DataSupport":
        """The support of ``transitions`` (records with ``state``, ``action``, ``valid``, ``next_state``).

        ``accumulators`` default to the spec's reward variable; ``min_count`` is how many valid plays an
        action needs to count as seen; ``ignore_args`` lists ``"action.argument"`` keys whose range is not
        checked (e.g. tile coordinates, when planning on layouts the data never saw).  Only the training
        split should be passed: that is what the networks were fitted on.
        """
        recs = list(transitions)
        if not recs:
            raise ValueError("DataSupport needs at least one transition")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {margin!r}")
        acc = tuple(accumulators) if accumulators is not None else (spec.reward_variable,)
        for a in acc:
            spec.variable(a)  # KeyError naming an unknown variable
        levels, changes, categories = {}, {}, {}
        for v in spec.variables:
            prev = [get_path(r["state"], v.path) for r in recs]
            nxt = [get_path(r["next_state"], v.path) for r in recs]
            if v.type == "categorical":
                seen = []
                for x in prev + nxt:
                    if x is not None and x not in seen:
                        seen.append(x)
                categories[v.name] = seen
                continue
            p = np.array([_num(x) for x in prev])
            q = np.array([_num(x) for x in nxt])
            lv = np.concatenate([p, q])
            lv = lv[np.isfinite(lv)]
            if lv.size:
                lo, hi = float(lv.min()), float(lv.max())
                pad = margin * (hi - lo)
                levels[v.name] = (lo - pad, hi + pad)
            d = q - p
            d = d[np.isfinite(d)]
            if d.size:
                lo, hi = float(d.min()), float(d.max())
                pad = margin * (hi - lo)
                changes[v.name] = (lo - pad, hi + pad)
        actions: Counter = Counter()
        arg_vals: dict[str, list[float]] = {}
        for r in recs:
            if not r.get("valid", True):
                continue
            try:
                a = coerce_action(r["action"])
            except Exception:  # noqa: BLE001 - a malformed recorded action is simply not support
                continue
            actions[a["name"]] += 1
            for k, x in (a.get("args") or {}).items():
                fx = _num(x)
                if math.isfinite(fx) and f"{a['name']}.{k}" not in ignore_args:
                    arg_vals.setdefault(f"{a['name']}.{k}", []).append(fx)
        args = {}
        for key, xs in arg_vals.items():
            lo, hi = min(xs), max(xs)
            pad = margin * (hi - lo)
            args[key] = (lo - pad, hi + pad)
        reward = spec.reward_variable
        rp = np.array([_num(get_path(r["state"], spec.variable(reward).path)) for r in recs])
        rq = np.array([_num(get_path(r["next_state"], spec.variable(reward).path)) for r in recs])
        dr = (rq - rp)[np.isfinite(rq - rp)]
        scale = float(dr.std()) if dr.size > 1 and dr.std() > 0 else 1.0
        det = tuple(v.name for v in spec.deterministic)
        return cls(spec.name, levels, changes, dict(actions), args, categories, acc, scale, len(recs), margin,
                   det, min_count)

    # -- queries -------------------------------------------------------------------
    def level(self, name: str) -> tuple[float, float] | None:
        return self.levels.get(name)

    def change(self, name: str) -> tuple[float, float] | None:
        return self.changes.get(name)

    def action_reason(self, state: dict, action: Any, next_det: Any, spec: EnvSpec) -> str | None:
        """Why ``action`` in ``state`` leaves the data (None when it stays inside).

        ``next_det`` is what the deterministic source returned for the action: a ``{variable: value}``
        dict of the deterministic variables or a whole post-action state.
        """
        a = coerce_action(action)
        name = a["name"]
        if name == WAIT_NAME:
            return None
        if self.actions.get(name, 0) < self.min_count:
            return f"{name} was played validly {self.actions.get(name, 0)} times in the data"
        for k, x in (a.get("args") or {}).items():
            rng = self.args.get(f"{name}.{k}")
            fx = _num(x)
            if rng is not None and math.isfinite(fx) and not rng[0] <= fx <= rng[1]:
                return f"{name}({k}={x}) outside the data's {rng[0]:g}..{rng[1]:g}"
        if not isinstance(next_det, dict):
            return None
        flat = set(self.deterministic).issuperset(next_det)
        for vname in self.deterministic:
            if vname in CLOCKS:  # the calendar moves it, not the action (the park's step)
                continue
            var = spec.variable(vname)
            try:
                new = next_det[vname] if flat else get_path(next_det, var.path)
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if var.type == "categorical":
                if vname in self.categories and new not in self.categories[vname]:
                    return f"{vname}={new!r} never seen in the data"
                continue
            fx = _num(new)
            if not math.isfinite(fx):
                continue
            lv = self.levels.get(vname)
            if lv is not None and not lv[0] <= fx <= lv[1]:
                return f"{vname}={fx:g} outside the data's {lv[0]:g}..{lv[1]:g}"
            ch = self.changes.get(vname)
            old = _num(get_path(state, var.path))
            if ch is not None and math.isfinite(old) and not ch[0] <= fx - old <= ch[1]:
                return f"{vname} change {fx - old:+g} outside the data's {ch[0]:+g}..{ch[1]:+g}"
        return None

    # -- persistence and display -------------------------------------------------------
    def to_dict(self) -> dict:
        return {"spec_name": self.spec_name, "levels": self.levels, "changes": self.changes,
                "actions": self.actions, "args": self.args, "categories": self.categories,
                "accumulators": list(self.accumulators), "reward_scale": self.reward_scale,
                "n_transitions": self.n_transitions, "margin": self.margin,
                "deterministic": list(self.deterministic), "min_count": self.min_count}

    @classmethod
    def from_dict(cls, d: dict) -> "DataSupport":
        return cls(d["spec_name"], d["levels"], d["changes"], d["actions"], d["args"], d["categories"],
                   d["accumulators"], d["reward_scale"], d["n_transitions"], d["margin"],
                   d.get("deterministic", ()), d.get("min_count", 5))

    def fingerprint(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def table(self):
        """One row per numeric variable: level and change ranges, and which one is checked."""
        import pandas as pd
        rows = []
        for name, (lo, hi) in self.levels.items():
            clo, chi = self.changes.get(name, (math.nan, math.nan))
            checked = ("change (accumulator)" if name in self.accumulators
                       else "level and change" if name in self.deterministic else "level")
            rows.append({"variable": name, "level_low": lo, "level_high": hi, "change_low": clo,
                         "change_high": chi, "checked": checked})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (f"DataSupport({self.spec_name}, {self.n_transitions} transitions, "
                f"{len(self.levels)} numeric variables, actions {sorted(self.actions)})")


class SupportGuard:
    """Tests actions against a :class:`DataSupport`, using a deterministic source for their effects.

    ``counters`` (a ``collections.Counter``, usually the world model's) receives the counts.
    """

    def __init__(self, support: DataSupport, deterministic: Any, spec: EnvSpec, counters: Counter | None = None):
        if not hasattr(deterministic, "step"):
            raise TypeError(f"SupportGuard needs a deterministic source with step(), got {type(deterministic).__name__}")
        self.support = support
        self.deterministic = deterministic
        self.spec = spec
        self.counters = counters if counters is not None else Counter()
        self.reasons: Counter = Counter()

    def reason(self, state: dict, action: dict) -> str | None:
        """Why ``action`` leaves the support in ``state``; None if it stays inside."""
        a = coerce_action(action)
        if a["name"] == WAIT_NAME:
            return None
        if self.support.actions.get(a["name"], 0) < self.support.min_count:
            return f"{a['name']} was never played in the data"
        det, _ok, _err = self.deterministic.step([state], [a])
        return self.support.action_reason(state, a, det[0], self.spec)

    def filter(self, state: dict, actions: list[dict], kind: str = "proposals") -> list[dict]:
        """The actions of ``actions`` inside the support (wait always kept)."""
        out = []
        for a in actions:
            self.counters[f"{kind}_checked"] += 1
            why = self.reason(state, a)
            if why is None:
                out.append(a)
            else:
                self.counters[f"{kind}_out_of_support"] += 1
                self.reasons[why.split(" ")[0]] += 1
        return out


class GuardedProposer:
    """A proposer whose candidates stay inside the data's support (see the module docstring)."""

    def __init__(self, proposer: Any, guard: SupportGuard):
        self.proposer = proposer
        self.guard = guard
        self.spec = getattr(proposer, "spec", None)

    def wait_action(self) -> dict:
        return self.proposer.wait_action()

    def propose(self, state: dict, rng: np.random.Generator, n: int = 100) -> list[dict]:
        acts = self.proposer.propose(state, rng, n)
        kept = self.guard.filter(state, acts, "proposals")
        wait = format_action(self.wait_action())
        if not any(format_action(a) == wait for a in kept):
            kept.insert(0, self.wait_action())
        return kept

    def __getattr__(self, name: str) -> Any:  # check, stats, kinds ... of the wrapped proposer
        return getattr(self.proposer, name)


class GuardedRollout:
    """A rollout policy whose out-of-support actions are replaced by the wait action."""

    def __init__(self, policy: Any, guard: SupportGuard, wait: dict):
        self.policy = policy
        self.guard = guard
        self.wait = dict(wait)

    def __call__(self, states: list[dict], rng: np.random.Generator) -> list[dict]:
        acts = self.policy(states, rng)
        out = []
        c = self.guard.counters
        for s, a in zip(states, acts):
            c["rollout_actions_checked"] += 1
            if self.guard.reason(s, a) is None:
                out.append(a)
            else:
                c["rollout_actions_out_of_support"] += 1
                out.append(self.wait)
        return out


def out_of_support_share(counters: dict) -> float:
    """Share of sampled network rows with a value outside the support (NaN without network rows)."""
    rows = counters.get("network_rows", 0)
    return counters.get("out_of_support_rows", 0) / rows if rows else float("nan")


__all__ = ["DataSupport", "SupportGuard", "GuardedProposer", "GuardedRollout", "out_of_support_share"]
