"""Notebook 03 in a real browser: JupyterLab in headless Chromium (Debian's package), driven by Playwright.

The test makes its own small data (notebook 01, quick profile, into a temporary output folder), opens a
copy of notebook 03 in JupyterLab with a smaller search (1 LLM-sampled DAG, 2 annealing steps), runs every
cell from the browser, checks that the figures are drawn inline and that the DAG explorer's drawing
changes, pixel by pixel, when an edge is toggled with its buttons.  LLM answers come from the shipped
record/replay cache (a miss would ask the bundled local model).

Screenshots go to ``$CASSANDRA_BROWSER_SHOTS`` (``.ci/run`` sets it and prints where), else to
``runs/browser-test/`` in the repository (ignored by git).

The test needs Chromium and the ``playwright`` package; without them it FAILS with what to install.
Set ``CASSANDRA_BROWSER_TEST=0`` to skip it on purpose.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEARCH = {"n_dags": 1, "steps": 2, "processes": 1}  # a smaller search than the quick profile's
# the first error output of the open notebook ("cell N: Name: message"), read from JupyterLab's model
FIRST_ERROR = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content.model;
  for (let i = 0; i < nb.cells.length; i++) {
    const c = nb.cells.get(i);
    if (c.type !== 'code') continue;
    for (const o of c.outputs.toJSON()) {
      if (o.output_type === 'error') return `cell ${i}: ${o.ename}: ${o.evalue}`;
    }
  }
  return null;
}"""


def _requirements() -> str:
    """Path of the Chromium executable; fails (never skips silently) when something is missing."""
    if os.environ.get("CASSANDRA_BROWSER_TEST") == "0":
        pytest.skip("CASSANDRA_BROWSER_TEST=0: browser test skipped on purpose")
    exe = os.environ.get("CASSANDRA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("the browser test needs Chromium: `apt-get install -y chromium` (Debian), or point "
                    "CASSANDRA_CHROMIUM at a Chromium executable; set CASSANDRA_BROWSER_TEST=0 to skip it")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("the browser test needs the playwright package: `.venv/bin/pip install playwright` "
                    "(its own browser download is not needed); set CASSANDRA_BROWSER_TEST=0 to skip it")
    return exe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shots_dir() -> Path:
    d = Path(os.environ.get("CASSANDRA_BROWSER_SHOTS") or ROOT / "runs" / "browser-test")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _make_data(out: Path, env: dict) -> None:
    """Notebook 01 (quick profile) into ``out``, headless, as run_all.py would run it."""
    res = subprocess.run(
        [sys.executable, "-m", "papermill", str(NOTEBOOKS / "01_data_collection.ipynb"), str(out / "01.ipynb"),
         "--cwd", str(NOTEBOOKS), "--no-progress-bar", "-k", "python3"],
        env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]


