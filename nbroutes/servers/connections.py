"""The connections a Tornado ``Server`` holds: at most ``max_connections``, each closed once past its time.

In a kernel the connections share the kernel's process and its descriptors, so ``Listener``
accepts within a bound (a 503 beyond it, and a pause rather than a spin when the process is out
of descriptors), and one sweep a tick closes the connections past their header, body, idle or
write timeout. The sweep is per server, not a timer per request: a request only stamps its
``Connection`` with what it is doing (``WAITING``, ``READING``, ``ANSWERING``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from tornado.http1connection import HTTP1ServerConnection
from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError

from nbroutes.servers.transport import Limits, Throttle, raw_response

__all__ = ["ANSWERING", "READING", "WAITING", "Connection", "Listener", "StreamedBody"]

app_log = logging.getLogger("nbroutes.application")

#: How long accepting pauses when the process has no descriptor left for a new connection.
_DESCRIPTOR_PAUSE = 0.5

_REQUEST_TIMEOUT = raw_response(408, "Request Timeout", "the request body stopped arriving")
_OVERLOADED = raw_response(503, "Service Unavailable", "too many connections; try again shortly")
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class StreamedBody(Protocol):
    """A request body handed to its handler as it arrives (the Tornado adapter's ``_BodyChannel``).

    The sweep reads only ``held_up``: true while the handler, not the client, is the one waiting.
    """

    @property
    def held_up(self) -> bool: ...

    def put(self, chunk: bytes) -> Awaitable[None] | None: ...

    def end(self) -> None: ...

    def close(self) -> None: ...


# What a connection is doing, for the sweep.
WAITING = 0  # for a request: idle, or its head arriving
READING = 1  # the request's body
ANSWERING = 2  # the handler running, the response going out


class Connection:
    """One client connection, as the sweep sees it: what it is doing, since when, and how far it got."""

    __slots__ = ("stream", "phase", "since", "mark", "channel", "received")

    def __init__(self, stream: IOStream, now: float) -> None:
        self.stream = stream
        self.phase = WAITING
        #: When the phase began, or progress was last seen (the listener's clock, updated once a tick).
        self.since = now
        #: How far the phase had got at ``since``: bytes read or written; -1 before the first look.
        self.mark = -1
        #: The streamed body being read, whose handler may be the one holding it up.
        self.channel: StreamedBody | None = None
        #: Bytes of request bodies received on this connection.
        self.received = 0

    def enter(self, phase: int, now: float) -> None:
        self.phase, self.since, self.mark = phase, now, -1



class Listener(HTTPServer):
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
        self.clients: dict[object, Connection] = {}
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
        self.clients[conn] = Connection(stream, self.now)
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
            if phase == WAITING:
                # Bytes of the next request's head in Tornado's buffer: its head is arriving, not idle.
                arriving = getattr(stream, "_read_buffer_size", 0)
                if arriving and client.mark < 0:
                    client.since, client.mark = now, 0
                timeout = limits.header_timeout if client.mark >= 0 else limits.idle_timeout
                if timeout is not None and now - client.since > timeout:
                    stream.close()
            elif phase == READING:
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
