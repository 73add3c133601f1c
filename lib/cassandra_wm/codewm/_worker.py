"""Sandbox worker: runs generated world-model functions in a separate, resource-limited process.

Started by :class:`cassandra_wm.codewm.sandbox.Sandbox` as ``python -I _worker.py``.  It talks to
its parent through length-prefixed JSON frames (4-byte big-endian length, then UTF-8 JSON) on
stdin/stdout; the real stdout is moved away so ``print`` in generated code cannot corrupt the
protocol.  JSON, never pickle, so a compromised worker cannot run code in the parent.

After its imports the worker lowers its own limits: address space (RLIMIT_AS), no file writes
(RLIMIT_FSIZE=0), no new processes (RLIMIT_NPROC=0), no new file descriptors (RLIMIT_NOFILE),
a CPU-time budget per request (RLIMIT_CPU), and an interval timer per function call.  Generated
code sees restricted builtins and read-only proxies of a few standard modules.

Request  {"cmd": "eval", "functions": [...], "det_paths": [...], "allowed": [...],
          "items": [{"state": ..., "action": ...}], "call_timeout": s}
Replies  one frame per item {"i", "v", "d", "m", "e", "f", "fb"} then {"done": true}.
"""
from __future__ import annotations

import builtins
import importlib.util
import json
import mmap
import os
import resource
import signal
import struct
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_policy():
    spec = importlib.util.spec_from_file_location("_cwm_policy", os.path.join(HERE, "_policy.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


policy = _load_policy()
import jsonpatch  # noqa: E402  (after the policy so a missing package is reported clearly)

# -- what generated code can see -------------------------------------------------------------

_SAFE_BUILTIN_NAMES = [
    "abs", "all", "any", "bool", "callable", "chr", "dict", "divmod", "enumerate", "filter", "float",
    "format", "frozenset", "hash", "hasattr", "int", "isinstance", "issubclass", "iter", "len", "list",
    "map", "max", "min", "next", "ord", "pow", "range", "repr", "reversed", "round", "set", "slice",
    "sorted", "str", "sum", "tuple", "type", "zip", "bin", "hex", "oct", "ascii", "bytes",
    "Exception", "ArithmeticError", "AssertionError", "AttributeError", "IndexError", "KeyError",
    "LookupError", "NameError", "NotImplementedError", "OverflowError", "RuntimeError",
    "StopIteration", "TypeError", "ValueError", "ZeroDivisionError", "RecursionError",
    "MemoryError", "ImportError", "True", "False", "None", "NotImplemented", "Ellipsis",
]


def _proxy(mod: types.ModuleType) -> types.SimpleNamespace:
    names = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]
    attrs = {}
    for n in names:
        if n.startswith("_") or not hasattr(mod, n):
            continue
        v = getattr(mod, n)
        if isinstance(v, types.ModuleType):
            continue
        attrs[n] = v
    return types.SimpleNamespace(**attrs)


_PROXIES = {name: _proxy(__import__(name)) for name in sorted(policy.ALLOWED_MODULES)}


def _safe_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level or name not in _PROXIES:
        raise ImportError(f"import of {name!r} is not allowed in world-model code")
    return _PROXIES[name]


def _safe_getattr(obj, name, *default):
    if not isinstance(name, str) or name.startswith("_") or name in policy.FORBIDDEN_ATTRS:
        raise AttributeError(f"attribute {name!r} is not accessible in world-model code")
    return getattr(obj, name, *default)


def _quiet_print(*args, **kwargs):
    return None


SAFE_BUILTINS = {n: getattr(builtins, n) for n in _SAFE_BUILTIN_NAMES if hasattr(builtins, n)}
SAFE_BUILTINS.update(__import__=_safe_import, getattr=_safe_getattr, print=_quiet_print)


# -- time-outs ------------------------------------------------------------------------------

class CallTimeout(BaseException):
    """Raised by the interval timer; a BaseException so ``except Exception`` cannot catch it."""


def _on_alarm(signum, frame):
    raise CallTimeout()


def _jcopy(x):
    """Fast deep copy of JSON-like data (dicts, lists, scalars)."""
    if isinstance(x, dict):
        return {k: _jcopy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_jcopy(v) for v in x]
    return x


def _is_json(x, depth=0) -> bool:
    if depth > 50:
        return False
    if x is None or isinstance(x, (bool, int, float, str)):
        return True
    if isinstance(x, list):
        return all(_is_json(v, depth + 1) for v in x)
    if isinstance(x, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in x.items())
    return False


def _describe(e: BaseException) -> str:
    if isinstance(e, CallTimeout):
        return "time limit exceeded"
    tb = e.__traceback__
    line = None
    while tb is not None:  # deepest frame that belongs to generated code
        if tb.tb_frame.f_code.co_filename.startswith("<phi:"):
            line = tb.tb_lineno
        tb = tb.tb_next
    msg = str(e)
    if len(msg) > 300:
        msg = msg[:300] + "..."
    return f"{type(e).__name__}: {msg}" + (f" (line {line})" if line else "")


class Fn:
    __slots__ = ("fid", "kind", "action", "func", "error", "index")

    def __init__(self, spec: dict, index: int):
        self.fid = spec["fid"]
        self.kind = spec["kind"]
        self.action = spec.get("action")
        self.func = None
        self.error = None
        self.index = index
        if spec.get("poisoned"):
            self.error = str(spec["poisoned"])
            return
        _mark(index)
        try:
            tree = policy.check_source(spec["source"], spec["name"], self.kind)
            code = compile(tree, f"<phi:{self.fid}>", "exec")
            env = {"__builtins__": SAFE_BUILTINS, "__name__": f"phi_{self.fid}"}
            _arm(CALL_TIMEOUT[0])
            try:
                exec(code, env)
            finally:
                _disarm()
            self.func = env[spec["name"]]
            if not callable(self.func):
                raise TypeError(f"{spec['name']!r} is not a function")
        except policy.PolicyError as e:
            self.error = f"rejected by the static check: {e}"
        except CallTimeout:
            self.error = "module body exceeded the time limit"
        except Exception as e:  # anything the module body raised
            self.error = f"module failed to load: {_describe(e)}"


CALL_TIMEOUT = [1.0]
_CACHE: dict = {}
PROGRESS: list = [None]  # shared page: index of the function running now (-1: none)


def _mark(index: int) -> None:
    """Tell the parent which function is running, so a hang can be pinned on it."""
    if PROGRESS[0] is not None:
        struct.pack_into(">i", PROGRESS[0], 0, index)


def _arm(t: float) -> None:
    signal.setitimer(signal.ITIMER_REAL, t, t)


def _disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0, 0)


