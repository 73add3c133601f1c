"""What generated code may and may not do: the static check shared by the parent and the worker.

This module uses the standard library only, because the sandbox worker loads it by file path
before it drops its privileges (it never imports the rest of the package).

The check is the first of two walls (the second is the operating-system boundary described in
``_worker.py``).  It parses the source, walks the AST and refuses:

* imports outside :data:`ALLOWED_MODULES`, dotted or relative imports, and ``from m import x``
  where ``x`` is not one of the names :func:`exposed_names` lists for ``m``;
* names on :data:`FORBIDDEN_NAMES` (``open``, ``eval``, ``exec``, ``__import__``, ...) and every
  name that starts with a double underscore;
* reading any attribute whose name starts with ``_`` or is on :data:`FORBIDDEN_ATTRS` (frames,
  code objects, closures), and assigning or deleting any attribute at all (no monkey-patching);
* ``.format`` anywhere except directly on a string literal whose fields name no attribute
  (``"{0.__class__}".format(x)`` reads attributes by name);
* ``match`` class patterns that read an attribute by keyword (``case int(__class__=c)``);
* ``global``/``nonlocal`` statements, class definitions and async code.

Attribute names passed as strings at run time (``getattr``, ``operator.attrgetter``,
``operator.methodcaller``) are checked by :func:`name_allowed` inside the worker.

Bare ``except:`` clauses are rewritten to ``except Exception:`` so that generated code cannot
swallow the sandbox's own time-out signal.
"""
from __future__ import annotations

import ast
import string

# Module -> the names generated code may use from it (None: every public, non-module name).
# Names left out read attributes by string (attrgetter/methodcaller are replaced by checked
# versions in the worker), evaluate strings as code (typing.get_type_hints, ForwardRef,
# functools.singledispatch), copy arbitrary attributes (functools.update_wrapper, wraps), or
# expose shared mutable tables (copy.dispatch_table).
MODULES: dict[str, frozenset | None] = {
    "math": None, "cmath": None, "itertools": None, "bisect": None, "heapq": None,
    "statistics": None, "decimal": None,
    "fractions": frozenset({"Fraction"}),
    "copy": frozenset({"copy", "deepcopy", "Error"}),
    "json": frozenset({"dumps", "loads", "JSONDecodeError"}),
    "re": frozenset({"compile", "search", "match", "fullmatch", "split", "findall", "finditer", "sub",
                     "subn", "escape", "error", "Pattern", "Match", "A", "ASCII", "I", "IGNORECASE", "M",
                     "MULTILINE", "S", "DOTALL", "X", "VERBOSE", "U", "UNICODE", "NOFLAG"}),
    "string": frozenset({"ascii_letters", "ascii_lowercase", "ascii_uppercase", "digits", "hexdigits",
                         "octdigits", "printable", "punctuation", "whitespace", "capwords"}),
    "collections": frozenset({"Counter", "OrderedDict", "defaultdict", "deque", "namedtuple", "ChainMap"}),
    "functools": frozenset({"reduce", "partial", "lru_cache", "cache", "cmp_to_key"}),
    "operator": None,
    "typing": frozenset({"Any", "Callable", "Collection", "Container", "Counter", "DefaultDict", "Deque",
                         "Dict", "Final", "FrozenSet", "Generator", "Hashable", "Iterable", "Iterator", "List",
                         "Literal", "Mapping", "MutableMapping", "MutableSequence", "NoReturn", "Optional",
                         "OrderedDict", "Sequence", "Set", "Sized", "SupportsFloat", "SupportsInt", "Text",
                         "Tuple", "Type", "TypeVar", "Union", "TYPE_CHECKING", "cast"}),
}
ALLOWED_MODULES = frozenset(MODULES)

# Dangerous even as a bare reference.  Other builtins that are merely absent from the worker's
# restricted builtins (input, exit, help, dir...) fail at run time with a NameError instead, so
# that generated code may still use such words as ordinary variable names.
FORBIDDEN_NAMES = frozenset({
    "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "breakpoint",
    "memoryview", "setattr", "delattr", "super", "object", "BaseException", "SystemExit",
    "KeyboardInterrupt", "GeneratorExit",
})

# Attributes that lead back to interpreter internals (frames, code, closures, generators) or
# read attributes by name (format_map).  Names starting with "_" are refused as well.
FORBIDDEN_ATTRS = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "gi_running", "gi_suspended",
    "cr_frame", "cr_code", "cr_await", "cr_origin", "cr_running", "cr_suspended",
    "ag_frame", "ag_code", "ag_await", "ag_running",
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace", "f_lasti", "f_lineno",
    "tb_frame", "tb_next", "tb_lasti", "tb_lineno",
    "co_code", "co_consts", "co_names", "co_varnames", "co_filename", "co_lnotab", "co_linetable",
    "func_globals", "func_code", "func_closure", "im_func", "im_self", "cell_contents",
    "mro", "format_map",
})

KINDS = ("action", "precondition", "dynamic")
# number of positional parameters each kind of function must accept
ARITY = {"action": 2, "precondition": 2, "dynamic": 1}


class PolicyError(ValueError):
    """Raised when source code breaks the sandbox policy (the message says where and why)."""


def name_allowed(name) -> bool:
    """May generated code read the attribute ``name`` (given as a string at run time)?"""
    return (type(name) is str and bool(name) and not name.startswith("_")
            and name not in FORBIDDEN_ATTRS and name != "format")


_EXPOSED: dict[str, frozenset] = {}


