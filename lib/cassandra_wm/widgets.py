"""Interactive explorers for notebooks (ipywidgets), with their logic kept testable without a browser.

:class:`DagExplorerModel` holds the state of the DAG explorer (the current graph, lambda1 and
lambda2) and computes J and its terms; :func:`dag_explorer` wraps it in widgets:

* a drop-down to load any graph (e.g. a search result, an ablation, an initial DAG);
* a parent / child pair of drop-downs and a button that adds or removes that edge (an edge that
  would close a cycle is refused with a message, the graph is left unchanged);
* sliders for lambda1 and lambda2;
* J and its three terms, and a per-node table (parents, data term, prior log-probability),
  refreshed on every change.  Data terms come from the scorer's cache (a new parent set is fitted
  once); prior terms from the prior's cache (an uncached node costs one LLM call);
* a drawing of the graph and, for a chosen node, its conditional's predictions on validation
  rows (quantile fan for numeric nodes, predicted vs observed class shares for categorical ones).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from .paper import LAMBDA1, LAMBDA2
from .structure.dag import find_cycle, n_edges, validate
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
        self.lam1, self.lam2 = float(lam1), float(lam2)
        self.true_edges = list(true_edges) if true_edges is not None else None
        self.name = next(iter(self.graphs))
        self.parents: Parents = {k: list(v) for k, v in self.graphs[self.name].items()}
        self.history: list[str] = []

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
        if parent in self.parents[child]:
            self.parents[child].remove(parent)
            msg = f"removed {parent} -> {child}"
        else:
            trial = {k: list(v) for k, v in self.parents.items()}
            trial[child].append(parent)
            cyc = find_cycle(trial)
            if cyc:
                return False, f"refused {parent} -> {child}: it would close the cycle {' -> '.join(cyc)}"
            self.parents = trial
            msg = f"added {parent} -> {child}"
        self.history.append(msg)
        return True, msg

    def set_lambdas(self, lam1: float, lam2: float) -> None:
        if lam1 < 0 or lam2 < 0 or not (math.isfinite(lam1) and math.isfinite(lam2)):
            raise ValueError(f"lambdas must be finite and >= 0, got {lam1}, {lam2}")
        self.lam1, self.lam2 = float(lam1), float(lam2)

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

    def terms(self) -> dict:
        """J and its terms for the current graph and lambdas (J = data + sparsity + prior)."""
        rows = self.node_table()
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
        import torch
        if node not in self.nodes:
            raise ValueError(f"unknown node {node!r}")
        ps = self.parents[node]
        model = self.scorer.conditional(node, ps)
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


def _format_terms(t: dict, model: DagExplorerModel, note: str = "") -> str:
    rows = "".join(f"<tr><td>{k}</td><td style='text-align:right'>{t[k]:.4f}</td></tr>"
                   for k in ("J", "data", "sparsity", "prior", "log_prior"))
    extra = f"<tr><td>edges</td><td style='text-align:right'>{t['n_edges']}</td></tr>"
    if "shd" in t:
        extra += (f"<tr><td>SHD vs simulator</td><td style='text-align:right'>{t['shd']}</td></tr>"
                  f"<tr><td>precision / recall</td><td style='text-align:right'>{t['precision']:.2f} / "
                  f"{t['recall']:.2f}</td></tr>")
    return (f"<b>{model.name}</b> (edited: {len(model.history)} changes) &nbsp; lambda1={model.lam1:g}, "
            f"lambda2={model.lam2:g}<table>{rows}{extra}</table><i>{note}</i>")


def dag_explorer(graphs: Mapping[str, Mapping[str, Sequence[str]]], scorer: Any, prior: Any = None,
                 lam1: float = LAMBDA1, lam2: float = LAMBDA2, true_edges=None, show_predictions: bool = True):
    """Build the DAG explorer widget (see module doc); returns ``(widget, model)``."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    from .viz import draw_dag, plot_quantile_fan

    model = DagExplorerModel(graphs, scorer, prior, lam1, lam2, true_edges)
    pick = W.Dropdown(options=list(model.graphs), value=model.name, description="graph")
    src = W.Dropdown(options=model.nodes, description="parent")
    dst = W.Dropdown(options=model.nodes, value=model.nodes[min(1, len(model.nodes) - 1)], description="child")
    btn = W.Button(description="add / remove edge")
    s1 = W.FloatSlider(value=lam1, min=0.0, max=max(50.0, lam1), step=0.5, description="lambda1")
    s2 = W.FloatSlider(value=lam2, min=0.0, max=max(200.0, lam2), step=5.0, description="lambda2")
    node = W.Dropdown(options=model.nodes, description="node")
    terms_html = W.HTML()
    table_out, graph_out, pred_out = W.Output(), W.Output(), W.Output()

    def refresh(note: str = "") -> None:
        pending = model.uncached_prior_nodes()
        if pending:
            note = (note + "; " if note else "") + f"asking the LLM about {len(pending)} new node(s)"
        terms_html.value = _format_terms(model.terms(), model, note)
        import pandas as pd
        with table_out:
            table_out.clear_output(wait=True)
            display(pd.DataFrame(model.node_table()).round(4))
        with graph_out:
            graph_out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(4.2, 4.2))
            draw_dag(model.parents, ax, true_edges=model.true_edges, title=model.name, nodes=model.nodes)
            display(fig)
            plt.close(fig)
        if show_predictions:
            show_node()

    def show_node(*_):
        with pred_out:
            pred_out.clear_output(wait=True)
            try:
                p = model.predictions(node.value)
            except Exception as e:  # noqa: BLE001 - shown to the user instead of breaking the widget
                print(f"no predictions for {node.value}: {type(e).__name__}: {e}")
                return
            fig, ax = plt.subplots(figsize=(6, 3.2))
            if p["kind"] == "numeric":
                plot_quantile_fan(p["actual"], p["quantiles"], p["levels"], ax=ax,
                                  title=f"{node.value} | parents: {', '.join(model.parents[node.value]) or '-'}")
            else:
                xs = np.arange(len(p["classes"]))
                ax.bar(xs - 0.2, p["predicted"], 0.4, label="predicted")
                ax.bar(xs + 0.2, p["observed"], 0.4, label="observed")
                ax.set_xticks(xs, [str(c) for c in p["classes"]])
                ax.legend(fontsize=7)
            display(fig)
            plt.close(fig)

    def on_pick(change):
        model.select(change["new"])
        refresh(f"loaded {change['new']}")

    def on_toggle(_):
        _, msg = model.toggle(src.value, dst.value)
        refresh(msg)

    def on_lambda(_):
        model.set_lambdas(s1.value, s2.value)
        refresh()

    pick.observe(on_pick, names="value")
    btn.on_click(on_toggle)
    s1.observe(on_lambda, names="value")
    s2.observe(on_lambda, names="value")
    node.observe(show_node, names="value")
    refresh()
    controls = W.VBox([pick, W.HBox([src, dst, btn]), W.HBox([s1, s2]), terms_html, table_out])
    box = W.VBox([controls, W.HBox([graph_out, W.VBox([node, pred_out])])])
    return box, model


__all__ = ["DagExplorerModel", "dag_explorer"]
