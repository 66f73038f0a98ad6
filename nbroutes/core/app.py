"""The core: ``App.dispatch(Request) -> Response``, with no server or notebook in it.

Every adapter (the Tornado server in the kernel, the test client, later ASGI
and the CLI) builds a ``Request``, awaits ``dispatch`` and writes the
``Response`` back, so they all behave the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from nbroutes.core.handlers import Endpoint
from nbroutes.core.middlewares import Middleware, MiddlewareStack
from nbroutes.core.openapi import INTERNAL_OWNER, INTERNAL_PREFIX, DocumentCache, build_openapi, internal_routes
from nbroutes.core.output import Console, current_console
from nbroutes.core.paths import collapse_slashes, compile_pattern
from nbroutes.core.requests import DEFAULT_MAX_FIELDS, DEFAULT_MAX_FILES, Request, format_size, parse_size
from nbroutes.core.responses import TEXT_TYPE, ApiResponse, Response, to_response
from nbroutes.core.routing import DEFAULT_BODY_LIMIT, DEFAULT_RESPONSE_LIMIT, Route, Router
from nbroutes.core.security import HostPolicy, hosts_from_env
from nbroutes.core.streaming import ChunkQueue, cancels_this_task
from nbroutes.core.validation import Signature
from nbroutes.errors import BodyError, HTTPException, MalformedPathError, PatternError, RequestValidationError

__all__ = ["App"]

app_log = logging.getLogger("nbroutes.application")

_NO_BODY_STATUSES = frozenset({204, 304})
_ENTITY_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})


class App:
    """Routes and the pipeline that answers requests with them.

    ``title`` and ``version`` head the OpenAPI document and name the docs page.
    ``docs`` serves them at ``/_nbroutes/openapi.json`` and ``/_nbroutes/docs``
    (off, those answer 404 like any unknown path). ``debug`` puts the
    exception's type and message in a 500's body (the traceback always goes to
    the route's console, never to the client); the kernel turns it on,
    ``nbroutes serve`` and the ASGI app leave it off. ``allowed_hosts`` (and
    ``$NBROUTES_ALLOWED_HOSTS``) are the names the App answers besides localhost
    and IP addresses (``nbroutes.core.security``).
    """

    def __init__(
        self,
        *,
        title: str = "nbroutes",
        version: str = "0.1.0",
        docs: bool = True,
        debug: bool = False,
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.router = Router()
        self.middleware = MiddlewareStack()
        self.debug = debug
        self.hosts = HostPolicy([*allowed_hosts, *hosts_from_env()])
        self.title = title
        self.version = version
        #: The OpenAPI document's JSON, kept until the routes, middleware, title or version change.
        self.openapi_cache = DocumentCache()
        self._docs = docs
        self._mount_internal()

    @property
    def docs(self) -> bool:
        """Whether the OpenAPI document and the docs page are served; setting it mounts or removes them."""
        return self._docs

    @docs.setter
    def docs(self, on: bool) -> None:
        self._docs = on
        self._mount_internal()

    def _mount_internal(self) -> None:
        # Ordinary routes, unlisted: dispatch needs no special case for them.
        self.router.set(INTERNAL_OWNER, internal_routes(self.openapi_json, lambda: self.title, docs=self._docs))

    # -- building ----------------------------------------------------------------
    def route(
        self,
        pattern: str,
        methods: Iterable[str] | str | None = None,
        *,
        body_limit: int | str | None = DEFAULT_BODY_LIMIT,
        response_limit: int | str = DEFAULT_RESPONSE_LIMIT,
        response_model: Any = None,
        max_fields: int = DEFAULT_MAX_FIELDS,
        max_files: int = DEFAULT_MAX_FILES,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: serve a function at ``pattern`` (all methods, or those given).

        Raises PatternError for a bad pattern, RouteConflictError for one that
        clashes with the routes already there.
        """
        only = _methods(methods)

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            endpoint = Endpoint(fn, response_model=response_model)
            self.add(
                pattern,
                {"*": endpoint},
                only=only,
                body_limit=body_limit,
                response_limit=response_limit,
                max_fields=max_fields,
                max_files=max_files,
            )
            return fn

        return decorate

    def add(
        self,
        pattern: str,
        endpoints: dict[str, Endpoint],
        *,
        owner: str | None = None,
        only: frozenset[str] | None = None,
        body_limit: int | str | None = DEFAULT_BODY_LIMIT,
        response_limit: int | str = DEFAULT_RESPONSE_LIMIT,
        console: Console | None = None,
        max_fields: int = DEFAULT_MAX_FIELDS,
        max_files: int = DEFAULT_MAX_FILES,
    ) -> tuple[Route, list[Route]]:
        """Register endpoints at ``pattern``; returns the route and the routes it displaced.

        A form body may hold ``max_fields`` fields and ``max_files`` files; one more is answered 413.

        Raises ValueError if ``max_fields`` or ``max_files`` is not a count.
        """
        for option, count in (("max_fields", max_fields), ("max_files", max_files)):
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"{option}={count!r}: it must be a whole number of 0 or more, e.g. {option}=5000")
        compiled = compile_pattern(pattern)
        if compiled.text.startswith(INTERNAL_PREFIX.rstrip("/")):
            raise PatternError(f"{compiled.text}: paths under {INTERNAL_PREFIX} are nbroutes' own (docs, OpenAPI)")
        limit = None if body_limit is None else parse_size(body_limit)
        route = Route(
            compiled,
            endpoints,
            owner=owner or compiled.text,
            body_limit=limit,
            body_limit_text=_limit_text(body_limit, limit),
            max_fields=max_fields,
            max_files=max_files,
            response_limit=parse_size(response_limit),
            console=console or Console(compiled.text),
            only=only,
        )
        displaced = self.router.set(route.owner, [route])
        return route, displaced

    def use(
        self,
        fn: Callable[..., Any],
        matcher: str | Sequence[str] | None = None,
        *,
        owner: str | None = None,
        cell: str | None = None,
        console: Console | None = None,
    ) -> Middleware:
        """Run middleware ``fn(req, call_next)`` before routing, for paths its matchers match (all by default).

        Using the same owner again replaces that middleware where it stands.

        Raises MatcherError for a matcher that is not Next.js syntax.
        """
        matchers = (matcher,) if isinstance(matcher, str) else tuple(matcher or ())
        middleware = Middleware(
            fn, matchers, owner or "", cell, console=console or Console(getattr(fn, "__name__", ""))
        )
        self.middleware.set(middleware)
        return middleware

    def openapi(self, server_url: str | None = None) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the routes as they are now; ``server_url`` is where clients reach them."""
        return build_openapi(self, server_url=server_url)

    def openapi_json(self, server_url: str | None = None) -> bytes:
        """``openapi()`` as JSON, built again only when the routes, middleware, title or version have changed."""
        key = (self.router.version, tuple(self.middleware), self.title, self.version, server_url)
        return self.openapi_cache.get(key, lambda: self.openapi(server_url))

    def allow_hosts(self, *hosts: str) -> None:
        """Answer requests naming these hosts too: adapters pass the address they bind, the CLI its --allowed-host."""
        self.hosts.allow(*hosts)

    def body_limit_for(self, path: str) -> int | None:
        """The body limit of the route that ``path`` goes to, for servers that read bodies.

        None means the route reads no body and sets no limit.
        """
        if not path.startswith("/"):
            return 0  # answered 400 without reading a body, whatever it was
        try:
            found = self.router.match(path)
        except MalformedPathError:
            return 0
        return found[0].body_limit if found is not None else DEFAULT_BODY_LIMIT

    # -- answering ---------------------------------------------------------------
    async def dispatch(self, request: Request) -> Response:
        """Answer ``request``: middleware, routing, the handler, then HTTP's rules for the response."""
        if not request.path.startswith("/"):
            # Asterisk-form ("*"), absolute-form ("http://host/path") or a bare "api/x": answered here, before
            # middleware, since none of them is a path that a matcher and the router would read alike.
            return _finish(request, _not_origin_form(request), None)
        refusal = self.hosts.refusal(request, self._cors_allows)
        if refusal is not None:  # another name for this server, or a page on another site writing
            return _finish(request, refusal, None)
        if self.middleware:
            response = await self._through(tuple(self.middleware), 0, request)
            return _finish(request, response, request.route)
        return _finish(request, await self._route(request), request.route)

    def _cors_allows(self, request: Request, origin: str) -> bool:
        """Whether a ``cors(...)`` middleware that runs for the request's path allows ``origin``."""
        for middleware in self.middleware:
            if not middleware.applies_to(request):
                continue
            allows = getattr(middleware.fn, "allows_origin", None)
            if allows is not None and allows(origin):
                return True
        return False

    async def _through(self, chain: tuple[Middleware, ...], index: int, request: Request) -> Response:
        # Each middleware is matched when its turn comes, against the path routing will match then:
        # one before it may have rewritten req.path.
        while index < len(chain) and not chain[index].applies_to(request):
            index += 1
        if index == len(chain):
            return await self._route(request)
        middleware = chain[index]
        token = current_console.set(middleware.console)
        try:
            return await middleware.run(request, lambda req: self._through(chain, index + 1, req))
        except BaseException as exc:  # noqa: BLE001 - not even sys.exit() in a middleware takes the server down
            if cancels_this_task(exc):
                raise  # the client left or the server is stopping: this request must stop
            return self._answer(exc, middleware.console, request)
        finally:
            current_console.reset(token)

    async def _route(self, request: Request) -> Response:
        path = request.path
        try:
            canonical = request.route_path  # the spelling every middleware matcher saw
            segments = request.route_segments  # split with it, once
        except MalformedPathError as exc:
            return _error(400, "Bad Request", f"Malformed URL: {exc}")
        if (len(canonical) > 1 and canonical.endswith("/")) or "//" in canonical:
            return _redirect_without_slash(request)
        found = self.router.match(canonical, segments)
        if found is None:
            return _error(404, "Not Found", f"No route matches {path}")
        route, params = found
        request.route = route
        route.hits += 1
        response = await self._run(route, params, request)
        route.last_status = response.status
        return response

    async def _run(self, route: Route, params: dict[str, Any], request: Request) -> Response:
        method = request.method
        endpoint = route.endpoint_for(method)
        if endpoint is None:
            if method == "OPTIONS":
                return Response(b"", 204, [("Allow", route.allow)])
            response = _error(405, "Method Not Allowed", f"{route.pattern.text} does not answer {method}")
            response.headers.append(("Allow", route.allow))
            return response
        request.params = params
        res = ApiResponse()
        token = current_console.set(route.console)
        try:
            if route.body_limit is None:
                if not request.streamed:
                    request.body = None  # no body came; one that does is streamed, read with req.stream()
            elif request.body_exceeded or len(request.raw_body) > route.body_limit:
                raise BodyError(413, f"Body exceeded {route.body_limit_text} limit")
            elif not (request.raw_body or "content-type" in request.headers):
                request.body = ""
            elif endpoint.signature is None or endpoint.signature.body is None:
                request.body  # noqa: B018 - parse now, so a bad body is a 400 as in Next.js
            value = endpoint.call(request, res)
            if endpoint.is_async or hasattr(value, "__await__"):
                value = await _until_result_or_first_write(value, res, route.console)
                if isinstance(value, _Streaming):
                    return value.response
            if endpoint.signature is not None and endpoint.signature.returns is not None:
                value = _filter_output(endpoint.signature, value)
            return to_response(value, res)
        except BaseException as exc:  # noqa: BLE001 - not even sys.exit() in a handler takes the server down
            # sys.exit(), KeyboardInterrupt, GeneratorExit or a CancelledError of the handler's own are
            # this request's 500: in a kernel, letting them through would end the kernel and its state.
            if cancels_this_task(exc):
                raise  # the client left or the server is stopping: this request must stop
            return self._answer(_HandlerExit.unwrap(exc), route.console, request)
        finally:
            current_console.reset(token)

    def _answer(self, exc: BaseException, console: Console, request: Request) -> Response:
        """The response for an exception out of a handler or middleware."""
        try:
            if isinstance(exc, BodyError):
                return Response.text(exc.detail, exc.status_code, exc.headers)  # plain text, as Next.js
            if isinstance(exc, RequestValidationError):
                return Response.json({"error": exc.detail, "detail": exc.errors}, exc.status_code, exc.headers)
            if isinstance(exc, HTTPException):
                return Response.json({"error": exc.detail}, exc.status_code, exc.headers)
        except (ValueError, TypeError) as bad:  # HTTPException(101), or a detail JSON cannot hold: the handler's error
            return self._crash(console, request, bad.with_traceback(exc.__traceback__))
        return self._crash(console, request, exc)

    def _crash(self, console: Console, request: Request, exc: BaseException) -> Response:
        detail = f"{type(exc).__name__}: {exc}"
        console.error(f"{request.method} {request.url} raised {detail}", exc)
        body: dict[str, str] = {"error": "Internal Server Error"}
        if self.debug:
            body["detail"] = detail
        response = Response.json(body, 500)
        response.exception = exc
        return response


