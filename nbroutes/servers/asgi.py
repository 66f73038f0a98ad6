"""The ASGI adapter: serve an ``App`` from uvicorn, gunicorn, Mangum or any ASGI server.

``ASGIApp`` wraps an ``App``, or an async loader that makes one (``nbroutes.asgi``
passes one that runs a notebook) awaited at lifespan startup, or on the first request
when the server sends no lifespan events. Like the Tornado adapter in the kernel,
this one only translates: it reads the body within the route's limit (a larger one
is not read, and the core answers 413), awaits ``App.dispatch`` and sends the
``Response`` back, streaming chunk by chunk and closing the stream when the
client leaves. The Date header is the server's: uvicorn, hypercorn and API
Gateway add one, and a second from the app would be a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import quote

from nbroutes.core.app import App
from nbroutes.core.paths import collapse_slashes
from nbroutes.core.requests import Request
from nbroutes.core.responses import Response

__all__ = ["ASGIApp", "Loader"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
#: An async callable that makes the App to serve, e.g. by running a notebook.
Loader: TypeAlias = Callable[[], Awaitable[App]]

access_log = logging.getLogger("nbroutes.access")
app_log = logging.getLogger("nbroutes.application")

_ERROR_BODY = b'{"error":"Internal Server Error"}'
_ERROR_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_ERROR_BODY)).encode())]


class ASGIApp:
    """An ASGI 3 application that answers HTTP with an ``App``, or with the ``App`` a loader makes at startup.

    It speaks the ``http`` and ``lifespan`` protocols; a WebSocket is refused with a close.
    """

    def __init__(self, target: App | Loader, *, source: Path | None = None) -> None:
        """Wrap an ``App``, or an async ``loader`` that makes one (awaited once, at startup or first request).

        ``source`` names where the loader's App comes from (a notebook), for logs and ``repr``.

        Raises TypeError for a target that is neither.
        """
        self.source = source
        self._app: App | None = None
        self._loader: Loader | None = None
        if isinstance(target, App):
            self._app = target
        elif callable(target):
            self._loader = target
        else:
            raise TypeError(f"serve an nbroutes.App or a notebook path, not {type(target).__name__}")
        self._loading = asyncio.Lock()

    @property
    def app(self) -> App | None:
        """The ``App`` served, or None while its notebook is not loaded yet."""
        return self._app

    async def load(self) -> App:
        """The ``App``, running the notebook first if that has not happened yet (once, however many callers).

        Raises whatever running the notebook raises (a cell's error, FileNotFoundError, ...).
        """
        if self._app is not None:
            return self._app
        async with self._loading:
            if self._app is None:
                assert self._loader is not None  # an ASGIApp has an App or a loader
                self._app = await self._loader()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection.

        Raises ValueError for a scope type other than http, lifespan and websocket.
        """
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect; closing before accepting is the refusal (a 403)
            await send({"type": "websocket.close", "code": 1003, "reason": "nbroutes serves HTTP only"})
        else:
            raise ValueError(f"nbroutes answers the http, lifespan and websocket ASGI scopes, not {kind!r}")

    def __repr__(self) -> str:
        return f"<ASGIApp {self.source or self._app!r}>"

    # -- lifespan ------------------------------------------------------------------
    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.load()
                except Exception as exc:  # noqa: BLE001 - the server reports it and does not start
                    app_log.exception("nbroutes could not load %s", self.source)
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # The notebook's databases stay open: Mangum runs a whole lifespan around every Lambda
                # invocation, and the App outlives it. WAL with synchronous=FULL leaves nothing to flush.
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- http ----------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        try:
            app = self._app or await self.load()
        except Exception:  # noqa: BLE001 - no lifespan, and the notebook failed: every request says so
            app_log.exception("nbroutes could not load %s", self.source)
            await _send_error(send)
            return
        root_path: str = scope.get("root_path", "")
        path = _route_path(scope, root_path)
        headers: list[tuple[str, str]] = []
        declared = ""
        for name, value in scope["headers"]:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers.append((key, text))
            if key.lower() == "content-length":
                declared = text
        read = await _read_body(receive, app.body_limit_for(path), declared)
        if read is None:
            return  # the client left before it finished sending
        body, exceeded = read
        query: bytes = scope.get("query_string", b"")
        client = scope.get("client")
        request = Request(
            scope["method"],
            f"{path}?{query.decode('latin-1')}" if query else path,
            headers,
            body,
            client=(str(client[0]), int(client[1])) if client else None,
            scheme=scope.get("scheme", "http"),
            body_exceeded=exceeded,
        )
        try:
            response = await app.dispatch(request)
            start_message = _start_message(request, response, root_path)
        except Exception:  # noqa: BLE001 - dispatch handles handler errors; this is a bug in nbroutes
            app_log.exception("nbroutes failed to answer %s %s", request.method, request.url)
            await _send_error(send)
            return
        await send(start_message)
        if response.stream is None:
            await send({"type": "http.response.body", "body": response.body})
        else:
            await _stream(response.stream, receive, send)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%d %s %s %.1fms", response.status, request.method, request.url, (time.perf_counter() - start) * 1000
            )


