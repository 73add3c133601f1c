"""Sandbox worker: runs generated world-model functions behind an operating-system boundary.

Two walls stand between generated code and the machine.

1. The static check (``_policy.py``) and a restricted run-time: no imports beyond a few standard
   modules seen through read-only views, no dunder or frame attributes, no attribute assignment,
   checked ``getattr``/``attrgetter``/``methodcaller``, no class creation.
2. An operating-system boundary that holds even if the first wall is breached:

   * the worker runs as an unprivileged user (uid/gid 65534, "nobody", when started as root) with
     ``no_new_privs`` set, so no set-uid program or file capability can give privileges back;
   * a seccomp-bpf filter, installed with ``prctl`` through ``ctypes`` (no extra package, no
     external tool), allows only what evaluating Python needs: memory management, signals and
     timers, reading requests from fd 0 and writing replies to fd 1, and exiting.  Every other
     system call fails with EPERM: no file can be opened, created, renamed or removed, no socket
     created, no process forked, executed, signalled or traced, no privilege changed;
   * resource limits: address space, CPU time per request, no file writes, no new descriptors,
     no new processes, no core dumps, and an interval timer per generated function.

Why seccomp through ctypes and not a sandboxing tool: the filter is about fifty BPF instructions
built here from the kernel's documented ABI, so it needs nothing beyond the Linux kernel and the
standard library -- ``pip install`` and the README's test command work unchanged on a fresh
Debian machine, inside Docker (whose default profile lets a process add its own filter) and in
CI.  bubblewrap and nsjail need an OS package (or a binary wheel) and user namespaces or root,
which containers and CI runners often withhold; firejail is set-uid; Landlock only covers files;
the PyPI bindings for libseccomp are unmaintained and still need the C library.  The filter
costs nothing per call: the kernel evaluates it.

Fresh worker per candidate.  A *zygote* process (``--zygote``) imports everything once, drops
its privileges and then only forks: each forked child installs the filter and serves one code
model ("candidate"), so a candidate that rebinds ``json.JSONEncoder.encode``, ``math.floor`` or
a builtin can only ever change its own results.  A forked child is ready after a few
milliseconds of CPU; starting a new Python process would cost about a hundred.  Children die
with the zygote (``PR_SET_PDEATHSIG``), the zygote kills them all and exits when its parent
closes the control socket (or dies), and only the zygote signals or reaps its children -- it
signals a child only while it is unreaped, so a recycled pid is never hit.

Protocol.  Zygote: length-prefixed commands on a Unix socket; a fork request carries the child's
request pipe, reply pipe and progress page as file descriptors (SCM_RIGHTS).  Child: 4-byte
big-endian length + UTF-8 JSON frames on fd 0 (requests) and fd 1 (replies); never pickle.

Request  {"cmd": "eval", "functions": [...], "det_paths": [...], "allowed": [...],
          "items": [{"state": ..., "action": ...}], "call_timeout": s, "max_reply": bytes}
Replies  one frame per item {"i", "v", "d", "m", "e", "f", "fb"} then {"done": true}.

``python -I _worker.py --probe`` confines itself and tries what generated code must not do
(open, socket, fork, exec, kill, setuid); it prints a JSON report, one check per line.
"""
from __future__ import annotations