def _call(fn: Fn, *args):
    """Run one generated function; returns (value, error message or None)."""
    if fn.error is not None:
        return None, fn.error
    _mark(fn.index)
    try:
        _arm(CALL_TIMEOUT[0])
        try:
            out = fn.func(*args)
        finally:
            _disarm()
        return out, None
    except CallTimeout:
        _disarm()
        return None, f"time limit of {CALL_TIMEOUT[0]:g}s per call exceeded"
    except RecursionError:
        return None, "RecursionError: maximum recursion depth exceeded"
    except MemoryError:
        return None, "MemoryError: memory limit exceeded"
    except Exception as e:
        return None, _describe(e)


_OPS = {"add", "remove", "replace", "move", "copy", "test"}


def _inside(path: str, allowed: list) -> bool:
    return any(path == p or path.startswith(p + "/") for p in allowed)


def _check_patch(patch, allowed: list):
    """Validate a returned patch; returns (list of ops, error or None)."""
    if isinstance(patch, tuple):
        patch = list(patch)
    if isinstance(patch, dict) and "op" in patch:
        patch = [patch]
    if not isinstance(patch, list):
        return None, f"must return a JSON patch (a list of operations), got {type(patch).__name__}"
    for i, op in enumerate(patch):
        if not isinstance(op, dict):
            return None, f"patch operation {i} is a {type(op).__name__}, not a dict"
        name = op.get("op")
        if name not in _OPS:
            return None, f"patch operation {i} has unknown op {name!r}"
        path = op.get("path")
        if not isinstance(path, str):
            return None, f"patch operation {i} has no string 'path'"
        if name in ("add", "replace", "test") and "value" not in op:
            return None, f"patch operation {i} ({name} {path}) has no 'value'"
        if name in ("move", "copy") and not isinstance(op.get("from"), str):
            return None, f"patch operation {i} ({name}) has no string 'from'"
        if name != "test" and not _inside(path, allowed):
            return None, f"patch operation {i} changes {path!r}, which is not a deterministic variable"
        if name == "move" and not _inside(op["from"], allowed):
            return None, f"patch operation {i} moves from {op['from']!r}, which is not a deterministic variable"
        if not _is_json(op.get("value")):
            return None, f"patch operation {i} has a value that is not JSON data"
    return patch, None


def _apply(doc, ops):
    """Apply validated ops to a copy of ``doc``; returns (new doc, error or None)."""
    if not ops:
        return doc, None
    new = _jcopy(doc)
    try:
        _arm(CALL_TIMEOUT[0])
        try:
            new = jsonpatch.apply_patch(new, ops, in_place=True)
        finally:
            _disarm()
        return new, None
    except CallTimeout:
        _disarm()
        return doc, "applying the patch exceeded the time limit"
    except Exception as e:
        return doc, f"patch could not be applied: {type(e).__name__}: {str(e)[:200]}"


_MISSING = object()


