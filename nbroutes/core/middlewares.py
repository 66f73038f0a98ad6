"""Middleware: functions that run before routing, in definition order, and may answer by themselves.

A middleware is ``middleware(req, call_next)``, sync or async. It may return a
response to short-circuit, or ``await call_next(req)`` and change the response
on the way back; returning None continues to the route. Matchers use Next.js
middleware syntax, over the path as routing reads it (``Request.route_path``)::

    >>> compile_matcher("/api/admin/:path*").match("/api/admin/users/1") is not None
    True
"""

from __future__ import annotations

import hmac
import inspect
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbroutes.core.output import Console
from nbroutes.core.paths import MalformedPathError, canonical_path
from nbroutes.core.requests import Request
from nbroutes.core.responses import Response, to_response
from nbroutes.errors import MatcherError

__all__ = ["Middleware", "MiddlewareStack", "MatcherError", "compile_matcher", "cors", "require_token"]

CallNext = Callable[[Request], Awaitable[Response]]


# A literal stops before a "/" that leads a parameter, so "/:p*" can make that slash optional.
_TOKEN = re.compile(r"(/?):([A-Za-z_][A-Za-z0-9_]*)([*+?]?)|\(([^()]*)\)|(/(?!:)|[^:(/]+)")


def compile_matcher(matcher: str) -> re.Pattern[str]:
    """Compile a Next.js matcher (``/about/:path*``, ``/api/:id``, ``/(.*)``) to a regex over ``Request.route_path``.

    ``:p`` is one segment, ``:p*`` zero or more, ``:p+`` one or more, ``:p?``
    optional; ``(regex)`` is a raw group.

    Raises MatcherError if it does not start with '/' or is malformed.
    """
    if not matcher.startswith("/"):
        raise MatcherError(f"matcher {matcher!r} must start with '/', e.g. /api/:path*")
    parts: list[str] = []
    pos = 0
    while pos < len(matcher):
        m = _TOKEN.match(matcher, pos)
        if m is None:
            raise MatcherError(f"matcher {matcher!r} is malformed at {matcher[pos:]!r}")
        slash, name, modifier, group, literal = m.groups()
        if name is not None:
            lead = "/" if slash else ""
            if modifier == "*":
                parts.append(f"(?:{lead}(?P<{name}>.*))?")
            elif modifier == "+":
                parts.append(f"{lead}(?P<{name}>.+)")
            elif modifier == "?":
                parts.append(f"(?:{lead}(?P<{name}>[^/]+))?")
            else:
                parts.append(f"{lead}(?P<{name}>[^/]+)")
        elif group is not None:
            parts.append(f"(?:{group})")
        else:
            parts.append(re.escape(literal))
        pos = m.end()
    try:
        return re.compile("^" + "".join(parts) + "/?$")
    except re.error as exc:
        raise MatcherError(f"matcher {matcher!r}: {exc}") from None


@dataclass(eq=False)
class Middleware:
    """A middleware function, the paths it runs for, and who defined it."""

    fn: Callable[..., Any]
    matchers: tuple[str, ...] = ()
    owner: str = ""
    cell: str | None = None
    label: str = ""
    console: Console = field(default_factory=Console)
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._compiled = tuple(compile_matcher(m) for m in self.matchers)
        if not self.owner:
            self.owner = f"middleware {getattr(self.fn, '__qualname__', repr(self.fn))}"
        params = _positional_count(self.fn)
        if params is not None and params < 2:
            raise TypeError(f"{getattr(self.fn, '__name__', 'middleware')} must take (req, call_next)")

    @property
    def name(self) -> str:
        return getattr(self.fn, "__name__", "middleware")

    def matches(self, path: str) -> bool:
        """Whether it runs for ``path``, a raw request path, matched in its canonical spelling as routing reads it.

        A path that cannot be decoded matches every matcher (fail closed): routing answers it with a 400,
        unless middleware before this one rewrote it, and then this one must have had its say.
        """
        if not self._compiled:
            return True
        try:
            canonical = canonical_path(path)
        except MalformedPathError:
            return True
        return any(p.match(canonical) for p in self._compiled)

    def applies_to(self, request: Request) -> bool:
        """Whether it runs for ``request``: its matchers against ``request.route_path``, the path routing matches."""
        if not self._compiled:
            return True
        try:
            path = request.route_path
        except MalformedPathError:
            return True  # fail closed, as in matches()
        return any(p.match(path) for p in self._compiled)

    async def run(self, request: Request, call_next: CallNext) -> Response:
        """Run it; None means "continue", and a call_next it started is awaited."""
        pending: list[Awaitable[Response]] = []
        answered: list[Response] = []

        async def forward(req: Request) -> Response:
            response = await call_next(req)
            answered.append(response)
            return response

        def next_(req: Request | None = None) -> Awaitable[Response]:
            step = forward(req if req is not None else request)
            pending.append(step)
            return step

        value = self.fn(request, next_)
        if inspect.isawaitable(value):
            value = await value
        if value is None:
            if answered:
                return answered[-1]
            if pending:
                return await pending[-1]  # a sync middleware that called call_next without awaiting it
            return await call_next(request)
        for step in pending:
            if inspect.iscoroutine(step) and inspect.getcoroutinestate(step) == inspect.CORO_CREATED:
                step.close()  # started but dropped: close it rather than warn "never awaited"
        return to_response(value)


def _positional_count(fn: Callable[..., Any]) -> int | None:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


