"""Interactive explorers for notebooks (ipywidgets), with their logic kept testable without a browser.

:class:`DagExplorerModel` holds the state of the DAG explorer (the current graph, lambda1 and
lambda2) and computes J and its terms; :class:`DagExplorer` wraps it in widgets:

* a drop-down to load any graph (e.g. a search result, an ablation, an initial DAG);
* a parent / child pair of drop-downs and a button that adds or removes that edge (an edge that
  would close a cycle is refused with a message, the graph is left unchanged);
* sliders for lambda1 and lambda2 (they update when released, not on every drag step);
* J and its three terms, and a per-node table (parents, data term, prior log-probability).  Data
  terms come from the scorer's cache (a new parent set is fitted once); prior terms from the prior's
  cache (an uncached node costs one LLM call);
* a drawing of the graph and, for a chosen node, its conditional's predictions on validation rows
  (quantile fan for numeric nodes, predicted vs observed class shares for categorical ones).

How it stays reliable:

* every drawing is a :class:`matplotlib.figure.Figure` made outside pyplot and shown as PNG bytes in
  an ``ipywidgets.Image``, so neither the inline backend nor another thread can redraw it half-way;
* the slow work (fitting a new parent set, asking the LLM, drawing) runs in one background thread
  that always works on the newest state: a burst of edits costs one update, the kernel stays
  responsive, and a status line says "busy: ..." until it is done ("ready");
* building the explorer only draws the loaded graph; it never waits for a fit or an LLM call, so a
  headless (papermill) run of the notebook cannot block on the explorer.
"""
from __future__ import annotations

import html
import math
import threading
import time
import traceback
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .paper import LAMBDA1, LAMBDA2
from .structure.dag import edges, find_cycle, n_edges, validate
from .structure.objective import objective_terms

Parents = dict[str, list[str]]


