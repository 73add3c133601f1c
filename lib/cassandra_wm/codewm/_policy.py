"""What generated code may and may not do: the static check shared by the parent and the worker.

This module uses the standard library only, because the sandbox worker loads it by file
path before it drops its privileges (it never imports the rest of the package).

The check parses the source, walks the AST and refuses:
  * imports outside :data:`ALLOWED_MODULES` (and any relative import);
  * names on :data:`FORBIDDEN_NAMES` (``open``, ``eval``, ``exec``, ``__import__``, ...) and every
    name that starts with a double underscore;
  * attribute access to any name starting with ``_`` and to frame/code attributes
    (``gi_frame``, ``f_globals``, ...) that lead back to interpreter internals;
  * ``global``/``nonlocal`` statements, class definitions and async code.

Bare ``except:`` clauses are rewritten to ``except Exception:`` so that generated code cannot
swallow the sandbox's own time-out signal.
"""
from __future__ import annotations

import ast

ALLOWED_MODULES = frozenset({
    "math", "cmath", "copy", "json", "itertools", "functools", "collections", "statistics", "re",
    "operator", "string", "typing", "fractions", "decimal", "bisect", "heapq",
})

# Dangerous even as a bare reference.  Other builtins that are merely absent from the worker's
# restricted builtins (input, exit, help...) fail at run time with a NameError instead, so that
# generated code may still use such words as ordinary variable names.
FORBIDDEN_NAMES = frozenset({
    "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "breakpoint",
    "memoryview", "setattr", "delattr", "super", "object", "BaseException", "SystemExit",
    "KeyboardInterrupt", "GeneratorExit",
})

FORBIDDEN_ATTRS = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "ag_frame", "ag_code",
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "tb_frame", "tb_next",
    "co_code", "co_consts", "func_globals", "mro", "format_map",
})

KINDS = ("action", "precondition", "dynamic")
# number of positional parameters each kind of function must accept
ARITY = {"action": 2, "precondition": 2, "dynamic": 1}


class PolicyError(ValueError):
    """Raised when source code breaks the sandbox policy (the message says where and why)."""


def _where(node: ast.AST) -> str:
    return f"line {getattr(node, 'lineno', '?')}"


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.problems: list[str] = []

    def bad(self, node: ast.AST, msg: str) -> None:
        self.problems.append(f"{_where(node)}: {msg}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top not in ALLOWED_MODULES or "." in alias.name:
                self.bad(node, f"import of {alias.name!r} is not allowed (allowed: {sorted(ALLOWED_MODULES)})")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        if node.level or mod not in ALLOWED_MODULES:
            self.bad(node, f"import from {mod or '.'!r} is not allowed")
        for alias in node.names:
            if alias.name == "*" or alias.name.startswith("_"):
                self.bad(node, f"'from {mod} import {alias.name}' is not allowed")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES or node.id.startswith("__"):
            self.bad(node, f"use of the name {node.id!r} is not allowed")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_") or node.attr in FORBIDDEN_ATTRS:
            self.bad(node, f"access to the attribute {node.attr!r} is not allowed")
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
    if not isinstance(source, str) or not source.strip():
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
    return ast.fix_missing_locations(_BareExcept().visit(tree))
