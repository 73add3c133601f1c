"""Which library files a piece of code reads, and one content hash of them.

``run_all.py`` uses this to decide whether a stage is up to date, and planning uses it to decide whether a
stored episode still matches the code that would play it; both hash the same way, here.

What a module reads is found statically, from its import statements (at any depth, so imports inside
functions count too), followed through the package:

* ``import cassandra_wm.x.y`` / ``from cassandra_wm.x import y`` / ``from .y import z`` pull in each
  package ``__init__.py`` on the way and the module itself (``y`` when it is a submodule);
* a string literal naming a file beside the module (``"_worker.py"``, ``"manual.md"``) pulls in that
  file: scripts started by path and data files read next to the code;
* a module that imports by computed name (``importlib.import_module``) pulls in every module of its own
  package folder, recursively: the environment registry loads its kits that way;
* non-Python files (``*.md``, ``*.json``, ``*.txt``, ``*.toml``) in the folder of a module that is read
  are read too (manuals, parameter tables).

The result is a superset of what runs (an import inside a function that is never called still counts),
never a subset, as long as code reaches other library modules only in these ways.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable

PACKAGE = "cassandra_wm"
PACKAGE_DIR = Path(__file__).resolve().parent
DATA_SUFFIXES = (".md", ".json", ".txt", ".toml")
_DYNAMIC = re.compile(r"\bimport_module\s*\(|\b__import__\s*\(")


def hash_files(files: Iterable[Path], root: Path, length: int = 16) -> str:
    """sha256 over each file's path (relative to ``root``) and bytes, in sorted order."""
    h = hashlib.sha256()
    for f in sorted({Path(f) for f in files}):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:length]


def file_hash(path: Path, length: int = 64) -> str:
    """sha256 of one file's bytes, read in chunks (data files can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def json_hash(obj, length: int = 16) -> str:
    """sha256 of a JSON-serialisable object in canonical form (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


# -- which files a module reads ------------------------------------------------

def _module_file(name: str, package_dir: Path) -> Path | None:
    """``cassandra_wm.a.b`` -> lib/cassandra_wm/a/b.py or a/b/__init__.py; None when it is not a module."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_dir.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _module_name(path: Path, package_dir: Path) -> str:
    rel = path.relative_to(package_dir).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _with_parents(name: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b, a.b.c]``: importing a module runs every package __init__ above it."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _parse(source: str) -> ast.AST | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        # notebook cells may hold IPython magics and shell escapes: drop those lines and try again
        kept = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())
        try:
            return ast.parse(kept)
        except SyntaxError:
            return None


def imports_of(tree: ast.AST, module: str | None = None, is_package: bool = False) -> set[str]:
    """Absolute names of the ``cassandra_wm`` modules (and candidate submodules) a syntax tree imports.

    ``module`` is the importing module's own name, needed to resolve relative imports.
    """
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if module is None:
                    continue
                base_parts = module.split(".")
                if not is_package:
                    base_parts = base_parts[:-1]
                if node.level > 1:
                    base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE:
                continue
            found.add(base)
            for alias in node.names:  # `from pkg import mod` imports a submodule when one exists
                if alias.name != "*":
                    found.add(f"{base}.{alias.name}")
    return found


def _string_constants(tree: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and len(n.value) < 200}


@lru_cache(maxsize=None)
def _scan(path: Path, package_dir: Path) -> tuple[frozenset, frozenset, bool]:
    """(modules it imports, sibling files it names, whether it imports by computed name) of one file."""
    source = path.read_text(encoding="utf-8", errors="replace")
    tree = _parse(source)
    if tree is None:
        return frozenset(), frozenset(), False
    name = _module_name(path, package_dir)
    mods = imports_of(tree, name, is_package=path.name == "__init__.py")
    siblings = frozenset(s for s in _string_constants(tree)
                         if "/" not in s and "\\" not in s and s not in (".", "..") and (path.parent / s).is_file())
    return frozenset(mods), siblings, bool(_DYNAMIC.search(source))


def module_closure(modules: Iterable[str], package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Every library file that importing ``modules`` (``cassandra_wm...`` names) may read; sorted."""
    package_dir = Path(package_dir).resolve()
    files: set[Path] = set()
    todo: list[Path] = []

    def add(path: Path) -> None:
        if path not in files:
            files.add(path)
            if path.suffix == ".py":
                todo.append(path)

    def add_module(name: str) -> None:
        for n in _with_parents(name):
            f = _module_file(n, package_dir)
            if f is not None:
                add(f)

    for m in modules:
        add_module(m)
    while todo:
        path = todo.pop()
        for f in path.parent.iterdir():
            if f.suffix in DATA_SUFFIXES and f.is_file():
                files.add(f)
        mods, siblings, dynamic = _scan(path, package_dir)
        for m in mods:
            add_module(m)
        for s in siblings:
            add(path.parent / s)
        if dynamic:
            for f in path.parent.rglob("*.py"):
                if "__pycache__" not in f.parts:
                    add(f)
    return sorted(files)


def notebook_modules(path: Path) -> set[str]:
    """The ``cassandra_wm`` modules a notebook's code cells import."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    found: set[str] = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        tree = _parse("".join(src) if isinstance(src, list) else src)
        if tree is not None:
            found |= imports_of(tree)
    return found


def parts_files(parts: Iterable[str], package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Files of named package parts: a module (``world_model.py``) or a folder (``planning``), recursively."""
    package_dir = Path(package_dir).resolve()
    files: set[Path] = set()
    for part in parts:
        p = package_dir / part
        if p.is_dir():
            files |= {f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts
                      and (f.suffix == ".py" or f.suffix in DATA_SUFFIXES)}
        elif p.is_file():
            files.add(p)
        else:
            raise FileNotFoundError(f"{p}: no such module or folder in {package_dir}")
    return sorted(files)


def code_hash(modules: Iterable[str] = (), parts: Iterable[str] = (), package_dir: Path = PACKAGE_DIR,
              length: int = 12) -> str:
    """Content hash of what ``modules`` read (see :func:`module_closure`) plus explicit ``parts``.

    Planning, for example, keys stored episodes by
    ``code_hash(["cassandra_wm.planning.evaluate", "cassandra_wm.world_model"])``.
    """
    package_dir = Path(package_dir).resolve()
    files = set(module_closure(modules, package_dir)) | set(parts_files(parts, package_dir))
    return hash_files(files, package_dir, length)


def relative(files: Iterable[Path], package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Paths relative to the package folder, for messages and tests."""
    return [Path(f).resolve().relative_to(Path(package_dir).resolve()).as_posix() for f in files]


__all__ = ["hash_files", "file_hash", "json_hash", "imports_of", "module_closure", "notebook_modules",
           "parts_files", "code_hash", "relative"]
