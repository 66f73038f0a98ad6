"""Handler functions: how nbroutes calls them and what they may take."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .requests import Request
from .responses import ApiResponse

__all__ = ["Endpoint", "HandlerError", "METHODS"]

#: The HTTP methods a method-form cell may define, as App Router's route.ts.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

_REQ_NAMES = ("req", "request")
_RES_NAMES = ("res", "response")


class HandlerError(TypeError):
    """A handler whose signature nbroutes cannot call."""


class Endpoint:
    """A handler function with its signature inspected once, at registration."""

    __slots__ = ("fn", "name", "is_async", "_arity")

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        if not callable(fn):
            raise HandlerError(f"{name or fn!r} must be a function, not {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "handler")
        self.is_async = inspect.iscoroutinefunction(fn)
        self._arity = _arity(fn, self.name)

    def call(self, req: Request, res: ApiResponse) -> Any:
        """Call the handler: its return value, or an awaitable of it."""
        arity = self._arity
        if arity == 2:
            return self.fn(req, res)
        if arity == 1:
            return self.fn(req)
        return self.fn()

    def __repr__(self) -> str:
        return f"<Endpoint {self.name}>"


def _arity(fn: Callable[..., Any], name: str) -> int:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 2  # a builtin or C callable: assume (req, res)
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in params if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
    if len(required) > 2 or any(p.kind is p.KEYWORD_ONLY for p in required):
        raise HandlerError(f"{name}{sig} takes parameters nbroutes cannot supply: a handler takes (req) or (req, res)")
    return min(len(positional), 2)
