"""run_all.py: stage selection, skipping, failure reporting, and the whole quick profile end to end."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import run_all  # noqa: E402


def _notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "quick"\nseed = 0\nllm = "local"\nenv_name = "x"',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(textwrap.dedent(body))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def toy_stages(tmp_path):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _notebook(nbdir / "a.ipynb", """
        import os, pathlib
        out = pathlib.Path(os.environ["CASSANDRA_OUT"]) / "figures" / profile / "a.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"seed={seed}")
    """)
    _notebook(nbdir / "b.ipynb", """
        x = 1
        raise ValueError("planted failure in b")
    """)
    _notebook(nbdir / "noout.ipynb", "x = 1")
    _notebook(nbdir / "hang.ipynb", "import time\ntime.sleep(600)")
    (nbdir / "stages.toml").write_text(textwrap.dedent("""
        [[stage]]
        name = "01_a"
        notebook = "a.ipynb"
        outputs = ["figures/{profile}/a.txt"]
        [[stage]]
        name = "02_b"
        notebook = "b.ipynb"
        needs = ["01_a"]
        [[stage]]
        name = "03_noout"
        notebook = "noout.ipynb"
        outputs = ["figures/{profile}/never.txt"]
        [[stage]]
        name = "04_hang"
        notebook = "hang.ipynb"
        timeout = {quick = 3}
    """))
    out = tmp_path / "out"
    env = dict(os.environ, CASSANDRA_STAGES=str(nbdir / "stages.toml"), CASSANDRA_OUT=str(out))
    return env, out


def _run(env, *args, timeout=600):
    return subprocess.run([sys.executable, str(ROOT / "run_all.py"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_stage_prefix_matching():
    stages = [{"name": "01_data"}, {"name": "01_data_park"}, {"name": "02_code"}, {"name": "03_dag"}]
    assert [s["name"] for s in run_all.match_stages(stages, "02")] == ["02_code"]
    assert [s["name"] for s in run_all.select(stages, None, "02")] == ["02_code", "03_dag"]
    assert [s["name"] for s in run_all.select(stages, None, "01")] == [s["name"] for s in stages]
    assert [s["name"] for s in run_all.select(stages, ["03", "01_data"], None)] == ["01_data", "03_dag"]
    assert [s["name"] for s in run_all.select(stages, ["03", "01"], None)] == ["01_data", "01_data_park", "03_dag"]
    with pytest.raises(run_all.StageError, match="no stage matches"):
        run_all.select(stages, ["7"], None)
    stages[2]["profiles"] = ["full"]
    assert [s["name"] for s in run_all.for_profile(stages, "quick")] == ["01_data", "01_data_park", "03_dag"]
    assert len(run_all.for_profile(stages, "full")) == 4
    with pytest.raises(run_all.StageError, match="no stage matches"):
        run_all.match_stages(stages, "09")


def test_bad_stage_table(tmp_path):
    (tmp_path / "stages.toml").write_text('[[stage]]\nname = "x"\nnotebook = "missing.ipynb"\n')
    with pytest.raises(run_all.StageError, match="missing notebook"):
        run_all.load_stages(tmp_path / "stages.toml")


def test_unknown_llm_is_one_clear_error(toy_stages):
    env, _ = toy_stages
    res = _run(env, "--llm", "gpt-please")
    assert res.returncode == 2
    assert "--llm" in res.stderr and "openai:" in res.stderr


def test_missing_key_is_caught_before_any_stage(toy_stages):
    env, out = toy_stages
    env = {k: v for k, v in env.items() if k != "OPENAI_API_KEY"}
    env.pop("OPENAI_BASE_URL", None)
    res = _run(env, "--llm", "openai:gpt-4.1-mini")
    assert res.returncode == 2
    assert "OPENAI_API_KEY" in res.stderr
    assert not (out / "runs").exists()


def test_skip_rerun_and_failure_report(toy_stages):
    env, out = toy_stages
    res = _run(env, "--only", "01")
    assert res.returncode == 0, res.stderr
    assert (out / "figures" / "quick" / "a.txt").read_text() == "seed=0"
    assert (out / "runs" / "quick" / "01_a.ipynb").exists()

    res = _run(env, "--only", "01")
    assert res.returncode == 0 and "up to date" in res.stdout

    res = _run(env, "--only", "01", "--seed", "3")  # a changed parameter reruns the stage
    assert res.returncode == 0 and "up to date" not in res.stdout
    assert (out / "figures" / "quick" / "a.txt").read_text() == "seed=3"

    res = _run(env)  # 01 is up to date, 02 fails
    assert res.returncode == 1
    assert "b.ipynb" in res.stderr and "planted failure in b" in res.stderr and "cell #" in res.stderr
    assert (out / "figures" / "quick" / "a.txt").exists()  # earlier outputs intact
    state = json.loads((out / "runs" / "quick" / "state.json").read_text())
    assert "01_a" in state and "02_b" not in state

    res = _run(env, "--only", "03")  # finished, but without its declared output: not done
    assert res.returncode == 1 and "03_noout finished but did not write figures/quick/never.txt" in res.stderr
    res = _run(env, "--only", "04")  # a hung cell meets the stage's time limit
    assert res.returncode == 124 and "04_hang ran past its time limit of 3s" in res.stderr, res.stderr
    state = json.loads((out / "runs" / "quick" / "state.json").read_text())
    assert set(state) == {"01_a"}
    assert "\r" not in res.stdout + res.stderr  # log-friendly when not on a terminal


def _wait_for(cond, timeout=180.0, what="a condition"):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _kids(pid):
    import psutil
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _all_gone(pids, timeout=15.0):
    import psutil
    end = time.time() + timeout
    while time.time() < end:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def chain(tmp_path):
    """01_a writes a.txt; 02_slow (needs 01_a) writes b.txt in two steps with a pause ($TOY_PAUSE) between."""
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _notebook(nbdir / "a.ipynb", """
        import os, pathlib
        out = pathlib.Path(os.environ["CASSANDRA_OUT"]) / "figures" / profile / "a.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"seed={seed}")
    """)
    _notebook(nbdir / "slow.ipynb", """
        import os, pathlib, time
        out = pathlib.Path(os.environ["CASSANDRA_OUT"]) / "figures" / profile / "b.txt"
        out.write_text(f"seed={seed} partial")
        time.sleep(float(os.environ.get("TOY_PAUSE", "0")))
        out.write_text(f"seed={seed}")
    """)
    (nbdir / "stages.toml").write_text(textwrap.dedent("""
        [[stage]]
        name = "01_a"
        notebook = "a.ipynb"
        outputs = ["figures/{profile}/a.txt"]
        [[stage]]
        name = "02_slow"
        notebook = "slow.ipynb"
        needs = ["01_a"]
        outputs = ["figures/{profile}/b.txt"]
    """))
    out = tmp_path / "out"
    env = dict(os.environ, CASSANDRA_STAGES=str(nbdir / "stages.toml"), CASSANDRA_OUT=str(out))
    env.pop("CASSANDRA_LLM_CACHE", None)
    return env, out


def test_interrupted_stage_reruns_and_lock_names_holder(chain):
    env, out = chain
    figs = out / "figures" / "quick"
    # a stage asked for alone brings the missing stage it needs
    res = _run(env, "--only", "02")
    assert res.returncode == 0, res.stderr
    assert "also running 01_a" in res.stdout
    assert (figs / "a.txt").read_text() == "seed=0" and (figs / "b.txt").read_text() == "seed=0"

    # Ctrl-C during `--only 02 --seed 1`, while a second run tries the same folder
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_all.py"), "--only", "02", "--seed", "1"],
                            env=dict(env, TOY_PAUSE="120"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for(lambda: (figs / "b.txt").read_text() == "seed=1 partial", what="the slow stage to start")
        second = _run(env)
        assert second.returncode == 3
        assert f"PID {proc.pid}" in second.stderr and "--only 02 --seed 1" in second.stderr, second.stderr
        kids = _kids(proc.pid)
        assert kids  # the kernel
        proc.send_signal(signal.SIGINT)
        _stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted during 02_slow" in stderr, stderr
    assert _all_gone(kids), "a kernel outlived the interrupted run"
    state = json.loads((out / "runs" / "quick" / "state.json").read_text())
    assert "01_a" in state and "02_slow" not in state

    # the plain run reruns what seed 1 touched, and nothing else
    res = _run(env)
    assert res.returncode == 0, res.stderr
    assert "· 01_a: up to date" in res.stdout and "02_slow (never completed)" in res.stdout
    assert (figs / "b.txt").read_text() == "seed=0"

    # neither the LLM (no stage here uses one) nor the cache mode enters a fingerprint
    for extra_env, args in (({}, ()), ({}, ("--llm", "openai:other@http://127.0.0.1:9/v1")),
                            ({"CASSANDRA_LLM_CACHE": "replay"}, ())):
        res = _run(dict(env, **extra_env), "--list", *args)
        assert res.returncode == 0 and res.stdout.count("up to date") == 2, res.stdout
    # an output changed on disk after its stage finished: that stage and the ones after it rerun
    (figs / "a.txt").write_text("seed=0 but edited")
    res = _run(env, "--list")
    assert "01_a" in res.stdout and "output figures/quick/a.txt changed since the stage finished" in res.stdout
    assert "may run: after 01_a" in res.stdout


def test_kill_9_mid_write_leaves_no_stage_marked_done(tmp_path):
    """One SIGKILL while a stage is half way through writing its output (benchmarks/kill_run_all.py does
    the random-moment trials)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import kill_run_all as kr
    table = kr.write_table(tmp_path / "nb", lines=40, pause=0.25)
    out = tmp_path / "out"
    env = dict(os.environ, CASSANDRA_STAGES=str(table), CASSANDRA_OUT=str(out))
    s2 = out / "figures" / "quick" / "s2.txt"
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_all.py"), "--plain"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids: list[int] = []
    try:
        def half_written():
            kids.extend(k for k in _kids(proc.pid) if k not in kids)
            return s2.exists() and s2.read_text().count("line") >= 3
        _wait_for(half_written, what="stage s2 to be half written")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _all_gone(kids), "a kernel outlived its killed run"
    assert kr.check(out) == []
    state = json.loads((out / "runs" / "quick" / "state.json").read_text())
    assert set(state) == {"s1"} and not s2.read_text().endswith("END\n")
    import tempfile
    left = [d for d in Path(tempfile.gettempdir()).glob(run_all.KERNEL_DIR_PREFIX + "*")
            if (d / "owner").exists() and (d / "owner").read_text() == str(proc.pid)]
    assert left  # the killed run's kernel sockets: the next run clears them
    rc, log = kr.run_all(env)
    assert rc == 0, log
    assert "· s1: up to date" in log and "s2 (never completed)" in log
    assert kr.check(out) == [] and s2.read_text().endswith("END\n")
    assert not any(d.exists() for d in left)