class MiddlewareStack:
    """Middleware in definition order; re-defining an owner's middleware keeps its place."""

    def __init__(self) -> None:
        self._items: tuple[Middleware, ...] = ()

    def __iter__(self) -> Any:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def set(self, middleware: Middleware) -> None:
        """Add ``middleware``, or replace the one with the same owner where it stands."""
        items = list(self._items)
        for i, existing in enumerate(items):
            if existing.owner == middleware.owner:
                items[i] = middleware
                break
        else:
            items.append(middleware)
        self._items = tuple(items)

    def remove(self, owner: str) -> list[Middleware]:
        removed = [m for m in self._items if m.owner == owner]
        self._items = tuple(m for m in self._items if m.owner != owner)
        return removed

    def remove_cell(self, cell: str, keep: Iterable[str] = ()) -> list[Middleware]:
        """Remove the middleware defined by ``cell``, but those whose owner is in ``keep``."""
        kept = set(keep)
        removed = [m for m in self._items if m.cell == cell and m.owner not in kept]
        self._items = tuple(m for m in self._items if m not in removed)
        return removed


# -- built-ins -----------------------------------------------------------------------


def cors(
    origins: str | Sequence[str] = "*",
    *,
    methods: Sequence[str] = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"),
    headers: str | Sequence[str] = "*",
    credentials: bool = False,
    max_age: int = 600,
    expose_headers: Sequence[str] = (),
) -> Callable[[Request, CallNext], Awaitable[Response]]:
    """A middleware that answers CORS preflights and adds CORS headers.

    ``origins`` is "*" or a list of origins; ``credentials=True`` echoes the
    request's origin (browsers refuse "*" with credentials).

    Raises ValueError for credentials with every origin allowed, which would let
    any site read responses with the user's cookies.
    """
    any_origin = origins == "*" or (not isinstance(origins, str) and "*" in origins)
    if credentials and any_origin:
        raise ValueError("cors(credentials=True) needs a list of origins, not '*'")
    allowed = set() if any_origin else {origins} if isinstance(origins, str) else set(origins)
    allow_methods = ", ".join(m.upper() for m in methods)
    allow_headers = headers if isinstance(headers, str) else ", ".join(headers)

    def origin_header(origin: str) -> str | None:
        if any_origin:
            return "*"
        return origin if origin in allowed else None

    async def cors_middleware(req: Request, call_next: CallNext) -> Response:
        origin = req.headers.get("origin")
        if origin is None:
            return await call_next(req)
        allow_origin = origin_header(origin)
        if req.method == "OPTIONS" and "access-control-request-method" in req.headers:
            if allow_origin is None:
                return Response.json({"error": f"Origin {origin} is not allowed"}, 403, {"Vary": "Origin"})
            preflight = [
                ("Access-Control-Allow-Origin", allow_origin),
                ("Access-Control-Allow-Methods", allow_methods),
                ("Access-Control-Max-Age", str(max_age)),
                ("Vary", "Origin"),
            ]
            requested = req.headers.get("access-control-request-headers")
            if allow_headers == "*" and requested:
                preflight.append(("Access-Control-Allow-Headers", requested))
            elif allow_headers and allow_headers != "*":
                preflight.append(("Access-Control-Allow-Headers", allow_headers))
            if credentials:
                preflight.append(("Access-Control-Allow-Credentials", "true"))
            return Response(b"", 204, preflight)
        response = await call_next(req)
        if allow_origin is not None:
            response.set_header("Access-Control-Allow-Origin", allow_origin)
            if credentials:
                response.set_header("Access-Control-Allow-Credentials", "true")
            if expose_headers:
                response.set_header("Access-Control-Expose-Headers", ", ".join(expose_headers))
        if not any_origin:
            response.headers.append(("Vary", "Origin"))
        return response

    # The App asks this before refusing a write from another site (nbroutes.core.security).
    cors_middleware.allows_origin = lambda origin: origin_header(origin) is not None  # type: ignore[attr-defined]
    return cors_middleware


@dataclass(frozen=True)
class TokenAuth:
    """Where ``require_token`` looks for the token, so the OpenAPI document can describe it as a security scheme."""

    header: str
    scheme: str | None


def require_token(
    env: str = "NBROUTES_TOKEN",
    *,
    header: str = "Authorization",
    scheme: str | None = "Bearer",
) -> Callable[[Request, CallNext], Awaitable[Response]]:
    """A middleware that lets through only requests carrying the token in ``$env``.

    By default a bearer token (``Authorization: Bearer <token>``); with
    ``header="X-API-Key", scheme=None`` an API key header. The token is read
    from the environment on each request and compared in constant time. If the
    variable is unset every request is refused (fail closed).
    """
    prefix = f"{scheme} " if scheme else ""
    challenge = f'{scheme} realm="nbroutes"' if scheme else f'ApiKey header="{header}"'

    async def token_middleware(req: Request, call_next: CallNext) -> Response:
        expected = os.environ.get(env)
        if not expected:
            return Response.json(
                {"error": "Unauthorized", "detail": f"the server has no token: set ${env}"},
                401,
                {"WWW-Authenticate": challenge},
            )
        sent = req.headers.get(header, "")
        if prefix and sent[: len(prefix)].lower() == prefix.lower():
            sent = sent[len(prefix) :]
        elif prefix:
            sent = ""
        if not hmac.compare_digest(sent.strip().encode(), expected.encode()):
            return Response.json({"error": "Unauthorized"}, 401, {"WWW-Authenticate": challenge})
        return await call_next(req)

    token_middleware.token_auth = TokenAuth(header, scheme)  # type: ignore[attr-defined]
    return token_middleware
