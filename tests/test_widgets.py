"""The DAG explorer (lib/cassandra_wm/widgets.py) and the figure helpers it draws with (viz.py).

Small planted scorers stand in for the real one, so every test runs in well under a second, except the
last one, which runs a tiny notebook in a real kernel (inline figures and a headless explorer)."""
from __future__ import annotations

import html
import io
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from cassandra_wm import viz  # noqa: E402
from cassandra_wm.widgets import DagExplorer, DagExplorerModel, dag_png, header_html  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NODES = ["a", "b", "c", "d"]
GRAPHS = {"chain": {"a": [], "b": ["a"], "c": ["b"], "d": []},
          "empty": {v: [] for v in NODES}}


class CountingScorer:
    """Data term = -(number of parents); counts calls; ``gate`` (an Event) makes every call wait for it."""
    nodes = NODES

    def __init__(self, gate: threading.Event | None = None, fail: bool = False):
        self.calls = 0
        self.gate = gate
        self.fail = fail

    def node_terms(self, parents):
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(30), "test gate never opened"
        if self.fail:
            raise RuntimeError("planted scorer failure")
        return {v: -float(len(parents.get(v, []))) for v in self.nodes}


def pixels(png: bytes) -> np.ndarray:
    import matplotlib.image as mpimg
    return mpimg.imread(io.BytesIO(png), format="png")


def changed_share(a: bytes, b: bytes) -> float:
    pa, pb = pixels(a), pixels(b)
    if pa.shape != pb.shape:
        return 1.0
    return float(np.mean(np.any(np.abs(pa - pb) > 1e-3, axis=-1)))


# -- the model -----------------------------------------------------------------------------------

def test_a_loaded_graph_has_zero_changes_and_edits_are_counted_against_it():
    m = DagExplorerModel(GRAPHS, CountingScorer())
    assert m.changes() == 0 and "(edited: 0 changes)" in header_html(m)
    assert m.toggle("a", "d") == (True, "added a -> d")
    assert m.changes() == 1 and "(edited: 1 change)" in header_html(m, "added a -> d")
    m.toggle("b", "c")
    assert m.changes() == 2
    m.toggle("a", "d")
    m.toggle("b", "c")  # back to the loaded graph
    assert m.changes() == 0
    m.toggle("a", "d")
    m.select("empty")
    assert m.changes() == 0 and m.parents == GRAPHS["empty"]
    assert GRAPHS["chain"] == {"a": [], "b": ["a"], "c": ["b"], "d": []}  # stored graphs never edited


def test_snapshot_is_not_changed_by_later_edits():
    m = DagExplorerModel(GRAPHS, CountingScorer())
    snap = m.snapshot()
    m.toggle("b", "c")  # removes b -> c
    m.toggle("a", "d")
    m.set_lambdas(1.0, 2.0)
    assert snap.parents == GRAPHS["chain"] and snap.lam1 != 1.0
    assert m.parents["c"] == [] and m.parents["d"] == ["a"]


# -- figures outside pyplot ----------------------------------------------------------------------

def test_viz_figures_are_not_registered_with_pyplot():
    import matplotlib.pyplot as plt
    plt.close("all")
    fig = viz.draw_initial_vs_final(GRAPHS["empty"], GRAPHS["chain"], true_edges=[("a", "b"), ("c", "b")])
    viz.draw_graphs(GRAPHS)
    viz.plot_search_curves({"r": [{"step": i, "J": -i, "best_J": 0, "data": 0, "sparsity": 0, "prior": 0}
                                  for i in range(3)]})
    ax = viz.draw_dag(GRAPHS["chain"])
    assert plt.get_fignums() == []  # nothing a backend could redraw or show a second time
    png = viz.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and pixels(png).shape[1] > 500
    # the chain a -> b -> c drawn against a reference where b -> c is reversed: green, orange, dashed grey
    colors = {tuple(round(float(x), 2) for x in p.get_edgecolor()[:3]) for p in ax.patches}
    assert len(ax.patches) == 2 and len(colors) == 1  # no reference: both arrows plain
    ax2 = viz.draw_dag(GRAPHS["chain"], true_edges=[("a", "b"), ("c", "b"), ("a", "d")])
    assert len(ax2.patches) == 3  # a->b correct, b->c reversed, a->d missing (dashed)
    assert len({tuple(round(float(x), 2) for x in p.get_edgecolor()[:3]) for p in ax2.patches}) == 3


