"""The code model phi: a set of action, precondition and dynamic functions, kept as source text.

* an **action function** ``f(state, action) -> list of JSON-patch operations`` (one per action);
* a **precondition function** ``f(state, action) -> (ok, feedback)`` (any number per action, each
  checking one condition);
* a **dynamic function** ``f(state) -> list of JSON-patch operations`` for change that happens
  whatever the action.

They are applied in this order: all preconditions of the action; the action's patch if every
precondition passed; then the dynamic patch in any case.  Only deterministic variables may be
patched (enforced by the sandbox).  Functions are never run here, only stored: see
:mod:`cassandra_wm.codewm.sandbox`.

:class:`CodeStore` keeps every version of phi on disk (``v000/``, ``v001/``, ...), each as one
readable ``.py`` file per function plus ``manifest.json``, so any accepted refinement can be
diffed.
"""
from __future__ import annotations

import ast
import difflib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from ..report import atomic_write_text
from ._policy import ARITY, KINDS

_SAFE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,80}$")


@dataclass(frozen=True)
class CodeFunction:
    """One function of phi.

    ``fid`` is the stable identifier refinements refer to (also the file name); ``name`` is the
    Python function to call inside ``source``; ``action`` is the action it belongs to (None for a
    dynamic function); ``origin`` says who wrote it (``llm``, ``hand`` or ``test``).
    """

    fid: str
    kind: str
    name: str
    source: str
    action: str | None = None
    description: str = ""
    origin: str = "llm"
    version: int = 0  # version of phi in which this function first appeared in this form

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"function kind must be one of {KINDS}, got {self.kind!r}")
        if not _SAFE_ID.match(self.fid):
            raise ValueError(f"function id {self.fid!r} must be letters, digits and _ (starting with a letter)")
        if self.kind in ("action", "precondition") and not self.action:
            raise ValueError(f"{self.kind} function {self.fid!r} needs the action it belongs to")
        if self.kind == "dynamic" and self.action:
            raise ValueError(f"dynamic function {self.fid!r} must not name an action")
        if not isinstance(self.source, str):
            raise ValueError(f"source of {self.fid!r} must be a string")

    def manifest(self) -> dict:
        d = asdict(self)
        d.pop("source")
        d["file"] = f"{self.fid}.py"
        return d

    def signature_hint(self) -> str:
        return f"def {self.name}({'state, action' if ARITY[self.kind] == 2 else 'state'})"


def function_name_in(source: str) -> str | None:
    """Name of the first top-level ``def`` in ``source``; falls back to a regex when it does not parse."""
    try:
        tree = ast.parse(source)
        for n in tree.body:
            if isinstance(n, ast.FunctionDef):
                return n.name
        return None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        m = re.search(r"^\s*def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", source, re.M)
        return m.group(1) if m else None


def slug(text: str, limit: int = 40) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_").lower()[:limit].strip("_")
    return s or "x"