import ast
import builtins
import ctypes
import importlib.util
import json
import math
import mmap
import os
import reprlib
import resource
import signal
import socket
import struct
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_policy():
    spec = importlib.util.spec_from_file_location("_cwm_policy", os.path.join(HERE, "_policy.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


policy = _load_policy()
import jsonpatch  # noqa: E402  (after the policy so a missing package is reported clearly)

MAX_ABS = 1e300  # largest magnitude a number in a reply may have
MAX_DEPTH = 50  # deepest nesting of a value returned by generated code
UNPRIVILEGED = 65534  # "nobody"/"nogroup" on Debian


# -- the operating-system boundary ------------------------------------------------------------

PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 22, 38
SECCOMP_MODE_FILTER = 2
RET_KILL_PROCESS, RET_ERRNO, RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
EPERM = 1
LD_W_ABS, JMP_JA, JMP_JEQ, JMP_JGE, RET_K = 0x20, 0x05, 0x15, 0x35, 0x06

# (audit arch, syscall numbers) per machine; each name is allowed outright unless listed in
# the checks of :func:`seccomp_program`.
ARCHES = {
    "x86_64": (0xC000003E, {
        "read": 0, "write": 1, "close": 3, "mmap": 9, "mprotect": 10, "munmap": 11, "brk": 12,
        "rt_sigaction": 13, "rt_sigprocmask": 14, "rt_sigreturn": 15, "sched_yield": 24, "mremap": 25,
        "madvise": 28, "getitimer": 36, "setitimer": 38, "getpid": 39, "exit": 60, "gettimeofday": 96,
        "getrlimit": 97, "getrusage": 98, "sigaltstack": 131, "setrlimit": 160, "gettid": 186,
        "time": 201, "futex": 202, "restart_syscall": 219, "clock_gettime": 228, "clock_getres": 229,
        "exit_group": 231, "prlimit64": 302}),
    # from asm-generic/unistd.h; not exercised by this bundle's CI
    "aarch64": (0xC00000B7, {
        "read": 63, "write": 64, "close": 57, "mmap": 222, "mprotect": 226, "munmap": 215, "brk": 214,
        "rt_sigaction": 134, "rt_sigprocmask": 135, "rt_sigreturn": 139, "sched_yield": 124, "mremap": 216,
        "madvise": 233, "getitimer": 102, "setitimer": 103, "getpid": 172, "exit": 93, "gettimeofday": 169,
        "getrlimit": 163, "getrusage": 165, "sigaltstack": 132, "setrlimit": 164, "gettid": 178,
        "futex": 98, "restart_syscall": 128, "clock_gettime": 113, "clock_getres": 114,
        "exit_group": 94, "prlimit64": 261}),
}


def seccomp_program(machine: str, read_fd: int = 0, write_fd: int = 1) -> bytes:
    """The BPF filter as bytes: allow the listed calls, ``read`` only on ``read_fd``, ``write``
    only on ``write_fd``, ``prlimit64`` only on the process itself; EPERM for everything else;
    kill the process for a foreign architecture or the x32 ABI."""
    if machine not in ARCHES or sys.byteorder != "little":
        raise OSError(f"no seccomp filter for this machine ({machine}, {sys.byteorder}-endian)")
    arch, nr = ARCHES[machine]
    arg0_lo, arg0_hi = 16, 20  # offsetof(struct seccomp_data, args[0]) and its upper half
    checks = {"read": read_fd, "write": write_fd, "prlimit64": 0}
    ins: list = []  # (code, jt, jf, k) with jt/jf/k possibly a label name

    def op(code, k=0, jt=0, jf=0):
        ins.append([code, jt, jf, k])

    op(LD_W_ABS, 4)  # arch
    op(JMP_JEQ, arch, 0, "kill")
    op(LD_W_ABS, 0)  # syscall number
    if machine == "x86_64":
        op(JMP_JGE, 0x40000000, "kill", 0)  # x32 numbers
    for name, n in sorted(nr.items(), key=lambda x: x[1]):
        op(JMP_JEQ, n, "check_" + name if name in checks else "allow", 0)
    op(JMP_JA, "deny")
    labels = {}
    for name, value in checks.items():
        labels["check_" + name] = len(ins)
        op(LD_W_ABS, arg0_lo)
        op(JMP_JEQ, value, 0, "deny")
        op(LD_W_ABS, arg0_hi)
        op(JMP_JEQ, 0, "allow", "deny")
    labels["deny"] = len(ins)
    op(RET_K, RET_ERRNO | EPERM)
    labels["allow"] = len(ins)
    op(RET_K, RET_ALLOW)
    labels["kill"] = len(ins)
    op(RET_K, RET_KILL_PROCESS)
    out = b""
    for pc, (code, jt, jf, k) in enumerate(ins):
        if code == JMP_JA:
            k = labels[k] - pc - 1 if isinstance(k, str) else k
        jt = labels[jt] - pc - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - pc - 1 if isinstance(jf, str) else jf
        if not (0 <= jt < 256 and 0 <= jf < 256):
            raise OSError("seccomp filter too long for 8-bit jumps")
        out += struct.pack("HBBI", code, jt, jf, k)
    return out


_libc = None


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _libc.prctl.restype = ctypes.c_int
    if _libc.prctl(option, arg2, arg3, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl({option}) failed: {os.strerror(e)}")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def drop_privileges() -> dict:
    """Become uid/gid 65534 when root, and set no_new_privs.  Returns what was done."""
    info = {"uid_before": os.geteuid()}
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(UNPRIVILEGED)
        os.setuid(UNPRIVILEGED)
        if os.geteuid() == 0 or os.getuid() == 0:
            raise OSError("could not drop root privileges")
    info["uid"] = os.geteuid()
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    info["no_new_privs"] = True
    return info


def install_filter(read_fd: int = 0, write_fd: int = 1) -> None:
    """Install the seccomp filter on this (single-threaded) process; irreversible."""
    prog = seccomp_program(os.uname().machine, read_fd, write_fd)
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.addressof(buf))
    _prctl(PR_SET_NO_NEW_PRIVS, 1)  # required before an unprivileged process may add a filter
    _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog))


