"""Handler functions: how nbroutes calls them, from ``(req)`` and ``(req, res)`` to typed parameters."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nbroutes.core.requests import Request
from nbroutes.core.responses import ApiResponse
from nbroutes.core.validation import Signature, bind
from nbroutes.errors import SignatureError

__all__ = ["Endpoint", "METHODS"]

#: The HTTP methods a method-form cell may define, as App Router's route.ts.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class Endpoint:
    """A handler function with its signature worked out once, when its route is registered."""

    __slots__ = ("fn", "name", "is_async", "response_model", "status_code", "responses", "signature", "_arity")

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        *,
        response_model: Any = None,
        status_code: int = 200,
        responses: Mapping[int, str] | None = None,
    ) -> None:
        if not callable(fn):
            raise SignatureError(f"{name or fn!r} must be a function, not {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "handler")
        self.is_async = inspect.iscoroutinefunction(fn)
        self.response_model = response_model
        #: The status of a successful answer, as the OpenAPI document tells it (the handler sets the real one).
        self.status_code = status_code
        #: Other statuses it answers (an HTTPException it raises), with what each means, for the OpenAPI document.
        self.responses = dict(responses or {})
        self.signature: Signature | None = None  # bound by prepare(), when the route is known
        self._arity: int | None = None

    def prepare(self, path_params: Sequence[str]) -> None:
        """Bind the signature for a route with these path parameters.

        Raises SignatureError for a parameter nbroutes cannot supply.
        """
        signature = bind(self.fn, path_params, self.response_model)
        self.signature = signature
        self._arity = _positional_arity(signature)

    def call(self, req: Request, res: ApiResponse) -> Any:
        """Call the handler: its return value, or an awaitable of it.

        Raises RequestValidationError (422) when typed parameters do not validate.
        """
        arity = self._arity
        if arity == 2:
            return self.fn(req, res)
        if arity == 1:
            return self.fn(req)
        if arity == 0:
            return self.fn()
        assert self.signature is not None, "Endpoint.prepare() binds the signature first"
        return self.fn(**self.signature.arguments(req, res))

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""

    def __repr__(self) -> str:
        return f"<Endpoint {self.name}>"


def _positional_arity(signature: Signature) -> int | None:
    """2, 1 or 0 when the handler takes (req, res), (req) or (): called positionally, the fast path."""
    if signature.typed:
        return None
    try:
        params = list(inspect.signature(signature.fn, follow_wrapped=False).parameters.values())
    except (TypeError, ValueError):
        return 2
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    locations = [p.location for p in signature.all_parameters]
    if locations in (["request", "response"], ["request"], []) and all(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params
    ):
        return len(locations)
    return None
