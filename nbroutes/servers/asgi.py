"""The ASGI adapter: serve an ``App`` from uvicorn, gunicorn, Mangum or any ASGI server.

``ASGIApp`` wraps an ``App``, or an async loader that makes one (``nbroutes.asgi``
passes one that runs a notebook) awaited at lifespan startup, or on the first request
when the server sends no lifespan events. Like the Tornado adapter in the kernel,
this one only translates: it reads the body within the route's limit (a larger one
is not read, and the core answers 413), awaits ``App.dispatch`` and sends the
``Response`` back, streaming chunk by chunk and closing the stream when the
client leaves. The Date header is the server's: uvicorn, hypercorn and API
Gateway add one, and a second from the app would be a duplicate. The rules it
shares with the Tornado adapter are ``transport``'s.
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
from nbroutes.core.requests import Request
from nbroutes.core.responses import Response
from nbroutes.errors import BodyStreamedError
from nbroutes.servers.transport import (
    ERROR_BODY,
    ERROR_HEADERS,
    BodyReader,
    close_stream,
    encode_headers,
    log_access,
    mounted_location,
    report_failure,
    send_stream,
)

__all__ = ["ASGIApp", "Loader"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
#: An async callable that makes the App to serve, e.g. by running a notebook.
Loader: TypeAlias = Callable[[], Awaitable[App]]

app_log = logging.getLogger("nbroutes.application")

_ERROR_HEADERS = encode_headers(ERROR_HEADERS)


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
        declared: str | None = None
        for name, value in scope["headers"]:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers.append((key, text))
            if key.lower() == "content-length":
                declared = text
        limit = app.body_limit_for(path)
        reader = BodyReader(limit, declared)
        streamed: _StreamedBody | None = None
        if limit is None:
            # --body-limit false: the handler reads the body from receive() as it wants it, or leaves it unread.
            if declared != "0" and (declared is not None or _has_header(scope, b"transfer-encoding")):
                streamed = _StreamedBody(receive)
        elif not await _read_body(receive, reader):
            return  # the client left before it finished sending
        query: bytes = scope.get("query_string", b"")
        client = scope.get("client")
        request = Request(
            scope["method"],
            f"{path}?{query.decode('latin-1')}" if query else path,
            headers,
            reader.body,
            client=(str(client[0]), int(client[1])) if client else None,
            scheme=scope.get("scheme", "http"),
            body_exceeded=reader.exceeded,
            stream=streamed.chunks() if streamed is not None else None,
        )
        try:
            response = await app.dispatch(request)
            start_message = _start_message(request, response, root_path)
            if reader.exceeded or (streamed is not None and not streamed.ended):
                # The rest of the body is left unread: the server closes the connection after this answer
                # (uvicorn does), and the client should know not to send the next request on it.
                start_message["headers"].append((b"connection", b"close"))
        except Exception as exc:  # noqa: BLE001 - dispatch handles handler errors; this is a bad header or a bug
            report_failure(request, exc)
            await _send_error(send)
            return
        await send(start_message)
        if response.stream is None:
            await send({"type": "http.response.body", "body": response.body})
        else:
            # Watching for the client leaving reads receive() too: not before a body being read has ended.
            settled = streamed.settle() if streamed is not None and not streamed.ended else None
            await _stream(response.stream, receive, send, settled)
        log_access(request, response.status, start)


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(key.lower() == name for key, _ in scope["headers"])


class _StreamedBody:
    """A request body read from ``receive`` as the handler iterates it (``--body-limit false``), never held whole."""

    __slots__ = ("receive", "started", "ended", "abandoned", "_done")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.started = False
        #: True once the last chunk came (or the client left).
        self.ended = False
        #: True once the response started without the handler having begun to read the body.
        self.abandoned = False
        self._done = asyncio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive.

        Raises BodyStreamedError when the response started streaming before the handler began reading,
        CancelledError when the client leaves mid-body (the handler stops, as under the Tornado adapter).
        """
        if self.abandoned:
            raise BodyStreamedError("read the body with req.stream() before the response starts streaming")
        self.started = True
        try:
            while not self.ended:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    self.ended = True
                    raise asyncio.CancelledError("the client left before sending the whole body")
                self.ended = not message.get("more_body", False)
                body = message.get("body", b"")
                if body:
                    yield body
        finally:
            self._done.set()

    async def settle(self) -> None:
        """Before a streamed response: wait for a body being read to end; one not begun is left to the server."""
        if self.started:
            await self._done.wait()
        else:
            self.abandoned = True