def test_the_drawing_changes_when_an_edge_is_toggled_and_comes_back_when_undone():
    ex = DagExplorer(GRAPHS, CountingScorer(), background=False)
    before = ex.dag_image.value
    assert before[:4] == b"\x89PNG"
    ex.src.value, ex.dst.value = "c", "d"
    ex.button.click()
    after = ex.dag_image.value
    assert pixels(before).shape == pixels(after).shape  # drawn at a fixed size
    assert changed_share(before, after) > 0.002  # a new arrow and a new title: many pixels differ
    ex.button.click()  # remove it again
    assert changed_share(before, ex.dag_image.value) == 0.0
    ex.close()


# -- updates: once per change, off the kernel thread ---------------------------------------------

def test_one_update_per_change_and_sliders_update_on_release():
    scorer = CountingScorer()
    ex = DagExplorer(GRAPHS, scorer, background=False)
    assert not ex.s1.continuous_update and not ex.s2.continuous_update
    assert scorer.calls == 1 and "ready" in ex.status.value
    # chain a -> b -> c: data -2, sparsity -10 * 2 / 4^2, no prior
    assert "<td>J</td><td style='text-align:right'>-3.2500</td>" in ex.terms.value
    drawn = ex.dag_image.value
    ex.s1.value = 20.0
    assert scorer.calls == 2 and ex.dag_image.value is drawn  # lambdas change J, not the drawing
    ex.s2.value = 50.0
    assert scorer.calls == 3
    ex.src.value, ex.dst.value = "c", "a"  # a -> b -> c -> a would be a cycle
    ex.button.click()
    assert scorer.calls == 3 and "refused c -> a" in html.unescape(ex.header.value) and ex.model.changes() == 0
    ex.src.value, ex.dst.value = "a", "d"
    ex.button.click()
    assert scorer.calls == 4 and ex.dag_image.value != drawn and "(edited: 1 change)" in html.unescape(ex.header.value)
    ex.pick.value = "empty"
    assert scorer.calls == 5 and "(edited: 0 changes)" in html.unescape(ex.header.value)
    assert ex.runner.runs == 5 and not ex.errors
    ex.close()


def test_building_never_waits_for_fits_and_a_burst_of_edits_costs_one_update():
    gate = threading.Event()
    scorer = CountingScorer(gate=gate)
    t0 = time.perf_counter()
    ex = DagExplorer(GRAPHS, scorer, background=True)  # the first update blocks on the gate
    assert time.perf_counter() - t0 < 5.0
    assert ex.dag_image.value[:4] == b"\x89PNG"  # the graph is drawn at once
    assert "busy" in ex.status.value and ex.terms.value == ""
    deadline = time.monotonic() + 10
    while scorer.calls == 0 and time.monotonic() < deadline:  # the worker has taken the first update
        time.sleep(0.01)
    for dst in ("d", "c"):  # edits while the worker is busy: the header follows at once
        ex.src.value, ex.dst.value = "a", dst
        ex.button.click()
    assert "added a -> c" in html.unescape(ex.header.value) and "busy" in ex.status.value
    gate.set()
    assert ex.wait(30)
    assert ex.runner.runs == 2  # the first update, then one for both edits
    assert "ready" in ex.status.value
    assert "<td>edges</td><td style='text-align:right'>4</td>" in ex.terms.value  # a->b, b->c, a->d, a->c
    ex.close()


