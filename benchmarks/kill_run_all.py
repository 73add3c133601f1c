"""kill -9 run_all.py at random moments and check that no stage is ever marked done with incomplete outputs.

A small stage table of three chained notebooks, each writing its output slowly, line by line, with an END
line last (a stage that is cut off leaves a file without END).  Each trial starts run_all.py on the same
output folder, kills it with SIGKILL after a random delay (anywhere from start-up to the end of a whole
run), then checks:

* runs/quick/state.json still parses;
* every stage with a completion record has all its outputs, each complete (ends with END) and with the
  content hash the record holds.

After the trials one uninterrupted run must finish every stage, and the run after it must skip them all.

    python benchmarks/kill_run_all.py --trials 10          # the issue's figure: at least 10 trials
    python benchmarks/kill_run_all.py --trials 3 --seed 1

Prints one line per trial and a summary; exits 1 when any check fails.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("s1", "s2", "s3")


def write_table(folder: Path, lines: int = 6, pause: float = 0.25) -> Path:
    """Three notebooks (s2 needs s1, s3 needs s2) and their stage table; returns the table's path."""
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(STAGES):
        check = "" if k == 0 else textwrap.dedent(f"""
            prev = out.parent / "{STAGES[k - 1]}.txt"
            assert prev.read_text().endswith("END\\n"), "the upstream output is incomplete"
        """)
        body = textwrap.dedent(f"""
            import os, pathlib, time
            out = pathlib.Path(os.environ["CASSANDRA_OUT"]) / "figures" / profile / "{name}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
        """) + check + textwrap.dedent(f"""
            with open(out, "w") as f:  # deliberately not atomic: a cut-off stage leaves half a file
                for i in range({lines}):
                    f.write(f"seed {{seed}} line {{i}}\\n")
                    f.flush()
                    time.sleep({pause})
                f.write("END\\n")
        """)
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell('profile = "quick"\nseed = 0\nllm = "local"\nenv_name = "x"',
                                              metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell(body)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / f"{name}.ipynb")
    table = ""
    for k, name in enumerate(STAGES):
        needs = f'["{STAGES[k - 1]}"]' if k else "[]"
        table += (f'[[stage]]\nname = "{name}"\nnotebook = "{name}.ipynb"\nneeds = {needs}\n'
                  f'outputs = ["figures/{{profile}}/{name}.txt"]\n\n')
    (folder / "stages.toml").write_text(table)
    return folder / "stages.toml"


def check(out: Path) -> list[str]:
    """Problems with the completion records under ``out`` (empty list: all good)."""
    state_path = out / "runs" / "quick" / "state.json"
    if not state_path.exists():
        return []
    try:
        state = json.loads(state_path.read_text())
    except json.JSONDecodeError as e:
        return [f"state.json does not parse: {e}"]
    problems = []
    for name, rec in state.items():
        for rel, digest in rec.get("outputs", {}).items():
            p = out / rel
            if not p.is_file():
                problems.append(f"{name} is marked done but {rel} is missing")
                continue
            data = p.read_bytes()
            if not data.endswith(b"END\n"):
                problems.append(f"{name} is marked done but {rel} is incomplete")
            if hashlib.sha256(data).hexdigest() != digest:
                problems.append(f"{name} is marked done but {rel} differs from its record")
        if not rec.get("outputs"):
            problems.append(f"{name} is marked done without any output hashes")
        # A stage may stay marked done while a stage it needs reruns (--force, or a kill during that
        # rerun): its own outputs are complete, and its record holds the upstream outputs it was made
        # from, so it reruns only if the upstream's new outputs differ.
    return problems


def _descendants(pid: int) -> list[int]:
    try:
        import psutil
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except Exception:
        return []


def _wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    """Wait for the kernels of a killed run to notice and exit; kill any left after ``timeout``."""
    end = time.time() + timeout
    alive = list(pids)
    while alive and time.time() < end:
        alive = [p for p in alive if _alive(p)]
        time.sleep(0.2)
    for p in alive:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        import psutil
        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:
        return False