def _route_path(scope: Scope, root_path: str) -> str:
    """The request's path as sent (still percent-encoded), relative to the prefix the app is mounted under."""
    raw: bytes | None = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope["path"], safe="/:@!$&'()*+,;=~")
    # Servers put root_path in front of path (the ASGI spec, uvicorn >= 0.26), a stripping proxy does not.
    if root_path and path.startswith(root_path) and path[len(root_path) : len(root_path) + 1] in ("", "/"):
        path = path[len(root_path) :]
    return path or "/"


async def _read_body(receive: Receive, reader: BodyReader) -> bool:
    """Feed the request body to ``reader`` until it ends or goes over its limit; False if the client left."""
    if reader.declared_too_large:
        return True  # never read, so the server sends no "100 Continue" for it either
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        if not reader.accept(message.get("body", b"")):
            return True  # over the limit: the rest is left unread, and the server drops it
        if not message.get("more_body", False):
            return True


def _start_message(request: Request, response: Response, root_path: str) -> Message:
    """``http.response.start`` for ``response``; under a prefix, the trailing-slash redirect stays under it.

    Raises HeaderError for a header HTTP cannot carry.
    """
    headers = encode_headers(response.headers)
    location = mounted_location(request, response, root_path)
    if location is not None:
        headers = [(k, v) for k, v in headers if k != b"location"]
        headers.append((b"location", location.encode("latin-1")))
    return {"type": "http.response.start", "status": response.status, "headers": headers}


async def _stream(
    stream: AsyncIterator[bytes], receive: Receive, send: Send, settled: Awaitable[None] | None = None
) -> None:
    """Send the chunks as they come, until the stream ends or ``http.disconnect`` says the client left.

    However it ends (done, client gone, server cancelling), the stream is closed, so a generator's
    ``finally`` runs now, not whenever the garbage collector gets to it.

    Raises what the stream raises: the server then drops the connection, so the client sees a cut response.
    """

    async def pump() -> None:
        await send_stream(stream, lambda chunk: send({"type": "http.response.body", "body": chunk, "more_body": True}))
        await send({"type": "http.response.body", "body": b""})

    pumping = asyncio.ensure_future(pump())
    watching = asyncio.ensure_future(_until_disconnect(receive, settled))
    try:
        await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        pumping.cancel()  # no-op when it is done; otherwise the client left or the server is stopping
        await asyncio.wait({pumping, watching})
        if not watching.cancelled():
            watching.exception()  # a receive() that failed also means the client is gone: retrieved, not raised
        await close_stream(stream)  # pump closes it, unless it was cancelled before it started
    if not pumping.cancelled() and pumping.exception() is not None:
        raise pumping.exception()  # type: ignore[misc]


async def _until_disconnect(receive: Receive, settled: Awaitable[None] | None = None) -> None:
    """Return when the client has gone; a body the app did not read (over its limit) is dropped meanwhile.

    With ``settled``, start once it is done (the handler is still reading the body from ``receive``).
    """
    if settled is not None:
        await settled
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_error(send: Send) -> None:
    """A 500 with a JSON body, for a failure of nbroutes itself (or of loading the notebook)."""
    await send({"type": "http.response.start", "status": 500, "headers": _ERROR_HEADERS})
    await send({"type": "http.response.body", "body": ERROR_BODY})
