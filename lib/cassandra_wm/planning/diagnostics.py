"""Why an agent plans well or badly: does its model rank the candidate actions as the real simulator does?

:func:`score_agreement` takes states the agents actually visited, draws the planner's candidate
actions in each, and scores every candidate with each model and with the oracle (the real
simulator) the way the planners do: the predicted money after ``lookahead`` days of that action
followed by the rollout policy, averaged over ``rollouts`` samples.  Per model and state it reports

* ``spearman``: the rank correlation between the model's and the oracle's scores (1: the model
  would order the candidates as the simulator does; 0: no better than chance);
* ``top_regret``: how much money (by the oracle's scores) the model's favourite gives up against
  the oracle's favourite;
* ``bias``: the mean of the model's score minus the oracle's (money the model predicts that the
  simulator does not deliver, over the look-ahead).

The oracle scored a second time with fresh samples (``oracle (resampled)``) gives the ceiling that
sampling noise alone allows.

:func:`coverage_table` says how much of what the agents did lies inside the training data: the share
of the actions they played and of the candidates they were offered that a
:class:`~.support.DataSupport` counts as outside, and the share of visited states with a variable
outside the data's range.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy import stats as _st

from ..envs.base import coerce_action, get_path
from .mpc import score_actions


def sample_states(records: Sequence[dict], n: int, seed: int = 0, agents: Sequence[str] | None = None) -> list[dict]:
    """``n`` states drawn evenly from the visited states of ``records`` (those of ``agents`` if given);
    the records need ``states`` (``play_agents(..., keep_states=True)``).  Terminal states are skipped."""
    pool = []
    for r in records:
        if agents is not None and r["agent"] not in agents:
            continue
        for s in (r.get("states") or [])[:-1]:
            if not s.get("bankrupt"):
                pool.append(s)
    if not pool:
        raise ValueError("no visited states in the records: play them with keep_states=True")
    idx = np.random.default_rng(seed).choice(len(pool), size=min(n, len(pool)), replace=False)
    return [pool[i] for i in sorted(idx)]


def score_agreement(models: dict[str, Any], oracle: Any, states: Sequence[dict], proposer: Any, rollout: Any,
                    lookahead: int, rollouts: int = 16, n_proposals: int = 100, seed: int = 0,
                    progress: bool = True):
    """Per (model, state): Spearman correlation with the oracle's scores, regret of the model's favourite
    and mean bias (see the module docstring).  ``rollout`` is a rollout policy (``policy(states, rng)``)."""
    import pandas as pd
    rows = []
    rng = np.random.default_rng(seed)
    it = list(enumerate(states))
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="score agreement", unit="state")
    for k, s in it:
        cands = proposer.propose(s, rng, n_proposals)
        if len(cands) < 3:
            continue
        truth = score_actions(oracle, s, cands, rollout, lookahead, rollouts, np.random.default_rng([seed, k, 0]))
        t_mean = truth.mean(axis=1)
        scored = {"oracle (resampled)": (oracle, 1)}
        scored.update({name: (m, 2 + j) for j, (name, m) in enumerate(models.items())})
        for name, (model, tag) in scored.items():
            v = score_actions(model, s, cands, rollout, lookahead, rollouts, np.random.default_rng([seed, k, tag]))
            m_mean = v.mean(axis=1)
            rho = _st.spearmanr(m_mean, t_mean).statistic if np.ptp(m_mean) > 0 and np.ptp(t_mean) > 0 else np.nan
            rows.append({"model": name, "state": k, "day": s.get("day"), "candidates": len(cands),
                         "spearman": float(rho), "top_regret": float(t_mean.max() - t_mean[int(np.argmax(m_mean))]),
                         "bias": float((m_mean - t_mean).mean())})
    return pd.DataFrame(rows)


def agreement_summary(frame: Any, group: str = "model"):
    """Means over states (and, for labels ``graph/seedK``, one row per model) of the agreement frame."""
    g = frame.groupby(group, sort=False)
    out = g.agg(states=("state", "count"), spearman=("spearman", "mean"), top_regret=("top_regret", "mean"),
                bias=("bias", "mean"), bias_sd=("bias", "std"))
    return out.reset_index()


def coverage_table(records: Sequence[dict], support: Any, env: Any, proposer: Any | None = None,
                   n_states: int = 30, n_proposals: int = 100, seed: int = 0):
    """Per agent: shares of played actions, offered candidates and visited states outside the data."""
    import pandas as pd
    from ..world_model import SimulatorDeterministic
    det = SimulatorDeterministic(env)
    spec = env.spec
    checked = [v for v in spec.variables
               if v.type == "numeric" and v.name not in support.accumulators and support.level(v.name)]
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["agent"], []).append(r)
    rng = np.random.default_rng(seed)
    rows = []
    for agent, rs in by.items():
        played = out_a = 0
        visited = out_s = 0
        reasons: dict[str, int] = {}
        states_seen = []
        for r in rs:
            st = r.get("states")
            if not st:
                continue
            for s, a, ok in zip(st[:-1], r["actions"], r["valid"]):
                states_seen.append(s)
                visited += 1
                if any(not support.level(v.name)[0] <= float(get_path(s, v.path)) <= support.level(v.name)[1]
                       for v in checked):
                    out_s += 1
                if not ok:
                    continue
                played += 1
                act = coerce_action(a)
                nd, _, _ = det.step([s], [act])
                why = support.action_reason(s, act, nd[0], spec)
                if why is not None:
                    out_a += 1
                    reasons[why.split(" ")[0]] = reasons.get(why.split(" ")[0], 0) + 1
        if not visited:
            continue
        row = {"agent": agent, "states": visited, "states_outside": out_s / visited,
               "actions_played": played, "actions_outside": out_a / played if played else float("nan"),
               "outside_by": ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda x: -x[1]))}
        if proposer is not None and states_seen:
            pick = rng.choice(len(states_seen), size=min(n_states, len(states_seen)), replace=False)
            n_c = n_out = 0
            for i in pick:
                s = states_seen[i]
                for a in proposer.propose(s, rng, n_proposals):
                    nd, _, _ = det.step([s], [a])
                    n_c += 1
                    n_out += support.action_reason(s, a, nd[0], spec) is not None
            row["candidates_outside"] = n_out / n_c if n_c else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["sample_states", "score_agreement", "agreement_summary", "coverage_table"]