def _get(doc, pointer: str):
    cur = doc
    try:
        for tok in pointer[1:].split("/") if pointer else []:
            tok = tok.replace("~1", "/").replace("~0", "~")
            cur = cur[int(tok)] if isinstance(cur, list) else cur[tok]
        return cur
    except (KeyError, IndexError, ValueError, TypeError):
        return _MISSING



def _patched(fn, cur, args, allowed, errors):
    """Run a patch-returning function on ``args`` and apply its patch to ``cur``; on any failure
    record an E_exec error for ``fn`` and return ``cur`` unchanged."""
    out, err = _call(fn, *args)
    if err is None:
        ops, err = _check_patch(out, allowed)
        if err is None:
            cur, err = _apply(cur, ops)
    if err is not None:
        errors.append([fn.fid, err])
    return cur

def _evaluate(req: dict, send) -> None:
    CALL_TIMEOUT[0] = float(req.get("call_timeout", 1.0))
    used = resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_SELF).ru_stime
    budget = float(req.get("cpu_budget", 60.0))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used + budget) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

    pre, act, dyn = {}, {}, []
    for index, spec in enumerate(req["functions"]):
        key = (spec["fid"], spec["kind"], spec.get("action"), spec["name"], spec["source"],
               spec.get("poisoned"), index)
        fn = _CACHE.get(key)
        if fn is None:
            if len(_CACHE) > 2000:
                _CACHE.clear()
            fn = _CACHE[key] = Fn(spec, index)
        if fn.kind == "precondition":
            pre.setdefault(fn.action, []).append(fn)
        elif fn.kind == "action":
            act[fn.action] = fn
        else:
            dyn.append(fn)
    allowed = list(req["allowed"])
    det_paths = list(req["det_paths"])
    start = int(req.get("start", 0))
    for i, item in enumerate(req["items"]):
        state, action = item["state"], item["action"]
        aname = action.get("name") if isinstance(action, dict) else None
        errors, failed, feedback = [], [], []
        valid = True
        if item.get("reject"):  # ruled out by the spec before any function runs
            valid = False
            feedback.append(str(item["reject"]))
        for fn in (pre.get(aname, ()) if valid else ()):
            out, err = _call(fn, _jcopy(state), _jcopy(action))
            if err is None:
                if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[0], bool)):
                    err = f"precondition must return (bool, str), got {type(out).__name__}" + (
                        f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
            if err is not None:
                errors.append([fn.fid, err])
                continue
            if not out[0]:
                valid = False
                failed.append(fn.fid)
                feedback.append(str(out[1])[:300] if isinstance(out[1], str) else repr(out[1])[:300])
        cur = state
        if valid and aname in act:
            cur = _patched(act[aname], cur, (_jcopy(cur), _jcopy(action)), allowed, errors)
        for fn in dyn:
            cur = _patched(fn, cur, (_jcopy(cur),), allowed, errors)
        det, missing = [], []
        for j, p in enumerate(det_paths):
            v = _get(cur, p)
            if v is _MISSING:
                missing.append(j)
                v = None
            det.append(v)
        _mark(-1)
        send({"i": start + i, "v": valid, "d": det, "m": missing, "e": errors, "f": failed, "fb": feedback})
    send({"done": True})


def main() -> None:
    mem_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    if len(sys.argv) > 2:  # the progress page shared with the parent
        with open(sys.argv[2], "r+b") as f:
            PROGRESS[0] = mmap.mmap(f.fileno(), 8)
        _mark(-1)
    sys.setrecursionlimit(1000)
    proto_in = os.fdopen(0, "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)

    def send(obj) -> None:
        data = json.dumps(obj, allow_nan=True).encode()
        proto_out.write(struct.pack(">I", len(data)) + data)

    def recv():
        head = _read_exact(proto_in, 4)
        if head is None:
            return None
        (n,) = struct.unpack(">I", head)
        body = _read_exact(proto_in, n)
        return None if body is None else json.loads(body)

    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for lim, val in ((resource.RLIMIT_AS, mem_mb * 2**20), (resource.RLIMIT_FSIZE, 0),
                     (resource.RLIMIT_NPROC, 0), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 0)):
        try:
            resource.setrlimit(lim, (val, val))
        except (ValueError, OSError):
            try:  # the hard limit may already be lower; lower the soft one at least
                resource.setrlimit(lim, (val, resource.getrlimit(lim)[1]))
            except (ValueError, OSError):
                pass
    send({"ready": True, "pid": os.getpid()})
    while True:
        req = recv()
        if req is None or req.get("cmd") == "exit":
            return
        if req.get("cmd") == "ping":
            send({"pong": True, "t": time.time()})
        elif req.get("cmd") == "eval":
            try:
                _evaluate(req, send)
            except CallTimeout:  # a stray timer tick in the harness itself
                _disarm()
                send({"fatal": "time limit hit outside a function call"})
            except Exception as e:
                send({"fatal": f"{type(e).__name__}: {e}"})


def _read_exact(f, n: int):
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


if __name__ == "__main__":
    main()
