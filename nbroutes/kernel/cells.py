"""Route cells to handlers: the three cell forms, decided from the syntax tree.

- pages form: the cell defines ``handler(req, res)``, which answers every method;
- method form: it defines ``GET``, ``POST``, ... (App Router's ``route.ts``);
- body form: neither; the cell body is the handler, the value of its last
  expression the response. It is compiled, never run, at registration.

Pages and method cells run once in the notebook's namespace (so their imports
and helpers work), but the handler names are taken out again so that two route
cells may both define ``GET``. Handlers keep the namespace as their globals and
so see notebook globals live.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import CodeType
from typing import Any, Literal

from nbroutes.core.handlers import METHODS, Endpoint
from nbroutes.errors import CellError, SignatureError

__all__ = ["CellError", "CompiledCell", "compile_cell", "detect_form", "parse_cell", "run_and_take"]

Form = Literal["pages", "method", "body"]
_HANDLER_NAMES = ("handler", *METHODS)


@dataclass
class CompiledCell:
    form: Form
    #: "*" for the pages-form handler and the body, else one Endpoint per method.
    endpoints: dict[str, Endpoint] = field(default_factory=dict)


def _bound_names(tree: ast.Module) -> set[str]:
    """Names among handler/GET/POST/... that the cell binds at top level."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names & set(_HANDLER_NAMES)


def detect_form(tree: ast.Module) -> tuple[Form, list[str]]:
    """Return the cell's form and the handler names it binds.

    Raises CellError if it mixes ``handler`` with method functions.
    """
    names = _bound_names(tree)
    if "handler" in names and names - {"handler"}:
        others = ", ".join(sorted(names - {"handler"}))
        raise CellError(
            f"the cell defines both handler and {others}: use handler(req, res) for every method, "
            "or one function per method, not both"
        )
    if "handler" in names:
        return "pages", ["handler"]
    if names:
        return "method", [m for m in METHODS if m in names]
    _refuse_functions_only(tree)
    return "body", []


def _refuse_functions_only(tree: ast.Module) -> None:
    """Raise CellError for a body-form cell that only defines functions: it would answer 204 to everything.

    ``def get(req, res)`` or ``def users(req)`` is a handler under a name nbroutes does not call;
    as a body it defines the function on every request and returns nothing.
    """
    statements = [s for s in tree.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    defined = [s.name for s in statements if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not defined or len(defined) != len(statements):
        return
    methods = [name.upper() for name in defined if name.upper() in METHODS]
    if methods:
        hint = f"name it {methods[0]} to answer {methods[0]} requests (method names are upper-case, as in route.ts)"
    else:
        hint = "name it GET, POST, ... (one function per method) or handler(req, res) to answer every method"
    raise CellError(
        f"the cell defines {', '.join(f'{name}()' for name in defined)} but no handler nbroutes calls: {hint}"
    )


def parse_cell(source: str, filename: str, line_offset: int = 0) -> ast.Module:
    """Parse a cell's source. Raises CellError for a syntax error, naming the line."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        line = (exc.lineno or 0) + line_offset
        text = (exc.text or "").strip()
        where = f"line {line}: {text}" if text else f"line {line}"
        raise CellError(f"SyntaxError in route cell, {where}\n    {exc.msg}") from None
    if line_offset:
        ast.increment_lineno(tree, line_offset)
    return tree


def compile_cell(
    source: str,
    namespace: dict[str, Any],
    filename: str = "<route cell>",
    *,
    line_offset: int = 0,
    run: Callable[[CodeType, dict[str, Any]], None] | None = None,
) -> CompiledCell:
    """Turn a route cell into endpoints whose globals are ``namespace``.

    ``line_offset`` shifts line numbers so tracebacks match the cell when a
    magic line was cut off its top; ``run`` executes a compiled cell (defaults
    to ``exec``).

    Raises CellError for a cell that cannot be a route (its message is for the
    user); an exception the cell raises while running propagates unchanged, and
    in every case the namespace is left as it was for the handler names.
    """
    tree = parse_cell(source, filename, line_offset)
    form, names = detect_form(tree)
    if form == "body":
        return CompiledCell("body", {"*": _compile_body(tree, namespace, filename)})

    found = run_and_take(tree, namespace, filename, names, run=run)
    endpoints: dict[str, Endpoint] = {}
    try:
        for name, fn in found.items():
            endpoints["*" if name == "handler" else name] = Endpoint(fn, name)
    except SignatureError as exc:
        raise CellError(str(exc)) from None
    if not endpoints:
        raise CellError(f"the cell names {', '.join(names)} but running it did not define them")
    return CompiledCell(form, endpoints)


def run_and_take(
    tree: ast.Module,
    namespace: dict[str, Any],
    filename: str,
    names: Iterable[str],
    *,
    run: Callable[[CodeType, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run a cell in ``namespace`` and take ``names`` out of it again, restoring what they held before.

    Returns the names the cell defined. An exception the cell raises propagates,
    and the namespace is restored for those names all the same.
    """
    code = _compile(tree, filename, "exec")
    missing = object()
    names = list(names)
    saved = {name: namespace.get(name, missing) for name in names}
    try:
        (run or _exec)(code, namespace)
        found = {name: namespace.get(name, missing) for name in names}
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value
    return {name: value for name, value in found.items() if value is not missing}


def _exec(code: CodeType, namespace: dict[str, Any]) -> None:
    exec(code, namespace)  # noqa: S102 - running the user's own cell is the point


def _compile(tree: ast.Module, filename: str, mode: str) -> CodeType:
    try:
        return compile(tree, filename, mode, dont_inherit=True)
    except SyntaxError as exc:
        raise CellError(f"SyntaxError in route cell, line {exc.lineno}: {exc.msg}") from None


class _AsyncFinder(ast.NodeVisitor):
    """Finds await/async for/async with outside nested functions and classes."""

    found = False

    def visit_Await(self, node: ast.Await) -> None:
        self.found = True

    visit_AsyncFor = visit_AsyncWith = visit_Await  # type: ignore[assignment]

    def visit_FunctionDef(self, node: ast.AST) -> None:
        pass

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef


def _compile_body(tree: ast.Module, namespace: dict[str, Any], filename: str) -> Endpoint:
    body = list(tree.body)
    if body and isinstance(body[-1], ast.Expr):
        last = body[-1]
        body[-1] = ast.copy_location(ast.Return(value=last.value), last)
    if not body:
        body = [ast.Pass()]
    finder = _AsyncFinder()
    for stmt in body:
        finder.visit(stmt)
    args = ast.arguments(
        posonlyargs=[], args=[ast.arg("req"), ast.arg("res")], kwonlyargs=[], kw_defaults=[], defaults=[]
    )
    kind = ast.AsyncFunctionDef if finder.found else ast.FunctionDef
    fn_def = kind(name="handler", args=args, body=body, decorator_list=[], returns=None)
    if sys.version_info >= (3, 12):  # the field is new in 3.12
        fn_def.type_params = []
    ast.copy_location(fn_def, body[0])
    module = ast.Module(body=[fn_def], type_ignores=[])
    ast.fix_missing_locations(module)
    scratch: dict[str, Any] = {}
    exec(_compile(module, filename, "exec"), namespace, scratch)  # noqa: S102 - defines, never runs, the body
    return Endpoint(scratch["handler"], "handler")
