"""Sandbox tests: the order of application, patch rules, and a hostile-code suite.

Every piece of hostile code must end up as an E_exec error for its function and transition:
never a crash of the test process, never a side effect on the machine.
"""
import os
import time

import pytest

from cassandra_wm.codewm._policy import PolicyError, check_source
from cassandra_wm.codewm.errors import E_EXEC, Transition, error_type
from cassandra_wm.codewm.model import CodeModel, make_function
from cassandra_wm.codewm.sandbox import Sandbox
from cassandra_wm.envs.base import ActionSpec, ArgSpec, EnvSpec, VariableSpec

SPEC = EnvSpec(
    name="toy", manual="A toy shop: set_price changes the price by at most 2; every day the day counter grows.",
    variables=(VariableSpec("money", "/money", "cash", "stochastic", low=0),
               VariableSpec("price", "/shop/price", "price", "deterministic", low=1, high=10),
               VariableSpec("day", "/day", "day counter", "deterministic", low=0, high=1000, integer=True),
               VariableSpec("log", "/log", "list of past prices", "deterministic", type="categorical")),
    actions=(ActionSpec("set_price", "set the price", (ArgSpec("price", "float", low=1, high=10),)),
             ActionSpec("wait", "do nothing")))

STATE = {"money": 50.0, "shop": {"price": 3.0}, "day": 4, "log": []}
WAIT = {"name": "wait", "args": {}}

SET_PRICE = 'def set_price(state, action):\n    return [{"op": "replace", "path": "/shop/price", "value": action["args"]["price"]}]\n'
STEP_OK = ('def step_ok(state, action):\n'
           '    ok = abs(action["args"]["price"] - state["shop"]["price"]) <= 2\n'
           '    return ok, "ok" if ok else "price moves too far"\n')
TICK = 'def tick(state):\n    return [{"op": "replace", "path": "/day", "value": state["day"] + 1}]\n'


def phi(*parts):
    m = CodeModel(env_name="toy")
    for kind, action, src in parts:
        m = m.with_function(make_function(kind, action, src, m, origin="test"))
    return m


@pytest.fixture(scope="module")
def sandbox():
    sb = Sandbox(SPEC, call_timeout=0.3, hang_slack=0.7, memory_mb=512)
    yield sb
    sb.close()


def test_order_of_application(sandbox):
    m = phi(("action", "set_price", SET_PRICE), ("precondition", "set_price", STEP_OK), ("dynamic", None, TICK))
    ok, bad = sandbox.evaluate(m, [(STATE, {"name": "set_price", "args": {"price": 4.5}}),
                                   (STATE, "set_price(price=9.0)")])
    assert ok.valid and ok.det == {"price": 4.5, "day": 5, "log": []} and not ok.errors
    # precondition fails: the action patch is skipped but the dynamic patch still applies
    assert not bad.valid and bad.det["price"] == 3.0 and bad.det["day"] == 5
    assert bad.failed == ["pre_set_price_step_ok"] and bad.feedback == ["price moves too far"]
    # the input state is never modified
    assert STATE == {"money": 50.0, "shop": {"price": 3.0}, "day": 4, "log": []}


def test_dynamic_sees_the_action_patch(sandbox):
    dyn = 'def d(state):\n    return [{"op": "add", "path": "/log/-", "value": state["shop"]["price"]}]\n'
    m = phi(("action", "set_price", SET_PRICE), ("dynamic", None, dyn))
    r, = sandbox.evaluate(m, [(STATE, {"name": "set_price", "args": {"price": 5.0}})])
    assert r.det["log"] == [5.0] and r.det["price"] == 5.0


def test_empty_model_predicts_no_change(sandbox):
    r, = sandbox.evaluate(CodeModel(), [(STATE, WAIT)])
    assert r.valid and r.det == {"price": 3.0, "day": 4, "log": []} and not r.errors


def test_erroring_precondition_is_skipped_but_reported(sandbox):
    boom = 'def boom(state, action):\n    return 1 / 0\n'
    m = phi(("precondition", "set_price", boom), ("action", "set_price", SET_PRICE))
    r, = sandbox.evaluate(m, [(STATE, {"name": "set_price", "args": {"price": 4.0}})])
    assert r.valid and r.det["price"] == 4.0
    assert r.errors and r.errors[0][0] == "pre_set_price_boom" and "ZeroDivisionError" in r.errors[0][1]


def test_results_are_in_order_for_many_items(sandbox):
    m = phi(("dynamic", None, TICK))
    items = [({"money": 1, "shop": {"price": 2}, "day": i, "log": []}, WAIT) for i in range(500)]
    res = sandbox.evaluate(m, items)
    assert [r.det["day"] for r in res] == list(range(1, 501))


