"""fingerprint: which library files code reads (from its imports), and one hash of them."""
import json
import textwrap

import nbformat

from cassandra_wm import fingerprint as fpr


def _package(root):
    """A small fake `cassandra_wm` package with every way one module reaches another."""
    pkg = root / "cassandra_wm"
    files = {
        "__init__.py": "",
        "paths.py": "ROOT = 1\n",
        "data.py": "from . import paths\nfrom .envs.base import thing\n",
        "unused.py": "import os\n",
        "planning/__init__.py": "from .mcts import run\n",
        "planning/mcts.py": "def run():\n    from ..world import step\n    return step\n",
        "world.py": "from cassandra_wm.paths import ROOT\nstep = ROOT\n",
        "codewm/__init__.py": "",
        "codewm/sandbox.py": "from pathlib import Path\nWORKER = Path(__file__).with_name('_worker.py')\n",
        "codewm/_worker.py": "import json\n",
        "codewm/prompts.md": "a prompt\n",
        "envs/__init__.py": "from .registry import get\n",
        "envs/base.py": "thing = 1\n",
        "envs/registry.py": "import importlib\ndef get(n):\n    return importlib.import_module(f'.{n}.kit', __package__)\n",
        "envs/shop/__init__.py": "",
        "envs/shop/kit.py": "from ...paths import ROOT\n",
    }
    for rel, text in files.items():
        p = pkg / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return pkg


def test_closure_follows_every_kind_of_import(tmp_path):
    pkg = _package(tmp_path)
    rel = lambda mods: set(fpr.relative(fpr.module_closure(mods, pkg), pkg))  # noqa: E731
    assert rel(["cassandra_wm.paths"]) == {"__init__.py", "paths.py"}
    # a function-level relative import two levels up, and an absolute one
    assert rel(["cassandra_wm.planning"]) == {"__init__.py", "planning/__init__.py", "planning/mcts.py",
                                               "world.py", "paths.py"}
    # a script started by path and the package's data files come along
    assert rel(["cassandra_wm.codewm.sandbox"]) == {"__init__.py", "codewm/__init__.py", "codewm/sandbox.py",
                                                     "codewm/_worker.py", "codewm/prompts.md"}
    # imports by computed name pull in the whole package folder, and what those modules import
    got = rel(["cassandra_wm.data"])
    assert {"envs/shop/kit.py", "envs/shop/__init__.py", "envs/registry.py", "paths.py"} <= got
    assert "unused.py" not in got and "codewm/sandbox.py" not in got and "planning/mcts.py" not in got


def test_hash_changes_only_with_what_is_read(tmp_path):
    pkg = _package(tmp_path)
    planning = fpr.code_hash(["cassandra_wm.planning"], package_dir=pkg)
    data = fpr.code_hash(["cassandra_wm.data"], package_dir=pkg)
    (pkg / "codewm" / "_worker.py").write_text("import json  # edited\n")
    assert fpr.code_hash(["cassandra_wm.planning"], package_dir=pkg) == planning
    (pkg / "world.py").write_text("from cassandra_wm.paths import ROOT\nstep = ROOT + 1\n")
    assert fpr.code_hash(["cassandra_wm.planning"], package_dir=pkg) != planning
    assert fpr.code_hash(["cassandra_wm.data"], package_dir=pkg) == data
    # explicit parts: a folder or a module
    assert fpr.code_hash(parts=["codewm"], package_dir=pkg) != fpr.code_hash(parts=["world.py"], package_dir=pkg)


def test_notebook_imports_skip_magics_and_markdown(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("from cassandra_wm import widgets"),
                nbformat.v4.new_code_cell("%matplotlib inline\nfrom cassandra_wm import data, paths\n"
                                          "import cassandra_wm.structure.bn as bn\n!ls"),
                nbformat.v4.new_code_cell(textwrap.dedent("""
                    def f():
                        from cassandra_wm.planning import evaluate as ev
                        return ev
                """))]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    mods = fpr.notebook_modules(path)
    assert {"cassandra_wm.data", "cassandra_wm.paths", "cassandra_wm.structure.bn",
            "cassandra_wm.planning.evaluate"} <= mods
    assert not any("widgets" in m for m in mods)


def test_real_stages_read_what_they_import():
    """Planning reads neither the code stream nor the LLM layer; data collection reads no LLM code."""
    from cassandra_wm.paths import NOTEBOOKS
    def parts(nb):
        files = fpr.relative(fpr.module_closure(fpr.notebook_modules(NOTEBOOKS / nb)))
        return {f.split("/")[0] for f in files}
    planning = parts("05_planning.ipynb")
    assert "planning" in planning and "world_model.py" in planning
    assert "codewm" not in planning and "llm" not in planning
    collect = parts("01_data_collection.ipynb")
    assert "envs" in collect and "llm" not in collect and "structure" not in collect


def test_hashes_are_stable_and_canonical(tmp_path):
    assert fpr.json_hash({"a": 1, "b": [1, 2]}) == fpr.json_hash({"b": [1, 2], "a": 1})
    p = tmp_path / "f.bin"
    p.write_bytes(b"x" * (3 << 20))
    import hashlib
    assert fpr.file_hash(p) == hashlib.sha256(p.read_bytes()).hexdigest()
    json.dumps(fpr.__all__)
