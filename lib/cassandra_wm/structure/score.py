"""The data term and the search objective J(E) of eq. 5, with a per-node cache.

How the data term is computed
-----------------------------
For a graph given as a parents dict over the node set V:

1. An :class:`~cassandra_wm.structure.encoding.Encoder` is fitted on the
   training transitions (standardisation statistics, one-hot layouts).
2. For every node v, a conditional is fitted on the training rows.  Its input
   is the shared exogenous block (whole previous state, action, validity, next
   step's deterministic variables) followed by the encoded same-step values of
   v's parents, in node order.  Training uses early stopping on the validation
   rows (see :mod:`~cassandra_wm.structure.conditionals`).
3. The node's held-out loss is measured on the validation rows with the kept
   (best-epoch) weights:
   * numeric v: the pinball loss of the standardised target, averaged over
     validation rows and SUMMED over the quantile grid (19 levels 0.05 ...
     0.95 by default; the sum over a grid is a discrete form of the CRPS, a
     proper score).  Summing rather than averaging over levels is what puts
     the data term on the scale the paper tuned lambda1 = 10 for ("a similar
     scale to the pinball loss"): averaged, one real coffee-shop dependency
     gains 0.01-0.1 while an edge costs 10/36 = 0.28, so the data could never
     pay for any edge.  The target is the day-to-day change standardised with
     training statistics, ``(x_next - x_prev - mean(d)) / std(d)`` where d are
     the training changes (fit setting ``delta_targets=False`` uses
     ``(x_next - mean) / std`` instead), so each node's loss is on the scale
     of its typical daily move;
   * categorical v: the mean cross-entropy in nats.
   Rows whose target is missing or outside the known categories are skipped.
4. ``node_term(v, pa(v)) = -(mean per-row held-out loss)`` (see :func:`row_losses`) and
   ``data_term(E) = sum over v in V of node_term(v, pa(v))``.

So the data term is a negative loss per transition summed over nodes:
higher is better, 0 would be a perfect fit.  It stands in for
(1/|D|) log p(D | E) of eq. 5.  The validation rows serve both for early
stopping and for the score, so the score is slightly optimistic, equally for
every parent set.

The objective (eq. 5, appendix E.3 defaults lambda1 = 10, lambda2 = 100) is

    J = data - lambda1 * |E| / |V|^2 + lambda2 * log p(E | V, L)

computed in one place, :func:`~.objective.objective_terms`, which returns its three terms as they
enter J (``sparsity = -lambda1 |E| / |V|^2``, ``prior = lambda2 log p``), so
``J = data + sparsity + prior``.  The search, the exact optimiser, the DAG explorer and
:meth:`DataScorer.objective` all call it.

The per-row losses behind each node's term are kept too (:meth:`DataScorer.node_rows`),
so the data term can be recomputed on any subset of the validation rows without refitting:
that is how :mod:`.exact` chooses lambda2 by held-out folds.

Cache
-----
A node's term depends only on (node, parent set, data, seed, fit settings),
so it is cached under a key built from exactly those: the node name, the
sorted parent names, a SHA-1 fingerprint of the encoded train and validation
arrays and encoder statistics, the seed, and the fit settings.  The cache
lives in memory and, with ``cache_dir``, also on disk as one small JSON file
per key (written atomically, so parallel searches can share it, holding the term and
the per-row losses); a disk entry is used only if its stored key matches exactly.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..paper import LAMBDA1, LAMBDA2
from ..report import atomic_write_text
from .conditionals import Conditional, FitSettings, fit_conditional, node_seed
from .dag import bn_variables, find_cycle, n_edges, validate
from .encoding import Encoder, as_records
from .objective import objective_terms

TERM_VERSION = "pinball-summed-over-levels-rows"  # part of the cache key: a new definition never reads old scores


def row_losses(model: Conditional, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row held-out loss of a fitted conditional: the numeric pinball loss summed over the
    quantile grid (see the module docstring), or the cross-entropy in nats."""
    with torch.no_grad():
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        out = model.net(xt)
        if model.kind == "numeric":
            yt = torch.as_tensor(np.asarray(y), dtype=torch.float32)
            levels = model.net.levels
            diff = yt.unsqueeze(1) - out
            per = torch.maximum(levels * diff, (levels - 1.0) * diff).sum(dim=1)
        else:
            yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)
            per = torch.nn.functional.cross_entropy(out, yt, reduction="none")
    return per.double().numpy()


