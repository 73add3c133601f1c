"""Run a code model phi on many transitions inside a separate, resource-limited worker process.

:class:`Sandbox` starts ``_worker.py`` with ``python -I`` and sends it batches of
``(state, action)`` pairs; the worker runs the preconditions, the action function and the dynamic
function(s) in the paper's order and streams back one result per transition.  Everything that
can go wrong with generated code (a static-check failure, an exception, a wrong return type, a
patch to a forbidden path, a time-out, memory exhaustion, a dead or hung worker) becomes an
E_exec entry for that function and transition in :class:`ExecResult.errors`; the parent never
crashes because of generated code.  A dead or hung worker is killed and restarted, and the
transition it was working on is reported as an E_exec error.
"""
from __future__ import annotations

import json
import logging
import mmap
import os
import select
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..envs.base import EnvSpec, coerce_action, get_path
from .model import CodeModel

log = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("_worker.py")
HUNG = "__worker__"  # function id used when the worker died without naming a function


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
    """The worker could not be started at all (not raised for faults in generated code)."""


class Sandbox:
    """A long-lived worker process that evaluates code models on batches of transitions.

    Parameters
    ----------
    spec: the environment spec; only its deterministic variables may be patched.
    call_timeout: seconds one generated function may run before it is interrupted.
    memory_mb: address-space limit of the worker (RLIMIT_AS).
    hang_slack: extra seconds the parent waits for a result before it kills the worker.
    reject_unknown_actions: an action whose name is not in the spec's action list is predicted
        invalid without running any precondition or action function (the spec defines the action
        space; no function of phi can belong to such an action).  The dynamic function still runs.
    spec_arg_checks: also predict invalid, in the same way, an action whose arguments break the
        spec's declared types and ranges (off by default: the paper leaves such checks to the
        learned precondition functions).
    """

    def __init__(self, spec: EnvSpec, call_timeout: float = 0.5, memory_mb: int = 1024,
                 hang_slack: float = 2.0, reject_unknown_actions: bool = True, spec_arg_checks: bool = False):
        if call_timeout <= 0:
            raise ValueError(f"call_timeout must be positive, got {call_timeout}")
        if memory_mb < 128:
            raise ValueError(f"memory_mb must be at least 128, got {memory_mb}")
        self.spec = spec
        self.reject_unknown_actions = bool(reject_unknown_actions)
        self.spec_arg_checks = bool(spec_arg_checks)
        self._actions = {a.name: a for a in spec.actions}
        self.call_timeout = float(call_timeout)
        self.memory_mb = int(memory_mb)
        self.hang_slack = float(hang_slack)
        self.det_names = [v.name for v in spec.deterministic]
        self.det_paths = [v.path for v in spec.deterministic]
        self.proc: subprocess.Popen | None = None
        self._buf = b""
        self._cwd = tempfile.mkdtemp(prefix="cwm_sandbox_")
        self._progress_path = os.path.join(self._cwd, "progress")
        with open(self._progress_path, "wb") as f:
            f.write(b"\xff" * 8)
        with open(self._progress_path, "r+b") as f:
            self._progress = mmap.mmap(f.fileno(), 8)
        # functions that hung or killed the worker: never run again by this sandbox
        self._poisoned: dict[tuple, str] = {}
        self.restarts = 0
        self.calls = 0
        self.items = 0
        self.seconds = 0.0

    # -- process management --------------------------------------------------------------
    def _start(self) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(WORKER), str(self.memory_mb), self._progress_path],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                close_fds=True, cwd=self._cwd, env=env)
        except OSError as e:
            raise SandboxError(f"cannot start the sandbox worker: {e}") from e
        self._buf = b""
        msg = self._recv(deadline=time.monotonic() + 30.0)
        if not (isinstance(msg, dict) and msg.get("ready")):
            code = self.proc.poll()
            self._kill()
            raise SandboxError(f"sandbox worker failed to start (exit code {code}); run "
                               f"`{sys.executable} -I {WORKER}` to see why")

    def _kill(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except Exception:  # already gone
                pass
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except Exception:
                    pass
        self.proc = None
        self._buf = b""

    def _ensure(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self._kill()
                self.restarts += 1
            self._start()

    def start(self) -> "Sandbox":
        """Start the worker now (otherwise the first :meth:`evaluate` does), e.g. before timing."""
        self._ensure()
        return self

    def close(self) -> None:
        """Stop the worker and remove its scratch folder (safe to call twice)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self._send({"cmd": "exit"})
                self.proc.wait(timeout=2)
            except Exception:
                pass
        self._kill()
        if os.path.isdir(self._cwd):
            import shutil
            shutil.rmtree(self._cwd, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._kill()
            import shutil
            shutil.rmtree(self._cwd, ignore_errors=True)
        except Exception:
            pass

    # -- framing ---------------------------------------------------------------------------
    def _send(self, obj: Any) -> None:
        data = json.dumps(obj, allow_nan=True).encode()
        self.proc.stdin.write(struct.pack(">I", len(data)) + data)
        self.proc.stdin.flush()

    def _recv(self, deadline: float) -> Any:
        """Next frame, or None when the worker died or the deadline passed."""
        fd = self.proc.stdout.fileno()
        while True:
            if len(self._buf) >= 4:
                (n,) = struct.unpack(">I", self._buf[:4])
                if len(self._buf) >= 4 + n:
                    body, self._buf = self._buf[4:4 + n], self._buf[4 + n:]
                    try:
                        return json.loads(body)
                    except ValueError:
                        return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buf += chunk

    # -- evaluation ------------------------------------------------------------------------
    @staticmethod
    def _key(f) -> tuple:
        return (f.kind, f.action, f.name, f.source)

    def _functions(self, model: CodeModel) -> list[dict]:
        out = []
        for f in model.functions.values():
            d = {"fid": f.fid, "kind": f.kind, "action": f.action, "name": f.name, "source": f.source}
            why = self._poisoned.get(self._key(f))
            if why:
                d["poisoned"] = why
            out.append(d)
        return out

    def _running(self) -> int:
        """Index of the function the worker was running (-1 when none or unknown)."""
        import struct as _s
        return _s.unpack_from(">i", self._progress, 0)[0]

    def evaluate(self, model: CodeModel, items: Sequence[tuple[dict, Any]]) -> list[ExecResult]:
        """Predict validity and deterministic next values for each ``(state, action)`` pair.

        Actions may be dicts or their text form.  One request carries every item; results stream
        back one by one, so a fault on item k costs only item k.
        """
        items = list(items)
        if not items:
            return []
        t0 = time.perf_counter()
        norm = []
        for st, a in items:
            try:
                a = coerce_action(a)
            except ValueError:
                a = {"name": str(a), "args": {}}
            item = {"state": st, "action": a}
            why = self._reject(a)
            if why:
                item["reject"] = why
            norm.append(item)
        n_calls = max(1, len(model.functions))
        per_item = self.call_timeout * (n_calls + 2) + self.hang_slack
        out: list[ExecResult | None] = [None] * len(norm)
        pos = 0
        while pos < len(norm):
            funcs = self._functions(model)
            self._ensure()
            self._progress[:4] = b"\xff\xff\xff\xff"
            req = {"cmd": "eval", "functions": funcs, "det_paths": self.det_paths,
                   "allowed": self.det_paths, "items": norm[pos:], "start": pos,
                   "call_timeout": self.call_timeout,
                   "cpu_budget": per_item * (len(norm) - pos) + 5.0}
            try:
                self._send(req)
            except (BrokenPipeError, OSError):
                self._kill()
                self.restarts += 1
                continue
            while pos < len(norm):
                msg = self._recv(time.monotonic() + per_item)
                if isinstance(msg, dict) and "i" in msg and msg["i"] == pos:
                    out[pos] = self._result(msg)
                    pos += 1
                    continue
                reason = ("the worker stopped answering (killed after "
                          f"{per_item:.1f}s)" if msg is None and self.proc.poll() is None
                          else f"the worker died (exit code {self.proc.poll()})" if msg is None
                          else f"the worker reported: {msg.get('fatal', msg)}")
                fid = HUNG
                running = self._running()
                if msg is None and 0 <= running < len(funcs):
                    fid = funcs[running]["fid"]
                    f = model.functions.get(fid)
                    if f is not None:
                        self._poisoned[self._key(f)] = f"skipped: this function hung or killed the worker before ({reason})"
                log.warning("sandbox: transition %d (%s): %s; restarting the worker", pos, fid, reason)
                out[pos] = ExecResult(valid=True, det=self._fallback_det(norm[pos]["state"]),
                                      errors=[(fid, reason)])
                pos += 1
                self._kill()
                self.restarts += 1
                break
            else:
                done = self._recv(time.monotonic() + per_item)
                if not (isinstance(done, dict) and done.get("done")):
                    self._kill()
                    self.restarts += 1
        self.calls += 1
        self.items += len(norm)
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

    def _result(self, msg: dict) -> ExecResult:
        missing = [self.det_names[j] for j in msg.get("m", [])]
        return ExecResult(valid=bool(msg["v"]), det=dict(zip(self.det_names, msg["d"])),
                          errors=[(str(a), str(b)) for a, b in msg.get("e", [])],
                          failed=list(msg.get("f", [])), feedback=list(msg.get("fb", [])),
                          missing=missing)

    def predict(self, model: CodeModel, states: Iterable[dict], actions: Iterable[Any]
                ) -> tuple[list[dict], list[bool], list[ExecResult]]:
        """Full predicted next states (stochastic parts copied from the input), validity, raw results."""
        states = list(states)
        res = self.evaluate(model, list(zip(states, actions)))
        return [r.next_state(s, self.spec) for r, s in zip(res, states)], [r.valid for r in res], res

    def stats(self) -> dict:
        return {"calls": self.calls, "items": self.items, "seconds": self.seconds,
                "restarts": self.restarts,
                "items_per_second": self.items / self.seconds if self.seconds else float("nan")}
