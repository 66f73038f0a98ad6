"""The Tornado adapter: an HTTP server on the running event loop that hands every request to ``App.dispatch``.

It speaks to Tornado's HTTP/1.1 connection directly (an ``HTTPMessageDelegate``)
rather than through ``RequestHandler``: the core already does routing, headers
and errors, so the adapter only reads the body, within the route's limit, and
writes the response back. The rules it shares with the ASGI adapter (body limits,
the fallback 500, the access log, closing streams, binding, URLs) are ``transport``'s.

It also keeps the connections in check, since in a kernel they share the kernel's
process: that is ``connections.Listener``, which a ``Server`` listens with.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import http.client
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

from tornado import httputil
from tornado.iostream import StreamClosedError

from nbroutes.core.app import App
from nbroutes.core.requests import Request
from nbroutes.core.responses import Response
from nbroutes.errors import PortInUseError
from nbroutes.servers.connections import ANSWERING, READING, WAITING, Connection, Listener
from nbroutes.servers.transport import (
    BODY_TIMEOUT,
    ERROR_BODY,
    ERROR_HEADERS,
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    WRITE_TIMEOUT,
    BodyReader,
    Limits,
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

#: Tornado's own cap on a body, set per request to the route's limit (a streamed body has none).
UNLIMITED_BODY = 2**62
_PORT_SEARCH = 100
#: Chunks of a streamed body queued for a handler before reading from the client pauses.
_QUEUED_CHUNKS = 4
#: How long a body is read and dropped after its 413 went out, for a client still sending it.
_LINGER = 2.0

class _BodyChannel:
    """A request body handed to its handler as it arrives (``--body-limit false``), never held whole.

    Tornado pushes chunks in (``put``); the handler pulls them out (``chunks``). Past a few queued
    chunks ``put`` returns a future that Tornado awaits before reading on, so a slow handler slows
    the client down rather than filling memory.
    """

    __slots__ = ("_queue", "_ended", "_closed", "_waiter", "_space")

    def __init__(self) -> None:
        self._queue: deque[bytes] = deque()
        self._ended = False
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._space: asyncio.Future[None] | None = None

    @property
    def held_up(self) -> bool:
        """True while reading waits for the handler to take chunks (the client is not the one being slow)."""
        return self._space is not None and not self._space.done()

    def put(self, chunk: bytes) -> Awaitable[None] | None:
        if self._closed:
            return None
        self._queue.append(chunk)
        self._wake()
        if len(self._queue) < _QUEUED_CHUNKS:
            return None
        self._space = asyncio.get_running_loop().create_future()
        return self._space

    def end(self) -> None:
        self._ended = True
        self._wake()

    def close(self) -> None:
        """The response is done: whatever comes now is dropped, and Tornado is not kept waiting."""
        self._closed = self._ended = True
        self._queue.clear()
        self._make_space()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _make_space(self) -> None:
        if self._space is not None and not self._space.done():
            self._space.set_result(None)

    async def chunks(self) -> AsyncIterator[bytes]:
        queue = self._queue
        while True:
            if queue:
                chunk = queue.popleft()
                if len(queue) < _QUEUED_CHUNKS // 2:
                    self._make_space()
                yield chunk
            elif self._ended:
                return
            else:
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter


class _Linger:
    """An answer sent before its request's body was read: the body is read and dropped for up to ``_LINGER`` s.

    A client that sends its whole body before it reads (Python's http.client, many scripts) would
    otherwise be reset mid-send and never see the 413. Tornado reads on past an answer once it is
    written, delivering nothing (``_Exchange.data_received`` keeps none of it); the connection then
    closes when the body ends or the time is up, whichever comes first.
    """

    __slots__ = ("answered", "_body_done")

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        #: Done once the answer is written: Tornado may go on reading the body then.
        self.answered: asyncio.Future[None] = loop.create_future()
        self._body_done: asyncio.Future[None] = loop.create_future()

    def release(self, _: object = None) -> None:
        if not self.answered.done():
            self.answered.set_result(None)

    def body_done(self) -> None:
        if not self._body_done.done():
            self._body_done.set_result(None)

    async def drop_body(self, written: Awaitable[None]) -> None:
        """Wait until the answer is written, then until the body has been read (and dropped), or ``_LINGER`` s."""
        try:
            await written
        finally:
            self.release()
        await asyncio.wait([self._body_done], timeout=_LINGER)


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
        "client",
        "clock",
        "linger",
    )

    def __init__(
        self,
        app: App,
        connection: httputil.HTTPConnection,
        observer: Observer | None = None,
        active: set[_Exchange] | None = None,
        client: Connection | None = None,
        clock: Listener | None = None,
    ) -> None:
        self.app = app
        #: The connection's record for the sweep (None outside a ``Listener``), and whose ``now`` stamps it.
        self.client = client
        self.clock = clock
        #: Set when the answer goes out before the body is read (a 413), while the client may still be sending it.
        self.linger: _Linger | None = None
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
        client = self.client
        if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
            if client is not None:
                client.enter(ANSWERING, self.clock.now)  # type: ignore[union-attr]
            return None
        limit = self.app.body_limit_for(start_line.path.partition("?")[0])
        reader = BodyReader(limit, headers.get("Content-Length"))
        connection: Any = self.connection
        # Tornado's own cap would answer a bare 400 (and read a chunk header's worth first): the route's limit,
        # checked here as the body arrives, is the one that counts.
        connection.set_max_body_size(UNLIMITED_BODY)
        if client is not None:
            client.enter(READING, self.clock.now)  # type: ignore[union-attr]
        if reader.declared_too_large:
            # Answered now, before a byte of the body. A client that waits for "100 Continue" gets none
            # (Tornado sends none once the response is finished) and the connection closes. One that sends
            # its body anyway gets the answer first, then has the body read and dropped for a moment (a
            # "lingering close"), so that it is not reset while still sending, before it reads the 413.
            expecting = headers.get("Expect", "").lower() == "100-continue"
            self.linger = None if expecting else _Linger()
            self.task = asyncio.ensure_future(self._respond(self._request(reader), close=True))
            self._watch_task()
            if self.linger is None:
                return self.task
            self.task.add_done_callback(self.linger.release)  # however the answer ended, Tornado goes on
            return self.linger.answered
        if limit is None:
            # Streamed: the handler starts now and reads the body as it arrives.
            channel = _BodyChannel()
            if client is not None:
                client.channel = channel
            self.task = asyncio.ensure_future(self._respond(self._request(None, channel)))
            self.task.add_done_callback(lambda _: channel.close())
            self._watch_task()
            self.reader = None
            return None
        self.reader = reader
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        client = self.client
        if client is not None:
            client.received += len(chunk)
        reader = self.reader
        if reader is not None:
            if not reader.accept(chunk) and self.task is None:
                # A chunked body just crossed the limit: answer 413 now, and keep none of the rest.
                self.linger = _Linger()
                self.task = asyncio.ensure_future(self._respond(self._request(reader), close=True))
                self._watch_task()
            return None
        channel = client.channel if client is not None else None
        return channel.put(chunk) if channel is not None else None

    def finish(self) -> None:
        client = self.client
        if client is not None:
            if client.channel is not None:
                client.channel.end()
                client.channel = None
            client.enter(ANSWERING, self.clock.now)  # type: ignore[union-attr]
        if self.linger is not None:
            self.linger.body_done()
        if self.task is not None:
            return  # answered already: a streamed body, or one over its limit
        reader, self.reader = self.reader, None
        self.task = asyncio.ensure_future(self._respond(self._request(reader)))
        self._watch_task()

    def _request(self, reader: BodyReader | None, channel: _BodyChannel | None = None) -> Request:
        line = self.start_line
        context = getattr(self.connection, "context", None)
        return Request(
            line.method,
            line.path,
            list(self.headers.get_all()),
            reader.body if reader is not None else b"",
            client=(getattr(context, "remote_ip", ""), 0),
            scheme=getattr(context, "protocol", "http"),
            body_exceeded=reader is not None and reader.exceeded,
            stream=channel.chunks() if channel is not None else None,
        )

    def _watch_task(self) -> None:
        if self.active is not None and self.task is not None:
            self.task.add_done_callback(lambda _: self._done())

    def _done(self) -> None:
        if self.active is not None:
            self.active.discard(self)

    def on_connection_close(self) -> None:
        if self.client is not None and self.client.channel is not None:
            self.client.channel.close()
            self.client.channel = None
        if self.task is None:
            self._done()  # the client left before its request was complete
        elif not self.task.done():
            self.task.cancel()  # stops a streaming response (or a handler streaming the body) whose client went away
        else:
            self._done()

    async def _respond(self, request: Request, *, close: bool = False) -> None:
        """Answer ``request``; with ``close``, say the connection closes after (its body is left unread)."""
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
        if close:
            headers["Connection"] = "close"
        status = response.status
        start_line = httputil.ResponseStartLine("HTTP/1.1", status, http.client.responses.get(status, "Unknown"))
        connection = self.connection
        sent = len(response.body)
        try:
            if response.stream is None:
                written = connection.write_headers(start_line, headers, response.body)
                if self.linger is not None:
                    await self.linger.drop_body(written)
            else:
                sent = await send_stream(
                    response.stream, connection.write, functools.partial(connection.write_headers, start_line, headers)
                )
            connection.finish()
            if self.linger is not None:
                # Written already; closed even when the body was read to its end: the answer said it closes.
                cast(Any, connection).close()
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
        #: The listener whose connections these are (set by it), for their records and its clock.
        self.listener: Listener | None = None

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        listener = self.listener
        client = listener.clients.get(server_conn) if listener is not None else None
        if client is not None:
            client.enter(WAITING, listener.now)  # type: ignore[union-attr]
        return _Exchange(self.app, request_conn, self.observer, self.active, client, listener)


class Server:
    """Serve an ``App`` over HTTP on the event loop that is running now.

    ``start`` binds ``host:port``, or the next free port when it is taken. A request's head must arrive
    within ``header_timeout`` of its first byte, its body must not stop for ``body_timeout`` (a 408),
    a kept-alive connection waits ``idle_timeout`` for its next request, and a response the client
    stops reading is dropped after ``write_timeout``; beyond ``max_connections`` new ones get a 503.
    """

    def __init__(
        self,
        app: App,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        observer: Observer | None = None,
        header_timeout: float | None = HEADER_TIMEOUT,
        body_timeout: float | None = BODY_TIMEOUT,
        idle_timeout: float | None = IDLE_TIMEOUT,
        write_timeout: float | None = WRITE_TIMEOUT,
        max_connections: int | None = None,
    ) -> None:
        """Serve ``app`` on ``host:port``; the timeouts (seconds, None for none) and ``max_connections`` (None:
        from the descriptor limit) are ``transport.Limits``'.

        Raises ValueError for a timeout or bound that is not positive.
        """
        self.app = app
        self.observer = observer
        self.limits = Limits(header_timeout, body_timeout, idle_timeout, write_timeout, max_connections)
        self.host = host
        self.port = port
        self.requested_port = port
        self._http: Listener | None = None
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
        server = Listener(self._delegate, xheaders=False, max_body_size=100 * 1024**2, limits=self.limits)
        self._delegate.listener = server
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
        server.stop_sweeping()
        return finished

    def stop(self) -> None:
        """Stop listening at once (the port is free when this returns) and close open connections."""
        server, self._http = self._http, None
        if server is None:
            return
        server.stop()
        server.stop_sweeping()
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
