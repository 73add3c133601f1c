"""run_all.py: stage selection, skipping, failure reporting, and the whole quick profile end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
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
    (nbdir / "stages.toml").write_text(textwrap.dedent("""
        [[stage]]
        name = "01_a"
        notebook = "a.ipynb"
        outputs = ["figures/{profile}/a.txt"]
        [[stage]]
        name = "02_b"
        notebook = "b.ipynb"
        needs = ["01_a"]
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


@pytest.mark.slow
def test_quick_profile_end_to_end(tmp_path):
    """Every notebook of the bundle, in order, in the quick profile, with the bundled local LLM."""
    env = dict(os.environ, CASSANDRA_OUT=str(tmp_path))
    env.pop("CASSANDRA_STAGES", None)
    res = _run(env, "--profile", "quick", timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "LLM used: SmolLM2" in res.stdout
    stages = run_all.for_profile(run_all.load_stages(), "quick")
    for st in stages:
        params = run_all.stage_parameters(st, "quick", 0, "local")
        assert run_all.outputs_present(st, params, tmp_path), f"{st['name']} left no outputs"
        assert (tmp_path / "runs" / "quick" / f"{st['name']}.ipynb").exists()
    res = _run(env, "--profile", "quick")
    lines = [ln.strip() for ln in res.stdout.replace("\r", "\n").splitlines()]
    skipped = [ln for ln in lines if ln.startswith("· ") and ln.endswith("(use --force to rerun)")]
    assert res.returncode == 0 and len(skipped) == len(stages), res.stdout[-2000:]