class DagExplorerModel:
    """The explorer's state and computations (no widgets involved)."""

    def __init__(self, graphs: Mapping[str, Mapping[str, Sequence[str]]], scorer: Any, prior: Any = None,
                 lam1: float = LAMBDA1, lam2: float = LAMBDA2, true_edges: Sequence[tuple[str, str]] | None = None):
        if not graphs:
            raise ValueError("the explorer needs at least one graph")
        self.nodes = list(getattr(scorer, "nodes", None) or next(iter(graphs.values())))
        self.graphs = {name: validate(g, self.nodes) for name, g in graphs.items()}
        for name, g in self.graphs.items():
            if find_cycle(g):
                raise ValueError(f"graph {name!r} has a cycle: {' -> '.join(find_cycle(g))}")
        self.scorer, self.prior = scorer, prior
        self.set_lambdas(lam1, lam2)
        self.true_edges = list(true_edges) if true_edges is not None else None
        self.history: list[str] = []
        self.name = next(iter(self.graphs))
        self.parents: Parents = {k: list(v) for k, v in self.graphs[self.name].items()}

    # -- editing --
    def select(self, name: str) -> Parents:
        """Load graph ``name`` (a copy: edits never change the stored graphs)."""
        if name not in self.graphs:
            raise KeyError(f"no graph named {name!r}; known: {list(self.graphs)}")
        self.name = name
        self.parents = {k: list(v) for k, v in self.graphs[name].items()}
        self.history.append(f"loaded {name}")
        return self.parents

    def toggle(self, parent: str, child: str) -> tuple[bool, str]:
        """Remove ``parent -> child`` if present, else add it; returns (changed, message)."""
        for v in (parent, child):
            if v not in self.nodes:
                return False, f"unknown node {v!r}"
        if parent == child:
            return False, "a node cannot be its own parent"
        trial = {k: list(v) for k, v in self.parents.items()}
        if parent in trial[child]:
            trial[child].remove(parent)
            msg = f"removed {parent} -> {child}"
        else:
            trial[child].append(parent)
            cyc = find_cycle(trial)
            if cyc:
                return False, f"refused {parent} -> {child}: it would close the cycle {' -> '.join(cyc)}"
            msg = f"added {parent} -> {child}"
        self.parents = trial  # replaced, never edited in place: a snapshot taken earlier stays valid
        self.history.append(msg)
        return True, msg

    def changes(self) -> int:
        """Edges added or removed relative to the loaded graph (0 right after loading)."""
        return len(set(edges(self.parents)) ^ set(edges(self.graphs[self.name])))

    def set_lambdas(self, lam1: float, lam2: float) -> None:
        if lam1 < 0 or lam2 < 0 or not (math.isfinite(lam1) and math.isfinite(lam2)):
            raise ValueError(f"lambdas must be finite and >= 0, got {lam1}, {lam2}")
        self.lam1, self.lam2 = float(lam1), float(lam2)

    def snapshot(self) -> "DagExplorerModel":
        """A copy of the current state that later edits do not change (scorer and prior are shared)."""
        snap = object.__new__(type(self))
        snap.__dict__.update(self.__dict__)
        snap.parents = {k: list(v) for k, v in self.parents.items()}
        snap.history = list(self.history)
        return snap

    # -- scoring --
    def uncached_prior_nodes(self) -> list[str]:
        """Nodes whose prior answer is not cached yet (each would cost one LLM call)."""
        check = getattr(self.prior, "is_cached", None)
        if check is None:
            return []
        return [v for v in self.nodes if not check(v, self.parents[v])]

    def node_table(self) -> list[dict]:
        """One row per node: parents, data term, prior log-probability."""
        data = self.scorer.node_terms(self.parents)
        prior = self.prior.node_terms(self.parents) if self.prior is not None else {v: 0.0 for v in self.nodes}
        return [{"node": v, "parents": ", ".join(self.parents[v]) or "-", "data": data[v],
                 "log_prior": prior[v]} for v in self.nodes]

    def terms(self, rows: list[dict] | None = None) -> dict:
        """J and its terms for the current graph and lambdas (J = data + sparsity + prior).

        ``rows`` is :meth:`node_table` when the caller already has it."""
        rows = self.node_table() if rows is None else rows
        out = objective_terms(sum(r["data"] for r in rows), n_edges(self.parents), len(self.nodes),
                              sum(r["log_prior"] for r in rows), self.lam1, self.lam2)
        if self.true_edges is not None:
            from .structure.dag import edge_precision_recall, shd
            p, r = edge_precision_recall(self.parents, self.true_edges)
            out.update(shd=shd(self.parents, self.true_edges), precision=p, recall=r)
        return out

    # -- predictions --
    def predictions(self, node: str, max_rows: int = 300) -> dict:
        """The node's conditional (current parents) on validation rows.

        Numeric: ``{"kind": "numeric", "actual", "quantiles", "levels"}`` in the variable's units.
        Categorical: ``{"kind": "categorical", "classes", "predicted", "observed"}`` (class shares).
        """
        if node not in self.nodes:
            raise ValueError(f"unknown node {node!r}")
        ps = self.parents[node]
        model = self.scorer.conditional(node, ps)
        import torch
        x, y = self.scorer.inputs(node, ps, "val")
        x, y = x[:max_rows], y[:max_rows]
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
        enc = self.scorer.encoder
        if model.kind == "numeric":
            q = model.quantiles(xt).numpy()
            # targets may be standardised daily changes: the encoder maps them back to values using
            # the previous value held in each row's inputs
            return {"kind": "numeric", "actual": np.asarray(enc.target_to_raw(node, np.asarray(y, np.float64), x)),
                    "quantiles": np.asarray(enc.target_to_raw(node, q.astype(np.float64), x)),
                    "levels": model.levels.detach().cpu().numpy()}
        probs = model.probs(xt).numpy()
        classes = list(enc.categories[node])
        observed = np.bincount(np.asarray(y, dtype=int), minlength=len(classes)) / max(len(y), 1)
        return {"kind": "categorical", "classes": classes, "predicted": probs.mean(axis=0), "observed": observed}


# -- rendering (plain functions: PNG bytes and HTML strings, testable without widgets) ------------

def dag_png(model: DagExplorerModel, dpi: int = 90) -> bytes:
    """The model's current graph drawn as PNG bytes (no pyplot involved)."""
    from .viz import draw_dag, figure_png, new_figure
    fig = new_figure((4.2, 4.2))
    n = model.changes()
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93)
    draw_dag(model.parents, fig.subplots(), true_edges=model.true_edges, nodes=model.nodes,
             title=model.name + (f" (edited: {n} change{'' if n == 1 else 's'})" if n else ""))
    return figure_png(fig, dpi=dpi, tight=False)  # a fixed size: redrawing never moves the page


def predictions_png(model: DagExplorerModel, node: str, dpi: int = 90) -> bytes:
    """The node's one-step predictions on validation rows as PNG bytes (fits the conditional if needed)."""
    from .viz import figure_png, new_figure, plot_quantile_fan
    p = model.predictions(node)
    fig = new_figure((6, 3.2))
    ax = fig.subplots()
    title = f"{node} | parents: {', '.join(model.parents[node]) or '-'}"
    if p["kind"] == "numeric":
        plot_quantile_fan(p["actual"], p["quantiles"], p["levels"], ax=ax, title=title)
    else:
        xs = np.arange(len(p["classes"]))
        ax.bar(xs - 0.2, p["predicted"], 0.4, label="predicted")
        ax.bar(xs + 0.2, p["observed"], 0.4, label="observed")
        ax.set_xticks(xs, [str(c) for c in p["classes"]])
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_png(fig, dpi=dpi)


