"""Run a code model phi on many transitions in confined worker processes.

:class:`Sandbox` starts a *zygote* (``_worker.py --zygote``) that drops its privileges and then
forks one worker per candidate code model.  Each worker installs a seccomp filter before it runs
any generated code: it can compute and answer on its pipe, nothing else (no files, sockets,
processes or signals; see ``_worker.py`` for the boundary and why it was chosen).  Batches of
``(state, action)`` pairs go to the worker in one request; it runs the preconditions, the action
function and the dynamic function(s) in the paper's order and streams back one reply per
transition.

Fresh worker per candidate: a worker only ever serves the model it was forked for, so a model
that monkey-patches a module can change no other model's results.  The last ``max_workers``
workers stay alive keyed by their model, so going back to the current model after scoring a
few candidates costs no fork.

The parent trusts nothing from a worker.  A reply is a length-prefixed JSON frame; a frame
longer than ``max_reply_bytes`` is refused before its body is read, a batch stops accepting
replies after ``max_batch_bytes``, and every reply is parsed defensively (no NaN/Infinity,
numbers within +-1e300, exact schema, index in order, strings cleaned).  Anything that goes
wrong with generated code (a static-check failure, an exception, a wrong return type, a patch
to a forbidden path, a time-out, memory exhaustion, a dead, hung or lying worker) becomes an
E_exec entry for that function and transition in :class:`ExecResult.errors`; the parent never
crashes because of generated code.
"""
from __future__ import annotations

import json
import logging
import mmap
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..envs.base import EnvSpec, coerce_action, get_path
from .model import CodeModel

log = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("_worker.py")
HUNG = "__worker__"  # function id used when the worker failed without naming a function
MAX_ABS = 1e300  # largest magnitude a number in a reply may have
UNCONFINED_ENV = "CASSANDRA_SANDBOX"  # =unconfined: run without the OS boundary (not recommended)


