"""The statuses a handler's own code answers with, read from its source for the OpenAPI document.

A signature tells the document what a handler takes and what it returns on success, not the other statuses
its code answers: ``raise HTTPException(404, "Post not found")``, ``return post, 201``, ``res.status(405)``.
Those, written with a literal status in the function itself, are read from its source (a notebook cell's
source too: IPython keeps it), so a document lists them without the user declaring each one twice. A status
held in a variable, or raised by a helper the handler calls, is not seen: the document then lists fewer
statuses than the handler answers, as it would without this.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

__all__ = ["Answered", "statuses_in_source"]


@dataclass(frozen=True)
class Answered:
    """A status a handler answers, what it means, and whether its body is an HTTPException's ``{"error": ...}``."""

    description: str
    error: bool = False


def statuses_in_source(fn: Callable[..., Any]) -> dict[int, Answered]:
    """The statuses from 200 to 599 that ``fn``'s own source names; empty when the source cannot be read.

    ``return None`` (or a bare ``return``) is a 204 only if the handler never writes through ``res``: the
    caller knows whether it takes ``res``.

    For ``def GET(req, id: int): raise HTTPException(404, "Post not found")`` that is
    ``{404: Answered("Post not found", error=True)}``.
    """
    node = _definition(fn)
    if node is None:
        return {}
    found: dict[int, Answered] = {}
    if isinstance(node, ast.Lambda):  # its body is what it returns
        node = ast.Return(node.body)
    for child in ast.walk(node):
        status, answered = _answer(child)
        if status is not None and answered is not None and 200 <= status <= 599:
            found.setdefault(status, answered)
    return found


def _definition(fn: Callable[..., Any]) -> ast.AST | None:
    """The ``def`` (or ``lambda``) of ``fn`` as parsed from its source, or None."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, ValueError):
        # No source (built in, typed at a prompt) or not a whole definition (a %%route cell's body with its magic).
        return None
    kinds: tuple[type[ast.AST], ...] = (
        (ast.Lambda,) if getattr(fn, "__name__", "") == "<lambda>" else (ast.FunctionDef, ast.AsyncFunctionDef)
    )
    return next((node for node in ast.walk(tree) if isinstance(node, kinds)), None)


def _answer(node: ast.AST) -> tuple[int | None, Answered | None]:
    if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and _called(node.exc) == "HTTPException":
        status = _int(_argument(node.exc, 0, "status_code"))
        detail = _argument(node.exc, 1, "detail")
        text = detail.value if isinstance(detail, ast.Constant) and isinstance(detail.value, str) else None
        return status, Answered(text or _phrase(status), error=True)
    if isinstance(node, ast.Return) and (node.value is None or _is_none(node.value)):
        return 204, Answered(_phrase(204))  # None is a 204, unless the handler sent through res first
    if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) in (2, 3):
        status = _int(node.value.elts[1])  # return body, 201
        return status, Answered(_phrase(status))
    if isinstance(node, ast.Call) and _called(node) == "status" and len(node.args) == 1 and not node.keywords:
        status = _int(node.args[0])  # res.status(201)
        return status, Answered(_phrase(status))
    return None, None


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _int(node: ast.expr | None) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _phrase(status: int | None) -> str:
    try:
        return HTTPStatus(status).phrase if status is not None else ""
    except ValueError:
        return f"Status {status}"