def exposed_names(module: str) -> frozenset:
    """The names generated code may use from ``module`` (which must be in :data:`ALLOWED_MODULES`)."""
    if module not in _EXPOSED:
        import types
        mod = __import__(module)
        names = MODULES[module]
        if names is None:
            pool = getattr(mod, "__all__", None) or dir(mod)
            names = frozenset(n for n in pool if not n.startswith("_") and hasattr(mod, n)
                              and not isinstance(getattr(mod, n), types.ModuleType))
        _EXPOSED[module] = frozenset(n for n in names if hasattr(mod, n))
    return _EXPOSED[module]


def _where(node: ast.AST) -> str:
    return f"line {getattr(node, 'lineno', '?')}"


def _format_problem(text: str, depth: int = 0) -> str | None:
    """Why a literal format string is unsafe for ``str.format`` (None when it is safe)."""
    if depth > 2:
        return "format specification nested too deeply"
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as e:
        return f"malformed format string ({e})"
    for _, field, spec, _ in parts:
        if field is not None and "." in field:
            return f"format field {{{field}}} reads an attribute"
        if spec:
            why = _format_problem(spec, depth + 1)
            if why:
                return why
    return None


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.problems: list[str] = []

    def bad(self, node: ast.AST, msg: str) -> None:
        self.problems.append(f"{_where(node)}: {msg}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in ALLOWED_MODULES:
                self.bad(node, f"import of {alias.name!r} is not allowed (allowed: {sorted(ALLOWED_MODULES)})")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        if node.level or mod not in ALLOWED_MODULES:
            self.bad(node, f"import from {mod or '.'!r} is not allowed")
        else:
            for alias in node.names:
                if alias.name == "*" or alias.name not in exposed_names(mod):
                    self.bad(node, f"'from {mod} import {alias.name}' is not allowed")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES or node.id.startswith("__"):
            self.bad(node, f"use of the name {node.id!r} is not allowed")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_") or node.attr in FORBIDDEN_ATTRS:
            self.bad(node, f"access to the attribute {node.attr!r} is not allowed")
        elif not isinstance(node.ctx, ast.Load):
            self.bad(node, f"assigning or deleting the attribute {node.attr!r} is not allowed")
        elif node.attr == "format":
            v = node.value
            if not (isinstance(v, ast.Constant) and isinstance(v.value, str)):
                self.bad(node, "'.format' may only be called on a string literal (use an f-string)")
            else:
                why = _format_problem(v.value)
                if why:
                    self.bad(node, why)
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        for name in node.kwd_attrs:
            if name.startswith("_") or name in FORBIDDEN_ATTRS:
                self.bad(node, f"a class pattern may not read the attribute {name!r}")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name.startswith("__"):
            self.bad(node, f"function name {node.name!r} is not allowed")
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        if node.arg.startswith("__"):
            self.bad(node, f"parameter name {node.arg!r} is not allowed")

    def visit_Global(self, node: ast.Global) -> None:
        self.bad(node, "'global' statements are not allowed")

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.bad(node, "'nonlocal' statements are not allowed")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.bad(node, "class definitions are not allowed")

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.bad(node, "async functions are not allowed")

    def visit_Await(self, node: ast.Await) -> None:
        self.bad(node, "'await' is not allowed")


class _BareExcept(ast.NodeTransformer):
    """``except:`` -> ``except Exception:`` (keeps the sandbox's time-out uncatchable)."""

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.ExceptHandler:
        self.generic_visit(node)
        if node.type is None:
            node.type = ast.copy_location(ast.Name(id="Exception", ctx=ast.Load()), node)
        return node


def function_names(tree: ast.Module) -> list[str]:
    """Names of the top-level ``def`` statements, in order."""
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]


def check_source(source: str, name: str | None = None, kind: str | None = None) -> ast.Module:
    """Parse and check ``source``; return the (rewritten) AST or raise :class:`PolicyError`.

    With ``name`` given, the module must define a top-level function of that name; with ``kind``
    given as well, the function must accept the number of positional arguments the kind needs.
    """
    if type(source) is not str or not source.strip():
        raise PolicyError("empty source")
    if len(source) > 100_000:
        raise PolicyError(f"source too long ({len(source)} characters, limit 100000)")
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise PolicyError(f"syntax error at line {e.lineno}: {e.msg}") from None
    except (ValueError, MemoryError, RecursionError) as e:
        raise PolicyError(f"cannot parse: {type(e).__name__}: {e}") from None
    checker = _Checker()
    try:
        checker.visit(tree)
    except RecursionError:
        raise PolicyError("source nested too deeply") from None
    if checker.problems:
        raise PolicyError("; ".join(checker.problems[:5]))
    if name is not None:
        defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        if name not in defs:
            found = ", ".join(defs) or "none"
            raise PolicyError(f"no top-level function named {name!r} (found: {found})")
        if kind is not None:
            need = ARITY[kind]
            a = defs[name].args
            npos = len(a.posonlyargs) + len(a.args)
            nreq = npos - len(a.defaults)
            if not (nreq <= need <= npos or (a.vararg is not None and nreq <= need)):
                raise PolicyError(f"{kind} function {name!r} must take {need} positional argument(s)"
                                  f" ({'state, action' if need == 2 else 'state'})")
    try:
        return ast.fix_missing_locations(_BareExcept().visit(tree))
    except RecursionError:
        raise PolicyError("source nested too deeply") from None


# One paragraph for prompts and documentation.
RULES_TEXT = ("plain functions only (no classes, no global/nonlocal, no async); imports only from "
              + ", ".join(sorted(ALLOWED_MODULES)) + "; no names or attributes starting with an "
              "underscore; no assignment to attributes; str.format only on string literals (prefer "
              "f-strings); no open/eval/exec/getattr tricks: files, network and processes are unavailable")