def test_fresh_clone_rerun_leaves_git_status_clean(tmp_path):
    """A checkout of its own (its own run_all.py and lib/, the venv's editable install pointing elsewhere):
    kernels import its library, reruns that reproduce the numbers change no tracked file, partial runs
    leave the README alone, and a notebook saved with outputs still counts as unchanged."""
    repo = tmp_path / "clone"
    repo.mkdir()
    shutil.copy(ROOT / "run_all.py", repo)
    for name in (".gitignore", ".gitattributes"):
        shutil.copy(ROOT / name, repo)
    shutil.copytree(ROOT / "lib" / "cassandra_wm", repo / "lib" / "cassandra_wm",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "notebooks").mkdir()
    _notebook(repo / "notebooks" / "t.ipynb", """
        import time
        import pandas as pd
        import cassandra_wm
        from cassandra_wm import paths, report
        paths.data_dir(env_name, profile).joinpath("where.txt").write_text(cassandra_wm.__file__)
        df = pd.DataFrame({"agent": ["a", "b"], "score": [1.5, 2.5 + seed], "seconds / run": [time.time(), 1.0]})
        report.save_table(df, "scores", paths.figures_dir(env_name, profile), "none (toy)")
    """)
    (repo / "notebooks" / "stages.toml").write_text(textwrap.dedent("""
        [[stage]]
        name = "01_t"
        notebook = "t.ipynb"
        results = ["scores"]
        outputs = ["figures/{profile}/{env}/scores.md"]
        [stage.quick]
        env_name = "x"
    """))
    (repo / "README.md").write_text("# toy\n\n<!-- results:quick:start -->\n<!-- results:quick:end -->\n")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CASSANDRA_STAGES", "CASSANDRA_OUT", "PYTHONPATH")}

    def run_clone(*args):
        res = subprocess.run([sys.executable, str(repo / "run_all.py"), *args], env=env, capture_output=True,
                             text=True, timeout=600)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        return res

    def status():
        return subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout

    res = run_clone()
    assert "configured git to store notebooks without outputs" in res.stdout
    assert (repo / "data" / "quick" / "x" / "where.txt").read_text().startswith(str(repo / "lib"))
    readme = (repo / "README.md").read_text()
    assert "| b       |   2.500 |" in readme and "| seconds / run" not in readme, readme
    assert (repo / "runs" / "tables" / "figures" / "quick" / "x" / "scores.csv").exists()
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "results"], check=True)
    assert status() == ""

    run_clone("--force")  # reproduces every number: nothing tracked changes
    assert status() == ""
    res = run_clone("--only", "01", "--seed", "1")  # a partial run with other numbers: the README stays
    assert "README.md results not rewritten" in res.stdout
    assert status().split() == ["M", "figures/quick/x/scores.csv", "M", "figures/quick/x/scores.md"]
    run_clone()
    assert status() == ""

    # JupyterLab saved the notebook with outputs: git stores it without them.  (`git status` may list a
    # notebook whose size changed until `git add` refreshes its stat; the add records no change.)
    nb = nbformat.read(repo / "notebooks" / "t.ipynb", as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    nb.cells[1].execution_count = 3
    nbformat.write(nb, repo / "notebooks" / "t.ipynb")
    assert subprocess.run([*git, "diff", "--quiet"]).returncode == 0
    subprocess.run([*git, "add", "-A"], check=True)
    assert status() == ""
    stored = subprocess.run([*git, "show", ":notebooks/t.ipynb"], capture_output=True, text=True).stdout
    assert '"outputs": []' in stored and "hello" not in stored


def test_help_lists_options_llm_forms_and_every_environment_variable():
    text = run_all.build_parser().format_help()
    for opt in ("--profile", "--only", "--from", "--force", "--llm", "--seed", "--timeout", "--plain", "--list",
                "--update-readme", "--setup-git"):
        assert opt in text
    assert "replay:SLUG" in text and "openai:MODEL@BASE_URL" in text
    import re
    used = set()
    for f in [ROOT / "run_all.py", *(ROOT / "lib").rglob("*.py")]:
        used |= set(re.findall(r"[\"'](CASSANDRA_[A-Z_]+|OPENAI_[A-Z_]+)[\"']", f.read_text()))
    missing = sorted(v for v in used if v not in text)
    assert not missing, f"--help does not describe {missing} (add them to run_all.ENV_VARS)"


def test_tables_and_figures_ignore_float_noise_but_not_changes(tmp_path):
    """Another CPU sums in another order: a table whose numbers differ beyond the 6th digit, or a figure
    that differs by one anti-aliasing shade, keeps the tracked file; a real change rewrites it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from cassandra_wm import report
    df = pd.DataFrame({"graph": ["a", "b"], "J": [-10.610044399276376, 0.4445], "SHD": [7, 5]})
    report.save_table(df, "t", tmp_path, "none")
    csv, md = (tmp_path / "t.csv").read_bytes(), (tmp_path / "t.md").read_bytes()
    noisy = df.assign(J=[-10.610044382512568, 0.44450000001])  # .3f of 0.4445 may flip
    report.save_table(noisy, "t", tmp_path, "none")
    assert (tmp_path / "t.csv").read_bytes() == csv and (tmp_path / "t.md").read_bytes() == md
    trained_elsewhere = df.assign(J=[-10.61005, 0.4445])  # a 4th-digit move the Markdown does not show
    report.save_table(trained_elsewhere, "t", tmp_path, "none")
    assert (tmp_path / "t.csv").read_bytes() == csv
    for changed in (df.assign(J=[-10.62, 0.4445]), df.assign(SHD=[7, 6]), df.assign(graph=["a", "c"])):
        report.save_table(changed, "t", tmp_path, "none")
        assert (tmp_path / "t.csv").read_bytes() != csv
        report.save_table(df, "t", tmp_path, "none")
        assert (tmp_path / "t.csv").read_bytes() == csv and (tmp_path / "t.md").read_bytes() == md

    def draw(ys):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1, 2], ys)
        report.save_figure(fig, "f", tmp_path, "none")
        plt.close(fig)
        return (tmp_path / "f.png").read_bytes()

    first = draw([0.0, 1.0, 0.5])
    assert draw([0.0, 1.0 + 1e-9, 0.5]) == first  # kept
    assert draw([0.0, 0.8, 0.5]) != first  # the line moved: rewritten
    assert not list(tmp_path.glob(".*tmp*"))
    import numpy as np
    from matplotlib import image as mpimg
    img = np.random.default_rng(0).random((400, 600, 3))
    mpimg.imsave(tmp_path / "a.png", img)
    shade = img.copy()
    shade[5, 5, 0] = min(1.0, shade[5, 5, 0] + 1 / 255)
    mpimg.imsave(tmp_path / "b.png", shade)
    moved = img.copy()
    moved[10:20, 10:20] = 0.0
    mpimg.imsave(tmp_path / "c.png", moved)
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()
    assert report.same_image_but_noise(tmp_path / "a.png", tmp_path / "b.png")
    assert not report.same_image_but_noise(tmp_path / "a.png", tmp_path / "c.png")
    label = img.copy()
    label[3:5, 3:8] = 1.0 - label[3:5, 3:8]  # ten pixels of a changed digit in a title
    mpimg.imsave(tmp_path / "d.png", label)
    assert not report.same_image_but_noise(tmp_path / "a.png", tmp_path / "d.png")


def test_readme_block_changes_only_when_a_number_does(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:quick:start -->\nold\n<!-- results:quick:end -->\ntail\n")
    assert run_all.update_readme("quick", "new block", tmp_path, readme)
    stamp = readme.stat().st_mtime_ns
    assert not run_all.update_readme("quick", "new block", tmp_path, readme)
    assert readme.stat().st_mtime_ns == stamp
    assert readme.read_text() == "intro\n<!-- results:quick:start -->\nnew block\n<!-- results:quick:end -->\ntail\n"
    assert not run_all.update_readme("quick", "other", tmp_path / "elsewhere", readme)  # not this checkout


def test_stage_table_keys_and_timeouts(tmp_path):
    from cassandra_wm import stages as st
    nb = tmp_path / "a.ipynb"
    _notebook(nb, "x = 1")
    table = tmp_path / "stages.toml"
    table.write_text('[defaults]\ntimeout = {quick = 50}\n[[stage]]\nname = "a"\nnotebook = "a.ipynb"\n'
                     '[stage.quick]\nn = 3\n[[stage]]\nname = "b"\nnotebook = "a.ipynb"\ntimeout = 7\n'
                     'profiles = ["full"]\n[stage.full]\nn = 9\nenv_name = "theme_park"\n')
    a, b = st.load_stages(table)
    assert st.stage_timeout(a, "quick") == 50 and st.stage_timeout(a, "full") == st.DEFAULT_TIMEOUT["full"]
    assert st.stage_timeout(b, "quick") == 7
    assert st.stage_params("a", "quick", table) == {"n": 3, "env_name": "coffee_shop"}
    assert st.stage_params("b", "full", table) == {"n": 9, "env_name": "theme_park"}
    with pytest.raises(st.StageError, match="does not run in the quick profile"):
        st.stage_params("b", "quick", table)
    with pytest.raises(st.StageError, match="no stage named"):
        st.stage_params("c", "quick", table)
    table.write_text('[[stage]]\nname = "a"\nnotebook = "a.ipynb"\ntimout = 3\n')
    with pytest.raises(st.StageError, match="unknown keys"):
        st.load_stages(table)
    table.write_text('[[stage]]\nname = "a"\nnotebook = "a.ipynb"\ntimeout = -1\n')
    with pytest.raises(st.StageError, match="timeout"):
        st.load_stages(table)


def test_stage_params_match_the_shipped_table():
    """The helper notebooks call gives exactly the quick-profile table of stages.toml."""
    from cassandra_wm.stages import stage_params
    p = stage_params("01_data_collection_theme_park", "quick")
    assert p["env_name"] == "theme_park" and p["n_trajectories"] == 7
    assert stage_params("05_planning", "quick")["env_name"] == "coffee_shop"


@pytest.mark.slow
def test_quick_profile_end_to_end(tmp_path):
    """Every notebook of the bundle, in order, in the quick profile, with the bundled local LLM's answers as
    shipped (strict replay: CI never waits on the model; `tests/test_llm_local.py` runs the model itself)."""
    env = dict(os.environ, CASSANDRA_OUT=str(tmp_path), CASSANDRA_LLM_CACHE="replay")
    env.pop("CASSANDRA_STAGES", None)
    res = _run(env, "--profile", "quick", timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "LLM used: SmolLM2" in res.stdout
    stages = run_all.for_profile(run_all.load_stages(), "quick")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import count_notebook_images as cni
    finally:
        sys.path.pop(0)
    for st in stages:
        params = run_all.stage_parameters(st, "quick", 0, "local")
        assert run_all.outputs_present(st, params, tmp_path), f"{st['name']} left no outputs"
        executed = tmp_path / "runs" / "quick" / f"{st['name']}.ipynb"
        assert executed.exists()
        row = cni.count(executed)  # every figure a notebook saves is also shown inline
        assert row["ok"] and row["text_only"] == 0, (st["name"], row)
    # the shipped answers cover the quick profile.  A reply the model could not complete (cut off at its
    # token budget) is never stored, so its request misses here, as a failed call of that stage; a prompt
    # changed without recording its answers would miss in bulk (and stop its stage).
    misses = {}
    for f in sorted(tmp_path.glob("data/quick/*/llm_usage_*.json")):
        calls = json.loads(f.read_text())["calls"]
        assert all("replay miss" in c["error"] for c in calls if c.get("error")), f
        n = sum(1 for c in calls if not c.get("cached"))
        if n:
            misses[str(f.relative_to(tmp_path))] = n
    assert sum(misses.values()) <= 3, f"requests the shipped cache does not answer: {misses}"
    res = _run(env, "--profile", "quick")
    lines = [ln.strip() for ln in res.stdout.replace("\r", "\n").splitlines()]
    skipped = [ln for ln in lines if ln.startswith("· ") and ln.endswith("(use --force to rerun)")]
    assert res.returncode == 0 and len(skipped) == len(stages), res.stdout[-2000:]


def test_outputs_may_be_files_folders_or_globs(tmp_path):
    stage = {"outputs": ["data/{profile}/{env}/one.json", "data/{profile}/{env}/bn", "figures/{profile}/{env}/*.png"]}
    params = {"profile": "quick", "env_name": "shop"}
    assert len(run_all.missing_outputs(stage, params, tmp_path)) == 3 and not run_all.outputs_present(
        stage, params, tmp_path)
    base = tmp_path / "data" / "quick" / "shop"
    (base / "bn" / "seed0").mkdir(parents=True)
    (base / "one.json").write_text("{}")
    assert set(run_all.missing_outputs(stage, params, tmp_path)) == {"data/quick/shop/bn", "figures/quick/shop/*.png"}
    (base / "bn" / "seed0" / "bn.json").write_text("[]")
    (tmp_path / "figures" / "quick" / "shop").mkdir(parents=True)
    (tmp_path / "figures" / "quick" / "shop" / "a.png").write_bytes(b"png")
    assert run_all.outputs_present(stage, params, tmp_path)
    hashes = run_all.hash_outputs(stage, params, tmp_path)
    assert set(hashes) == {"data/quick/shop/one.json", "data/quick/shop/bn/seed0/bn.json", "figures/quick/shop/a.png"}