class _HandlerExit(Exception):
    """A handler's SystemExit or KeyboardInterrupt, carried out of its task as an ordinary exception.

    asyncio re-raises those two out of ``run_forever`` from whatever task raised them, which stops the
    event loop: the server's, or the kernel's.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original

    @staticmethod
    def unwrap(exc: BaseException) -> BaseException:
        return exc.original if isinstance(exc, _HandlerExit) else exc


async def _carried(awaitable: Any) -> Any:
    """Await a handler, turning its SystemExit or KeyboardInterrupt into a _HandlerExit (see there)."""
    try:
        return await awaitable
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _HandlerExit(exc) from None


class _Streaming:
    """The handler called res.write() and is still running: its response is on its way."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def _until_result_or_first_write(awaitable: Any, res: ApiResponse, console: Console) -> Any:
    """Await an async handler, unless it starts writing chunks first: then answer with a stream at once."""
    chunks = ChunkQueue()
    res._queue = chunks
    task = asyncio.ensure_future(_carried(awaitable))

    def done(task: asyncio.Future[Any]) -> None:
        if not chunks.started.done():
            return
        if not task.cancelled() and task.exception() is not None:
            exc = _HandlerExit.unwrap(task.exception())  # type: ignore[arg-type]
            console.error(f"a streaming handler raised {type(exc).__name__}: {exc}", exc)
        if not res.finished:
            chunks.put(None)  # returned without res.end(): the stream ends with the handler

    task.add_done_callback(done)
    await asyncio.wait({task, chunks.started}, return_when=asyncio.FIRST_COMPLETED)
    if not chunks.started.done():
        chunks.started.cancel()
        return task.result()
    response = Response(b"", res.status_code, res._headers, content_type=res._content_type or TEXT_TYPE)
    response.stream = chunks.drain(task)
    return _Streaming(response)