def test_a_failing_update_is_shown_not_raised():
    ex = DagExplorer(GRAPHS, CountingScorer(fail=True), background=False)
    assert "error: RuntimeError: planted scorer failure" in ex.status.value and ex.errors
    ex.src.value, ex.dst.value = "a", "d"
    ex.button.click()  # still usable
    assert ex.model.changes() == 1 and len(ex.errors) == 2
    ex.close()


def test_predictions_are_fitted_only_for_a_chosen_node():
    class Scorer(CountingScorer):
        fitted: list = []

        def conditional(self, node, parents):
            self.fitted.append((node, tuple(parents)))
            raise NotImplementedError("this scorer has no conditionals")

    s = Scorer()
    ex = DagExplorer(GRAPHS, s, background=False)
    assert s.fitted == [] and ex.pred_image.layout.display == "none"
    ex.node.value = "c"
    assert s.fitted == [("c", ("b",))] and "no predictions for c: NotImplementedError" in ex.pred_note.value
    ex.close()


def test_dag_png_titles_the_edit_count():
    m = DagExplorerModel(GRAPHS, CountingScorer())
    plain = dag_png(m)
    m.toggle("a", "d")
    m.toggle("a", "d")
    assert dag_png(m) == plain  # same graph, same picture


# -- a real kernel: inline figures and a headless explorer ---------------------------------------

def test_headless_kernel_shows_figures_inline_and_never_waits_on_the_explorer(tmp_path):
    """A notebook set up like the bundle's (``%matplotlib inline``) stores its figures as images, and the
    explorer cell returns at once even when the scorer would take minutes."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    cells = [
        "%matplotlib inline\nimport matplotlib.pyplot as plt\nfrom IPython.display import display\n"
        "from cassandra_wm import report, viz",
        # a pyplot figure shown with plt.show(), as notebooks 01, 02 and 05 do
        "fig, ax = plt.subplots()\nax.plot([0, 1], [1, 0])\nreport.save_figure(fig, 'line', 'figs', 'none')\nplt.show()",
        # a viz figure shown with display(fig), as notebooks 03 and 04 do
        "fig = viz.draw_dag({'a': [], 'b': ['a']})\nreport.save_figure(fig.figure, 'dag', 'figs', 'none')\n"
        "display(fig.figure); plt.close(fig.figure)",
        "import time\nfrom cassandra_wm.widgets import DagExplorer\n"
        "class Slow:\n    nodes = ['a', 'b']\n    def node_terms(self, parents):\n        time.sleep(600)\n"
        "t0 = time.perf_counter()\nex = DagExplorer({'g': {'a': [], 'b': ['a']}}, Slow())\ndisplay(ex.widget)\n"
        "print(f'explorer built in {time.perf_counter() - t0:.2f} s')",
        "print('next cell ran')",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert time.perf_counter() - t0 < 90
    outs = [c["outputs"] for c in nb.cells]
    assert sum("image/png" in o.get("data", {}) for o in outs[1]) == 1
    assert sum("image/png" in o.get("data", {}) for o in outs[2]) == 1
    assert not any("<Figure size" in str(o.get("data", {}).get("text/plain", "")) and "image/png" not in o["data"]
                   for c in outs for o in c if "data" in o)  # a figure never shows as text only
    built = "".join(o.get("text", "") for o in outs[3])
    assert "explorer built in" in built and float(built.split(" in ")[1].split()[0]) < 10
    assert "next cell ran" in "".join(o.get("text", "") for o in outs[4])
    assert (tmp_path / "figs" / "line.png").exists() and (tmp_path / "figs" / "dag.png").exists()

    # the counting script sees both images in the stored notebook
    path = tmp_path / "executed.ipynb"
    path.write_text(json.dumps(nb))
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import count_notebook_images as cni
    finally:
        sys.path.pop(0)
    row = cni.count(path)
    assert row["images"] == 2 and row["text_only"] == 0 and row["ok"]
