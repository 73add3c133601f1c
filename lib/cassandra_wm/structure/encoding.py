"""Turning transitions into the arrays the Bayesian network trains and samples on.

For every node v (a modelled stochastic variable) the conditional of eq. 2 sees

* the exogenous block, shared by all nodes: every variable of the previous
  state, the action (one-hot name, numeric arguments, one-hot string choices),
  the validity flag, and the deterministic variables of the next state;
* the same-step values of v's parents in the DAG (node columns).

Encoding rules, all statistics taken from the training transitions only:

* numeric variable -> one column ``(value - mean) / std``; mean and std are
  per variable, pooled over the previous and next states, so the same scale is
  used for an input, a parent column and a target.  Missing or non-numeric
  values become 0 (the mean) as inputs and are masked out as targets.
* categorical variable -> one-hot over the spec's categories (or the sorted
  categories seen in training when the spec lists none); unseen values are all
  zeros as inputs and masked out as targets.
* action -> one-hot over the spec's action names; each numeric argument of
  each action is a column holding its standardised value on rows of that
  action and 0 elsewhere; string arguments with choices are one-hot.
* validity -> one column, 1.0 valid, 0.0 invalid.
* every standardised input (variables, parent columns, numeric arguments) is clipped to
  +-:data:`Z_CLIP`, so a value far outside what training saw (a tile the training layouts never
  used, a price no one set) cannot reach a net as a z-score of 10^7; ``clipped_inputs`` counts
  the clipped values.  One exception: with delta targets, a modelled node's own previous value
  is the base its predicted change is added to, so that column is left unclipped (the value is
  still bounded when the spec bounds the variable, since sampled values are clipped to bounds).
* scales: the training standard deviation, except when training saw (almost) a single value:
  then the declared range's uniform spread ``(high - low) / sqrt(12)`` when the spec bounds it,
  else ``max(|mean|, 1)``.  (A floor of 1e-6 used to turn an unseen argument value into a
  z-score of millions.)

Numeric targets (``delta=True``, the default) are the day-to-day changes
``x_next - x_prev`` standardised with the mean and std of the training
changes; with ``delta=False`` they are the standardised next values.  Changes
put every node's loss on the scale of its typical daily move, so a
slowly-drifting stock with a large spread across episodes (money) is not
scored as nearly perfect just for copying yesterday's value.  Categorical
targets are category indices.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from ..envs.base import EnvSpec, coerce_action, pointer_tokens
from .dag import bn_variables

Z_CLIP = 10.0  # bound on every standardised input
_TINY = 1e-9  # relative spread below which training is taken to have seen a single value


def spread(values: np.ndarray, low: float | None = None, high: float | None = None) -> tuple[float, float]:
    """(mean, scale) of finite ``values`` for standardising (see the module doc for the fallbacks)."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    mean = float(arr.mean()) if arr.size else 0.0
    sd = float(arr.std()) if arr.size else 0.0
    if sd > _TINY * max(1.0, abs(mean)):
        return mean, sd
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high) and high > low:
        return mean, (float(high) - float(low)) / math.sqrt(12.0)
    return mean, max(abs(mean), 1.0)


def as_records(transitions: Any) -> list[dict]:
    """Transitions as a list of dicts: accepts a list of records or a pandas DataFrame.

    Each record needs ``state``, ``action`` and ``next_state``; ``valid`` defaults to True.
    """
    if transitions is None:
        raise ValueError("no transitions given")
    if hasattr(transitions, "to_dict") and hasattr(transitions, "columns"):
        recs = transitions.to_dict("records")
    else:
        recs = list(transitions)
    for i, r in enumerate(recs[:1]):
        missing = [k for k in ("state", "action", "next_state") if k not in r]
        if missing:
            raise ValueError(f"transition {i} lacks {missing}; keys are {sorted(r)}")
    return recs


class _Getter:
    """A fast, picklable function state -> value at a JSON pointer (None when absent)."""

    __slots__ = ("toks", "key")

    def __init__(self, pointer: str):
        if pointer in ("", "/"):
            raise ValueError("a variable cannot live at the root of the state")
        self.toks = pointer_tokens(pointer)
        self.key = self.toks[0] if len(self.toks) == 1 else None

    def __getstate__(self):
        return (self.toks, self.key)

    def __setstate__(self, st):
        self.toks, self.key = st

    def __call__(self, s):
        if self.key is not None:
            try:
                return s[self.key]
            except (KeyError, TypeError, IndexError):
                return None
        cur = s
        try:
            for t in self.toks:
                cur = cur[int(t)] if isinstance(cur, list) else cur[t]
        except (KeyError, TypeError, IndexError, ValueError):
            return None
        return cur


_getter = _Getter