class DataScorer:
    """Fits node conditionals on ``train``, scores them on ``val``, and caches the scores.

    Counters: ``hits`` (memory or disk), ``disk_hits``, ``misses`` (fits), and
    ``fit_seconds`` (time spent fitting).  ``use_cache=False`` refits on every
    call (for benchmarks).  ``keep_models=True`` keeps fitted conditionals in
    memory so :meth:`conditional` and :class:`~cassandra_wm.structure.bn.BayesNet`
    can reuse them.
    """

    def __init__(self, spec, train: Any, val: Any, nodes: Sequence[str] | None = None, seed: int = 0,
                 fit_kwargs: dict | None = None, cache_dir: str | Path | None = None, use_cache: bool = True,
                 keep_models: bool = True):
        self.spec = spec
        self.nodes = list(nodes) if nodes is not None else bn_variables(spec)
        if not self.nodes:
            raise ValueError(f"{spec.name}: no stochastic variables to model")
        self.seed = int(seed)
        self.settings = FitSettings.from_kwargs(fit_kwargs)
        self.use_cache = bool(use_cache)
        self.keep_models = bool(keep_models)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        train, val = as_records(train), as_records(val)
        if not train or not val:
            raise ValueError(f"need training and validation transitions (got {len(train)} and {len(val)})")
        self.n_train, self.n_val = len(train), len(val)
        # which validation rows belong together (held-out folds never split a trajectory)
        self.val_groups = [r.get("traj_id", i) for i, r in enumerate(val)]
        self.encoder = Encoder(spec, self.nodes, delta=self.settings.delta_targets).fit(train)
        self._x = {"train": self.encoder.exogenous(train), "val": self.encoder.exogenous(val)}
        self._cols = {"train": self.encoder.node_columns(train), "val": self.encoder.node_columns(val)}
        self._y = {"train": self.encoder.targets(train), "val": self.encoder.targets(val)}
        self.fingerprint = self._fingerprint()
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0
        self.fit_seconds = 0.0
        self._scores: dict[str, float] = {}
        self._rows: dict[str, np.ndarray] = {}
        self._models: dict[str, Conditional] = {}

    # -- keys and inputs -----------------------------------------------
    def _fingerprint(self) -> str:
        h = hashlib.sha1()
        h.update(json.dumps(self.encoder.to_dict(), sort_keys=True, default=str).encode())
        for split in ("train", "val"):
            h.update(np.ascontiguousarray(self._x[split]).tobytes())
            for n in self.nodes:
                h.update(np.ascontiguousarray(self._cols[split][n]).tobytes())
                y, m = self._y[split][n]
                h.update(np.ascontiguousarray(y).tobytes())
                h.update(np.ascontiguousarray(m).tobytes())
        return h.hexdigest()

    def _parent_list(self, node: str, parents_of_node: Sequence[str]) -> list[str]:
        if node not in self.nodes:
            raise ValueError(f"unknown node {node!r}; nodes are {self.nodes}")
        if isinstance(parents_of_node, str):
            raise ValueError(f"parents of {node!r} must be a list, got the string {parents_of_node!r}")
        ps = set(parents_of_node)
        bad = sorted(p for p in ps if p not in self.nodes)
        if bad:
            raise ValueError(f"parents {bad} of {node!r} are not nodes; nodes are {self.nodes}")
        if node in ps:
            raise ValueError(f"{node!r} cannot be its own parent")
        return [n for n in self.nodes if n in ps]  # canonical (node) order

    def cache_key(self, node: str, parents_of_node: Sequence[str]) -> str:
        """The exact key a node's term is cached under."""
        ps = sorted(self._parent_list(node, parents_of_node))
        return json.dumps({"node": node, "parents": ps, "data": self.fingerprint, "seed": self.seed,
                           "fit": json.loads(self.settings.key()), "term": TERM_VERSION}, sort_keys=True)

    def inputs(self, node: str, parents_of_node: Sequence[str], split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """(X, y) of one node on ``split`` ('train' or 'val'), rows with a missing target dropped."""
        ps = self._parent_list(node, parents_of_node)
        x = np.concatenate([self._x[split]] + [self._cols[split][p] for p in ps], axis=1)
        y, mask = self._y[split][node]
        return x[mask], y[mask]

    # -- fitting and scoring -------------------------------------------
    def _fit(self, node: str, ps: list[str]) -> Conditional:
        xt, yt = self.inputs(node, ps, "train")
        xv, yv = self.inputs(node, ps, "val")
        kind = "categorical" if self.encoder.is_categorical(node) else "numeric"
        ncls = self.encoder.n_classes(node) if kind == "categorical" else None
        t0 = time.perf_counter()
        model = fit_conditional(node, kind, xt, yt, xv, yv, n_classes=ncls, settings=self.settings,
                                seed=node_seed(self.seed, node))
        self.fit_seconds += time.perf_counter() - t0
        self.misses += 1
        return model

    def _disk_path(self, key: str, node: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in node)[:40]
        return self.cache_dir / f"{safe}-{hashlib.sha1(key.encode()).hexdigest()[:20]}.json"

    def _val_rows(self, node: str, ps: list[str], model: Conditional) -> np.ndarray:
        """Per-row validation losses aligned with the validation transitions (NaN where the target is missing)."""
        x = np.concatenate([self._x["val"]] + [self._cols["val"][p] for p in ps], axis=1)
        y, mask = self._y["val"][node]
        out = np.full(len(x), np.nan)
        if mask.any():
            out[mask] = row_losses(model, x[mask], y[mask])
        return out

    def _lookup(self, key: str, node: str) -> bool:
        """Load a cached entry (memory, then disk) into memory; True when found."""
        if not self.use_cache:
            return False
        if key in self._scores:
            self.hits += 1
            return True
        if self.cache_dir is None:
            return False
        path = self._disk_path(key, node)
        if not path.exists():
            return False
        try:
            entry = json.loads(path.read_text())
            rows = np.array([np.nan if r is None else float(r) for r in entry["rows"]], dtype=np.float64)
            if entry.get("key") != key or len(rows) != self.n_val or not math.isfinite(float(entry["term"])):
                return False
        except (OSError, ValueError, KeyError, TypeError):
            return False  # unreadable entry: refit and overwrite
        self.hits += 1
        self.disk_hits += 1
        self._scores[key] = float(entry["term"])
        self._rows[key] = rows
        return True

    def _fit_and_store(self, key: str, node: str, ps: list[str]) -> tuple[float, np.ndarray]:
        """Fit, score and (with the cache on) remember one (node, parent set); returns (term, rows)."""
        model = self._fit(node, ps)
        rows = self._val_rows(node, ps, model)
        term = -float(np.nanmean(rows)) if np.isfinite(rows).any() else -math.inf
        if not math.isfinite(term):
            raise ValueError(f"{node}: no finite validation loss (all targets missing or the fit diverged)")
        if self.use_cache:
            self._scores[key] = term
            self._rows[key] = rows
            if self.keep_models:
                self._models[key] = model
            if self.cache_dir is not None:
                atomic_write_text(self._disk_path(key, node), json.dumps(
                    {"key": key, "term": term, "info": model.info,
                     "rows": [None if not math.isfinite(r) else round(float(r), 7) for r in rows]}))
        return term, rows

    def node_term(self, node: str, parents_of_node: Sequence[str]) -> float:
        """Minus the mean held-out loss of ``node``'s conditional given these parents (cached)."""
        ps = self._parent_list(node, parents_of_node)
        key = self.cache_key(node, ps)
        if self._lookup(key, node):
            return self._scores[key]
        return self._fit_and_store(key, node, ps)[0]

    def node_rows(self, node: str, parents_of_node: Sequence[str]) -> np.ndarray:
        """Per-row held-out losses behind :meth:`node_term` (aligned with the validation transitions,
        NaN where the node's target is missing); ``node_term == -nanmean(node_rows)``."""
        ps = self._parent_list(node, parents_of_node)
        key = self.cache_key(node, ps)
        if self._lookup(key, node):
            return self._rows[key].copy()
        return self._fit_and_store(key, node, ps)[1].copy()

    def conditional(self, node: str, parents_of_node: Sequence[str]) -> Conditional:
        """The fitted conditional behind ``node_term`` (fitted now if it is not kept in memory)."""
        ps = self._parent_list(node, parents_of_node)
        key = self.cache_key(node, ps)
        model = self._models.get(key)
        if model is None:
            model = self._fit(node, ps)
            if self.keep_models:
                self._models[key] = model
            if key not in self._scores:
                rows = self._val_rows(node, ps, model)
                self._scores[key], self._rows[key] = -float(np.nanmean(rows)), rows
        return model

    def node_terms(self, parents: Mapping[str, Sequence[str]]) -> dict[str, float]:
        """``{node: node_term}`` for every node (missing keys mean no parents)."""
        g = validate(parents, self.nodes)
        return {v: self.node_term(v, g[v]) for v in self.nodes}

    def data_term(self, parents: Mapping[str, Sequence[str]]) -> float:
        """Sum over nodes of ``node_term`` (the first term of eq. 5)."""
        return float(sum(self.node_terms(parents).values()))

    def objective(self, parents: Mapping[str, Sequence[str]], log_prior: float, lam1: float = LAMBDA1,
                  lam2: float = LAMBDA2) -> dict:
        """J(E) of eq. 5 and its terms (see :func:`objective_terms`).

        Raises ValueError on a graph with a cycle or unknown names.
        """
        g = validate(parents, self.nodes)
        cycle = find_cycle(g)
        if cycle is not None:
            raise ValueError("graph has a cycle: " + " -> ".join(cycle))
        return objective_terms(self.data_term(g), n_edges(g), len(self.nodes), log_prior, lam1, lam2)

    def stats(self) -> dict:
        """Cache counters as a dict."""
        return {"hits": self.hits, "disk_hits": self.disk_hits, "misses": self.misses,
                "fit_seconds": self.fit_seconds, "entries": len(self._scores)}

    def __getstate__(self) -> dict:
        # picklable for process pools: drop kept models (they are cheap to refit, and large to ship)
        d = dict(self.__dict__)
        d["_models"] = {}
        return d


__all__ = ["DataScorer", "objective_terms", "row_losses", "LAMBDA1", "LAMBDA2"]
