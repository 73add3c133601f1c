"""The Bayesian network over the stochastic variables (eq. 2) and its batched sampler.

``BayesNet(spec, parents).fit(train, val)`` fits one conditional per node (see
:mod:`~cassandra_wm.structure.conditionals`); ``sample`` draws one next value
per row for every node by ancestral sampling in topological order, so a child
is always conditioned on the values just drawn for its parents.  Numeric
samples of integer variables are rounded, and every numeric sample is clipped
to the variable's bounds; ``clip_counts`` counts how many values were clipped.

Two entry points:

* ``sample(prev_states, actions, next_det, valid=None, rng=None)`` takes dicts
  and returns ``{node: np.ndarray}`` of raw values (category values for
  categorical nodes);
* ``sample_array(x_exo, generator)`` takes the already-encoded exogenous block
  (``bn.encoder.encode_exogenous(...)``) and returns raw values with category
  indices for categorical nodes.  It is the fast path for planners.

To get several samples per state, repeat the rows.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..envs.base import EnvSpec
from ..report import atomic_write_text, provenance as _provenance
from .conditionals import Conditional, FitSettings
from .dag import bn_variables, topological_order, validate
from .encoding import Encoder

FORMAT = 1


def _generator(rng: Any) -> torch.Generator:
    """A torch generator from None, an int seed, a numpy Generator or a torch Generator."""
    if isinstance(rng, torch.Generator):
        return rng
    if rng is None:
        seed = int(np.random.default_rng().integers(2**62))
    elif isinstance(rng, np.random.Generator):
        seed = int(rng.integers(2**62))
    elif isinstance(rng, (int, np.integer)):
        seed = int(rng)
    else:
        raise TypeError(f"rng must be None, an int, a numpy Generator or a torch Generator, got {type(rng).__name__}")
    return torch.Generator().manual_seed(seed)


class BayesNet:
    """A DAG over the modelled stochastic variables with one fitted conditional per node."""

    def __init__(self, spec: EnvSpec, parents: Mapping[str, Sequence[str]], nodes: Sequence[str] | None = None,
                 seed: int = 0, **net_kwargs: Any):
        self.spec = spec
        self.nodes = list(nodes) if nodes is not None else bn_variables(spec)
        g = validate(parents, self.nodes)
        # parents in node order: this is the column order of each conditional's inputs
        self.parents = {v: [p for p in self.nodes if p in set(g[v])] for v in self.nodes}
        self.order = topological_order(self.parents)
        self.seed = int(seed)
        self.settings = FitSettings.from_kwargs(net_kwargs)
        self.encoder: Encoder | None = None
        self.models: dict[str, Conditional] = {}
        self.clip_counts = {n: 0 for n in self.nodes}
        self.last_clip_counts = {n: 0 for n in self.nodes}
        self.n_sampled = 0
        self.provenance: dict = {}
        self._var = {n: spec.variable(n) for n in self.nodes}

    # -- fitting -------------------------------------------------------
    def fit(self, train: Any, val: Any, scorer=None) -> dict[str, float]:
        """Fit every node's conditional on ``train`` (early stopping on ``val``).

        Pass a :class:`~cassandra_wm.structure.score.DataScorer` built on the same
        data, seed and settings to reuse the conditionals it already fitted.
        Returns ``{node: validation loss}``.
        """
        from .score import DataScorer
        if scorer is None:
            scorer = DataScorer(self.spec, train, val, nodes=self.nodes, seed=self.seed,
                                fit_kwargs=self._settings_dict())
        return self.fit_from_scorer(scorer)

    def fit_from_scorer(self, scorer) -> dict[str, float]:
        """Take the conditionals (and encoder) of a DataScorer; returns ``{node: validation loss}``."""
        if list(scorer.nodes) != self.nodes:
            raise ValueError(f"scorer nodes {scorer.nodes} differ from the network's {self.nodes}")
        if scorer.seed != self.seed or scorer.settings != self.settings:
            raise ValueError("scorer seed or fit settings differ from the network's")
        self.encoder = scorer.encoder
        self.models = {v: scorer.conditional(v, self.parents[v]) for v in self.nodes}
        losses = {v: self.models[v].val_loss for v in self.nodes}
        self.provenance.update({"n_train": scorer.n_train, "n_val": scorer.n_val, "data": scorer.fingerprint,
                                "val_loss": losses})
        return losses

    def _settings_dict(self) -> dict:
        return json.loads(self.settings.key())

    def _check(self) -> None:
        if self.encoder is None or len(self.models) != len(self.nodes):
            raise RuntimeError("the network is not fitted: call fit(train, val) or BayesNet.load(dir)")

    @property
    def levels(self) -> np.ndarray:
        """Quantile levels of the numeric conditionals."""
        from .conditionals import quantile_levels
        return quantile_levels(self.settings.n_quantiles)

    # -- sampling ------------------------------------------------------
    def _post(self, node: str, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Raw draw -> (rounded and clipped raw value, its standardised level column, number clipped)."""
        var = self._var[node]
        if var.integer:
            raw = torch.round(raw)
        clipped = 0
        if var.low is not None or var.high is not None:
            lo = -np.inf if var.low is None else float(var.low)
            hi = np.inf if var.high is None else float(var.high)
            clipped = int(((raw < lo) | (raw > hi)).sum())
            if clipped:
                raw = torch.clamp(raw, lo, hi)
        return raw, self.encoder.to_z(node, raw).float().unsqueeze(1), clipped

    @torch.no_grad()
    def sample_array(self, x_exo: Any, generator: torch.Generator | None = None) -> dict[str, np.ndarray]:
        """Ancestral sampling from the encoded exogenous block ``x_exo`` (n, n_exo).

        Returns ``{node: array (n,)}``: raw numeric values (rounded and clipped)
        or category indices.
        """
        self._check()
        x = torch.as_tensor(x_exo, dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.encoder.n_exo:
            raise ValueError(f"x_exo must have shape (n, {self.encoder.n_exo}), got {tuple(x.shape)}")
        g = generator if generator is not None else _generator(None)
        n = x.shape[0]
        cols: dict[str, torch.Tensor] = {}
        out: dict[str, np.ndarray] = {}
        for v in self.order:
            model = self.models[v]
            inp = torch.cat([x] + [cols[p] for p in self.parents[v]], dim=1) if self.parents[v] else x
            u = torch.rand(n, generator=g)
            if model.kind == "numeric":
                raw = self.encoder.target_to_raw(v, model.sample(inp, u).double(), x)
                raw, cols[v], c = self._post(v, raw)
                self.last_clip_counts[v] = c
                self.clip_counts[v] += c
                out[v] = raw.numpy()
            else:
                idx = model.sample(inp, u)
                cols[v] = torch.nn.functional.one_hot(idx, model.n_out).float()
                self.last_clip_counts[v] = 0
                out[v] = idx.numpy()
        self.n_sampled += n
        return out

    def sample(self, prev_states: Sequence[dict], actions: Sequence[Any], next_det: Sequence[dict],
               rng: Any = None, valid: Sequence[bool] | None = None) -> dict[str, np.ndarray]:
        """One draw of every node per row; ``{node: array (n,)}`` of raw values (category values
        for categorical nodes).  ``rng``: None, an int seed, a numpy or a torch Generator."""
        self._check()
        x = self.encoder.encode_exogenous(prev_states, actions, next_det, valid)
        out = self.sample_array(x, _generator(rng))
        for v in self.nodes:
            if self.models[v].kind == "categorical":
                cats = np.array(self.encoder.categories[v], dtype=object)
                out[v] = cats[out[v]]
        return out

    @torch.no_grad()
    def predict_quantiles(self, prev_states: Sequence[dict], actions: Sequence[Any], next_det: Sequence[dict],
                          valid: Sequence[bool] | None = None, observed: Sequence[dict] | None = None,
                          n_samples: int = 200, rng: Any = None) -> dict[str, np.ndarray]:
        """Predictive quantiles at ``self.levels`` per row: ``{node: (n, K)}`` in raw units.

        With ``observed`` (states holding the true same-step node values) each
        node is conditioned on its observed parents and the net's quantiles are
        returned (clipped to bounds).  Without it, the one-step predictive
        distribution is estimated from ``n_samples`` ancestral samples per row
        (empirical quantiles).  Categorical nodes get class probabilities (n, C)
        in the order of ``encoder.categories[node]``.
        """
        self._check()
        x = self.encoder.encode_exogenous(prev_states, actions, next_det, valid)
        n = len(x)
        out: dict[str, np.ndarray] = {}
        if observed is not None:
            if len(observed) != n:
                raise ValueError(f"observed has {len(observed)} rows, expected {n}")
            cols = {k: torch.as_tensor(a) for k, a in self.encoder.encode_node_values(observed).items()}
            xt = torch.as_tensor(x)
            for v in self.nodes:
                inp = torch.cat([xt] + [cols[p] for p in self.parents[v]], dim=1)
                model = self.models[v]
                if model.kind == "numeric":
                    q = self.encoder.target_to_raw(v, model.quantiles(inp).double().numpy(), x)
                    var = self._var[v]
                    out[v] = np.clip(q, var.low if var.low is not None else -np.inf,
                                     var.high if var.high is not None else np.inf)
                else:
                    out[v] = model.probs(inp).numpy()
            return out
        if n_samples < 2:
            raise ValueError("n_samples must be at least 2")
        draws = self.sample_array(np.repeat(x, n_samples, axis=0), _generator(rng))
        for v in self.nodes:
            d = draws[v].reshape(n, n_samples)
            if self.models[v].kind == "numeric":
                out[v] = np.quantile(d, self.levels, axis=1).T
            else:
                k = self.models[v].n_out
                out[v] = np.stack([(d == c).mean(axis=1) for c in range(k)], axis=1)
        return out

    def predict_mean(self, prev_states: Sequence[dict], actions: Sequence[Any], next_det: Sequence[dict],
                     valid: Sequence[bool] | None = None, n_samples: int = 100, rng: Any = None) -> dict[str, np.ndarray]:
        """Point predictions per row: Monte Carlo mean of ``n_samples`` ancestral draws for numeric
        nodes, the most frequent category for categorical ones."""
        self._check()
        if n_samples < 1:
            raise ValueError("n_samples must be positive")
        x = self.encoder.encode_exogenous(prev_states, actions, next_det, valid)
        n = len(x)
        draws = self.sample_array(np.repeat(x, n_samples, axis=0), _generator(rng))
        out = {}
        for v in self.nodes:
            d = draws[v].reshape(n, n_samples)
            if self.models[v].kind == "numeric":
                out[v] = d.mean(axis=1)
            else:
                k = self.models[v].n_out
                counts = np.stack([(d == c).sum(axis=1) for c in range(k)], axis=1)
                out[v] = np.array(self.encoder.categories[v], dtype=object)[counts.argmax(axis=1)]
        return out

    # -- persistence ---------------------------------------------------
    def save(self, directory: str | Path, llm: str = "none (no LLM used in this stage)", **extra: Any) -> Path:
        """Write ``node<i>.pt`` state dicts and ``bn.json`` (parents, encoder statistics,
        settings, provenance).  ``bn.json`` is written last, so its presence marks a complete save."""
        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        files = {}
        for i, v in enumerate(self.nodes):
            name = f"node{i}.pt"
            tmp = d / f".{name}.tmp"
            torch.save(self.models[v].net.state_dict(), tmp)
            os.replace(tmp, d / name)
            files[v] = name
        meta = {"format": FORMAT, "env": self.spec.name, "nodes": self.nodes, "parents": self.parents,
                "order": self.order, "seed": self.seed, "settings": self._settings_dict(),
                "encoder": self.encoder.to_dict(), "files": files,
                "conditionals": {v: self.models[v].config() for v in self.nodes},
                "provenance": _provenance(llm, **{**self.provenance, **extra})}
        atomic_write_text(d / "bn.json", json.dumps(meta, indent=1, default=str))
        return d

    @classmethod
    def load(cls, directory: str | Path, spec: EnvSpec | None = None) -> "BayesNet":
        """Load a saved network; ``spec`` defaults to ``make_env(<saved env name>).spec``."""
        d = Path(directory)
        path = d / "bn.json"
        if not path.exists():
            raise FileNotFoundError(f"no saved Bayesian network at {d} (bn.json missing)")
        meta = json.loads(path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: unsupported format {meta.get('format')!r}")
        if spec is None:
            from ..envs import make_env
            spec = make_env(meta["env"]).spec
        elif spec.name != meta["env"]:
            raise ValueError(f"{path} was fitted for {meta['env']!r}, not {spec.name!r}")
        bn = cls(spec, meta["parents"], nodes=meta["nodes"], seed=meta["seed"], **meta["settings"])
        bn.encoder = Encoder.from_dict(spec, meta["encoder"])
        for v in bn.nodes:
            state = torch.load(d / meta["files"][v], weights_only=True)
            bn.models[v] = Conditional.from_config(meta["conditionals"][v], state)
        bn.provenance = dict(meta.get("provenance") or {})
        return bn

    def __repr__(self) -> str:
        es = sum(len(p) for p in self.parents.values())
        return f"BayesNet({self.spec.name}, {len(self.nodes)} nodes, {es} edges, fitted={self.encoder is not None})"


def saved_network_matches(directory: str | Path, parents: Mapping[str, Sequence[str]], scorer) -> bool:
    """True when ``directory`` holds a network saved for these parents, the scorer's data, seed and fit
    settings (so it can be loaded instead of refitted)."""
    meta_file = Path(directory) / "bn.json"
    if not meta_file.exists():
        return False
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError):
        return False
    same = ({k: sorted(v) for k, v in meta.get("parents", {}).items()} == {k: sorted(v) for k, v in parents.items()})
    return (same and (meta.get("provenance") or {}).get("data") == scorer.fingerprint
            and meta.get("seed") == scorer.seed and meta.get("settings") == json.loads(scorer.settings.key()))


def _values(spec: EnvSpec, name: str, states: Sequence[dict]) -> np.ndarray:
    from ..envs.base import get_path
    var = spec.variable(name)
    return np.array([get_path(s, var.path) for s in states], dtype=object if var.type == "categorical" else float)


def one_step_errors(bn: "BayesNet", records: Sequence[dict], n_samples: int = 100, rng: Any = 0) -> dict[str, float]:
    """Table 5's numbers for one network: per variable, the RMSE of the Monte Carlo mean of
    ``n_samples`` ancestral draws (numeric) or the accuracy of the most frequent draw (categorical),
    each test row starting from its true previous state, action, validity and next deterministic values."""
    if not records:
        raise ValueError("no test transitions")
    prev = [r["state"] for r in records]
    nxt = [r["next_state"] for r in records]
    pred = bn.predict_mean(prev, [r["action"] for r in records], nxt, valid=[bool(r.get("valid", True)) for r in records],
                           n_samples=n_samples, rng=rng)
    out = {}
    for v in bn.nodes:
        y = _values(bn.spec, v, nxt)
        if bn.spec.variable(v).type == "categorical":
            out[v] = float(np.mean(pred[v] == y))
        else:
            out[v] = float(np.sqrt(np.mean((pred[v] - y) ** 2)))
    return out


def persistence_errors(spec: EnvSpec, nodes: Sequence[str], records: Sequence[dict]) -> dict[str, float]:
    """The same numbers for "tomorrow = today" (no model): the yardstick row of table 5."""
    out = {}
    for v in nodes:
        y0 = _values(spec, v, [r["state"] for r in records])
        y1 = _values(spec, v, [r["next_state"] for r in records])
        out[v] = (float(np.mean(y0 == y1)) if spec.variable(v).type == "categorical"
                  else float(np.sqrt(np.mean((y0 - y1) ** 2))))
    return out


def flag_off(errors: Mapping[str, float], yardstick: Mapping[str, float], spec: EnvSpec,
             factor: float = 10.0) -> dict[str, float]:
    """Numeric variables whose error is more than ``factor`` times the no-model error: ``{var: ratio}``.
    Such a fit is broken (an input far outside training, a diverged net), not a result to report."""
    out = {}
    for v, e in errors.items():
        if spec.variable(v).type == "categorical":
            continue
        base = yardstick.get(v)
        if not np.isfinite(e) or (base is not None and base > 0 and e > factor * base):
            out[v] = float(e / base) if base else float("inf")
    return out


__all__ = ["BayesNet", "one_step_errors", "persistence_errors", "flag_off", "saved_network_matches"]
