"""The package's import graph: environments import nothing above them, and no module cycle.

For the environments every import counts, at module level or inside a function (a lazy import is
still a dependency).  Cycles are looked for among the imports that run when a module is imported
(module level, including under ``try``/``if``); a function-level import that closes a loop on
purpose (the park's compiled kernel checking sim.py's codes, the executor calling back into the
episode runner) is not an import-time cycle.  A module importing its own package is no cycle."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "lib" / "cassandra_wm"


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        if "__pycache__" in p.parts:
            continue
        parts = ["cassandra_wm", *p.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _top_level(tree: ast.Module):
    """The statements that run at import time: the module's body and blocks under try/if/with."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            todo += node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            todo += [s for h in getattr(node, "handlers", []) for s in h.body]


def _imports(mods: dict[str, Path], import_time_only: bool = False) -> nx.DiGraph:
    g = nx.DiGraph()
    for name, path in mods.items():
        g.add_node(name)
        pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        tree = ast.parse(path.read_text())
        for node in (_top_level(tree) if import_time_only else ast.walk(tree)):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(pkg[:len(pkg) - node.level + 1]) if node.level else ""
                target = ".".join(x for x in (base, node.module or "") if x)
                found = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                targets = found or ([target] if target.startswith("cassandra_wm") else [])
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("cassandra_wm")]
            else:
                continue
            for t in targets:
                while t not in mods and "." in t:  # cassandra_wm.x.attr -> cassandra_wm.x
                    t = t.rsplit(".", 1)[0]
                if t != name and not name.startswith(t + "."):  # a module may import its own package
                    g.add_edge(name, t)
    return g


def test_environments_import_nothing_above_them():
    g = _imports(_modules())
    up = sorted((a, b) for a, b in g.edges if a.startswith("cassandra_wm.envs")
                and not b.startswith("cassandra_wm.envs"))
    assert up == [], f"environment modules import from above envs/: {up}"


def test_no_import_cycles_between_modules():
    g = _imports(_modules(), import_time_only=True)
    assert g.number_of_edges() > 50  # the scan sees the package's imports
    cycles = [c for c in nx.simple_cycles(g) if len(c) > 1]
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_the_method_does_not_import_its_baselines():
    """The baselines are built on planning and the world model, never the other way round."""
    g = _imports(_modules())
    back = sorted((a, b) for a, b in g.edges if b.startswith("cassandra_wm.baselines")
                  and not a.startswith("cassandra_wm.baselines"))
    assert back == [], f"modules importing the baselines: {back}"