# -- what generated code can see ----------------------------------------------------------------

_SAFE_BUILTIN_NAMES = [
    "abs", "all", "any", "bool", "callable", "chr", "dict", "divmod", "enumerate", "filter", "float",
    "format", "frozenset", "hash", "hasattr", "int", "isinstance", "issubclass", "iter", "len", "list",
    "map", "max", "min", "next", "ord", "pow", "range", "repr", "reversed", "round", "set", "slice",
    "sorted", "str", "sum", "tuple", "zip", "bin", "hex", "oct", "ascii", "bytes",
    "Exception", "ArithmeticError", "AssertionError", "AttributeError", "IndexError", "KeyError",
    "LookupError", "NameError", "NotImplementedError", "OverflowError", "RuntimeError",
    "StopIteration", "TypeError", "ValueError", "ZeroDivisionError", "RecursionError",
    "MemoryError", "ImportError", "True", "False", "None", "NotImplemented", "Ellipsis",
]


class ModuleView:
    """A read-only view of the names generated code may use from one module."""

    __slots__ = ("_view_name", "_view_attrs")

    def __init__(self, name: str, attrs: dict):
        object.__setattr__(self, "_view_name", name)
        object.__setattr__(self, "_view_attrs", types.MappingProxyType(dict(attrs)))

    def __getattr__(self, name):
        try:
            return self._view_attrs[name]
        except KeyError:
            raise AttributeError(f"{self._view_name}.{name} is not available in world-model code") from None

    def __setattr__(self, name, value):
        raise AttributeError(f"module {self._view_name} is read-only in world-model code")

    def __delattr__(self, name):
        raise AttributeError(f"module {self._view_name} is read-only in world-model code")

    def __dir__(self):
        return sorted(self._view_attrs)

    def __repr__(self):
        return f"<module {self._view_name} (restricted)>"


def _checked(name) -> str:
    if not policy.name_allowed(name):
        raise AttributeError(f"attribute {name!r} is not accessible in world-model code")
    return name


def _safe_getattr(obj, name, *default):
    return getattr(obj, _checked(name), *default)


def _safe_attrgetter(*names):
    for n in names:
        if type(n) is not str:
            raise TypeError("attribute name must be a string")
        for part in n.split("."):
            _checked(part)
    import operator
    return operator.attrgetter(*names)


def _safe_methodcaller(name, *args, **kwargs):
    import operator
    return operator.methodcaller(_checked(name), *args, **kwargs)


def _safe_type(obj):
    """``type(x)`` only: the three-argument form would create classes."""
    return type(obj)


_safe_type.__name__ = _safe_type.__qualname__ = "type"


def _safe_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level or name not in VIEWS:
        raise ImportError(f"import of {name!r} is not allowed in world-model code")
    return VIEWS[name]


def _quiet_print(*args, **kwargs):
    return None


def _views() -> dict:
    out = {}
    for name in sorted(policy.ALLOWED_MODULES):
        mod = __import__(name)
        attrs = {n: getattr(mod, n) for n in policy.exposed_names(name)}
        if name == "operator":
            attrs.update(attrgetter=_safe_attrgetter, methodcaller=_safe_methodcaller)
        out[name] = ModuleView(name, attrs)
    return out


VIEWS = _views()
SAFE_BUILTINS = {n: getattr(builtins, n) for n in _SAFE_BUILTIN_NAMES if hasattr(builtins, n)}
SAFE_BUILTINS.update(__import__=_safe_import, getattr=_safe_getattr, print=_quiet_print, type=_safe_type)


# -- time-outs --------------------------------------------------------------------------------

class CallTimeout(BaseException):
    """Raised by the interval timer; a BaseException so ``except Exception`` cannot catch it."""


def _on_alarm(signum, frame):
    raise CallTimeout()


