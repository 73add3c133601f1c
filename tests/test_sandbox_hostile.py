"""Hostile generated code against the sandbox, each case judged by its side effects.

After every case the test checks what the code tried to change, not only that an error came
back: a canary file in a world-writable folder (so the unprivileged uid alone would not protect
it) is unchanged and nothing new appeared next to it; no socket owned by the worker's uid is
listening; no process forked by a worker is alive; the host's memory stayed bounded; an honest
model evaluated afterwards gives exactly the results it gave before any hostile code ran.

Three groups:
* ``CHECKED``: the normal sandbox (static check + operating-system boundary);
* ``RAW``: the static check switched off (``static_check=False``), so full Python runs inside
  the OS boundary alone -- this is what holds if the first wall is ever breached;
* ``FORGED``: a lying worker, simulated at the protocol level against the parent's reader.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import tempfile
import threading
import time

import pytest

from cassandra_wm.codewm.errors import E_EXEC, Transition, error_type
from cassandra_wm.codewm.model import CodeModel, make_function
from cassandra_wm.codewm.sandbox import BadReply, FrameReader, Sandbox, decode_reply
from cassandra_wm.envs.base import ActionSpec, ArgSpec, EnvSpec, VariableSpec

SPEC = EnvSpec(
    name="toy", manual="A toy shop.",
    variables=(VariableSpec("money", "/money", "cash", "stochastic", low=0),
               VariableSpec("price", "/shop/price", "price", "deterministic", low=1, high=10),
               VariableSpec("day", "/day", "day counter", "deterministic", low=0, high=1000, integer=True),
               VariableSpec("log", "/log", "list of past prices", "deterministic", type="categorical")),
    actions=(ActionSpec("set_price", "set the price", (ArgSpec("price", "float", low=1, high=10),)),
             ActionSpec("wait", "do nothing")))
STATE = {"money": 50.0, "shop": {"price": 3.0}, "day": 4, "log": []}
WAIT = {"name": "wait", "args": {}}
UNCHANGED = {"price": 3.0, "day": 4, "log": []}

# An honest model that leans on everything hostile code tries to tamper with (json, math,
# decimal, builtins, str.format): if any tampering leaked, its results would change.
HONEST = [
    ("action", "set_price", 'import math\ndef set_price(state, action):\n'
     '    return [{"op": "replace", "path": "/shop/price", "value": round(math.floor(action["args"]["price"] * 4) / 4, 2)}]\n'),
    ("precondition", "set_price", 'def small_step(state, action):\n'
     '    ok = abs(action["args"]["price"] - state["shop"]["price"]) <= 2\n'
     '    return ok, "moves {:.1f} at most".format(2.0)\n'),
    ("dynamic", None, 'import json, decimal, math\ndef tick(state):\n'
     '    extra = len(json.dumps({"a": 1})) - 8 + int(decimal.Decimal("2.5") * 3) - 7 + math.floor(0.5)\n'
     '    return [{"op": "replace", "path": "/day", "value": state["day"] + 1 + extra},\n'
     '            {"op": "add", "path": "/log/-", "value": sorted([state["shop"]["price"], 1])[-1]}]\n'),
]
HONEST_ITEMS = [(STATE, WAIT), (STATE, {"name": "set_price", "args": {"price": 4.3}}),
                (STATE, {"name": "set_price", "args": {"price": 9.0}}), ({**STATE, "day": 10}, WAIT)]


def phi(*parts) -> CodeModel:
    m = CodeModel(env_name="toy")
    for kind, action, src in parts:
        m = m.with_function(make_function(kind, action, src, m, origin="test"))
    return m


# -- side-effect probes ------------------------------------------------------------------------

class Arena:
    """A world-writable folder with a world-writable canary file, outside the sandbox."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="cwm_arena_")
        os.chmod(self.dir, 0o777)
        self.canary = os.path.join(self.dir, "canary.txt")
        with open(self.canary, "w") as f:
            f.write("the canary is alive\n")
        os.chmod(self.canary, 0o666)
        self.snapshot = self._state()

    def _state(self):
        st = os.stat(self.canary)
        with open(self.canary, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        return sorted(os.listdir(self.dir)), digest, st.st_mtime_ns, stat.S_IMODE(st.st_mode), st.st_uid

    def check(self):
        assert os.path.exists(self.canary), "the canary file was removed or renamed"
        assert self._state() == self.snapshot, "the canary file or its folder changed"


def listening(uid: int) -> set:
    """Local ports in LISTEN state owned by ``uid`` (TCP and TCP6), plus bound UDP ports."""
    out = set()
    for name in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/net/{name}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[7]) == uid and (name.startswith("udp") or cols[3] == "0A"):
                out.add((name, int(cols[1].split(":")[1], 16)))
    return out


def processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) for every live process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    tail = f.read().rsplit(")", 1)[1].split()
                if tail[0] != "Z":
                    out[int(d)] = (int(tail[1]), int(tail[3]))
            except (OSError, IndexError, ValueError):
                pass
    return out


def related(roots: set[int]) -> set[int]:
    """Live processes in the trees and sessions of ``roots`` (the roots included)."""
    procs = processes()
    found = {p for p in roots if p in procs}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, sid) in procs.items():
            if pid not in found and (ppid in found or sid in found or ppid in roots or sid in roots):
                found.add(pid)
                grew = True
    return found


def sandbox_pids(sb: Sandbox) -> set[int]:
    pids = {w.pid for w in sb._workers.values()}
    if sb._spare is not None:
        pids.add(sb._spare.pid)
    if sb._zygote is not None:
        pids.add(sb._zygote.proc.pid)
    return pids


def settles(cond, wait: float = 5.0) -> bool:
    """``cond()`` becomes true within ``wait`` seconds (a killed process takes a moment to go)."""
    end = time.monotonic() + wait
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def arena():
    a = Arena()
    yield a
    import shutil
    shutil.rmtree(a.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def baseline():
    with Sandbox(SPEC, call_timeout=0.3, hang_slack=0.7, memory_mb=512) as sb:
        return [r.to_dict() for r in sb.evaluate(phi(*HONEST), HONEST_ITEMS)]


def _make(static_check: bool):
    sb = Sandbox(SPEC, call_timeout=0.3, hang_slack=0.7, memory_mb=512, static_check=static_check).start()
    seen: set[int] = set()
    yield sb, seen
    seen |= sandbox_pids(sb)
    sb.close()
    assert settles(lambda: not related(seen)), "processes of the sandbox outlived close()"


@pytest.fixture(scope="module")
def checked():
    yield from _make(True)


@pytest.fixture(scope="module")
def raw():
    yield from _make(False)


def run_case(sb, seen, arena, baseline, src, kind="dynamic", expect="error"):
    ports = listening(sb.isolation.get("uid", 65534))
    rss = rss_mb()
    model = phi((kind, "wait" if kind != "dynamic" else None, src))
    t0 = time.monotonic()
    res = sb.evaluate(model, [(STATE, WAIT), (STATE, WAIT)])
    assert time.monotonic() - t0 < 20, "the case was not stopped in time"
    seen |= sandbox_pids(sb)
    if expect == "error":
        for r in res:
            assert r.errors, "hostile code ran without an error being reported"
            assert error_type(SPEC, r, Transition(STATE, WAIT, True, STATE)) == E_EXEC
            if kind == "dynamic":
                assert r.det == UNCHANGED  # the broken function contributed nothing
    # side effects
    arena.check()
    assert listening(sb.isolation.get("uid", 65534)) <= ports, "a socket is listening"
    assert settles(lambda: related(sandbox_pids(sb)) <= sandbox_pids(sb)), "stray processes"
    assert rss_mb() - rss < 150, "host memory grew"
    # later honest results are unchanged
    again = [r.to_dict() for r in sb.evaluate(phi(*HONEST), HONEST_ITEMS)]
    assert again == baseline, "an honest model's results changed after hostile code ran"
    return res


# -- the cases ---------------------------------------------------------------------------------

def d(body: str, head: str = "") -> str:
    """A dynamic function ``f(state)`` with ``body`` (lines joined with ';' allowed)."""
    lines = "".join(f"    {line}\n" for line in body.split("\n"))
    return f"{head}def f(state):\n{lines}"


CHECKED = {
    # files
    "open_write": d('open("{canary}", "w").write("x")\nreturn []'),
    "open_append_via_builtins_dict": d('__builtins__["open"]("{canary}", "a")\nreturn []'),
    "os_remove": d('os.remove("{canary}")\nreturn []', "import os\n"),
    "os_rename": d('os.rename("{canary}", "{canary}.x")\nreturn []', "import os\n"),
    "from_os_import": d('system("rm {canary}")\nreturn []', "from os import system\n"),
    "shutil": d('shutil.rmtree("{dir}")\nreturn []', "import shutil\n"),
    "pathlib": d('pathlib.Path("{canary}").write_text("x")\nreturn []', "import pathlib\n"),
    "io_open": d('io.open("{canary}", "w")\nreturn []', "import io\n"),
    "dunder_import": d('__import__("os").remove("{canary}")\nreturn []'),
    "importlib": d('importlib.import_module("os").remove("{canary}")\nreturn []', "import importlib\n"),
    "builtins_module": d('builtins.open("{canary}", "w")\nreturn []', "import builtins\n"),
    "dotted_import": d('os.path.exists("/")\nreturn []', "import os.path\n"),
    "relative_import": d('return []', "from . import x\n"),
    # processes and network
    "subprocess": d('subprocess.run(["rm", "{canary}"])\nreturn []', "import subprocess\n"),
    "socket_listen": d('s = socket.socket()\ns.bind(("127.0.0.1", 0))\ns.listen()\nreturn []', "import socket\n"),
    "signal_module": d('signal.alarm(0)\nreturn []', "import signal\n"),
    "ctypes": d('ctypes.CDLL(None).system(b"rm {canary}")\nreturn []', "import ctypes\n"),
    # modules reached through allowed modules
    "statistics_sys": d('statistics.sys.modules["os"].remove("{canary}")\nreturn []', "import statistics\n"),
    "statistics_random": d('statistics.random.seed(1)\nreturn []', "import statistics\n"),
    "typing_sys": d('typing.sys.modules["os"].remove("{canary}")\nreturn []', "import typing\n"),
    "json_submodule": d('json.decoder.scanstring("x", 0)\nreturn []', "import json\n"),
    "re_submodule": d('re.enum.sys\nreturn []', "import re\n"),
    "collections_abc": d('collections.abc.Mapping\nreturn []', "import collections\n"),
    "copy_dispatch_table": d('copy.dispatch_table[int] = None\nreturn []', "import copy\n"),
    "from_typing_import_hints": d('return get_type_hints(f)', "from typing import get_type_hints\n"),
    # string-named attribute gadgets
    "attrgetter_globals": d('return operator.attrgetter("__init__.__globals__")(1)', "import operator\n"),
    "attrgetter_split": d('return operator.attrgetter("real", "__class__")(1)', "import operator\n"),
    "methodcaller_subclasses": d('return operator.methodcaller("__subclasses__")(type(1))', "import operator\n"),
    "methodcaller_format": d('return operator.methodcaller("format", 1)("{0.__class__}")', "import operator\n"),
    "getattr_dunder": d('return getattr(getattr((), "__class__"), "__base__")'),
    "getattr_computed_name": d('n = "_" + "_class__"\nreturn getattr(1, n)'),
    "getattr_format": d('return getattr("{0.__class__}", "format")(1)'),
    "getattr_frame_attr": d('g = (x for x in [1])\nreturn getattr(g, "gi_frame")'),
    "map_getattr": d('return list(map(getattr, [1], ["__class__"]))'),
    "str_format_attr": d('return "{0.__class__.__base__.__subclasses__}".format(1)'),
    "str_format_nested_spec": d('return "{0:{1.__class__}}".format(1, 2)'),
    "str_format_variable": d('t = "{0.__class__}"\nreturn t.format(1)'),
    "str_format_unbound": d('return str.format("{0.__class__}", 1)'),
    "str_format_map": d('return "{x.__class__}".format_map({"x": 1})'),
    "string_formatter": d('return string.Formatter().get_field("0.__class__", [1], {})', "import string\n"),
    "typing_get_type_hints": d('return typing.get_type_hints(f)', "import typing\n"),
    "typing_forward_ref": d('return typing.ForwardRef("1")', "import typing\n"),
    "functools_update_wrapper": d('def g():\n    pass\nfunctools.update_wrapper(g, getattr, (), ("__globals__",))\nreturn g.os',
                                  "import functools\n"),
    "functools_singledispatch": d('return functools.singledispatch(len)', "import functools\n"),
    "match_class_keyword": d('match 1:\n    case int(__class__=c):\n        return c\nreturn []'),
    "type_three_args": d('return type("S", (str,), {"startswith": lambda s, p: True})("/money")'),
    "generator_frame": d('g = (x for x in [1])\nreturn g.gi_frame.f_back.f_globals'),
    "traceback_frame": d('try:\n    1 / 0\nexcept Exception as e:\n    return e.__traceback__.tb_frame'),
    "cell_contents": d('x = 1\nh = lambda: x\nreturn h.cell_contents'),
    "object_subclasses": d('return object.__subclasses__()'),
    "vars": d('return vars()'),
    "globals": d('return globals()'),
    "breakpoint": d('breakpoint()\nreturn []'),
    "eval": d('return eval("1 + 1")'),
    "exec": d('exec("x = 1")\nreturn []'),
    "compile": d('return compile("1", "x", "eval")'),
    "class_def": d('return []', "class A:\n    pass\n"),
    "global_statement": d('global X\nX = 2\nreturn []', "X = 1\n"),
    "async_def": "async def f(state):\n    return []\n",
    # monkey-patching shared modules and builtins
    "patch_json_encoder": d('json.JSONEncoder.encode = lambda self, o: "{}"\nreturn []', "import json\n"),
    "patch_math_floor": d('math.floor = lambda x: 0\nreturn []', "import math\n"),
    "del_math_attr": d('del math.pi\nreturn []', "import math\n"),
    "patch_decimal_context": d('decimal.getcontext().prec = 1\nreturn []', "import decimal\n"),
    "setattr_builtin": d('setattr(len, "x", 1)\nreturn []'),
    # resource exhaustion
    "infinite_loop": d('while True:\n    pass'),
    "swallowing_loop": d('while True:\n    try:\n        while True:\n            pass\n    except:\n        pass'),
    "loop_in_finally": d('try:\n    while True:\n        pass\nfinally:\n    while True:\n        pass'),
    "loop_at_import": d('return []', "while True:\n    pass\n"),
    "c_level_hang": d('return [{"op": "replace", "path": "/day", "value": sum(range(10 ** 12))}]'),
    "regex_backtracking": d('return re.match("(a+)+$", "a" * 64 + "b")', "import re\n"),
    "memory_bomb": d('x = [0] * (10 ** 10)\nreturn []'),
    "memory_growth": d('x = []\nwhile True:\n    x.append(" " * 10 ** 6)'),
    "deep_recursion": d('return f(state)'),
    "huge_int_to_str": d('return [{"op": "replace", "path": "/day", "value": str(10 ** 100000)}]'),
    "exception_huge_message": d('raise ValueError("x" * 10 ** 7)'),
    "exception_unprintable": d('raise ValueError(10 ** 5000)'),
    "print_flood": d('for i in range(1000):\n    print("x" * 1000)\nreturn 5'),
    "exit_name": d('exit(1)'),
    "system_exit_name": d('raise SystemExit(1)'),
    # unusable or oversized predictions
    "value_10_pow_400": d('return [{"op": "replace", "path": "/day", "value": 10 ** 400}]'),
    "value_nan": d('return [{"op": "replace", "path": "/day", "value": float("nan")}]'),
    "value_inf": d('return [{"op": "replace", "path": "/day", "value": 1e308 * 10}]'),
    "value_20mb_string": d('return [{"op": "replace", "path": "/log", "value": "x" * (20 << 20)}]'),
    "value_huge_list": d('return [{"op": "replace", "path": "/log", "value": [0] * 10 ** 6}]'),
    "value_deep_nesting": d('x = []\nfor i in range(100000):\n    x = [x]\nreturn [{"op": "replace", "path": "/log", "value": x}]'),
    "value_lone_surrogate": d('return [{"op": "replace", "path": "/log", "value": "\\ud800"}]'),
    "value_set": d('return [{"op": "replace", "path": "/day", "value": {1, 2}}]'),
    "value_decimal": d('return [{"op": "replace", "path": "/day", "value": decimal.Decimal(1)}]', "import decimal\n"),
    "value_int_key": d('return [{"op": "replace", "path": "/log", "value": {1: 2}}]'),
    "path_forbidden": d('return [{"op": "replace", "path": "/money", "value": 1e9}]'),
    "path_move_from_forbidden": d('return [{"op": "move", "from": "/money", "path": "/day"}]'),
    "path_root": d('return [{"op": "replace", "path": "", "value": {}}]'),
    "path_escaped_slash": d('return [{"op": "replace", "path": "/shop~1price/../../money", "value": 0}]'),
    "path_not_str": d('return [{"op": "replace", "path": ["/day"], "value": 1}]'),
    "path_bytes": d('return [{"op": "replace", "path": b"/day", "value": 1}]'),
    "path_namedtuple": d('P = collections.namedtuple("P", "a")\nreturn [{"op": "replace", "path": P("/money"), "value": 1}]',
                         "import collections\n"),
    "op_not_str": d('return [{"op": 1, "path": "/day", "value": 1}]'),
    "returns_generator": d('return (x for x in [1])'),
    "returns_none": d('state["day"] = 99'),
    "returns_int": d('return 42'),
    "precondition_wrong_type": ("precondition", 'def p(state, action):\n    return (1, "x")\n'),
    "precondition_raises": ("precondition", 'def p(state, action):\n    raise KeyError("x" * 10 ** 6)\n'),
}

RAW = {
    # the static check is off: full Python, only the operating-system boundary stands
    "open_write": d('open("{canary}", "w").write("x")\nreturn []'),
    "open_new_file": d('open("{dir}/new.txt", "w").write("x")\nreturn []'),
    "read_secret": d('return [{"op": "replace", "path": "/log", "value": open("/etc/passwd").read()}]'),
    "listdir": d('return [{"op": "replace", "path": "/log", "value": os.listdir("/")}]', "import os\n"),
    "truncate": d('os.truncate("{canary}", 0)\nreturn []', "import os\n"),
    "unlink": d('os.unlink("{canary}")\nreturn []', "import os\n"),
    "rename": d('os.rename("{canary}", "{dir}/moved")\nreturn []', "import os\n"),
    "chmod": d('os.chmod("{canary}", 0)\nreturn []', "import os\n"),
    "utime": d('os.utime("{canary}", (0, 0))\nreturn []', "import os\n"),
    "symlink": d('os.symlink("/etc/passwd", "{dir}/link")\nreturn []', "import os\n"),
    "mkdir": d('os.mkdir("{dir}/sub")\nreturn []', "import os\n"),
    "system": d('if os.system("rm -f {canary}") != 0:\n    raise OSError("refused")\nreturn []', "import os\n"),
    "fork_and_outlive": d('pid = os.fork()\nif pid == 0:\n    while True:\n        pass\nreturn []', "import os\n"),
    "fork_bomb": d('while True:\n    os.fork()', "import os\n"),
    "exec_shell": d('os.execv("/bin/sh", ["sh", "-c", "rm {canary}"])', "import os\n"),
    "kill_host": d('os.kill({host}, 9)\nreturn []', "import os\n"),
    "kill_everything": d('os.kill(-1, 9)\nreturn []', "import os\n"),
    "kill_zygote": d('os.kill(os.getppid(), 9)\nreturn []', "import os\n"),
    "setuid_root": d('os.setuid(0)\nreturn []', "import os\n"),
    "new_session": d('os.setsid()\nreturn []', "import os\n"),
    "socket_listen": d('s = socket.socket()\ns.bind(("127.0.0.1", 0))\ns.listen()\nreturn []', "import socket\n"),
    # x86_64 numbers of fork, clone, ptrace, socket, open, openat, execve, kill: each must fail with EPERM
    "ctypes_raw_syscalls": d('libc = ctypes.CDLL(None, use_errno=True)\nfor nr in (57, 56, 101, 41, 2, 257, 59, 62):\n'
                             '    if libc.syscall(nr, 0, 0, 0) >= 0 or ctypes.get_errno() != 1:\n        return []\n'
                             'raise OSError("all refused")', "import ctypes\n"),
    "raise_memory_limit": d('resource.setrlimit(resource.RLIMIT_AS, (-1, -1))\nreturn []', "import resource\n"),
    "disable_timer_then_loop": d('signal.setitimer(signal.ITIMER_REAL, 0)\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n'
                                 'while True:\n    pass', "import signal\n"),
    "exit_worker": d('os._exit(0)', "import os\n"),
    "sys_exit": d('sys.exit(0)', "import sys\n"),
    "patch_json_encoder": d('json.JSONEncoder.encode = lambda self, o: "{}"\nraise ValueError("x")', "import json\n"),
    "patch_math_floor": d('math.floor = lambda x: 0\nraise ValueError("x")', "import math\n"),
    "patch_builtins": d('builtins.len = lambda x: 0\nbuiltins.sorted = lambda x: [0]\nraise ValueError("x")',
                        "import builtins\n"),
    "patch_decimal_context": d('decimal.getcontext().prec = 1\nraise ValueError("x")', "import decimal\n"),
    "garbage_on_protocol_pipe": d('os.write(1, b"garbage" * 1000)\nraise ValueError("x")', "import os\n"),
    "huge_frame_header": d('os.write(1, struct.pack(">I", 2 ** 31))\nraise ValueError("x")', "import os, struct\n"),
    "frames_20mb_x30": d('for i in range(30):\n    os.write(1, struct.pack(">I", 20 << 20) + b"x" * (20 << 20))\n'
                         'raise ValueError("x")', "import os, struct\n"),
    "forged_nan_reply": d('b = b\'{"i":0,"v":true,"d":[NaN,1e400,[]],"m":[],"e":[],"f":[],"fb":[]}\'\n'
                          'os.write(1, struct.pack(">I", len(b)) + b)\nraise ValueError("x")', "import os, struct\n"),
    "forged_big_int_reply": d('b = (\'{"i":0,"v":true,"d":[1,\' + "9" * 400 + \',[]],"m":[],"e":[],"f":[],"fb":[]}\').encode()\n'
                              'os.write(1, struct.pack(">I", len(b)) + b)\nraise ValueError("x")', "import os, struct\n"),
    "path_str_subclass": ("dynamic", 'class S(str):\n    def startswith(self, p):\n        return True\n'
                          '    def __eq__(self, o):\n        return True\n    __hash__ = str.__hash__\n'
                          'def f(state):\n    return [{"op": "replace", "path": S("/money"), "value": 1e9}]\n'),
    "stdout_print": d('print("x" * 100000)\nraise ValueError("x")'),
}
# a worker that escaped the static check can lie about its OWN results (never another model's):
# these run with expect="any" and are checked for side effects and later honest results only
RAW_ANY = {
    "forged_success": d('b = b\'{"i":0,"v":true,"d":[3.0,4,[]],"m":[],"e":[],"f":[],"fb":[]}\'\n'
                        'os.write(1, struct.pack(">I", len(b)) + b)\nreturn []', "import os, struct\n"),
}
CHECKED_ANY = {
    # legal in world-model code, and must stay inside the candidate that does it
    "rebind_builtin_in_module": d('return [{"op": "replace", "path": "/day", "value": len([1])}]', "len = lambda x: 99\n"),
    "set_decimal_context": d('decimal.setcontext(decimal.Context(prec=1))\nreturn []', "import decimal\n"),
    "precondition_huge_feedback": ("precondition", 'def p(state, action):\n    return False, "x" * (20 << 20)\n'),
    "lru_cache_state": d('return [{"op": "replace", "path": "/day", "value": g()}]',
                         "import functools\n@functools.lru_cache\ndef g():\n    return 1\n"),
}


def _src(case, arena):
    kind, src = case if isinstance(case, tuple) else ("dynamic", case)
    return kind, (src.replace("{canary}", arena.canary).replace("{dir}", arena.dir)
                  .replace("{host}", str(os.getpid())))


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_checked(checked, arena, baseline, name):
    kind, src = _src(CHECKED[name], arena)
    run_case(*checked, arena, baseline, src, kind)


@pytest.mark.parametrize("name", sorted(CHECKED_ANY))
def test_checked_legal_but_contained(checked, arena, baseline, name):
    kind, src = _src(CHECKED_ANY[name], arena)
    run_case(*checked, arena, baseline, src, kind, expect="any")


@pytest.mark.parametrize("name", sorted(RAW))
def test_os_boundary_alone(raw, arena, baseline, name):
    if name == "ctypes_raw_syscalls" and os.uname().machine != "x86_64":
        pytest.skip("syscall numbers in this case are x86_64's")
    kind, src = _src(RAW[name], arena)
    run_case(*raw, arena, baseline, src, kind)


@pytest.mark.parametrize("name", sorted(RAW_ANY))
def test_os_boundary_alone_lying_worker(raw, arena, baseline, name):
    kind, src = _src(RAW_ANY[name], arena)
    run_case(*raw, arena, baseline, src, kind, expect="any")


def test_every_candidate_gets_a_fresh_worker(checked):
    sb, _ = checked
    pids = set()
    for i in range(3):
        m = phi(("dynamic", None, d(f'return [{{"op": "replace", "path": "/day", "value": {i}}}]')))
        assert sb.evaluate(m, [(STATE, WAIT)])[0].det["day"] == i
        pids.add(next(reversed(sb._workers.values())).pid)
    assert len(pids) == 3


def test_boundary_is_in_place(checked, raw):
    for sb, _ in (checked, raw):
        assert sb.isolation["confined"] and sb.isolation["seccomp"] and sb.isolation["open_denied"]
        if os.geteuid() == 0:
            assert sb.isolation["uid"] != 0


def test_probe_reports_every_operation_refused():
    import subprocess
    import sys
    from cassandra_wm.codewm.sandbox import WORKER
    out = subprocess.run([sys.executable, "-I", str(WORKER), "--probe"], capture_output=True, timeout=60)
    report = json.loads(out.stdout)
    assert report["seccomp"] is True
    checks = {k: v for k, v in report.items() if k not in ("machine", "uid_before", "uid", "no_new_privs", "seccomp")}
    assert len(checks) >= 10 and set(checks.values()) == {"refused"}, checks


def test_many_huge_replies_keep_host_memory_bounded(checked, arena, baseline):
    sb, seen = checked
    src = d('return [{"op": "replace", "path": "/log", "value": "x" * (20 << 20)}]')
    before = rss_mb()
    res = sb.evaluate(phi(("dynamic", None, src)), [(STATE, WAIT)] * 30)
    assert all(r.errors and "reply limit" in r.errors[0][1] for r in res)
    assert rss_mb() - before < 100


# -- a lying worker, at the protocol level -------------------------------------------------------

DET = ["price", "day", "log"]
GOOD = {"i": 0, "v": True, "d": [3.0, 4, []], "m": [], "e": [], "f": [], "fb": []}
FORGED = {
    "nan": b'{"i":0,"v":true,"d":[NaN,4,[]],"m":[],"e":[],"f":[],"fb":[]}',
    "infinity": b'{"i":0,"v":true,"d":[Infinity,4,[]],"m":[],"e":[],"f":[],"fb":[]}',
    "float_overflow": b'{"i":0,"v":true,"d":[1e400,4,[]],"m":[],"e":[],"f":[],"fb":[]}',
    "int_10_pow_400": b'{"i":0,"v":true,"d":[1' + b"0" * 400 + b',4,[]],"m":[],"e":[],"f":[],"fb":[]}',
    "int_5000_digits": b'{"i":0,"v":true,"d":[' + b"9" * 5000 + b',4,[]],"m":[],"e":[],"f":[],"fb":[]}',
    "wrong_index": json.dumps({**GOOD, "i": 5}).encode(),
    "index_is_bool": json.dumps({**GOOD, "i": False}).encode(),
    "valid_not_bool": json.dumps({**GOOD, "v": 1}).encode(),
    "det_too_short": json.dumps({**GOOD, "d": [1]}).encode(),
    "det_not_list": json.dumps({**GOOD, "d": {"price": 1}}).encode(),
    "missing_out_of_range": json.dumps({**GOOD, "m": [7]}).encode(),
    "errors_not_pairs": json.dumps({**GOOD, "e": [["a"]]}).encode(),
    "feedback_not_str": json.dumps({**GOOD, "fb": [1]}).encode(),
    "extra_key": json.dumps({**GOOD, "x": 1}).encode(),
    "not_object": b"[1, 2]",
    "not_json": b"{'i': 0}",
    "invalid_utf8": b'{"i":0,"v":true,"d":["\xff\xfe",4,[]],"m":[],"e":[],"f":[],"fb":[]}',
    "lone_surrogate": b'{"i":0,"v":true,"d":["\\ud800",4,[]],"m":[],"e":[],"f":[],"fb":[]}',
    "deep_nesting": b'{"i":0,"v":true,"d":[' + b"[" * 100000 + b"]" * 100000 + b',4,[]],"m":[],"e":[],"f":[],"fb":[]}',
    "fatal": b'{"fatal": "boom"}',
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_forged_reply_is_refused(name):
    with pytest.raises(BadReply):
        decode_reply(FORGED[name], DET, 0)


def test_good_reply_is_accepted():
    r = decode_reply(json.dumps(GOOD).encode(), DET, 0)
    assert r.valid and r.det == {"price": 3.0, "day": 4, "log": []} and not r.errors


def test_oversized_frames_are_never_read():
    r_fd, w_fd = os.pipe()
    stop = threading.Event()

    def flood():
        try:
            for _ in range(30):
                os.write(w_fd, struct.pack(">I", 20 << 20) + b"x" * (20 << 20))
        except OSError:
            pass
        stop.set()

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    before = rss_mb()
    reader = FrameReader(r_fd, 1 << 20)
    with pytest.raises(BadReply, match="exceeds"):
        reader.read(time.monotonic() + 5)
    assert len(reader.buf) <= (1 << 20) + 4 and rss_mb() - before < 50
    os.close(r_fd)  # the writer gets EPIPE and stops
    t.join(5)
    os.close(w_fd)


def test_truncated_frame_is_a_dead_worker():
    r_fd, w_fd = os.pipe()
    os.write(w_fd, struct.pack(">I", 100) + b'{"i":0')
    os.close(w_fd)
    reader = FrameReader(r_fd, 1 << 20)
    assert reader.read(time.monotonic() + 2) is None and reader.eof
    os.close(r_fd)
