"""phi as data: function ids, edits, the versioned store and diffs."""
import json

import pytest

from cassandra_wm.codewm.model import (CodeFunction, CodeModel, CodeStore, Refinement, RefinementError,
                                       function_name_in, make_function)

ACT = "def up(state, action):\n    return [{'op': 'replace', 'path': '/level', 'value': state['level'] + 1}]\n"
PRE = "def rich(state, action):\n    return state['money'] >= 100, 'not enough money'\n"
DYN = "def tick(state):\n    return []\n"


def model():
    m = CodeModel(env_name="toy")
    for kind, action, src in [("action", "upgrade", ACT), ("precondition", "upgrade", PRE), ("dynamic", None, DYN)]:
        m = m.with_function(make_function(kind, action, src, m, description=f"{kind} of upgrade"))
    return m


def test_ids_and_lookups():
    m = model()
    assert set(m.functions) == {"act_upgrade", "pre_upgrade_rich", "dyn_tick"}
    assert m.action_function("upgrade").name == "up" and [f.fid for f in m.preconditions("upgrade")] == ["pre_upgrade_rich"]
    assert [f.fid for f in m.for_action("upgrade")] == ["pre_upgrade_rich", "act_upgrade", "dyn_tick"]
    assert m.new_fid("precondition", "upgrade", "rich") == "pre_upgrade_rich_2"
    assert function_name_in("x = 1\ndef  g (state):\n  pass") == "g"
    assert function_name_in("def broken(state)\n  pass") == "broken"  # regex fallback
    with pytest.raises(KeyError, match="no function"):
        m.get("nope")


def test_function_validation():
    with pytest.raises(ValueError, match="kind"):
        CodeFunction("a", "helper", "f", "def f(): pass")
    with pytest.raises(ValueError, match="needs the action"):
        CodeFunction("a", "precondition", "f", "def f(s, a): pass")
    with pytest.raises(ValueError, match="must not name an action"):
        CodeFunction("a", "dynamic", "f", "def f(s): pass", action="wait")
    with pytest.raises(ValueError, match="letters, digits"):
        CodeFunction("../etc", "dynamic", "f", "def f(s): pass")


def test_refinements_add_remove_replace():
    m = model()
    new_pre = make_function("precondition", "upgrade", "def top(state, action):\n    return state['level'] < 3, 'top'\n", m)
    m1 = Refinement("add", function=new_pre).apply(m)
    assert "pre_upgrade_top" in m1 and m1.version == 1 and m1.functions["pre_upgrade_top"].version == 1
    m2 = Refinement("remove", target="pre_upgrade_rich").apply(m1)
    assert "pre_upgrade_rich" not in m2 and "pre_upgrade_rich" in m1
    fixed = make_function("action", "upgrade", ACT.replace("+ 1", "+ 2"), m)
    m3 = Refinement("replace", target="act_upgrade", function=fixed).apply(m2)
    assert m3.functions["act_upgrade"].source.count("+ 2") == 1 and len(m3) == len(m2)
    with pytest.raises(RefinementError, match="cannot replace"):
        Refinement("replace", target="zzz", function=fixed).apply(m)
    with pytest.raises(RefinementError):
        Refinement("remove")
    with pytest.raises(RefinementError):
        Refinement("rename", target="act_upgrade")
    assert Refinement("remove", target="dyn_tick").affected_actions(m) is None
    assert Refinement("add", function=new_pre).affected_actions(m) == {"upgrade"}


def test_store_keeps_every_version_and_diffs(tmp_path):
    store = CodeStore(tmp_path / "codewm")
    m0 = model()
    m0.empty_actions["wait"] = "no usable reply"
    store.save(m0, {"source": "init"})
    fixed = make_function("action", "upgrade", ACT.replace("+ 1", "+ 2"), m0)
    m1 = Refinement("replace", target="act_upgrade", function=fixed).apply(m0)
    store.save(m1, {"source": "refinement", "vs": 0.5})
    assert store.versions() == [0, 1] and store.latest() == 1
    assert (tmp_path / "codewm" / "v000" / "functions" / "act_upgrade.py").read_text() == ACT
    man = json.loads((tmp_path / "codewm" / "v001" / "manifest.json").read_text())
    assert {f["fid"] for f in man["functions"]} == set(m1.functions) and man["version"] == 1
    assert all({"kind", "name", "action", "description", "version", "file"} <= set(f) for f in man["functions"])
    back = store.load(0)
    assert back.functions == m0.functions and back.empty_actions == {"wait": "no usable reply"}
    d = store.diff(0, 1)
    assert "-    return [{'op': 'replace', 'path': '/level', 'value': state['level'] + 1}]" in d
    assert "+    return [{'op': 'replace', 'path': '/level', 'value': state['level'] + 2}]" in d
    assert "phi.py" in {p.name for p in (tmp_path / "codewm" / "v001").iterdir()}
    assert store.index()[1]["vs"] == 0.5
    with pytest.raises(KeyError):
        store.load(7)
    store.clear()
    assert store.versions() == []
    with pytest.raises(FileNotFoundError):
        store.load()
