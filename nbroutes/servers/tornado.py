"""The Tornado adapter: an HTTP server on the running event loop that hands every request to ``App.dispatch``.

It speaks to Tornado's HTTP/1.1 connection directly (an ``HTTPMessageDelegate``)
rather than through ``RequestHandler``: the core already does routing, headers
and errors, so the adapter only reads the body, within the route's limit, and
writes the response back. The rules it shares with the ASGI adapter (body limits,
the fallback 500, the access log, closing streams, binding, URLs) are ``transport``'s.

It also keeps the connections in check, since in a kernel they share the kernel's
process: ``_Listener`` accepts at most ``max_connections`` (a 503 beyond, and a pause
rather than a spin when the process is out of descriptors), and one sweep a tick
closes the connections past their header, body, idle or write timeout. The sweep
is per server, not a timer per request: a request only stamps its connection.
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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, cast

from tornado import httputil
from tornado.http1connection import HTTP1ServerConnection
from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError

from nbroutes.core.app import App
from nbroutes.core.requests import Request
from nbroutes.core.responses import Response
from nbroutes.errors import PortInUseError
from nbroutes.servers.transport import (
    BODY_TIMEOUT,
    ERROR_BODY,
    ERROR_HEADERS,
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    WRITE_TIMEOUT,
    BodyReader,
    Limits,
    Throttle,
    console_for,
    http_date,
    listen,
    local_url,
    log_access,
    public_url,
    raw_response,
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
#: How long accepting pauses when the process has no descriptor left for a new connection.
_DESCRIPTOR_PAUSE = 0.5

_REQUEST_TIMEOUT = raw_response(408, "Request Timeout", "the request body stopped arriving")
_OVERLOADED = raw_response(503, "Service Unavailable", "too many connections; try again shortly")
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

# What a connection is doing, for the sweep.
_WAITING = 0  # for a request: idle, or its head arriving
_READING = 1  # the request's body
_ANSWERING = 2  # the handler running, the response going out


class _Connection:
    """One client connection, as the sweep sees it: what it is doing, since when, and how far it got."""

    __slots__ = ("stream", "phase", "since", "mark", "channel", "received")

    def __init__(self, stream: IOStream, now: float) -> None:
        self.stream = stream
        self.phase = _WAITING
        #: When the phase began, or progress was last seen (the listener's clock, updated once a tick).
        self.since = now
        #: How far the phase had got at ``since``: bytes read or written; -1 before the first look.
        self.mark = -1
        #: The streamed body being read, whose handler may be the one holding it up.
        self.channel: _BodyChannel | None = None
        #: Bytes of request bodies received on this connection.
        self.received = 0

    def enter(self, phase: int, now: float) -> None:
        self.phase, self.since, self.mark = phase, now, -1


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
        client: _Connection | None = None,
        clock: _Listener | None = None,
    ) -> None:
        self.app = app
        #: The connection's record for the sweep (None outside a ``_Listener``), and whose ``now`` stamps it.
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
                client.enter(_ANSWERING, self.clock.now)  # type: ignore[union-attr]
            return None
        limit = self.app.body_limit_for(start_line.path.partition("?")[0])
        reader = BodyReader(limit, headers.get("Content-Length"))
        connection: Any = self.connection
        # Tornado's own cap would answer a bare 400 (and read a chunk header's worth first): the route's limit,
        # checked here as the body arrives, is the one that counts.
        connection.set_max_body_size(UNLIMITED_BODY)
        if client is not None:
            client.enter(_READING, self.clock.now)  # type: ignore[union-attr]
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
            client.enter(_ANSWERING, self.clock.now)  # type: ignore[union-attr]
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
        self.listener: _Listener | None = None

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        listener = self.listener
        client = listener.clients.get(server_conn) if listener is not None else None
        if client is not None:
            client.enter(_WAITING, listener.now)  # type: ignore[union-attr]
        return _Exchange(self.app, request_conn, self.observer, self.active, client, listener)


class _Listener(HTTPServer):
    """Tornado's ``HTTPServer`` holding at most ``limits.max_connections``, and closing those past their time.

    Beyond the bound a new connection gets a 503 with ``Connection: close`` and is closed at once.
    When the process is out of descriptors anyway (other files, a kernel's sockets), accepting pauses
    for half a second instead of failing in a loop; either is logged at most once every 10 s.
    """

    def initialize(self, *args: Any, limits: Limits, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(*args, **kwargs)
        # Tornado's header timeout is a timer per request (and an hour by default): the sweep replaces it.
        self.conn_params.header_timeout = None
        self.limits = limits
        self.clients: dict[object, _Connection] = {}
        self.now = IOLoop.current().time()
        self.refusals = Throttle(app_log)
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_later()

    # -- accepting ------------------------------------------------------------------------------
    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)

    def _accept_on(self, sock: socket.socket) -> Callable[[], None]:
        """Accept connections on ``sock`` as Tornado's ``add_accept_handler`` does, within the bound; returns
        the function that stops it."""
        loop = IOLoop.current()
        listening = True
        paused: object = None  # the timeout that resumes accepting

        def accept(fd: Any, events: int) -> None:
            nonlocal paused
            for _ in range(128):  # Tornado's batch: other work runs between batches
                if not listening:
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as exc:
                    if exc.errno not in _OUT_OF_DESCRIPTORS:
                        raise
                    # The connection stays queued, so the socket stays readable: without a pause this
                    # would fail again at once, forever (the log flood of a full descriptor table).
                    self.refusals.warning(
                        f"nbroutes: out of file descriptors ({exc.strerror}) with {len(self.clients)} "
                        f"connections open; not accepting for {_DESCRIPTOR_PAUSE}s"
                    )
                    loop.remove_handler(sock)
                    paused = loop.call_later(_DESCRIPTOR_PAUSE, resume)
                    return
                if len(self.clients) >= self.limits.max_connections:
                    self._refuse(connection)
                    continue
                self._handle_connection(connection, address)

        def resume() -> None:
            nonlocal paused
            paused = None
            if listening:
                loop.add_handler(sock, accept, IOLoop.READ)

        def stop() -> None:
            nonlocal listening
            listening = False
            if paused is not None:
                loop.remove_timeout(paused)
            else:
                loop.remove_handler(sock)

        loop.add_handler(sock, accept, IOLoop.READ)
        return stop

    def _refuse(self, connection: socket.socket) -> None:
        """A 503 to a connection over the bound, then close it; a line in the log at most every 10 s."""
        self.refusals.warning(
            f"nbroutes: {len(self.clients)} connections open, the most allowed (max_connections); "
            "answering new ones 503"
        )
        try:
            connection.setblocking(False)
            try:
                connection.recv(65536)  # a request sent already: read, so closing sends FIN, not a reset
            except OSError:
                pass
            connection.send(_OVERLOADED)
        except OSError:
            pass
        finally:
            connection.close()

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        context = _HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = HTTP1ServerConnection(stream, self.conn_params, context)
        self._connections.add(conn)
        self.clients[conn] = _Connection(stream, self.now)
        conn.start_serving(self)

    def on_close(self, server_conn: object) -> None:
        self.clients.pop(server_conn, None)
        super().on_close(server_conn)

    # -- timeouts -------------------------------------------------------------------------------
    def _sweep_later(self) -> None:
        self._sweeper = asyncio.get_event_loop().call_later(self.limits.tick, self._sweep)

    def stop_sweeping(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def _sweep(self) -> None:
        """Close every connection past its timeout; runs once a tick, whatever the number of requests."""
        self.now = now = IOLoop.current().time()
        limits = self.limits
        for client in list(self.clients.values()):
            stream = client.stream
            if stream.closed():
                continue
            phase = client.phase
            if phase == _WAITING:
                # Bytes of the next request's head in Tornado's buffer: its head is arriving, not idle.
                arriving = getattr(stream, "_read_buffer_size", 0)
                if arriving and client.mark < 0:
                    client.since, client.mark = now, 0
                timeout = limits.header_timeout if client.mark >= 0 else limits.idle_timeout
                if timeout is not None and now - client.since > timeout:
                    stream.close()
            elif phase == _READING:
                channel = client.channel
                progress = client.received
                if progress != client.mark or (channel is not None and channel.held_up):
                    client.since, client.mark = now, progress
                elif limits.body_timeout is not None and now - client.since > limits.body_timeout:
                    self._body_timed_out(stream)
            else:
                written = getattr(stream, "_total_write_done_index", 0)
                if not stream.writing() or written != client.mark:
                    client.since, client.mark = now, written  # waiting on the handler, or the client reads
                elif limits.write_timeout is not None and now - client.since > limits.write_timeout:
                    stream.close()  # the client stopped reading: the response's stream is closed with it
        self._sweep_later()

    def _body_timed_out(self, stream: IOStream) -> None:
        """A 408 to a client whose body stopped coming, then close its connection."""
        try:
            stream.write(_REQUEST_TIMEOUT)  # small: into the socket's buffer at once
        except StreamClosedError:
            pass
        stream.close()


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
        self._http: _Listener | None = None
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
        server = _Listener(self._delegate, xheaders=False, max_body_size=100 * 1024**2, limits=self.limits)
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