def _arm(t: float) -> None:
    signal.setitimer(signal.ITIMER_REAL, t, t)


def _disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0, 0)


# -- evaluation -------------------------------------------------------------------------------

def _jcopy(x):
    """Fast deep copy of JSON-like data (dicts, lists, scalars)."""
    if type(x) is dict:
        return {k: _jcopy(v) for k, v in x.items()}
    if type(x) is list:
        return [_jcopy(v) for v in x]
    return x


class NotPlain(ValueError):
    pass


def plain(x, depth: int = 0, room: list | None = None):
    """A plain-JSON copy of ``x`` (dict/list/str/int/float/bool/None of exactly those types;
    finite numbers within +-1e300; valid Unicode), or :class:`NotPlain` saying why not.
    ``room`` (a one-item list of bytes left) stops the walk early for oversized data."""
    if room is None:
        room = [MAX_REPLY[0]]
    room[0] -= 8
    if room[0] < 0:
        raise NotPlain(f"is larger than the {MAX_REPLY[0]}-byte reply limit")
    t = type(x)
    if x is None or t is bool:
        return x
    if t is str:
        room[0] -= len(x)
        if room[0] < 0:
            raise NotPlain(f"is larger than the {MAX_REPLY[0]}-byte reply limit")
        try:
            x.encode("utf-8")
        except UnicodeEncodeError:
            raise NotPlain("holds a string that is not valid Unicode") from None
        return x
    if t is int:
        if -MAX_ABS <= x <= MAX_ABS:
            return x
        raise NotPlain("holds an integer beyond +-1e300")
    if t is float:
        if math.isfinite(x) and -MAX_ABS <= x <= MAX_ABS:
            return x
        raise NotPlain(f"holds {x!r}, which is not a JSON number" if not math.isfinite(x)
                       else "holds a number beyond +-1e300")
    if depth >= MAX_DEPTH:
        raise NotPlain(f"is nested deeper than {MAX_DEPTH} levels")
    if isinstance(x, dict):  # dict subclasses from collections, read with dict's own methods
        out = {}
        for k, v in dict.items(x):
            if type(k) is not str:
                raise NotPlain(f"holds a dict key of type {type(k).__name__} (JSON keys are strings)")
            out[plain(k, depth + 1, room)] = plain(v, depth + 1, room)
        return out
    if isinstance(x, list):
        return [plain(v, depth + 1, room) for v in list.__iter__(x)]
    if isinstance(x, tuple):
        return [plain(v, depth + 1, room) for v in tuple.__iter__(x)]
    raise NotPlain(f"holds a {t.__name__}, which is not plain JSON")


def _describe(e: BaseException) -> str:
    if isinstance(e, CallTimeout):
        return "time limit exceeded"
    line = None
    try:
        tb = e.__traceback__
        while tb is not None:  # deepest frame that belongs to generated code
            if tb.tb_frame.f_code.co_filename.startswith("<phi:"):
                line = tb.tb_lineno
            tb = tb.tb_next
        msg = str(e)
    except BaseException:  # str() of a hostile exception may itself fail
        msg = "(message could not be shown)"
    if len(msg) > 300:
        msg = msg[:300] + "..."
    return f"{type(e).__name__}: {msg}" + (f" (line {line})" if line else "")


_short = reprlib.Repr()
_short.maxstring = _short.maxother = 200


def _text(x) -> str:
    if type(x) is str:
        return x[:300]
    try:
        return _short.repr(x)[:300]
    except BaseException:
        return f"<{type(x).__name__}>"


CALL_TIMEOUT = [1.0]
MAX_REPLY = [1 << 20]
STATIC_CHECK = [True]
_CACHE: dict = {}
PROGRESS: list = [None]  # shared page: index of the function running now (-1: none)


def _mark(index: int) -> None:
    """Tell the parent which function is running, so a hang can be pinned on it."""
    if PROGRESS[0] is not None:
        struct.pack_into(">i", PROGRESS[0], 0, index)


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
            if STATIC_CHECK[0]:
                tree = policy.check_source(spec["source"], spec["name"], self.kind)
                env = {"__builtins__": dict(SAFE_BUILTINS), "__name__": f"phi_{self.fid}"}
            else:  # only to test the operating-system boundary on its own
                tree = ast.parse(spec["source"])
                env = {"__builtins__": builtins, "__name__": f"phi_{self.fid}"}
            code = compile(tree, f"<phi:{self.fid}>", "exec")
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
            _disarm()
            self.error = "module body exceeded the time limit"
        except BaseException as e:  # anything the module body raised, SystemExit included
            _disarm()
            self.error = f"module failed to load: {_describe(e)}"


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
    except BaseException as e:
        _disarm()
        return None, _describe(e)