def _filter_output(signature: Signature, value: Any) -> Any:
    """Validate and filter a returned body by the handler's return type (``-> User``)."""
    if value is None or isinstance(value, Response):
        return value
    if isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[1], int):
        return (signature.serialize(value[0]), *value[1:])
    return signature.serialize(value)


def _limit_text(given: int | str | None, size: int | None) -> str:
    """The limit as the user wrote it ("1.5mb"), for the 413 message."""
    if size is None:
        return "false"
    return given.strip().lower() if isinstance(given, str) else format_size(size)


def _methods(methods: Iterable[str] | str | None) -> frozenset[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str):
        methods = methods.split(",")
    return frozenset(m.strip().upper() for m in methods if m.strip())


def _error(status: int, error: str, detail: str) -> Response:
    return Response.json({"error": error, "detail": detail}, status)


def _not_origin_form(request: Request) -> Response:
    return _error(
        400,
        "Bad Request",
        f"the request target {request.url!r} must start with '/': send the path alone, "
        "as in GET /api/hello HTTP/1.1, with the host in the Host header",
    )


def _redirect_without_slash(request: Request) -> Response:
    # Repeated slashes go too, as in Next.js: one spelling per resource. Leading backslashes as
    # well: browsers read "//evil.example" and "/\\evil.example" as another site, and the redirect
    # must stay on this one.
    target = collapse_slashes(request.path)
    if request.query_string:
        target += "?" + request.query_string
    return Response(b"", 308, [("Location", target)])