def _notebook_copy(dest: Path) -> Path:
    """Notebook 03 with a smaller search set in a cell after its parameters cell (as papermill does)."""
    import nbformat
    nb = nbformat.read(NOTEBOOKS / "03_dag_sampling_search.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    cell = nbformat.v4.new_code_cell("# injected by the browser test\n" +
                                     "\n".join(f"{k} = {v!r}" for k, v in SEARCH.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, cell)
    path = dest / "03_dag_sampling_search.ipynb"
    nbformat.write(nb, path)
    return path


def _toggle_choice(out: Path) -> tuple[str, str]:
    """An edge to toggle on the explorer's first graph (CASSANDRA): remove its first edge, or add one."""
    body = json.loads((out / "data" / "quick" / "coffee_shop" / "structure" / "graphs.json").read_text())
    g = body["data"]["CASSANDRA"] if "data" in body else body["CASSANDRA"]
    for child, parents in g.items():
        if parents:
            return parents[0], child
    nodes = list(g)
    return nodes[0], nodes[1]  # a graph without edges takes any edge


def _changed_share(a: bytes, b: bytes) -> float:
    import numpy as np
    from PIL import Image
    pa = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), dtype=int)
    pb = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=int)
    if pa.shape != pb.shape:
        return 1.0
    return float(np.mean(np.any(np.abs(pa - pb) > 8, axis=-1)))


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 over a folder holding the notebook copy (yields its URL, token, output
    folder, Chromium path and log file)."""
    chromium = _requirements()
    out = tmp_path / "out"
    (out / "data" / "llm_cache").mkdir(parents=True)
    for f in (ROOT / "data" / "llm_cache").glob("*.jsonl"):  # the shipped answers
        shutil.copy(f, out / "data" / "llm_cache" / f.name)
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')  # no news pop-up
    env = dict(os.environ, CASSANDRA_OUT=str(out), JUPYTER_CONFIG_DIR=str(tmp_path / "jcfg"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"), PYTHONUNBUFFERED="1")
    env.pop("CASSANDRA_STAGES", None)
    _make_data(out, env)
    root = tmp_path / "lab"
    root.mkdir()
    _notebook_copy(root)
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyter.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyter.log").read_text()[-3000:])
            time.sleep(0.5)
        yield {"url": url, "token": token, "out": out, "chromium": chromium, "log": tmp_path / "jupyter.log"}
    finally:
        try:  # shut the kernels down through the API, then the server (and what it started)
            req = urllib.request.Request(f"{url}/api/kernels?token={token}")
            with urllib.request.urlopen(req, timeout=5) as r:
                for k in json.loads(r.read()):
                    urllib.request.urlopen(urllib.request.Request(
                        f"{url}/api/kernels/{k['id']}?token={token}", method="DELETE"), timeout=10)
        except OSError:
            pass
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


@pytest.mark.slow
def test_notebook_03_explorer_draws_and_redraws_in_chromium(lab):
    from playwright.sync_api import sync_playwright

    shots = _shots_dir()
    parent = child = None  # chosen once the notebook has written its graphs
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=lab["chromium"], headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(f"{lab['url']}/lab/tree/03_dag_sampling_search.ipynb?token={lab['token']}")
            # the notebook is open and its kernel is ready
            page.wait_for_function(
                "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
                " return k && k.status === 'idle'; }", timeout=120_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # wait for the explorer's first update, failing early on an error output
            deadline = time.monotonic() + 600
            while True:
                err = page.evaluate(FIRST_ERROR)
                if err:
                    page.screenshot(path=str(shots / "notebook_03_error.png"), full_page=True)
                    pytest.fail("a cell of notebook 03 failed in the browser:\n" + err[-3000:])
                status = page.evaluate(
                    "() => { const s = document.querySelector('.cassandra-dag-status'); return s ? s.innerText : ''; }")
                if status.startswith("ready"):
                    break
                if status.startswith("error"):
                    pytest.fail(f"the explorer reported: {status}")
                if time.monotonic() > deadline:
                    page.screenshot(path=str(shots / "notebook_03_timeout.png"), full_page=True)
                    pytest.fail("notebook 03 did not reach the explorer in 10 minutes; JupyterLab log:\n"
                                + lab["log"].read_text()[-2000:])
                time.sleep(1.0)

            # figures are drawn inline: every saved figure of the notebook shows as an image
            n_images = page.evaluate("() => document.querySelectorAll('.jp-RenderedImage img').length")
            assert n_images >= 5, f"only {n_images} inline figures in notebook 03"

            explorer = page.locator(".cassandra-dag-explorer")
            image = explorer.locator(".cassandra-dag-image")
            image.scroll_into_view_if_needed()
            page.wait_for_function("() => { const i = document.querySelector('.cassandra-dag-image');"
                                   " return i && i.complete && i.naturalWidth > 100; }", timeout=30_000)
            header_before = explorer.locator(".cassandra-dag-header").inner_text()
            assert "(edited: 0 changes)" in header_before, header_before
            before = image.screenshot(path=str(shots / "explorer_before.png"))
            src_before = image.get_attribute("src")

            parent, child = _toggle_choice(lab["out"])
            explorer.locator(".widget-dropdown", has_text="parent").locator("select").select_option(label=parent)
            explorer.locator(".widget-dropdown", has_text="child").locator("select").select_option(label=child)
            explorer.locator("button", has_text="add / remove edge").click()
            page.wait_for_function(
                "(old) => { const i = document.querySelector('.cassandra-dag-image');"
                " const s = document.querySelector('.cassandra-dag-status');"
                " return i && i.src !== old && i.complete && i.naturalWidth > 100 && s && s.innerText.startsWith('ready'); }",
                arg=src_before, timeout=120_000)
            after = image.screenshot(path=str(shots / "explorer_after.png"))
            page.screenshot(path=str(shots / "notebook_03_explorer.png"), full_page=False)
            header_after = explorer.locator(".cassandra-dag-header").inner_text()
        finally:
            browser.close()

    share = _changed_share(before, after)
    print(f"toggled {parent} -> {child}: {share:.2%} of the drawing's pixels changed; screenshots in {shots}")
    assert "(edited: 1 change)" in header_after and f"{parent} -> {child}" in header_after, header_after
    assert share > 0.002, f"the DAG drawing did not change after toggling {parent} -> {child} ({share:.4%})"