_OPS = {"add", "remove", "replace", "move", "copy", "test"}


def _inside(path: str, allowed: list) -> bool:
    return any(path == p or path.startswith(p + "/") for p in allowed)


def check_patch(patch, allowed: list):
    """Validate a returned patch; returns (list of plain ops, error or None)."""
    if isinstance(patch, dict) and "op" in patch:
        patch = [patch]
    if type(patch) not in (list, tuple):
        return None, f"must return a JSON patch (a list of operations), got {type(patch).__name__}"
    ops, room = [], [MAX_REPLY[0]]
    for i, op in enumerate(patch):
        if not isinstance(op, dict):
            return None, f"patch operation {i} is a {type(op).__name__}, not a dict"
        try:
            op = plain(op, 0, room)
        except NotPlain as e:
            return None, f"patch operation {i} {e}"
        except RecursionError:
            return None, f"patch operation {i} is nested too deeply"
        name, path = op.get("op"), op.get("path")
        if name not in _OPS:
            return None, f"patch operation {i} has unknown op {_text(name)}"
        if type(path) is not str:
            return None, f"patch operation {i} has no string 'path'"
        if name in ("add", "replace", "test") and "value" not in op:
            return None, f"patch operation {i} ({name} {path}) has no 'value'"
        if name in ("move", "copy") and type(op.get("from")) is not str:
            return None, f"patch operation {i} ({name}) has no string 'from'"
        if name != "test" and not _inside(path, allowed):
            return None, f"patch operation {i} changes {_text(path)}, which is not a deterministic variable"
        if name == "move" and not _inside(op["from"], allowed):
            return None, f"patch operation {i} moves from {_text(op['from'])}, which is not a deterministic variable"
        ops.append(op)
    return ops, None


def _apply(doc, ops):
    """Apply validated ops to a copy of ``doc``; returns (new doc, error or None)."""
    if not ops:
        return doc, None
    new = _jcopy(doc)
    try:
        new = jsonpatch.apply_patch(new, ops, in_place=True)
        return new, None
    except CallTimeout:
        raise
    except Exception as e:
        return doc, f"patch could not be applied: {type(e).__name__}: {str(e)[:200]}"


_MISSING = object()


def _get(doc, pointer: str):
    cur = doc
    try:
        for tok in pointer[1:].split("/") if pointer else []:
            tok = tok.replace("~1", "/").replace("~0", "~")
            cur = cur[int(tok)] if type(cur) is list else cur[tok]
        return cur
    except (KeyError, IndexError, ValueError, TypeError):
        return _MISSING


def _patched(fn, cur, args, allowed, errors):
    """Run a patch-returning function on ``args`` and apply its patch to ``cur``; on any failure
    record an E_exec error for ``fn`` and return ``cur`` unchanged."""
    out, err = _call(fn, *args)
    if err is None:
        try:  # checking and applying run under the same time limit as the call
            _arm(CALL_TIMEOUT[0])
            try:
                ops, err = check_patch(out, allowed)
                if err is None:
                    cur, err = _apply(cur, ops)
            finally:
                _disarm()
        except CallTimeout:
            _disarm()
            err = "checking or applying the patch exceeded the time limit"
        except (MemoryError, RecursionError) as e:
            err = f"checking the patch failed: {type(e).__name__}"
    if err is not None:
        errors.append([fn.fid, err])
    return cur