def _route_path(scope: Scope, root_path: str) -> str:
    """The request's path as sent (still percent-encoded), relative to the prefix the app is mounted under."""
    raw: bytes | None = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope["path"], safe="/:@!$&'()*+,;=~")
    # Servers put root_path in front of path (the ASGI spec, uvicorn >= 0.26), a stripping proxy does not.
    if root_path and path.startswith(root_path) and path[len(root_path) : len(root_path) + 1] in ("", "/"):
        path = path[len(root_path) :]
    return path or "/"


async def _read_body(receive: Receive, limit: int | None, declared: str) -> tuple[bytes, bool] | None:
    """The request body and whether it is over ``limit`` (reading stops there), or None if the client left."""
    if limit is not None and declared.isdigit() and int(declared) > limit:
        return b"", True  # never read, so the server sends no "100 Continue" for it either
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if limit is not None and size > limit:
                return b"", True
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), False


def _start_message(request: Request, response: Response, root_path: str) -> Message:
    """``http.response.start`` for ``response``; under a prefix, the trailing-slash redirect stays under it."""
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    if root_path and response.status == 308 and request.route is None:
        location = response.get_header("location")
        if location is not None and location == _without_slash(request):
            headers = [(k, v) for k, v in headers if k != b"location"]
            headers.append((b"location", (root_path.rstrip("/") + location).encode("latin-1")))
    return {"type": "http.response.start", "status": response.status, "headers": headers}


def _without_slash(request: Request) -> str:
    """The Location of the core's trailing-slash redirect for ``request`` (as ``app._redirect_without_slash``)."""
    target = collapse_slashes(request.path)
    return f"{target}?{request.query_string}" if request.query_string else target


async def _stream(stream: AsyncIterator[bytes], receive: Receive, send: Send) -> None:
    """Send the chunks as they come, until the stream ends or ``http.disconnect`` says the client left.

    However it ends (done, client gone, server cancelling), the stream is closed, so a generator's
    ``finally`` runs now, not whenever the garbage collector gets to it.

    Raises what the stream raises: the server then drops the connection, so the client sees a cut response.
    """

    async def pump() -> None:
        async for chunk in stream:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    pumping = asyncio.ensure_future(pump())
    watching = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        pumping.cancel()  # no-op when it is done; otherwise the client left or the server is stopping
        await asyncio.wait({pumping, watching})
        if not watching.cancelled():
            watching.exception()  # a receive() that failed also means the client is gone: retrieved, not raised
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
    if not pumping.cancelled() and pumping.exception() is not None:
        raise pumping.exception()  # type: ignore[misc]


async def _until_disconnect(receive: Receive) -> None:
    """Return when the client has gone; a body the app did not read (over its limit) is dropped meanwhile."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_error(send: Send) -> None:
    """A 500 with a JSON body, for a failure of nbroutes itself (or of loading the notebook)."""
    await send({"type": "http.response.start", "status": 500, "headers": _ERROR_HEADERS})
    await send({"type": "http.response.body", "body": _ERROR_BODY})