def header_html(model: DagExplorerModel, note: str = "") -> str:
    """Graph name, number of edits since it was loaded, lambdas and the last message."""
    n = model.changes()
    return (f"<b>{html.escape(model.name)}</b> (edited: {n} change{'' if n == 1 else 's'}) &nbsp; lambda1={model.lam1:g}, "
            f"lambda2={model.lam2:g}" + (f"<br><i>{html.escape(note)}</i>" if note else ""))


def terms_html(t: dict) -> str:
    rows = "".join(f"<tr><td>{k}</td><td style='text-align:right'>{t[k]:.4f}</td></tr>"
                   for k in ("J", "data", "sparsity", "prior", "log_prior"))
    rows += f"<tr><td>edges</td><td style='text-align:right'>{t['n_edges']}</td></tr>"
    if "shd" in t:
        rows += (f"<tr><td>SHD vs simulator</td><td style='text-align:right'>{t['shd']}</td></tr>"
                 f"<tr><td>precision / recall</td><td style='text-align:right'>{t['precision']:.2f} / "
                 f"{t['recall']:.2f}</td></tr>")
    return f"<table class='cassandra-terms'>{rows}</table>"


def _status_html(text: str, busy: bool) -> str:
    color = "#b35c00" if busy else "#2a7d3b"
    icon = "&#8987; " if busy else ""
    return f"<span style='color:{color}'>{icon}{html.escape(text)}</span>"


def _busy_text(model: DagExplorerModel) -> str:
    pending = model.uncached_prior_nodes()
    return ("busy: computing J (a new parent set is fitted once)"
            + (f"; asking the LLM about {len(pending)} node(s)" if pending else ""))