def _evaluate(req: dict, send) -> None:
    CALL_TIMEOUT[0] = float(req.get("call_timeout", 1.0))
    MAX_REPLY[0] = int(req.get("max_reply", 1 << 20))
    STATIC_CHECK[0] = bool(req.get("static_check", True))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    budget = float(req.get("cpu_budget", 60.0))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(ru.ru_utime + ru.ru_stime + budget) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

    pre, act, dyn = {}, {}, []
    for index, spec in enumerate(req["functions"]):
        key = (spec["fid"], spec["kind"], spec.get("action"), spec["name"], spec["source"],
               spec.get("poisoned"), index, STATIC_CHECK[0])
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
                if not (type(out) in (tuple, list) and len(out) == 2 and type(out[0]) is bool):
                    err = f"precondition must return (bool, str), got {type(out).__name__}" + (
                        f" of length {len(out)}" if type(out) in (tuple, list) else "")
            if err is not None:
                errors.append([fn.fid, err])
                continue
            if not out[0]:
                valid = False
                failed.append(fn.fid)
                feedback.append(_text(out[1]))
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
        reply = {"i": start + i, "v": valid, "d": det, "m": missing, "e": errors, "f": failed, "fb": feedback}
        data = _encode(reply)
        if data is None or len(data) > MAX_REPLY[0]:  # fall back to the input's values
            why = ("the prediction is not plain JSON" if data is None else
                   f"the prediction is too large ({len(data)} bytes, limit {MAX_REPLY[0]})")
            det = [None if _get(state, p) is _MISSING else _get(state, p) for p in det_paths]
            data = _encode({"i": start + i, "v": valid, "d": det, "m": [], "e": errors + [["__worker__", why]],
                            "f": failed, "fb": [_text(x) for x in feedback]})
        send(data)
    send(_encode({"done": True}))


def _encode(obj) -> bytes | None:
    try:
        return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()
    except (ValueError, TypeError, RecursionError):
        return None


# -- serving one candidate ---------------------------------------------------------------------

def _read_exact(fd: int, n: int):
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def serve(read_fd: int = 0, write_fd: int = 1) -> None:
    """Answer requests until the parent closes the pipe or says exit."""
    def send(data: bytes) -> None:
        _write_all(write_fd, struct.pack(">I", len(data)) + data)

    signal.signal(signal.SIGALRM, _on_alarm)
    while True:
        head = _read_exact(read_fd, 4)
        if head is None:
            return
        (n,) = struct.unpack(">I", head)
        body = _read_exact(read_fd, n)
        if body is None:
            return
        req = json.loads(body)
        if req.get("cmd") == "exit":
            return
        if req.get("cmd") == "eval":
            try:
                _evaluate(req, send)
            except CallTimeout:  # a stray timer tick in the harness itself
                _disarm()
                send(_encode({"fatal": "time limit hit outside a function call"}))
            except Exception as e:
                send(_encode({"fatal": f"{type(e).__name__}: {str(e)[:300]}"}))


def _limit(lim: int, val: int) -> None:
    try:
        resource.setrlimit(lim, (val, val))
    except (ValueError, OSError):
        try:  # the hard limit may already be lower; lower the soft one at least
            resource.setrlimit(lim, (val, resource.getrlimit(lim)[1]))
        except (ValueError, OSError):
            pass


def child(req_fd: int, rep_fd: int, prog_fd: int, mem_mb: int, zygote_pid: int) -> None:
    """Body of a forked worker: confine this process, then serve one candidate."""
    os.setsid()  # own process group, killed as a whole
    os.dup2(req_fd, 0)
    os.dup2(rep_fd, 1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    PROGRESS[0] = mmap.mmap(prog_fd, 8)
    _mark(-1)
    os.closerange(3, 1 << 16)  # control socket, the pipes' originals, the page's descriptor
    sys.setrecursionlimit(1000)
    sys.stdout = sys.stderr = None  # fd 1 is the reply pipe: nothing else may write to it
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for lim, val in ((resource.RLIMIT_AS, mem_mb * 2**20), (resource.RLIMIT_FSIZE, 0),
                     (resource.RLIMIT_NPROC, 0), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 3)):
        _limit(lim, val)
    info = {"ready": True, "pid": os.getpid(), "uid": os.geteuid(), "gid": os.getegid()}
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote_pid:  # the zygote died before we could ask to follow it
            os._exit(1)
        install_filter(0, 1)
        info["seccomp"] = True
    except OSError as e:
        info["seccomp"] = False
        info["why"] = str(e)
    try:  # the filter must refuse this
        os.close(os.open("/", os.O_RDONLY))
        info["open_denied"] = False
    except PermissionError:
        info["open_denied"] = True
    except OSError as e:
        info["open_denied"] = False
        info["why"] = info.get("why") or f"open('/') failed with {e} instead of EPERM"
    data = _encode(info)
    _write_all(1, struct.pack(">I", len(data)) + data)
    serve(0, 1)