def test_static_check_rejects_and_rewrites():
    with pytest.raises(PolicyError, match="import of 'os'"):
        check_source("import os\ndef f(state):\n    return []\n")
    with pytest.raises(PolicyError, match="__class__"):
        check_source("def f(state):\n    return state.__class__\n")
    with pytest.raises(PolicyError, match="no top-level function named 'g'"):
        check_source("def f(state):\n    return []\n", "g")
    with pytest.raises(PolicyError, match="must take 2 positional"):
        check_source("def f(state):\n    return []\n", "f", "action")
    tree = check_source("def f(state):\n    try:\n        pass\n    except:\n        pass\n    return []\n", "f", "dynamic")
    handler = tree.body[0].body[0].handlers[0]
    assert handler.type.id == "Exception"  # bare except rewritten
    check_source("import math\nfrom collections import Counter\ndef f(state):\n    return []\n", "f", "dynamic")


HOSTILE = {
    "file_write": 'def f(state):\n    open("{marker}", "w").write("x")\n    return []\n',
    "file_write_via_builtins": 'def f(state):\n    b = __builtins__\n    b["open"]("{marker}", "w")\n    return []\n',
    "os_import": 'import os\ndef f(state):\n    os.system("touch {marker}")\n    return []\n',
    "subprocess_import": 'import subprocess\ndef f(state):\n    subprocess.run(["touch", "{marker}"])\n    return []\n',
    "dunder_import": 'def f(state):\n    __import__("os").system("touch {marker}")\n    return []\n',
    "socket": 'import socket\ndef f(state):\n    socket.create_connection(("127.0.0.1", 80))\n    return []\n',
    "module_escape": 'import statistics\ndef f(state):\n    statistics.sys.modules["os"].system("touch {marker}")\n    return []\n',
    "getattr_dunder": 'def f(state):\n    return getattr(getattr((), "__class__"), "__base__")\n',
    "frame_walk": 'def f(state):\n    g = (x for x in [1])\n    return g.gi_frame.f_globals\n',
    "eval": 'def f(state):\n    return eval("1+1")\n',
    "infinite_loop": 'def f(state):\n    while True:\n        pass\n',
    "swallowing_loop": 'def f(state):\n    while True:\n        try:\n            while True:\n                pass\n        except:\n            pass\n',
    "loop_in_finally": 'def f(state):\n    try:\n        while True:\n            pass\n    finally:\n        while True:\n            pass\n',
    "loop_at_import": 'while True:\n    pass\ndef f(state):\n    return []\n',
    "memory_bomb": 'def f(state):\n    x = [0] * (10 ** 10)\n    return []\n',
    "memory_growth": 'def f(state):\n    x = []\n    while True:\n        x.append(" " * 10 ** 6)\n',
    "deep_recursion": 'def f(state):\n    return f(state)\n',
    "forbidden_path": 'def f(state):\n    return [{"op": "replace", "path": "/money", "value": 1e9}]\n',
    "forbidden_move": 'def f(state):\n    return [{"op": "move", "from": "/money", "path": "/day"}]\n',
    "root_replace": 'def f(state):\n    return [{"op": "replace", "path": "", "value": {}}]\n',
    "wrong_type": 'def f(state):\n    return 42\n',
    "returns_none": 'def f(state):\n    state["day"] = 99\n',
    "non_json_value": 'def f(state):\n    return [{"op": "replace", "path": "/day", "value": {1, 2}}]\n',
    "bad_patch_path": 'def f(state):\n    return [{"op": "replace", "path": "/log/7", "value": 1}]\n',
    "syntax_error": 'def f(state)\n    return []\n',
    "class_def": 'class A:\n    pass\ndef f(state):\n    return []\n',
    "global_trick": 'X = 1\ndef f(state):\n    global X\n    X = 2\n    return []\n',
    "print_flood": 'def f(state):\n    for i in range(1000):\n        print("x" * 1000)\n    return [{"op": "replace", "path": "/day", "value": "not a number"}, 5]\n',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_dynamic_is_contained(sandbox, tmp_path, name):
    marker = str(tmp_path / "pwned")
    src = HOSTILE[name].replace("{marker}", marker)
    m = phi(("dynamic", None, src))
    t0 = time.monotonic()
    res = sandbox.evaluate(m, [(STATE, WAIT), (STATE, WAIT)])
    assert time.monotonic() - t0 < 15
    for r in res:
        assert r.errors and r.errors[0][0] == "dyn_f", (name, r)
        # the broken function contributes nothing; the state is the previous one
        assert r.det == {"price": 3.0, "day": 4, "log": []}
        tr = Transition(STATE, WAIT, True, STATE)
        assert error_type(SPEC, r, tr) == E_EXEC
    assert not os.path.exists(marker)
    # the sandbox still works afterwards
    ok, = sandbox.evaluate(phi(("dynamic", None, TICK)), [(STATE, WAIT)])
    assert ok.det["day"] == 5 and not ok.errors


def test_hostile_precondition_wrong_return(sandbox):
    for src in ('def p(state, action):\n    return True\n', 'def p(state, action):\n    return ("yes", "x")\n',
                'def p(state, action):\n    return (True, "a", "b")\n'):
        r, = sandbox.evaluate(phi(("precondition", "wait", src)), [(STATE, WAIT)])
        assert r.errors and "precondition must return (bool, str)" in r.errors[0][1]


def test_hung_worker_is_killed_restarted_and_function_quarantined(sandbox):
    # sum over a huge range runs in C without checking signals: only the parent can stop it
    src = 'def f(state):\n    return [{"op": "replace", "path": "/day", "value": sum(range(10 ** 12))}]\n'
    before = sandbox.restarts
    t0 = time.monotonic()
    res = sandbox.evaluate(phi(("dynamic", None, src)), [(STATE, WAIT)] * 4)
    assert time.monotonic() - t0 < 10
    assert sandbox.restarts == before + 1  # one kill, then the function is not run again
    assert all(r.errors and r.errors[0][0] == "dyn_f" for r in res)
    assert "stopped answering" in res[0].errors[0][1] and "skipped" in res[1].errors[0][1]
    ok, = sandbox.evaluate(phi(("dynamic", None, TICK)), [(STATE, WAIT)])
    assert ok.det["day"] == 5


def test_sandbox_rejects_bad_parameters():
    with pytest.raises(ValueError):
        Sandbox(SPEC, call_timeout=0)
    with pytest.raises(ValueError):
        Sandbox(SPEC, memory_mb=10)


def test_spec_rules_out_unknown_actions_and_optionally_bad_arguments():
    m = phi(("action", "set_price", SET_PRICE), ("dynamic", None, TICK))
    with Sandbox(SPEC) as sb:
        unknown, bad_arg = sb.evaluate(m, [(STATE, {"name": "sell_shop", "args": {}}),
                                           (STATE, {"name": "set_price", "args": {"price": "lots"}})])
    assert not unknown.valid and "not in the action space" in unknown.feedback[0] and unknown.det["day"] == 5
    assert bad_arg.valid and bad_arg.det["price"] == "lots"  # left to learned preconditions by default
    with Sandbox(SPEC, spec_arg_checks=True, reject_unknown_actions=False) as sb:
        unknown, bad_arg = sb.evaluate(m, [(STATE, {"name": "sell_shop", "args": {}}),
                                           (STATE, {"name": "set_price", "args": {"price": "lots"}})])
    assert unknown.valid and not bad_arg.valid and "must be a number" in bad_arg.feedback[0]
    assert bad_arg.det == {"price": 3.0, "day": 5, "log": []}


def test_static_check_closes_name_gadgets_but_keeps_ordinary_code():
    bad = {
        "attribute store": "import math\ndef f(state):\n    math.floor = abs\n    return []\n",
        "attribute delete": "import math\ndef f(state):\n    del math.pi\n    return []\n",
        "format on a variable": 'def f(state):\n    t = "{0}"\n    return t.format(1)\n',
        "format reading an attribute": 'def f(state):\n    return "{0.real}".format(1)\n',
        "format in a nested spec": 'def f(state):\n    return "{0:{1.real}}".format(1, 2)\n',
        "class pattern keyword": "def f(state):\n    match 1:\n        case int(__class__=c):\n            return c\n",
        "name not exposed": "from typing import get_type_hints\ndef f(state):\n    return []\n",
        "frame attribute": "def f(state):\n    return (x for x in []).gi_frame\n",
        "closure cell": "def f(state):\n    return f.cell_contents\n",
    }
    for why, src in bad.items():
        with pytest.raises(PolicyError):
            check_source(src, "f", "dynamic")
            pytest.fail(f"accepted: {why}")
    ok = ('import math, json\nfrom typing import Dict, List\nfrom collections import Counter\n'
          'def f(state):\n    msg = "{:.2f} and {0[0]}".format(2.5, [1])\n    x = f"{state!r:>10}"\n'
          '    match state:\n        case {"day": int(d)}:\n            pass\n'
          '    return [{"op": "replace", "path": "/day", "value": len(msg + x) + math.floor(1.5)}]\n')
    check_source(ok, "f", "dynamic")


def test_isolation_is_required_unless_explicitly_waived(monkeypatch):
    from cassandra_wm.codewm.sandbox import SandboxError
    sb = Sandbox(SPEC)
    monkeypatch.delenv("CASSANDRA_SANDBOX", raising=False)
    with pytest.raises(SandboxError, match="cannot confine"):
        sb._check_isolation({"ready": True, "seccomp": False, "open_denied": False, "uid": 1000, "why": "no seccomp"})
    if os.geteuid() == 0:
        with pytest.raises(SandboxError, match="root"):
            sb._check_isolation({"ready": True, "seccomp": True, "open_denied": True, "uid": 0})
    monkeypatch.setenv("CASSANDRA_SANDBOX", "unconfined")
    sb._check_isolation({"ready": True, "seccomp": False, "open_denied": False, "uid": 1000})
    assert sb.isolation["confined"] is False
    sb.close()


def test_workers_die_with_a_killed_host():
    """kill -9 of the process that owns a sandbox: its zygote and a worker stuck in C code go too."""
    import json
    import signal
    import subprocess
    import sys
    code = (
        "import json, sys\n"
        "sys.path.insert(0, %r)\n"
        "from test_codewm_sandbox import SPEC, STATE, WAIT, phi\n"
        "from cassandra_wm.codewm.sandbox import Sandbox\n"
        "sb = Sandbox(SPEC, call_timeout=60, hang_slack=60).start()\n"
        "print(json.dumps([sb._zygote.proc.pid, sb._spare.pid]), flush=True)\n"
        "hang = 'def f(state):\\n    return [{\"op\": \"replace\", \"path\": \"/day\", \"value\": sum(range(10 ** 13))}]\\n'\n"
        "sb.evaluate(phi(('dynamic', None, hang)), [(STATE, WAIT)])\n") % os.path.dirname(__file__)
    host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pids = json.loads(host.stdout.readline())
        time.sleep(1.0)  # the worker is now inside sum()
        assert all(os.path.exists(f"/proc/{p}") for p in pids)
        host.send_signal(signal.SIGKILL)
        host.wait(10)

        def gone(pid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                return True
        deadline = time.monotonic() + 10
        while not all(gone(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(gone(p) for p in pids), "sandbox processes outlived their host"
    finally:
        host.kill()
        host.wait(10)


def test_an_interrupted_request_leaves_no_stale_replies(sandbox):
    """Ctrl-C while replies stream in: the next call must not read the old request's replies."""
    m = phi(("dynamic", None, TICK))
    items = [({"money": 1, "shop": {"price": 2}, "day": i, "log": []}, WAIT) for i in range(300)]
    from cassandra_wm.codewm import sandbox as sbmod
    orig = sbmod.FrameReader.read
    calls = {"n": 0}

    def interrupt_after_10(self, deadline):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return orig(self, deadline)
    sbmod.FrameReader.read = interrupt_after_10
    try:
        with pytest.raises(KeyboardInterrupt):
            sandbox.evaluate(m, items)
    finally:
        sbmod.FrameReader.read = orig
    res = sandbox.evaluate(m, items[:5])
    assert [r.det["day"] for r in res] == [1, 2, 3, 4, 5] and not any(r.errors for r in res)


def test_batch_reply_budget_caps_host_memory():
    big = 'def f(state):\n    return [{"op": "replace", "path": "/log", "value": "x" * 300000}]\n'
    with Sandbox(SPEC, max_reply_bytes=400_000, max_batch_bytes=1_000_000) as sb:
        res = sb.evaluate(phi(("dynamic", None, big)), [(STATE, WAIT)] * 6)
    assert [len(r.det["log"]) for r in res[:3]] == [300000] * 3 and not any(r.errors for r in res[:3])
    assert all(r.errors and "max_batch_bytes" in r.errors[0][1] and r.det["log"] == [] for r in res[3:])


def test_states_must_be_plain_finite_json(sandbox):
    with pytest.raises(ValueError, match="transition 1"):
        sandbox.evaluate(phi(("dynamic", None, TICK)), [(STATE, WAIT), ({**STATE, "money": float("nan")}, WAIT)])


def test_start_with_a_model_prepares_its_worker(sandbox):
    m = phi(("dynamic", None, TICK + "# prepared\n"))
    sandbox.start(m)
    forks = sandbox.forks
    r, = sandbox.evaluate(m, [(STATE, WAIT)])
    assert r.det["day"] == 5 and sandbox.forks == forks
    r, = sandbox.evaluate(phi(("dynamic", None, TICK + "# another\n")), [(STATE, WAIT)])
    assert r.det["day"] == 5 and sandbox.forks > forks  # a new candidate: a new worker