class _LatestJobRunner:
    """Runs submitted jobs one at a time in a daemon thread; a job submitted while another waits
    replaces it, so only the newest state is ever worked on.  ``background=False`` runs jobs inline."""

    def __init__(self, background: bool = True, name: str = "dag-explorer"):
        self.background = background
        self.runs = 0  # jobs run so far (a burst of submissions may run fewer)
        self._cond = threading.Condition()
        self._job: Callable[[], None] | None = None
        self._busy = False
        self._closed = False
        self._thread = None
        if background:
            self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
            self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        if not self.background:
            self.runs += 1
            job()
            return
        with self._cond:
            self._job = job
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job, self._job = self._job, None
                self._busy = True
                self.runs += 1
            try:
                job()
            except BaseException:  # noqa: BLE001 - the job reports its own errors; never kill the thread
                traceback.print_exc()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def idle(self) -> bool:
        with self._cond:
            return self._job is None and not self._busy

    def wait(self, timeout: float = 60.0) -> bool:
        """Wait until no job is pending or running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._job is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._job = None
            self._cond.notify_all()


class DagExplorer:
    """The DAG explorer's widgets (see the module docstring); ``widget`` is what a notebook displays.

    ``background=False`` does every update inline (scripts and tests); ``wait()`` waits for the
    background thread to finish the pending update.
    """

    def __init__(self, graphs: Mapping[str, Mapping[str, Sequence[str]]], scorer: Any, prior: Any = None,
                 lam1: float = LAMBDA1, lam2: float = LAMBDA2, true_edges=None, show_predictions: bool = True,
                 background: bool = True):
        import ipywidgets as W

        self.model = DagExplorerModel(graphs, scorer, prior, lam1, lam2, true_edges)
        m = self.model
        self._lock = threading.Lock()  # guards the model's state between widget callbacks and the worker
        self._note = ""
        self._drawn_key: Any = None
        self._pred_key: Any = None
        self.errors: list[str] = []

        self.pick = W.Dropdown(options=list(m.graphs), value=m.name, description="graph")
        self.src = W.Dropdown(options=m.nodes, description="parent")
        self.dst = W.Dropdown(options=m.nodes, value=m.nodes[min(1, len(m.nodes) - 1)], description="child")
        self.button = W.Button(description="add / remove edge")
        self.s1 = W.FloatSlider(value=m.lam1, min=0.0, max=max(50.0, m.lam1), step=0.5, description="lambda1",
                                continuous_update=False)
        self.s2 = W.FloatSlider(value=m.lam2, min=0.0, max=max(200.0, m.lam2), step=5.0, description="lambda2",
                                continuous_update=False)
        self.node = W.Dropdown(options=[("(choose a node)", "")] + [(v, v) for v in m.nodes], value="",
                               description="node")
        self.header = W.HTML(header_html(m))
        self.status = W.HTML(_status_html("busy: computing J", True))
        self.terms = W.HTML()
        self.table = W.HTML()
        self.dag_image = W.Image(format="png", layout=W.Layout(width="420px"))
        self.pred_image = W.Image(format="png", layout=W.Layout(width="560px", display="none"))
        self.pred_note = W.HTML("<i>choose a node to fit its conditional and plot its predictions on "
                                "validation rows</i>")
        self.dag_image.add_class("cassandra-dag-image")
        self.status.add_class("cassandra-dag-status")
        self.header.add_class("cassandra-dag-header")

        # the first drawing is made now (fast, no fits or LLM calls); J comes from the worker
        self._draw(m)
        self.runner = _LatestJobRunner(background=background)

        self.pick.observe(self._on_pick, names="value")
        self.button.on_click(self._on_toggle)
        self.s1.observe(self._on_lambda, names="value")
        self.s2.observe(self._on_lambda, names="value")
        self.node.observe(lambda _: self._request(), names="value")
        pred_box = [W.VBox([self.node, self.pred_note, self.pred_image])] if show_predictions else []
        controls = W.VBox([self.pick, W.HBox([self.src, self.dst, self.button]), W.HBox([self.s1, self.s2]),
                           self.header, self.status, self.terms])
        self.widget = W.VBox([controls, W.HBox([self.dag_image] + pred_box), self.table])
        self.widget.add_class("cassandra-dag-explorer")
        self._request()

    # -- callbacks (kernel thread: quick, never fit or call the LLM) --
    def _on_pick(self, change) -> None:
        with self._lock:
            self.model.select(change["new"])
            self._note = f"loaded {change['new']}"
        self._request()

    def _on_toggle(self, _=None) -> None:
        with self._lock:
            changed, self._note = self.model.toggle(self.src.value, self.dst.value)
        self._request(recompute=changed)  # a refused edge only shows why

    def _on_lambda(self, _=None) -> None:
        with self._lock:
            self.model.set_lambdas(self.s1.value, self.s2.value)
            self._note = ""
        self._request()

    def _request(self, recompute: bool = True) -> None:
        with self._lock:
            snap, note = self.model.snapshot(), self._note
        self.header.value = header_html(snap, note)
        if not recompute:
            return
        self.status.value = _status_html(_busy_text(snap), True)
        self.runner.submit(self._update)

    # -- the update (worker thread) --
    def _draw(self, snap: DagExplorerModel) -> None:
        key = (snap.name, tuple(sorted(edges(snap.parents))))
        if key != self._drawn_key:
            self.dag_image.value = dag_png(snap)
            self._drawn_key = key

    def _update(self) -> None:
        with self._lock:
            snap = self.model.snapshot()
        t0 = time.perf_counter()
        self.status.value = _status_html(_busy_text(snap), True)
        try:
            self._draw(snap)
            rows = snap.node_table()
            t = snap.terms(rows)
            self.terms.value = terms_html(t)
            import pandas as pd
            self.table.value = pd.DataFrame(rows).round(4).to_html(index=False, border=0)
            node = self.node.value
            if not node:
                self.pred_image.layout.display = "none"
                self._pred_key = None
            elif (node, tuple(snap.parents[node])) != self._pred_key:
                self.status.value = _status_html(f"busy: fitting the conditional of {node}", True)
                try:
                    self.pred_image.value = predictions_png(snap, node)
                    self.pred_image.layout.display = None
                    self.pred_note.value = ""
                    self._pred_key = (node, tuple(snap.parents[node]))
                except Exception as e:  # noqa: BLE001 - shown to the user instead of breaking the widget
                    self.pred_image.layout.display = "none"
                    self.pred_note.value = f"<i>{html.escape(f'no predictions for {node}: {type(e).__name__}: {e}')}</i>"
                    self._pred_key = None
            self.status.value = _status_html(f"ready ({time.perf_counter() - t0:.1f} s)", False)
        except Exception as e:  # noqa: BLE001 - a failing update is reported, the explorer stays usable
            self.errors.append(f"{type(e).__name__}: {e}")
            self.status.value = _status_html(f"error: {type(e).__name__}: {e}", False)

    def wait(self, timeout: float = 60.0) -> bool:
        """Wait for the pending update (True when done)."""
        return self.runner.wait(timeout)

    def close(self) -> None:
        self.runner.close()
        self.widget.close()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def dag_explorer(graphs: Mapping[str, Mapping[str, Sequence[str]]], scorer: Any, prior: Any = None,
                 lam1: float = LAMBDA1, lam2: float = LAMBDA2, true_edges=None, show_predictions: bool = True,
                 background: bool = True):
    """Build the DAG explorer (see :class:`DagExplorer`); returns ``(widget, model)``."""
    ex = DagExplorer(graphs, scorer, prior, lam1, lam2, true_edges, show_predictions, background)
    return ex.widget, ex.model


__all__ = ["DagExplorerModel", "DagExplorer", "dag_explorer", "dag_png", "predictions_png"]