def zygote(sock_fd: int) -> None:
    """Fork a confined child for each request on the control socket; kill them when told.

    Commands: ``F`` + memory limit (MB, 4 bytes) with three descriptors -> ``{"pid"}``;
    ``K`` + pid (4 bytes) + wait flag (1 byte) -> ``{"pid", "status"}``.  Only this process
    signals or reaps its children, and only while they are unreaped, so a recycled pid is never hit.
    """
    sock = socket.socket(fileno=sock_fd)
    try:
        os.chdir("/")
        info = drop_privileges()
        info.update(ready=True, pid=os.getpid())
    except OSError as e:
        info = {"ready": False, "why": f"cannot drop privileges: {e}"}
    _reply(sock, info)
    if not info["ready"]:
        return
    import gc
    gc.collect()
    gc.freeze()  # children's collections then skip inherited objects (fewer copy-on-write faults)
    kids: set[int] = set()
    ended: dict[int, str] = {}  # how recently reaped children ended
    me = os.getpid()

    def reap_dead() -> None:
        while kids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            kids.discard(pid)
            ended[pid] = _status(status)
            while len(ended) > 256:
                del ended[next(iter(ended))]

    try:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(sock, 64, 3)
            except OSError:
                break
            if not data:
                break
            reap_dead()
            cmd = data[:1]
            if cmd == b"F" and len(fds) == 3 and len(data) >= 5:
                (mem_mb,) = struct.unpack(">I", data[1:5])
                pid = os.fork()
                if pid == 0:
                    try:
                        sock.close()
                        child(fds[0], fds[1], fds[2], mem_mb, me)
                    finally:
                        os._exit(0)
                for fd in fds:
                    os.close(fd)
                kids.add(pid)
                _reply(sock, {"pid": pid})
            elif cmd == b"K" and len(data) >= 6:
                (pid,) = struct.unpack(">i", data[1:5])
                if pid in kids:
                    _kill(pid)
                    if data[5:6] == b"\x01":
                        try:
                            ended[pid] = _status(os.waitpid(pid, 0)[1])
                        except ChildProcessError:
                            pass
                        kids.discard(pid)
                _reply(sock, {"pid": pid, "status": ended.get(pid)})
            else:
                for fd in fds:
                    os.close(fd)
                _reply(sock, {"error": "unknown command"})
    finally:
        for pid in kids:
            _kill(pid)
        for pid in kids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _kill(pid: int) -> None:
    for f in (os.killpg, os.kill):
        try:
            f(pid, signal.SIGKILL)
        except OSError:
            pass


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "?"
        return f"killed by signal {sig} ({name})"
    return f"exit code {os.WEXITSTATUS(status)}"


def _reply(sock: socket.socket, obj) -> None:
    data = _encode(obj)
    sock.sendall(struct.pack(">I", len(data)) + data)


# -- self-test of the boundary ----------------------------------------------------------------

def probe() -> None:
    """Confine this process like a worker and report which forbidden operations were refused."""
    import tempfile
    target = os.path.join(tempfile.gettempdir(), f"cwm_probe_{os.getpid()}")
    report = {"machine": os.uname().machine}
    try:
        report.update(drop_privileges())
        install_filter(0, 1)
        report["seccomp"] = True
    except OSError as e:
        report["seccomp"] = False
        report["why"] = str(e)
    checks = {
        "open a file for writing": lambda: open(target, "w"),
        "open a file for reading": lambda: open("/etc/hostname", "rb"),
        "list a directory": lambda: os.listdir("/"),
        "create a socket": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
        "fork": os.fork,
        "execute a program": lambda: os.execv("/bin/true", ["/bin/true"]),
        "signal the parent": lambda: os.kill(os.getppid(), 0),
        "become root": lambda: os.setuid(0),
        "write to stderr": lambda: os.write(2, b"x"),
        "remove a file": lambda: os.unlink(target),
        "make a directory": lambda: os.mkdir(target + "_d"),
    }
    for name, f in checks.items():
        try:
            f()
            report[name] = "ALLOWED"
        except PermissionError:
            report[name] = "refused"
        except OSError as e:
            report[name] = f"failed otherwise: {e}"
    os.write(1, (json.dumps(report, indent=1) + "\n").encode())
    os._exit(0)


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--zygote":
        zygote(int(sys.argv[2]))
    elif len(sys.argv) >= 2 and sys.argv[1] == "--probe":
        probe()
    else:
        sys.exit("usage: python -I _worker.py --zygote FD | --probe")


if __name__ == "__main__":
    main()