def _etag(body: bytes) -> str:
    return f'"{len(body):x}-{hashlib.blake2b(body, digest_size=10).hexdigest()}"'


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _finish(request: Request, response: Response, route: Route | None) -> Response:
    """Apply HTTP's rules that no handler should have to think about."""
    status = response.status
    if response.stream is not None:
        if request.method == "HEAD" or status in _NO_BODY_STATUSES or status < 200:
            response.stream = None  # never started, so nothing to close
        else:
            return response
    body = response.body
    if status in _NO_BODY_STATUSES or status < 200:
        response.body = b""
        response.headers = [(k, v) for k, v in response.headers if k.lower() not in _ENTITY_HEADERS]
        return response
    method = request.method
    if status == 200 and body and method in ("GET", "HEAD"):
        etag = response.get_header("etag")
        if etag is None:
            etag = _etag(body)
            response.headers.append(("ETag", etag))
        inm = request.headers.get("if-none-match")
        if inm is not None and _etag_matches(inm, etag):
            response.status = 304
            response.body = b""
            response.headers = [(k, v) for k, v in response.headers if k.lower() not in _ENTITY_HEADERS]
            return response
    if route is not None and len(body) > route.response_limit:
        route.console.warn(
            f"{method} {request.url} sent {format_size(len(body))}, over the "
            f"{format_size(route.response_limit)} response limit (--response-limit to change it)"
        )
    if response.get_header("content-length") is None:
        response.headers.append(("Content-Length", str(len(body))))
    if method == "HEAD":
        response.body = b""
    return response
