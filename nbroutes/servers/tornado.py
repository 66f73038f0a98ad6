"""The Tornado adapter: an HTTP server on the running event loop that hands every request to ``App.dispatch``.

It speaks to Tornado's HTTP/1.1 connection directly (an ``HTTPMessageDelegate``)
rather than through ``RequestHandler``: the core already does routing, headers
and errors, so the adapter only reads the body, within the route's limit, and
writes the response back. The rules it shares with the ASGI adapter (body limits,
the fallback 500, the access log, closing streams, binding, URLs) are ``transport``'s.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import http.client
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError

from nbroutes.core.app import App
from nbroutes.core.requests import Request
from nbroutes.core.responses import Response
from nbroutes.errors import PortInUseError
from nbroutes.servers.transport import (
    ERROR_BODY,
    ERROR_HEADERS,
    BodyReader,
    console_for,
    http_date,
    listen,
    local_url,
    log_access,
    public_url,
    report_failure,
    send_stream,
)

#: Called after each response is sent: (request, response, seconds, bytes of body sent).
Observer = Callable[[Request, Response, float, int], None]

__all__ = ["Server", "PortInUseError", "public_url"]

app_log = logging.getLogger("nbroutes.application")

#: The largest body read for a route with ``--body-limit false``.
UNLIMITED_BODY = 1024**3
_PORT_SEARCH = 100


class _Exchange(httputil.HTTPMessageDelegate):
    """One request/response on a connection."""

    __slots__ = (
        "app",
        "connection",
        "start_line",
        "headers",
        "reader",
        "task",
        "observer",
        "active",
    )

    def __init__(
        self,
        app: App,
        connection: httputil.HTTPConnection,
        observer: Observer | None = None,
        active: set[_Exchange] | None = None,
    ) -> None:
        self.app = app
        #: The server's requests in flight, which ``Server.drain`` waits for; this one is in it from its headers on.
        self.active = active
        self.observer = observer
        self.connection = connection
        #: Reads the body; None for a request that has none (neither Content-Length nor Transfer-Encoding).
        self.reader: BodyReader | None = None
        self.task: asyncio.Future[None] | None = None

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        if self.active is not None:
            self.active.add(self)
        self.start_line = start_line
        self.headers = headers
        if "Content-Length" in headers or "Transfer-Encoding" in headers:
            # Over the limit it is still read, and dropped: HTTP/1.1 has no other way to the next request.
            limit = self.app.body_limit_for(start_line.path.partition("?")[0])
            reader = BodyReader(limit, headers.get("Content-Length"))
            if reader.limit is None:
                self.connection.set_max_body_size(UNLIMITED_BODY)  # type: ignore[attr-defined]
            self.reader = reader
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.reader is not None:
            self.reader.accept(chunk)
        return None

    def finish(self) -> None:
        line = self.start_line
        context = getattr(self.connection, "context", None)
        client = (getattr(context, "remote_ip", ""), 0)
        reader, self.reader = self.reader, None
        request = Request(
            line.method,
            line.path,
            list(self.headers.get_all()),
            reader.body if reader is not None else b"",
            client=client,
            scheme=getattr(context, "protocol", "http"),
            body_exceeded=reader is not None and reader.exceeded,
        )
        self.task = asyncio.ensure_future(self._respond(request))
        if self.active is not None:
            self.task.add_done_callback(lambda _: self._done())

    def _done(self) -> None:
        if self.active is not None:
            self.active.discard(self)

    def on_connection_close(self) -> None:
        if self.task is None:
            self._done()  # the client left before its request was complete
        elif not self.task.done():
            self.task.cancel()  # stops a streaming response whose client went away

    async def _respond(self, request: Request) -> None:
        start = time.perf_counter()
        try:
            response = await self.app.dispatch(request)
            headers = httputil.HTTPHeaders()
            for name, value in response.headers:
                # Raises HTTPInputError for a header HTTP cannot carry: transport.encode_headers' rule, checked once.
                headers.add(name, value)
        except Exception as exc:  # noqa: BLE001 - dispatch handles handler errors; this is a bad header or a bug
            report_failure(request, exc)
            self._write_error()
            return
        if "Date" not in headers:
            headers["Date"] = http_date()
        status = response.status
        start_line = httputil.ResponseStartLine("HTTP/1.1", status, http.client.responses.get(status, "Unknown"))
        connection = self.connection
        sent = len(response.body)
        try:
            if response.stream is None:
                connection.write_headers(start_line, headers, response.body)
            else:
                sent = await send_stream(
                    response.stream, connection.write, functools.partial(connection.write_headers, start_line, headers)
                )
            connection.finish()
        except StreamClosedError:
            pass
        except Exception as exc:  # noqa: BLE001 - a stream that raised after its headers went out
            console_for(request).error(f"{request.method} {request.url}: the response stream raised {exc!r}", exc)
            connection.close()  # type: ignore[attr-defined]  # an HTTP1Connection has close(); the client sees the chunked body end early, rather than waiting forever
        if self.observer is not None:
            try:
                self.observer(request, response, time.perf_counter() - start, sent)
            except Exception:  # noqa: BLE001 - a broken observer must not break serving
                app_log.exception("nbroutes: the response observer failed")
        log_access(request, status, start)

    def _write_error(self) -> None:
        """The fallback 500, for a response that could not be sent (a bad header, a bug in nbroutes)."""
        headers = httputil.HTTPHeaders()
        for name, value in ERROR_HEADERS:
            headers.add(name, value)
        try:
            self.connection.write_headers(
                httputil.ResponseStartLine("HTTP/1.1", 500, "Internal Server Error"), headers, ERROR_BODY
            )
            self.connection.finish()
        except StreamClosedError:
            pass


class _Delegate(httputil.HTTPServerConnectionDelegate):
    def __init__(self, app: App, observer: Observer | None) -> None:
        self.app = app
        self.observer = observer
        self.active: set[_Exchange] = set()

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        return _Exchange(self.app, request_conn, self.observer, self.active)


class Server:
    """Serve an ``App`` over HTTP on the event loop that is running now.

    ``start`` binds ``host:port``, or the next free port when it is taken.
    """

    def __init__(
        self, app: App, host: str = "127.0.0.1", port: int = 8000, *, observer: Observer | None = None
    ) -> None:
        self.app = app
        self.observer = observer
        self.host = host
        self.port = port
        self.requested_port = port
        self._http: HTTPServer | None = None
        self._delegate: _Delegate | None = None
        self._sockets: list[socket.socket] = []

    @property
    def running(self) -> bool:
        return self._http is not None

    def start(self, *, search: bool = True, sockets: list[socket.socket] | None = None) -> int:
        """Start listening; returns the port. Must be called with the event loop running or about to run.

        ``sockets`` are listening sockets bound already (by a parent process that forks
        workers sharing them); without them the server binds ``host:port`` itself.

        Raises PortInUseError if the port (and, with ``search``, the next 100) are taken.
        """
        if self._http is not None:
            return self.port
        if sockets:
            self._sockets, self.port = list(sockets), sockets[0].getsockname()[1]
        else:
            self._sockets, self.port = _bind(self.host, self.requested_port, search)
        self.app.allow_hosts(self.host)  # a name given to bind is one the server is reached by
        self._delegate = _Delegate(self.app, self.observer)
        server = HTTPServer(self._delegate, xheaders=False, max_body_size=100 * 1024**2)
        server.add_sockets(self._sockets)
        self._http = server
        return self.port

    def swap_app(self, app: App) -> None:
        """Serve ``app`` from the next request on; requests in flight finish with the App they started with."""
        app.allow_hosts(self.host)
        self.app = app
        if self._delegate is not None:
            self._delegate.app = app

    @property
    def in_flight(self) -> int:
        """How many requests have arrived and not been answered yet."""
        return len(self._delegate.active) if self._delegate is not None else 0

    async def drain(self, timeout: float = 10.0) -> bool:
        """Stop listening, wait up to ``timeout`` seconds for the requests in flight, then close every connection.

        Returns False when requests were still running at the deadline (they are cut off).
        """
        server, self._http = self._http, None
        if server is None:
            return True
        server.stop()
        self._sockets = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.02)
        finished = not self.in_flight
        await server.close_all_connections()
        return finished

    def stop(self) -> None:
        """Stop listening at once (the port is free when this returns) and close open connections."""
        server, self._http = self._http, None
        if server is None:
            return
        server.stop()
        self._sockets = []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        asyncio.ensure_future(server.close_all_connections())

    @property
    def url(self) -> str:
        """The URL to reach the server from this machine."""
        return local_url(self.host, self.port)

    def public_url(self, path: str = "") -> str:
        """The URL a browser uses: through jupyter-server-proxy under JupyterHub/Binder."""
        return public_url(self.url, self.port, path)


def _bind(host: str, port: int, search: bool) -> tuple[list[socket.socket], int]:
    """A socket listening on ``host:port`` or, with ``search``, the first free port of the next 100.

    Raises PortInUseError when none is free.
    """
    last: OSError | None = None
    tries = _PORT_SEARCH if (search and port) else 1
    for candidate in range(port, port + tries):
        try:
            sock = listen(host, candidate)
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
            last = exc
            continue
        return [sock], sock.getsockname()[1]
    raise PortInUseError(
        errno.EADDRINUSE, f"ports {port}-{port + tries - 1} on {host} are in use ({last}); choose another with --port"
    )