def run_all(env: dict, *args: str, kill_after: float | None = None, python: str = sys.executable
            ) -> tuple[int | None, str]:
    """Run run_all.py; with ``kill_after`` SIGKILL it after that many seconds (returns (None, output))."""
    proc = subprocess.Popen([python, str(ROOT / "run_all.py"), "--plain", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if kill_after is None:
        out, _ = proc.communicate(timeout=600)
        return proc.returncode, out
    kids: list[int] = []
    end = time.time() + kill_after
    while time.time() < end and proc.poll() is None:
        kids = sorted(set(kids) | set(_descendants(proc.pid)))
        time.sleep(0.05)
    if proc.poll() is not None:
        out, _ = proc.communicate()
        return proc.returncode, out
    kids = sorted(set(kids) | set(_descendants(proc.pid)))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    _wait_gone(kids)
    return None, out


def trials(n: int, seed: int = 0, workdir: Path | None = None, log=print) -> dict:
    """Run ``n`` kill trials; returns counts and the problems found."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        table = write_table(tmp / "nb")
        base = dict(os.environ, CASSANDRA_STAGES=str(table))
        # calibration: how long an uninterrupted run takes on this machine
        t0 = time.time()
        rc, out = run_all(dict(base, CASSANDRA_OUT=str(tmp / "calibrate")))
        span = time.time() - t0
        if rc != 0:
            raise RuntimeError(f"the calibration run failed (exit {rc}):\n{out[-2000:]}")
        out_dir = tmp / "out"
        env = dict(base, CASSANDRA_OUT=str(out_dir))
        problems, killed, done_counts, attempts = [], 0, [], 0
        state_path = out_dir / "runs" / "quick" / "state.json"
        while killed < n and attempts < 3 * n:  # a run that finishes before its kill does not count
            attempts += 1
            done_before = len(json.loads(state_path.read_text())) if state_path.exists() else 0
            # with every stage done a plain run only skips: rerun them, so there is something to cut off
            force = ["--force"] if done_before == len(STAGES) or rng.random() < 0.3 else []
            delay = rng.uniform(0.0, span)
            rc, _out = run_all(env, *force, kill_after=delay)
            killed += rc is None
            found = check(out_dir)
            done = len(json.loads(state_path.read_text())) if state_path.exists() and not found else 0
            done_counts.append(done)
            log(f"trial {attempts:2d}: {'killed' if rc is None else f'finished (exit {rc})'} after {delay:5.1f}s"
                f"{' with --force' if force else ''}; stages marked done: {done}; "
                f"{'OK' if not found else 'PROBLEMS: ' + '; '.join(found)}")
            problems += [f"trial {attempts}: {p}" for p in found]
        if killed < n:
            problems.append(f"only {killed} of {attempts} runs were still running when their kill came")
        rc, out = run_all(env)
        if rc != 0:
            problems.append(f"the final uninterrupted run failed (exit {rc}): {out[-500:]}")
        found = check(out_dir)
        problems += [f"final run: {p}" for p in found]
        state = json.loads((out_dir / "runs" / "quick" / "state.json").read_text()) if rc == 0 else {}
        if set(state) != set(STAGES):
            problems.append(f"after the final run the done stages are {sorted(state)}, not all three")
        rc, out = run_all(env)
        skipped = out.count("up to date (use --force to rerun)")
        if rc != 0 or skipped != len(STAGES):
            problems.append(f"the run after that did not skip every stage (exit {rc}, {skipped} skipped)")
        return {"trials": attempts, "killed": killed, "calibration_seconds": span, "done_counts": done_counts,
                "problems": problems}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10, help="how many runs to kill (runs that finish first are "
                                                          "checked too, and do not count)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    res = trials(args.trials, args.seed)
    print(f"\n{res['trials']} runs, {res['killed']} killed mid-run (an uninterrupted run took "
          f"{res['calibration_seconds']:.1f}s); stages marked done after each trial: {res['done_counts']}")
    if res["problems"]:
        print("FAILED:\n  " + "\n  ".join(res["problems"]))
        return 1
    print("no stage was ever marked done with incomplete outputs; the final run completed and the next skipped all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