@dataclass
class ExecResult:
    """What phi predicts for one transition.

    ``det`` maps each deterministic variable name to its predicted value (``None`` with the name in
    ``missing`` when the patches removed it).  ``errors`` lists ``(function_id, message)`` pairs: any
    entry makes the transition an E_exec error.  A precondition that raised is skipped (it neither
    passes nor blocks); an action or dynamic function that raised contributes no patch.
    """

    valid: bool
    det: dict[str, Any]
    errors: list[tuple[str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # preconditions that returned False
    feedback: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def exec_error(self) -> bool:
        return bool(self.errors)

    def to_dict(self) -> dict:
        return {"valid": self.valid, "det": self.det, "errors": [list(e) for e in self.errors],
                "failed": self.failed, "feedback": self.feedback, "missing": self.missing}

    def next_state(self, state: dict, spec: EnvSpec) -> dict:
        """``state`` with its deterministic variables replaced by the predicted ones."""
        from ..envs.base import copy_state, set_path
        out = copy_state(state)
        for v in spec.deterministic:
            if v.name in self.det and v.name not in self.missing:
                set_path(out, v.path, self.det[v.name])
        return out


class SandboxError(RuntimeError):
    """The sandbox could not be started or confined (never raised for faults in generated code)."""


# -- reading what a worker says ------------------------------------------------------------------

class BadReply(ValueError):
    """A frame from a worker that breaks the protocol (too large, not JSON, wrong schema)."""


class FrameReader:
    """Length-prefixed frames from a pipe, refusing any frame over ``max_frame`` bytes unread."""

    def __init__(self, fd: int, max_frame: int):
        self.fd, self.max_frame = fd, max_frame
        self.buf = bytearray()
        self.eof = False

    def read(self, deadline: float) -> bytes | None:
        """The next frame's body; None when the deadline passed or the pipe closed (``eof``).
        Raises :class:`BadReply` for an oversized frame (its body is never read)."""
        need = 4
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">I", self.buf[:4])
                if n > self.max_frame:
                    raise BadReply(f"reply of {n} bytes exceeds the {self.max_frame}-byte limit")
                need = 4 + n
                if len(self.buf) >= need:
                    body = bytes(self.buf[4:need])
                    del self.buf[:need]
                    return body
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return None
            try:
                chunk = os.read(self.fd, max(need - len(self.buf), 1 << 16))
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                return None
            self.buf += chunk


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _clean(x: Any, limit: int = 1000) -> str:
    """A short, printable, valid-Unicode string from something a worker sent."""
    s = x if type(x) is str else repr(x)
    if len(s) > limit:
        s = s[:limit] + "..."
    return s.encode("utf-8", "replace").decode("utf-8")


def check_value(x: Any, depth: int = 0) -> None:
    """Raise :class:`BadReply` unless ``x`` is plain, finite, bounded JSON data."""
    t = type(x)
    if x is None or t is bool:
        return
    if t is int or t is float:
        if not (-MAX_ABS <= x <= MAX_ABS):  # False for NaN as well
            raise BadReply("a number that is not finite or beyond +-1e300")
        return
    if t is str:
        try:
            x.encode("utf-8")
        except UnicodeEncodeError:
            raise BadReply("a string that is not valid Unicode") from None
        return
    if depth > 64:
        raise BadReply("data nested deeper than 64 levels")
    if t is list:
        for v in x:
            check_value(v, depth + 1)
        return
    if t is dict:
        for k, v in x.items():
            check_value(k, depth + 1)
            check_value(v, depth + 1)
        return
    raise BadReply(f"a value of type {t.__name__}")


def _str_list(x: Any, what: str) -> list[str]:
    if type(x) is not list or len(x) > 10_000 or any(type(s) is not str for s in x):
        raise BadReply(f"'{what}' is not a list of strings")
    return [_clean(s) for s in x]


def decode_reply(body: bytes, det_names: Sequence[str], index: int) -> ExecResult:
    """Parse and check one per-transition reply; raise :class:`BadReply` if it breaks the protocol."""
    try:
        msg = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise BadReply(f"reply is not valid JSON ({type(e).__name__})") from None
    if type(msg) is not dict:
        raise BadReply("reply is not a JSON object")
    if "fatal" in msg:
        raise BadReply(f"the worker reported: {_clean(msg['fatal'], 300)}")
    extra = set(msg) - {"i", "v", "d", "m", "e", "f", "fb"}
    if extra:
        raise BadReply(f"reply has unexpected keys {sorted(_clean(k, 40) for k in extra)[:5]}")
    if type(msg.get("i")) is not int or msg["i"] != index:
        raise BadReply(f"reply for transition {_clean(msg.get('i'), 40)}, expected {index}")
    if type(msg.get("v")) is not bool:
        raise BadReply("'v' is not a bool")
    d = msg.get("d")
    if type(d) is not list or len(d) != len(det_names):
        raise BadReply(f"'d' is not a list of {len(det_names)} values")
    try:
        check_value(d)
    except RecursionError:
        raise BadReply("data nested too deeply") from None
    m = msg.get("m", [])
    if type(m) is not list or any(type(j) is not int or not 0 <= j < len(det_names) for j in m) \
            or len(set(m)) != len(m):
        raise BadReply("'m' is not a list of distinct variable indices")
    e = msg.get("e", [])
    if type(e) is not list or len(e) > 10_000 or any(
            type(p) is not list or len(p) != 2 or type(p[0]) is not str or type(p[1]) is not str for p in e):
        raise BadReply("'e' is not a list of [function, message] pairs")
    return ExecResult(valid=msg["v"], det=dict(zip(det_names, d)),
                      errors=[(_clean(a, 200), _clean(b)) for a, b in e],
                      failed=_str_list(msg.get("f", []), "f"), feedback=_str_list(msg.get("fb", []), "fb"),
                      missing=[det_names[j] for j in m])


# -- processes -----------------------------------------------------------------------------------

def _recv_msg(sock: socket.socket, timeout: float) -> dict | None:
    """One length-prefixed JSON message from the zygote (None on time-out, EOF or garbage)."""
    sock.settimeout(timeout)
    try:
        head = _recv_exact(sock, 4)
        if head is None:
            return None
        (n,) = struct.unpack(">I", head)
        if n > 1 << 16:
            return None
        body = _recv_exact(sock, n)
        msg = json.loads(body, parse_constant=_no_constant) if body is not None else None
        return msg if type(msg) is dict else None
    except (OSError, ValueError):
        return None


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class _Zygote:
    """The process that forks workers (it runs trusted code only, as an unprivileged user)."""

    def __init__(self, start_timeout: float = 60.0):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = ours
        self.err = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(WORKER), "--zygote", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=self.err, close_fds=True, cwd="/", start_new_session=True,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"})
        except OSError as e:
            ours.close()
            raise SandboxError(f"cannot start the sandbox: {e}") from e
        finally:
            theirs.close()
        msg = _recv_msg(self.sock, start_timeout)
        if not (msg and msg.get("ready")):
            why = (msg or {}).get("why") or self._stderr() or f"exit code {self.proc.poll()}"
            self.close()
            raise SandboxError(f"the sandbox's zygote failed to start: {why}; run "
                               f"`{sys.executable} -I {WORKER} --probe` to check the boundary")
        self.info = msg

    def _stderr(self) -> str:
        try:
            self.err.seek(0)
            return self.err.read()[-2000:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fork(self, memory_mb: int) -> tuple[int, int, int, mmap.mmap]:
        """A new worker: (pid, request fd, reply fd, progress page)."""
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        page_fd = os.memfd_create("cwm_progress") if hasattr(os, "memfd_create") else \
            os.dup(tempfile.TemporaryFile().fileno())
        try:
            os.ftruncate(page_fd, 8)
            page = mmap.mmap(page_fd, 8)
            page[:4] = b"\xff\xff\xff\xff"
            socket.send_fds(self.sock, [b"F" + struct.pack(">I", memory_mb)], [req_r, rep_w, page_fd])
            msg = _recv_msg(self.sock, 30.0)
        except OSError as e:
            for fd in (req_w, rep_r):
                os.close(fd)
            raise SandboxError(f"the sandbox's zygote is gone: {e}") from e
        finally:
            for fd in (req_r, rep_w, page_fd):
                os.close(fd)
        if not (msg and type(msg.get("pid")) is int):
            os.close(req_w)
            os.close(rep_r)
            raise SandboxError(f"the sandbox's zygote did not fork a worker ({msg})")
        return msg["pid"], req_w, rep_r, page

    def kill(self, pid: int, wait: bool = False) -> str | None:
        """Kill a worker; with ``wait``, reap it and return how it ended (None when unknown)."""
        try:
            self.sock.sendall(b"K" + struct.pack(">i", pid) + (b"\x01" if wait else b"\x00"))
        except OSError:
            return None
        msg = _recv_msg(self.sock, 10.0)
        return msg.get("status") if msg else None

    def close(self) -> None:
        try:
            self.sock.close()  # the zygote kills and reaps every worker, then exits
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.err.close()


class _Worker:
    def __init__(self, pid: int, req_w: int, rep_r: int, page: mmap.mmap, max_frame: int):
        self.pid, self.req_w, self.page = pid, req_w, page
        self.reader = FrameReader(rep_r, max_frame)
        self.confirmed = False  # its first frame said it is ready and confined
        self.busy = False  # a request was sent and its last reply not yet read

    def send(self, data: bytes) -> None:
        view = memoryview(struct.pack(">I", len(data)) + data)
        while view:
            n = os.write(self.req_w, view)
            view = view[n:]

    def running(self) -> int:
        """Index of the function the worker is running (-1 when none or unknown)."""
        return struct.unpack_from(">i", self.page, 0)[0]

    def close_fds(self) -> None:
        for fd in (self.req_w, self.reader.fd):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.page.close()
        except (OSError, ValueError, BufferError):
            pass


# -- the sandbox ---------------------------------------------------------------------------------

class Sandbox:
    """Confined workers that evaluate code models on batches of transitions.

    Parameters
    ----------
    spec: the environment spec; only its deterministic variables may be patched.
    call_timeout: seconds one generated function may run before it is interrupted.
    memory_mb: address-space limit of each worker (RLIMIT_AS).
    hang_slack: extra seconds the parent waits for a result before it kills the worker.
    reject_unknown_actions: an action whose name is not in the spec's action list is predicted
        invalid without running any precondition or action function (the spec defines the action
        space; no function of phi can belong to such an action).  The dynamic function still runs.
    spec_arg_checks: also predict invalid, in the same way, an action whose arguments break the
        spec's declared types and ranges (off by default: the paper leaves such checks to the
        learned precondition functions).
    max_reply_bytes: largest reply accepted for one transition (larger: E_exec, worker replaced).
    max_batch_bytes: largest total of replies accepted for one :meth:`evaluate` call.
    max_workers: workers kept alive, one per recently used code model (4: the current model and
        the paper's K = 3 candidates of a refinement loop).
    static_check: False runs generated code with full Python inside the OS boundary; only for
        testing that boundary on its own, never for real runs.
    """

    def __init__(self, spec: EnvSpec, call_timeout: float = 0.5, memory_mb: int = 1024,
                 hang_slack: float = 2.0, reject_unknown_actions: bool = True, spec_arg_checks: bool = False,
                 max_reply_bytes: int = 1 << 20, max_batch_bytes: int = 64 << 20, max_workers: int = 4,
                 static_check: bool = True):
        if call_timeout <= 0:
            raise ValueError(f"call_timeout must be positive, got {call_timeout}")
        if memory_mb < 128:
            raise ValueError(f"memory_mb must be at least 128, got {memory_mb}")
        if max_reply_bytes < 1024 or max_batch_bytes < max_reply_bytes:
            raise ValueError("max_reply_bytes must be at least 1024 and max_batch_bytes at least max_reply_bytes")
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.spec = spec
        self.reject_unknown_actions = bool(reject_unknown_actions)
        self.spec_arg_checks = bool(spec_arg_checks)
        self._actions = {a.name: a for a in spec.actions}
        self.call_timeout = float(call_timeout)
        self.memory_mb = int(memory_mb)
        self.hang_slack = float(hang_slack)
        self.max_reply_bytes, self.max_batch_bytes = int(max_reply_bytes), int(max_batch_bytes)
        self.max_workers = int(max_workers)
        self.static_check = bool(static_check)
        self.det_names = [v.name for v in spec.deterministic]
        self.det_paths = [v.path for v in spec.deterministic]
        self._zygote: _Zygote | None = None
        self._workers: OrderedDict[tuple, _Worker] = OrderedDict()
        self._spare: _Worker | None = None
        self.isolation: dict = {}
        # functions that hung or killed the worker: never run again by this sandbox
        self._poisoned: dict[tuple, str] = {}
        self.restarts = 0
        self.forks = 0
        self.calls = 0
        self.items = 0
        self.seconds = 0.0

    # -- process management --------------------------------------------------------------
    def _spawn(self) -> _Worker:
        """Ask the zygote for a new worker (it confines itself while we go on)."""
        if self._zygote is not None and not self._zygote.alive():
            self._close_all()
        if self._zygote is None:
            self._zygote = _Zygote()
        pid, req_w, rep_r, page = self._zygote.fork(self.memory_mb)
        self.forks += 1
        return _Worker(pid, req_w, rep_r, page, self.max_reply_bytes)

    def _ready(self, w: _Worker) -> _Worker:
        """Wait for a spawned worker's first frame and check that it is confined."""
        if w.confirmed:
            return w
        try:
            body = w.reader.read(time.monotonic() + 30.0)
            msg = json.loads(body, parse_constant=_no_constant) if body else None
        except (BadReply, ValueError):
            msg = None
        if not (type(msg) is dict and msg.get("ready")):
            status = self._release(w, wait=True)
            raise SandboxError(f"a sandbox worker failed to start ({status or 'no answer'})")
        try:
            self._check_isolation(msg)
        except SandboxError:
            self._release(w)
            raise
        w.confirmed = True
        return w

    def _check_isolation(self, msg: dict) -> None:
        confined = bool(msg.get("seccomp")) and bool(msg.get("open_denied"))
        if os.geteuid() == 0 and msg.get("uid") == 0:
            confined = False
            msg.setdefault("why", "the worker still runs as root")
        self.isolation = {"seccomp": bool(msg.get("seccomp")), "uid": msg.get("uid"),
                          "open_denied": bool(msg.get("open_denied")), "confined": confined}
        if confined:
            return
        why = msg.get("why") or "unknown reason"
        if os.environ.get(UNCONFINED_ENV, "").lower() == "unconfined":
            if not getattr(Sandbox, "_warned", False):
                log.warning("sandbox: running WITHOUT the operating-system boundary (%s) because %s=unconfined;"
                            " generated code is held back by the static check only", why, UNCONFINED_ENV)
                Sandbox._warned = True
            return
        raise SandboxError(f"the sandbox cannot confine generated code on this machine: {why}. Run "
                           f"`{sys.executable} -I {WORKER} --probe` for details; to run anyway with the "
                           f"static check only, set {UNCONFINED_ENV}=unconfined (not recommended)")

    def _release(self, w: _Worker, wait: bool = False) -> str | None:
        """Kill a worker; with ``wait``, how it ended."""
        status = None
        if self._zygote is not None and self._zygote.alive():
            status = self._zygote.kill(w.pid, wait)
        w.close_fds()
        return status

    def _worker(self, key: tuple) -> _Worker:
        w = self._workers.get(key)
        if w is not None and w.busy:  # a request to it was interrupted: its pipe holds stale replies
            self._discard(key)
            w = None
        if w is not None:
            self._workers.move_to_end(key)
            return w
        w, self._spare = self._spare, None
        try:
            w = self._ready(w if w is not None else self._spawn())
        except SandboxError:
            if w is None:
                raise
            w = self._ready(self._spawn())  # the spare died (e.g. with its zygote): one fresh try
        self._spare = self._spawn()  # the next candidate's worker starts while this one works
        self._workers[key] = w
        while len(self._workers) > self.max_workers:
            _, old = self._workers.popitem(last=False)
            self._release(old)
        return w

    def _discard(self, key: tuple, wait: bool = False) -> str | None:
        w = self._workers.pop(key, None)
        self.restarts += 1
        return self._release(w, wait) if w is not None else None

    def _close_all(self) -> None:
        for w in list(self._workers.values()) + ([self._spare] if self._spare else []):
            self._release(w)
        self._workers.clear()
        self._spare = None
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    def start(self, model: CodeModel | None = None) -> "Sandbox":
        """Start the zygote and a spare worker now (otherwise the first :meth:`evaluate` does),
        e.g. before timing; with ``model``, also the worker that will serve that model.
        Raises :class:`SandboxError` when the OS boundary is unavailable."""
        if model is not None:
            self._worker(self._model_key(model))
        elif self._spare is None and not self._workers:
            self._spare = self._ready(self._spawn())
        return self

    def close(self) -> None:
        """Stop every worker and the zygote (safe to call twice)."""
        self._close_all()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._close_all()
        except Exception:
            pass

    # -- evaluation ------------------------------------------------------------------------
    @staticmethod
    def _key(f) -> tuple:
        return (f.kind, f.action, f.name, f.source)

    @classmethod
    def _model_key(cls, model: CodeModel) -> tuple:
        """What makes two models the same candidate (each candidate gets its own worker)."""
        return tuple(sorted((f.fid,) + cls._key(f) for f in model.functions.values()))

    def _functions(self, model: CodeModel) -> list[dict]:
        out = []
        for f in model.functions.values():
            d = {"fid": f.fid, "kind": f.kind, "action": f.action, "name": f.name, "source": f.source}
            why = self._poisoned.get(self._key(f))
            if why:
                d["poisoned"] = why
            out.append(d)
        return out

    def _encode_items(self, items: Sequence[tuple[dict, Any]]) -> tuple[list[bytes], list[dict]]:
        enc, states = [], []
        for k, (st, a) in enumerate(items):
            try:
                a = coerce_action(a)
            except ValueError:
                a = {"name": str(a)[:200], "args": {}}
            item = {"state": st, "action": a}
            why = self._reject(a)
            if why:
                item["reject"] = why
            try:
                enc.append(json.dumps(item, allow_nan=False, separators=(",", ":")).encode())
            except (TypeError, ValueError) as e:
                raise ValueError(f"transition {k}: the state or action is not plain, finite JSON ({e})") from None
            states.append(st)
        return enc, states

    def evaluate(self, model: CodeModel, items: Sequence[tuple[dict, Any]]) -> list[ExecResult]:
        """Predict validity and deterministic next values for each ``(state, action)`` pair.

        Actions may be dicts or their text form.  One request carries every item; results stream
        back one by one, so a fault on item k costs only item k.
        """
        items = list(items)
        if not items:
            return []
        t0 = time.perf_counter()
        enc, states = self._encode_items(items)
        key = self._model_key(model)
        n_calls = max(1, len(model.functions))
        per_item = self.call_timeout * (n_calls + 2) + self.hang_slack
        load = self.call_timeout * n_calls  # module bodies run before the first item
        out: list[ExecResult | None] = [None] * len(enc)
        budget = self.max_batch_bytes
        pos = 0
        while pos < len(enc):
            funcs = self._functions(model)
            w = self._worker(key)
            head = {"cmd": "eval", "functions": funcs, "det_paths": self.det_paths, "allowed": self.det_paths,
                    "start": pos, "call_timeout": self.call_timeout, "max_reply": self.max_reply_bytes,
                    "static_check": self.static_check,
                    "cpu_budget": per_item * (len(enc) - pos) + load + 5.0}
            req = json.dumps(head, separators=(",", ":")).encode()[:-1] + b',"items":[' + b",".join(enc[pos:]) + b"]}"
            try:
                w.busy = True
                w.send(req)
            except OSError:
                self._discard(key)
                continue
            first = True
            while pos < len(enc):
                reason, over_budget = None, False
                try:
                    body = w.reader.read(time.monotonic() + per_item + (load if first else 0.0))
                    if body is None:
                        reason = "hung" if not w.reader.eof else "died"
                    elif len(body) > budget:
                        over_budget = True
                        reason = (f"the replies to this batch passed the {self.max_batch_bytes}-byte limit "
                                  f"(max_batch_bytes)")
                    else:
                        budget -= len(body)
                        out[pos] = decode_reply(body, self.det_names, pos)
                        pos += 1
                        first = False
                        continue
                except BadReply as e:
                    reason = f"the worker broke the protocol: {e}"
                running = w.running()
                status = self._discard(key, wait=reason == "died")
                blame = reason in ("hung", "died")  # the running function stopped the worker
                if reason == "hung":
                    reason = f"the worker stopped answering (killed after {per_item + (load if first else 0):.1f}s)"
                elif reason == "died":
                    reason = f"the worker died ({status or 'unknown cause'})"
                fid = HUNG
                if 0 <= running < len(funcs):
                    fid = funcs[running]["fid"]
                    f = model.functions.get(fid)
                    if f is not None and blame:
                        self._poisoned[self._key(f)] = f"skipped: this function hung or killed the worker before ({reason})"
                log.warning("sandbox: transition %d (%s): %s; replacing the worker", pos, fid, reason)
                out[pos] = ExecResult(valid=True, det=self._fallback_det(states[pos]), errors=[(fid, reason)])
                pos += 1
                if over_budget:  # no more replies are accepted for this batch
                    while pos < len(enc):
                        out[pos] = ExecResult(valid=True, det=self._fallback_det(states[pos]), errors=[(HUNG, reason)])
                        pos += 1
                break
            else:
                try:
                    done = w.reader.read(time.monotonic() + per_item)
                    ok = done is not None and json.loads(done) == {"done": True}
                except (BadReply, ValueError):
                    ok = False
                if ok:
                    w.busy = False
                else:
                    self._discard(key)
        self.calls += 1
        self.items += len(enc)
        self.seconds += time.perf_counter() - t0
        return out  # type: ignore[return-value]

    def _reject(self, action: dict) -> str | None:
        """Why the spec alone rules the action out (None when it does not, or the checks are off)."""
        a = self._actions.get(action.get("name"))
        if a is None:
            return (f"unknown action {action.get('name')!r} (not in the action space)"
                    if self.reject_unknown_actions else None)
        if self.spec_arg_checks:
            from ..envs.base import check_args
            return check_args(a, action.get("args") or {})
        return None

    def _fallback_det(self, state: dict) -> dict:
        det = {}
        for n, p in zip(self.det_names, self.det_paths):
            try:
                det[n] = get_path(state, p)
            except (KeyError, IndexError, ValueError, TypeError):
                det[n] = None
        return det

    def predict(self, model: CodeModel, states: Iterable[dict], actions: Iterable[Any]
                ) -> tuple[list[dict], list[bool], list[ExecResult]]:
        """Full predicted next states (stochastic parts copied from the input), validity, raw results."""
        states = list(states)
        res = self.evaluate(model, list(zip(states, actions)))
        return [r.next_state(s, self.spec) for r, s in zip(res, states)], [r.valid for r in res], res

    def stats(self) -> dict:
        return {"calls": self.calls, "items": self.items, "seconds": self.seconds,
                "restarts": self.restarts, "forks": self.forks,
                "items_per_second": self.items / self.seconds if self.seconds else float("nan")}