@dataclass
class CodeModel:
    """phi: functions by id plus bookkeeping.

    ``empty_actions`` maps an action to the reason it has no functions (for instance the LLM gave
    no usable reply), so an empty part of phi is explicit rather than silent.
    """

    functions: dict[str, CodeFunction] = field(default_factory=dict)
    version: int = 0
    env_name: str = ""
    llm: str = ""
    empty_actions: dict[str, str] = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    # -- look-ups --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.functions)

    def __contains__(self, fid: str) -> bool:
        return fid in self.functions

    def get(self, fid: str) -> CodeFunction:
        if fid not in self.functions:
            raise KeyError(f"phi has no function {fid!r}; known: {sorted(self.functions)}")
        return self.functions[fid]

    def preconditions(self, action: str) -> list[CodeFunction]:
        return [f for f in self.functions.values() if f.kind == "precondition" and f.action == action]

    def action_function(self, action: str) -> CodeFunction | None:
        for f in self.functions.values():
            if f.kind == "action" and f.action == action:
                return f
        return None

    def dynamics(self) -> list[CodeFunction]:
        return [f for f in self.functions.values() if f.kind == "dynamic"]

    def for_action(self, action: str) -> list[CodeFunction]:
        """Everything that runs for ``action``: its preconditions, its action function, the dynamics."""
        af = self.action_function(action)
        return self.preconditions(action) + ([af] if af else []) + self.dynamics()

    def ordered(self) -> list[CodeFunction]:
        """Functions in a stable, readable order (dynamic first, then per action)."""
        order = {"dynamic": 0, "action": 1, "precondition": 2}
        return sorted(self.functions.values(), key=lambda f: (f.action or "", order[f.kind], f.fid))

    def new_fid(self, kind: str, action: str | None, hint: str = "") -> str:
        """A function id not used yet, e.g. ``pre_buy_beans_enough_money`` or ``act_buy_beans``."""
        base = {"action": "act", "precondition": "pre", "dynamic": "dyn"}[kind]
        stem = "_".join(x for x in (base, slug(action) if action else "", slug(hint, 24) if hint else "") if x)
        fid, k = stem, 2
        while fid in self.functions:
            fid, k = f"{stem}_{k}", k + 1
        return fid

    # -- edits (each returns a new model; phi itself is never mutated in place) --------------
    def copy(self) -> "CodeModel":
        return CodeModel(dict(self.functions), self.version, self.env_name, self.llm,
                         dict(self.empty_actions), json.loads(json.dumps(self.notes, default=str)))

    def with_function(self, fn: CodeFunction) -> "CodeModel":
        m = self.copy()
        m.functions[fn.fid] = fn
        if fn.action:
            m.empty_actions.pop(fn.action, None)
        return m

    def without(self, fid: str) -> "CodeModel":
        self.get(fid)
        m = self.copy()
        del m.functions[fid]
        return m

    # -- text -------------------------------------------------------------------------------
    def render(self) -> str:
        """All of phi as one readable Python text (headers name id, kind, action and description)."""
        parts = [f"# code model phi for {self.env_name or '?'} (version {self.version})"]
        for a, why in sorted(self.empty_actions.items()):
            parts.append(f"# action {a!r} has no functions: {why}")
        for f in self.ordered():
            head = f"# [{f.fid}] {f.kind}" + (f" of action {f.action!r}" if f.action else "") + f" ({f.origin})"
            desc = "".join(f"\n# {line}" for line in f.description.strip().splitlines()[:6]) if f.description else ""
            parts.append(f"\n{head}{desc}\n{f.source.rstrip()}\n")
        return "\n".join(parts) + "\n"

    def diff(self, other: "CodeModel", context: int = 3) -> str:
        """Unified diff from this model to ``other``."""
        a = self.render().splitlines(keepends=True)
        b = other.render().splitlines(keepends=True)
        return "".join(difflib.unified_diff(a, b, f"phi v{self.version:03d}", f"phi v{other.version:03d}", n=context))

    def manifest(self) -> dict:
        return {"version": self.version, "env_name": self.env_name, "llm": self.llm,
                "empty_actions": self.empty_actions, "notes": self.notes,
                "functions": [f.manifest() for f in self.ordered()]}

    def summary(self) -> dict:
        return {"version": self.version, "n_functions": len(self.functions),
                "n_action": sum(f.kind == "action" for f in self.functions.values()),
                "n_precondition": sum(f.kind == "precondition" for f in self.functions.values()),
                "n_dynamic": sum(f.kind == "dynamic" for f in self.functions.values()),
                "empty_actions": sorted(self.empty_actions)}

    # -- disk -------------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        """Write ``manifest.json``, one ``<fid>.py`` per function and ``phi.py`` atomically into ``folder``."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            (tmp / "functions").mkdir()
            for f in self.functions.values():
                (tmp / "functions" / f"{f.fid}.py").write_text(f.source)
            (tmp / "manifest.json").write_text(json.dumps(self.manifest(), indent=1, default=str))
            (tmp / "phi.py").write_text(self.render())
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    @classmethod
    def load(cls, folder: Path) -> "CodeModel":
        folder = Path(folder)
        man_path = folder / "manifest.json"
        if not man_path.exists():
            raise FileNotFoundError(f"no code model at {folder} (manifest.json missing)")
        man = json.loads(man_path.read_text())
        fns = {}
        for d in man["functions"]:
            src = (folder / "functions" / d["file"]).read_text()
            d = {k: v for k, v in d.items() if k != "file"}
            fns[d["fid"]] = CodeFunction(source=src, **d)
        return cls(fns, int(man.get("version", 0)), man.get("env_name", ""), man.get("llm", ""),
                   dict(man.get("empty_actions") or {}), dict(man.get("notes") or {}))