def _col64(x: Any, j: int) -> Any:
    """Column ``j`` of a numpy array or torch tensor, in double precision."""
    col = x[:, j]
    return col.double() if hasattr(col, "double") else np.asarray(col, dtype=np.float64)


def _to_float(v: Any) -> float:
    if v is None or isinstance(v, str):
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


class Encoder:
    """Feature layout and normalisation statistics for one spec and node set.

    ``Encoder(spec, nodes).fit(train)``; then ``exogenous(transitions)`` or the
    array path ``encode_exogenous(prev_states, actions, next_det, valid)`` give
    the shared input block, ``node_columns`` the parent inputs and ``targets``
    the training targets.
    """

    def __init__(self, spec: EnvSpec, nodes: Sequence[str] | None = None, delta: bool = True):
        self.spec = spec
        self.delta = bool(delta)
        self.nodes = list(nodes) if nodes is not None else bn_variables(spec)
        names = spec.variable_names()
        bad = [n for n in self.nodes if n not in names]
        if bad:
            raise ValueError(f"unknown node variables {bad}; variables are {names}")
        det = [n for n in self.nodes if spec.variable(n).kind != "stochastic"]
        if det:
            raise ValueError(f"nodes must be stochastic variables; {det} are deterministic")
        self.fitted = False
        self.clipped_inputs = 0
        self.num_stats: dict[str, tuple[float, float]] = {}
        self.target_stats: dict[str, tuple[float, float]] = {}  # numeric nodes: stats of the target
        self.categories: dict[str, list] = {}
        self.arg_stats: dict[str, tuple[float, float]] = {}  # "action.arg" -> (mean, std)
        self._getters = {v.name: _getter(v.path) for v in spec.variables}

    # -- fitting -------------------------------------------------------
    def fit(self, transitions: Any) -> "Encoder":
        """Compute normalisation statistics and categories from training transitions."""
        recs = as_records(transitions)
        if not recs:
            raise ValueError("cannot fit an encoder on zero transitions")
        for v in self.spec.variables:
            get = self._getters[v.name]
            vals = [get(r["state"]) for r in recs] + [get(r["next_state"]) for r in recs]
            if v.type == "categorical":
                if v.categories:
                    self.categories[v.name] = list(v.categories)
                else:
                    seen = {x for x in vals if x is not None}
                    self.categories[v.name] = sorted(seen, key=lambda x: (str(type(x)), str(x)))
            else:
                arr = np.array([_to_float(x) for x in vals], dtype=np.float64)
                self.num_stats[v.name] = spread(arr, v.low, v.high)
        for n in self.nodes:
            if self.is_categorical(n):
                continue
            get = self._getters[n]
            nxt = np.array([_to_float(get(r["next_state"])) for r in recs], dtype=np.float64)
            if self.delta:
                nxt = nxt - np.array([_to_float(get(r["state"])) for r in recs], dtype=np.float64)
            self.target_stats[n] = spread(nxt)
        per_arg: dict[str, list[float]] = {}
        arg_bounds: dict[str, tuple] = {}
        for a in self.spec.actions:
            for arg in a.args:
                if arg.type in ("int", "float"):
                    per_arg[f"{a.name}.{arg.name}"] = []
                    arg_bounds[f"{a.name}.{arg.name}"] = (arg.low, arg.high)
        for r in recs:
            act = self._action(r["action"])
            if act is None:
                continue
            for k, x in (act.get("args") or {}).items():
                key = f"{act['name']}.{k}"
                if key in per_arg:
                    fx = _to_float(x)
                    if math.isfinite(fx):
                        per_arg[key].append(fx)
        for key, xs in per_arg.items():
            self.arg_stats[key] = spread(np.asarray(xs, dtype=np.float64), *arg_bounds[key])
        self.fitted = True
        self._build_layout()
        return self

    def _build_layout(self) -> None:
        names: list[str] = []
        for v in self.spec.variables:
            if v.type == "categorical":
                names += [f"prev.{v.name}={c}" for c in self.categories[v.name]]
            else:
                names.append(f"prev.{v.name}")
        self._action_index = {a.name: i for i, a in enumerate(self.spec.actions)}
        names += [f"action={a.name}" for a in self.spec.actions]
        self._arg_cols: dict[tuple[str, str], Any] = {}
        for a in self.spec.actions:
            for arg in a.args:
                if arg.type in ("int", "float"):
                    self._arg_cols[(a.name, arg.name)] = len(names)
                    names.append(f"arg.{a.name}.{arg.name}")
                elif arg.choices:
                    cols = {}
                    for c in arg.choices:
                        cols[c] = len(names)
                        names.append(f"arg.{a.name}.{arg.name}={c}")
                    self._arg_cols[(a.name, arg.name)] = cols
        names.append("valid")
        self._det_names = [v.name for v in self.spec.variables if v.kind == "deterministic"]
        for n in self._det_names:
            v = self.spec.variable(n)
            if v.type == "categorical":
                names += [f"next.{n}={c}" for c in self.categories[n]]
            else:
                names.append(f"next.{n}")
        self.feature_names = names
        self._prev_col = {n: names.index(f"prev.{n}") for n in self.nodes if not self.is_categorical(n)}
        self.n_exo = len(names)
        self.node_width = {n: (len(self.categories[n]) if self.is_categorical(n) else 1) for n in self.nodes}

    def _clip(self, z: np.ndarray) -> np.ndarray:
        """Clip standardised inputs to +-Z_CLIP, counting the values clipped."""
        over = np.abs(z) > Z_CLIP
        if over.any():
            self.clipped_inputs += int(over.sum())
            z = np.clip(z, -Z_CLIP, Z_CLIP)
        return z

    # -- small look-ups ------------------------------------------------
    def is_categorical(self, name: str) -> bool:
        return self.spec.variable(name).type == "categorical"

    def n_classes(self, node: str) -> int:
        return len(self.categories[node])

    def _check(self) -> None:
        if not self.fitted:
            raise RuntimeError("Encoder.fit(train) must be called first")

    def _action(self, a: Any) -> dict | None:
        try:
            return coerce_action(a)
        except Exception:
            return None

    def _encode_vars(self, states: Sequence[dict], names: Iterable[str], out: np.ndarray, col: int,
                     keep: Iterable[str] = ()) -> int:
        """Write the encoded ``names`` of ``states`` into ``out`` from column ``col``; numeric columns
        are clipped to +-Z_CLIP except those in ``keep``.  Returns the next free column."""
        keep = set(keep)
        for n in names:
            get = self._getters[n]
            if self.is_categorical(n):
                cats = self.categories[n]
                idx = {c: i for i, c in enumerate(cats)}
                for i, s in enumerate(states):
                    j = idx.get(get(s)) if s is not None else None
                    if j is not None:
                        out[i, col + j] = 1.0
                col += len(cats)
            else:
                m, sd = self.num_stats[n]
                vals = np.fromiter((_to_float(get(s)) for s in states), dtype=np.float64, count=len(states))
                z = (vals - m) / sd
                z[~np.isfinite(z)] = 0.0
                out[:, col] = z if n in keep else self._clip(z)
                col += 1
        return col

    # -- the array path ------------------------------------------------
    def encode_exogenous(self, prev_states: Sequence[dict], actions: Sequence[Any],
                         next_det: Sequence[dict], valid: Sequence[bool] | None = None) -> np.ndarray:
        """The shared input block, float32 array of shape (n, n_exo).

        ``prev_states`` are full previous states, ``actions`` action dicts (or
        their text form; an unknown action encodes as all zeros), ``next_det``
        states holding at least the next step's deterministic variables, and
        ``valid`` the validity flags (all True when omitted).
        """
        self._check()
        n = len(prev_states)
        if len(actions) != n or len(next_det) != n:
            raise ValueError(f"prev_states, actions and next_det differ in length: "
                             f"{n}, {len(actions)}, {len(next_det)}")
        if valid is not None and len(valid) != n:
            raise ValueError(f"valid has length {len(valid)}, expected {n}")
        out = np.zeros((n, self.n_exo), dtype=np.float64)
        col = self._encode_vars(prev_states, [v.name for v in self.spec.variables], out, 0,
                                keep=self._prev_col if self.delta else ())
        a0 = col
        col += len(self.spec.actions)
        for i, a in enumerate(actions):
            act = a if (isinstance(a, dict) and isinstance(a.get("name"), str)
                        and isinstance(a.get("args", {}), dict)) else self._action(a)
            if act is None:
                continue
            j = self._action_index.get(act["name"])
            if j is None:
                continue
            out[i, a0 + j] = 1.0
            for k, x in (act.get("args") or {}).items():
                c = self._arg_cols.get((act["name"], k))
                if c is None:
                    continue
                if isinstance(c, dict):
                    cc = c.get(x)
                    if cc is not None:
                        out[i, cc] = 1.0
                else:
                    m, sd = self.arg_stats[f"{act['name']}.{k}"]
                    fx = (_to_float(x) - m) / sd
                    out[i, c] = float(self._clip(np.array([fx]))[0]) if math.isfinite(fx) else 0.0
        col = self.feature_names.index("valid")
        out[:, col] = 1.0 if valid is None else np.asarray(valid, dtype=np.float64)
        self._encode_vars(next_det, self._det_names, out, col + 1)
        return out.astype(np.float32)

    def exogenous(self, transitions: Any) -> np.ndarray:
        """The shared input block of recorded transitions."""
        recs = as_records(transitions)
        return self.encode_exogenous([r["state"] for r in recs], [r["action"] for r in recs],
                                     [r["next_state"] for r in recs],
                                     [bool(r.get("valid", True)) for r in recs])

    def encode_node_values(self, states: Sequence[dict]) -> dict[str, np.ndarray]:
        """Each node's input columns (n, width) from states holding the node values."""
        self._check()
        out = {}
        for n in self.nodes:
            arr = np.zeros((len(states), self.node_width[n]), dtype=np.float64)
            self._encode_vars(states, [n], arr, 0)
            out[n] = arr.astype(np.float32)
        return out

    def node_columns(self, transitions: Any) -> dict[str, np.ndarray]:
        """Parent-input columns of every node from the recorded next states."""
        recs = as_records(transitions)
        return self.encode_node_values([r["next_state"] for r in recs])

    def targets(self, transitions: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{node: (y, mask)}``: standardised float targets or int category indices, and a bool mask
        of usable rows (value present and known)."""
        self._check()
        recs = as_records(transitions)
        out = {}
        for n in self.nodes:
            get = self._getters[n]
            vals = [get(r["next_state"]) for r in recs]
            if self.is_categorical(n):
                idx = {c: i for i, c in enumerate(self.categories[n])}
                y = np.array([idx.get(x, -1) for x in vals], dtype=np.int64)
                out[n] = (np.maximum(y, 0), y >= 0)
            else:
                m, sd = self.target_stats[n]
                y = np.array([_to_float(x) for x in vals], dtype=np.float64)
                if self.delta:
                    y = y - np.array([_to_float(get(r["state"])) for r in recs], dtype=np.float64)
                y = (y - m) / sd
                mask = np.isfinite(y)
                out[n] = (np.where(mask, y, 0.0).astype(np.float32), mask)
        return out

    # -- raw values <-> standardised values ------------------------------
    def prev_column(self, node: str) -> int:
        """Index of the node's previous value in the exogenous block (numeric nodes)."""
        return self._prev_col[node]

    def target_to_raw(self, node: str, t: Any, x_exo: Any) -> Any:
        """Raw next values from standardised targets ``t`` (numpy or torch, shape (n,) or (n, K)),
        given the rows' exogenous block (which holds the previous values)."""
        m, sd = self.target_stats[node]
        raw = t * sd + m
        if self.delta:
            lm, lsd = self.num_stats[node]
            prev = _col64(x_exo, self._prev_col[node]) * lsd + lm
            raw = raw + (prev[:, None] if raw.ndim == 2 else prev)
        return raw

    def raw_to_target(self, node: str, raw: Any, x_exo: Any) -> Any:
        """Inverse of :meth:`target_to_raw`."""
        m, sd = self.target_stats[node]
        if self.delta:
            lm, lsd = self.num_stats[node]
            prev = _col64(x_exo, self._prev_col[node]) * lsd + lm
            raw = raw - (prev[:, None] if raw.ndim == 2 else prev)
        return (raw - m) / sd

    def to_z(self, node: str, x: Any) -> Any:
        """Raw values -> the standardised level used as a parent input (clipped to +-Z_CLIP)."""
        m, sd = self.num_stats[node]
        z = (x - m) / sd
        return z.clamp(-Z_CLIP, Z_CLIP) if hasattr(z, "clamp") else np.clip(z, -Z_CLIP, Z_CLIP)

    # -- persistence ---------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-friendly statistics (the spec itself is not stored)."""
        self._check()
        return {"nodes": self.nodes, "delta": self.delta, "num_stats": self.num_stats,
                "target_stats": self.target_stats, "categories": self.categories,
                "arg_stats": self.arg_stats, "feature_names": self.feature_names}

    @classmethod
    def from_dict(cls, spec: EnvSpec, d: dict) -> "Encoder":
        """Rebuild a fitted encoder; raises ValueError if the spec's layout no longer matches."""
        enc = cls(spec, d["nodes"], delta=bool(d.get("delta", False)))
        enc.num_stats = {k: (float(v[0]), float(v[1])) for k, v in d["num_stats"].items()}
        enc.target_stats = {k: (float(v[0]), float(v[1])) for k, v in d["target_stats"].items()}
        enc.categories = {k: list(v) for k, v in d["categories"].items()}
        enc.arg_stats = {k: (float(v[0]), float(v[1])) for k, v in d["arg_stats"].items()}
        enc.fitted = True
        enc._build_layout()
        if enc.feature_names != list(d["feature_names"]):
            raise ValueError("the environment spec changed since this encoder was saved: feature layouts differ")
        return enc


__all__ = ["Encoder", "as_records", "spread", "Z_CLIP"]