class CodeStore:
    """Every version of phi under one folder: ``v000/``, ``v001/``, ... plus ``index.json``.

    ``index.json`` lists the versions with what produced each (initialisation or the accepted
    refinement with its scores), so the history can be replayed and diffed.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _index_path(self) -> Path:
        return self.root / "index.json"

    def index(self) -> list[dict]:
        p = self._index_path()
        return json.loads(p.read_text()) if p.exists() else []

    def versions(self) -> list[int]:
        return [e["version"] for e in self.index()]

    def path(self, version: int) -> Path:
        return self.root / f"v{version:03d}"

    def save(self, model: CodeModel, info: dict | None = None) -> Path:
        """Store ``model`` under its version number and record ``info`` in the index."""
        folder = model.save(self.path(model.version))
        idx = [e for e in self.index() if e["version"] != model.version]
        idx.append({"version": model.version, **(info or {}), **model.summary()})
        idx.sort(key=lambda e: e["version"])
        atomic_write_text(self._index_path(), json.dumps(idx, indent=1, default=str))
        return folder

    def load(self, version: int | None = None) -> CodeModel:
        """A stored version (the latest when ``version`` is None)."""
        vs = self.versions()
        if not vs:
            raise FileNotFoundError(f"no code model versions under {self.root}")
        v = vs[-1] if version is None else version
        if v not in vs:
            raise KeyError(f"no version {v} under {self.root}; stored: {vs}")
        return CodeModel.load(self.path(v))

    def latest(self) -> int:
        vs = self.versions()
        if not vs:
            raise FileNotFoundError(f"no code model versions under {self.root}")
        return vs[-1]

    def diff(self, a: int, b: int) -> str:
        return self.load(a).diff(self.load(b))

    def clear(self) -> None:
        """Remove every stored version (used when a run starts over)."""
        for p in self.root.glob("v[0-9][0-9][0-9]"):
            shutil.rmtree(p, ignore_errors=True)
        if self._index_path().exists():
            self._index_path().unlink()


def make_function(kind: str, action: str | None, source: str, model: CodeModel | None = None,
                  description: str = "", origin: str = "llm", fid: str | None = None,
                  version: int = 0) -> CodeFunction:
    """Build a :class:`CodeFunction` from source, naming it after its first ``def``."""
    name = function_name_in(source) or f"{kind}_{slug(action) if action else 'fn'}"
    if fid is None:
        fid = (model or CodeModel()).new_fid(kind, action, "" if kind == "action" else name)
    return CodeFunction(fid=fid, kind=kind, name=name, source=source, action=action,
                        description=description, origin=origin, version=version)


class RefinementError(ValueError):
    """A refinement cannot be applied to this phi (unknown function id, missing code...)."""


REFINEMENT_OPS = ("add", "remove", "replace")


@dataclass
class Refinement:
    """One candidate edit of phi: add, remove or replace a single function.

    ``target`` is the function id to remove or replace; ``function`` the new function for add and
    replace.  ``note`` records how the candidate was parsed (e.g. "add of a second action function
    turned into a replace").
    """

    op: str
    target: str | None = None
    function: CodeFunction | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.op not in REFINEMENT_OPS:
            raise RefinementError(f"refinement op must be one of {REFINEMENT_OPS}, got {self.op!r}")
        if self.op in ("remove", "replace") and not self.target:
            raise RefinementError(f"a {self.op} refinement needs the id of the function to {self.op}")
        if self.op in ("add", "replace") and self.function is None:
            raise RefinementError(f"an {self.op} refinement needs the new function")

    def kind(self, model: CodeModel) -> str:
        """Kind of function being changed (decides between PERS and ODRS scoring)."""
        if self.function is not None:
            return self.function.kind
        return model.get(self.target).kind

    def affected_actions(self, model: CodeModel) -> set[str] | None:
        """Actions whose predictions can change, or None when every transition can change."""
        acts: set[str] = set()
        for f in ([self.function] if self.function is not None else []) + (
                [model.functions[self.target]] if self.target in model.functions else []):
            if f.kind == "dynamic":
                return None
            acts.add(f.action)
        return acts

    def describe(self) -> str:
        if self.op == "remove":
            return f"remove {self.target}"
        f = self.function
        what = f"{f.kind} function {f.name}()" + (f" of {f.action}" if f.action else "")
        return f"replace {self.target} with {what}" if self.op == "replace" else f"add {what}"

    def apply(self, model: CodeModel, version: int | None = None) -> CodeModel:
        """The model after this edit (``model`` itself is left alone)."""
        v = model.version + 1 if version is None else version
        if self.op == "remove":
            out = model.without(self.target)
        else:
            f = self.function
            target = self.target
            if self.op == "replace" and target not in model.functions:
                raise RefinementError(f"cannot replace {target!r}: phi has no such function "
                                      f"(known: {sorted(model.functions)})")
            if self.op == "add":  # phi keeps one action function per action and one dynamic function
                existing = (model.action_function(f.action) if f.kind == "action"
                            else (model.dynamics() or [None])[0] if f.kind == "dynamic" else None)
                if existing is not None:
                    target = existing.fid
            if target is not None:
                old = model.functions[target]
                fid = target if old.kind == f.kind and old.action == f.action else model.new_fid(f.kind, f.action, f.name)
                out = model.without(target)
            else:
                fid = f.fid if f.fid not in model.functions else model.new_fid(f.kind, f.action, f.name)
                out = model.copy()
            out = out.with_function(replace(f, fid=fid, version=v))
        out.version = v
        return out


@dataclass
class Proposal:
    """What one refinement request to the LLM produced."""

    candidates: list[Refinement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why parts of the reply were dropped
    usage: dict = field(default_factory=dict)  # prompt_tokens, completion_tokens, seconds
    reply_text: str = ""
    model: str = ""


__all__ = ["CodeFunction", "CodeModel", "CodeStore", "make_function", "function_name_in", "slug",
           "Refinement", "RefinementError", "Proposal", "REFINEMENT_OPS"]
