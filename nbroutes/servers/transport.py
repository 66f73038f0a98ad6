"""The transport kit: what every adapter that carries HTTP to ``App.dispatch`` does the same way.

The Tornado adapter (the kernel, ``nbroutes serve``) and the ASGI adapter (uvicorn, gunicorn, Mangum)
differ in how bytes arrive and leave, not in the rules around them. Those rules live here once:
reading a body within its route's limit (``BodyReader``), which headers HTTP can carry
(``encode_headers``), the fallback 500 (``ERROR_BODY``, ``report_failure``), the access-log line
(``log_access``), closing a response stream however sending ends (``send_stream``), the Date header
(``http_date``), the trailing-slash redirect under a mount prefix (``mounted_location``), binding a
listening socket (``listen``, ``reserve``) and the URLs a server is reached at (``local_url``,
``public_url``), the transport's limits (``Limits``: timeouts and the bound on connections) and the
raw answers sent when there is no request to answer through the core (``raw_response``).

It imports the core, never Tornado, IPython or an ASGI server.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from email.utils import formatdate

from nbroutes.core.output import Console
from nbroutes.core.paths import collapse_slashes
from nbroutes.core.requests import Request
from nbroutes.core.responses import Response
from nbroutes.errors import HeaderError

__all__ = [
    "BodyReader",
    "Limits",
    "HEADER_TIMEOUT",
    "BODY_TIMEOUT",
    "IDLE_TIMEOUT",
    "WRITE_TIMEOUT",
    "default_max_connections",
    "raw_response",
    "Throttle",
    "HeaderError",
    "encode_headers",
    "ERROR_BODY",
    "ERROR_HEADERS",
    "report_failure",
    "console_for",
    "log_access",
    "send_stream",
    "close_stream",
    "http_date",
    "mounted_location",
    "listen",
    "reserve",
    "local_url",
    "public_url",
]

access_log = logging.getLogger("nbroutes.access")


# -- request bodies ------------------------------------------------------------------------------


class BodyReader:
    """One request body, read within its route's limit: decided from the headers first, then chunk by chunk.

    ``limit`` is ``App.body_limit_for(path)`` (None: the route sets no limit); ``content_length`` is
    the request's ``Content-Length`` as sent, if any. A body over the limit is not kept: the
    request goes to the core with ``body_exceeded=True`` and the core answers 413 with its
    route's message, so every adapter says the same thing.

    The decision from the headers alone is ``declared_too_large``: an adapter then answers the 413
    at once, reads none of the body and never sends ``100 Continue`` (it closes the connection
    after the answer, since HTTP/1.1 has no other way past an unread body). A chunked body is
    refused the moment it crosses the limit (``accept`` returns False).
    """

    __slots__ = ("limit", "declared", "declared_too_large", "exceeded", "size", "_chunks")

    def __init__(self, limit: int | None, content_length: str | None = None) -> None:
        self.limit = limit
        #: The declared ``Content-Length``, or None when it is absent or not a number.
        self.declared: int | None = (
            int(content_length) if content_length and content_length.isascii() and content_length.isdigit() else None
        )
        #: True when the declared length alone is over the limit, before a byte is read.
        self.declared_too_large = limit is not None and self.declared is not None and self.declared > limit
        #: True once the body is known to be over the limit (declared so, or read so far).
        self.exceeded = self.declared_too_large
        #: Bytes accepted so far (counting stops once the body is over the limit).
        self.size = 0
        self._chunks: list[bytes] = []

    def accept(self, chunk: bytes) -> bool:
        """Take the next chunk of the body; False once the body is over the limit (read no more of it)."""
        if self.exceeded:
            return False
        if chunk:
            self.size += len(chunk)
            if self.limit is not None and self.size > self.limit:
                self.exceeded = True
                self._chunks = []  # what was kept is of no use to a 413
                return False
            self._chunks.append(chunk)
        return True

    @property
    def body(self) -> bytes:
        """The body accepted so far; empty once it went over the limit."""
        chunks = self._chunks
        if not chunks:
            return b""
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def __repr__(self) -> str:
        return f"<BodyReader {self.size}b of limit {self.limit}{' exceeded' if self.exceeded else ''}>"


# -- the transport's limits ----------------------------------------------------------------------

#: Seconds a request's head may take to arrive once its first byte has.
HEADER_TIMEOUT = 10.0
#: Seconds a request body may go without a byte arriving (not the whole upload: a slow one is fine).
BODY_TIMEOUT = 30.0
#: Seconds a kept-alive connection may wait for its next request.
IDLE_TIMEOUT = 30.0
#: Seconds a response may go without the client taking a byte of it (a client that stopped reading).
WRITE_TIMEOUT = 60.0
#: Descriptors left for everything else in the process (a kernel's ZMQ sockets, files, databases).
DESCRIPTOR_HEADROOM = 64
#: The most connections held by default, however high the descriptor limit (each costs memory too).
MAX_CONNECTIONS_CAP = 10_000


def default_max_connections() -> int:
    """How many connections to hold by default: the soft RLIMIT_NOFILE less headroom, at most 10,000.

    A quarter of the limit, and at least 64 descriptors, are left for the rest of the process, so that
    a flood of idle connections never takes the descriptors a kernel needs to run a cell.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return MAX_CONNECTIONS_CAP
    return max(8, min(MAX_CONNECTIONS_CAP, soft - max(DESCRIPTOR_HEADROOM, soft // 4)))


class Limits:
    """How long a client may take at each step, and how many connections are held at once.

    Each timeout is in seconds, None for none. ``max_connections`` None derives the bound from the
    descriptor limit (``default_max_connections``).

    Raises ValueError for a timeout or bound that is not positive.
    """

    __slots__ = ("header_timeout", "body_timeout", "idle_timeout", "write_timeout", "max_connections")

    def __init__(
        self,
        header_timeout: float | None = HEADER_TIMEOUT,
        body_timeout: float | None = BODY_TIMEOUT,
        idle_timeout: float | None = IDLE_TIMEOUT,
        write_timeout: float | None = WRITE_TIMEOUT,
        max_connections: int | None = None,
    ) -> None:
        for name, value in (
            ("header_timeout", header_timeout),
            ("body_timeout", body_timeout),
            ("idle_timeout", idle_timeout),
            ("write_timeout", write_timeout),
            ("max_connections", max_connections),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be a positive number (or None for no limit), not {value!r}")
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.idle_timeout = idle_timeout
        self.write_timeout = write_timeout
        self.max_connections = max_connections if max_connections is not None else default_max_connections()

    @property
    def tick(self) -> float:
        """How often to look for connections past their time: a quarter of the shortest timeout, 50 ms to 1 s."""
        timeouts = [t for t in (self.header_timeout, self.body_timeout, self.idle_timeout, self.write_timeout) if t]
        return min(1.0, max(0.05, min(timeouts, default=4.0) / 4))

    def __repr__(self) -> str:
        return (
            f"<Limits header {self.header_timeout}s body {self.body_timeout}s idle {self.idle_timeout}s "
            f"write {self.write_timeout}s, {self.max_connections} connections>"
        )


def raw_response(status: int, reason: str, message: str) -> bytes:
    """A whole ``Connection: close`` response with a JSON error body, for when no request reached the core
    (a connection over the bound, a body that stopped coming)."""
    body = ('{"error":"%s","detail":"%s"}' % (reason, message)).encode()  # noqa: UP031 - literal text, no quoting needed
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\nDate: {http_date()}\r\n\r\n"
    ).encode("latin-1") + body


class Throttle:
    """At most one message per ``seconds`` to a logger, with how many were held back since the last."""

    __slots__ = ("logger", "seconds", "_last", "_held")

    def __init__(self, logger: logging.Logger, seconds: float = 10.0) -> None:
        self.logger = logger
        self.seconds = seconds
        self._last = -seconds
        self._held = 0

    def warning(self, message: str) -> None:
        """Log ``message`` now, or count it if one went out in the last ``seconds``."""
        now = time.monotonic()
        if now - self._last < self.seconds:
            self._held += 1
            return
        held, self._held, self._last = self._held, 0, now
        self.logger.warning("%s%s", message, f" ({held} more like it in the last {self.seconds:g}s)" if held else "")


# -- response headers ----------------------------------------------------------------------------

# RFC 9110: a field name is a token; a field value is visible characters (latin-1's upper half
# included, as obs-text) with spaces and tabs only between them. Tornado's ``HTTPHeaders.add``
# enforces the same rule (tests/servers/test_transport.py holds the two to it), so a header one adapter
# refuses, the other refuses too, rather than one of them sending it and the other answering 500.
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff](?:[\x21-\x7e\x80-\xff \t]*[\x21-\x7e\x80-\xff])?)?")


def encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Headers as HTTP sends them: lower-case latin-1 names (as ASGI wants them), latin-1 values.

    Raises HeaderError for a name that is not an HTTP token, or a value with a control character,
    a character outside latin-1, or spaces at either end.
    """
    encoded = []
    for name, value in headers:
        if not _FIELD_NAME.fullmatch(name):
            raise HeaderError(f"{name!r} cannot be an HTTP header name")
        if not _FIELD_VALUE.fullmatch(value):
            raise HeaderError(f"the {name} header's value {value!r} cannot be sent over HTTP (latin-1, no controls)")
        encoded.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return encoded


# -- failures and the access log -----------------------------------------------------------------

#: The body of the 500 an adapter sends when nbroutes itself fails (the core answers a handler's errors).
ERROR_BODY = b'{"error":"Internal Server Error"}'
#: The headers of that 500.
ERROR_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Type", "application/json"),
    ("Content-Length", str(len(ERROR_BODY))),
)


def console_for(request: Request) -> Console:
    """Where a failure answering ``request`` is shown: its route's console (its cell), else the log."""
    route = request.route
    return route.console if route is not None else Console("nbroutes")


def report_failure(request: Request, exc: BaseException) -> None:
    """Say that ``request`` got the fallback 500 because of ``exc`` (a header HTTP cannot carry, or a bug)."""
    console_for(request).error(f"nbroutes failed to answer {request.method} {request.url}: {exc}", exc)


def log_access(request: Request, status: int, start: float) -> None:
    """One ``nbroutes.access`` line at INFO, ``status method url milliseconds``; ``start`` is a ``perf_counter()``."""
    if access_log.isEnabledFor(logging.INFO):
        access_log.info("%d %s %s %.1fms", status, request.method, request.url, (time.perf_counter() - start) * 1000)


# -- streams -------------------------------------------------------------------------------------


async def close_stream(stream: object) -> None:
    """Close a response stream now, so a generator's ``finally`` runs at once, not when it is collected.

    Closing one already closed does nothing.
    """
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


async def send_stream(
    stream: AsyncIterator[bytes],
    write: Callable[[bytes], Awaitable[object]],
    start: Callable[[], Awaitable[object]] | None = None,
) -> int:
    """Await ``start()`` (sending the status line and headers), then ``write`` each non-empty chunk as it comes;
    returns the bytes written.

    However it ends (done, client gone, cancelled, the stream raising), the stream is closed.

    Raises what ``start``, ``write`` or the stream raise.
    """
    sent = 0
    try:
        if start is not None:
            await start()
        async for chunk in stream:
            if chunk:
                await write(chunk)
                sent += len(chunk)
        return sent
    finally:
        await close_stream(stream)


class _Clock:
    """The Date header's value, formatted once a second rather than once a request."""

    second = -1
    value = ""


def http_date() -> str:
    """Now, as the Date header says it (``Sun, 06 Nov 1994 08:49:37 GMT``).

    The Tornado adapter adds it; ASGI servers (uvicorn, hypercorn, API Gateway) add their own,
    so the ASGI adapter does not, or a response would carry two.
    """
    second = int(time.time())
    if second != _Clock.second:
        _Clock.second, _Clock.value = second, formatdate(second, usegmt=True)
    return _Clock.value


# -- paths and URLs ------------------------------------------------------------------------------


def mounted_location(request: Request, response: Response, prefix: str) -> str | None:
    """The Location for the core's trailing-slash redirect when the app is mounted under ``prefix``, else None.

    The core redirects ``/api/x/`` to ``/api/x``, a path of the app; a browser that reached the app
    at ``/user/ada/proxy/8000/api/x/`` must be sent to ``/user/ada/proxy/8000/api/x``. Any other
    Location (a handler's own redirect) is the handler's business and stays as it is.
    """
    if not prefix or response.status != 308 or request.route is not None:
        return None
    location = response.get_header("location")
    # The target as app._redirect_without_slash makes it; equal means this is that redirect.
    target = collapse_slashes(request.path)
    if request.query_string:
        target += "?" + request.query_string
    if location is None or location != target:
        return None
    return prefix.rstrip("/") + location


def listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A non-blocking listening socket on ``host:port``: IPv6 for a host with a colon, every interface for ``""``.

    With ``reuse_port`` it joins a SO_REUSEPORT group (one socket per ``--workers`` process).
    On failure the socket is closed at once (``tornado.netutil.bind_sockets`` leaves that to the
    garbage collector: a ResourceWarning per taken port while searching for a free one).

    Raises OSError when the address is taken or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host or "0.0.0.0", port), family=family, backlog=1024, reuse_port=reuse_port)
    sock.setblocking(False)
    return sock


def reserve(host: str, port: int) -> socket.socket:
    """A claim on ``host:port`` for ``--workers``: bound with SO_REUSEPORT but not listening.

    Each worker listens on a socket of its own in the same SO_REUSEPORT group, so the kernel spreads
    new connections over the workers (a single shared socket tends to hand them all to whichever
    worker is waiting in accept); a socket that does not listen takes no connections.

    Raises OSError when the address is taken, AttributeError where there is no SO_REUSEPORT.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host or "0.0.0.0", port))
    except BaseException:
        sock.close()
        raise
    return sock


def local_url(host: str, port: int) -> str:
    """The URL that reaches a server bound to ``host:port`` from this machine (loopback for every-interface binds)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def public_url(local: str, port: int, path: str = "", environ: Mapping[str, str] | None = None) -> str:
    """The URL a browser uses: ``local + path``, or ``$JUPYTERHUB_SERVICE_PREFIX/proxy/<port>/path`` under
    JupyterHub or Binder, where the browser is elsewhere and jupyter-server-proxy forwards to the port.
    """
    env = os.environ if environ is None else environ
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix:
        return f"{prefix.rstrip('/')}/proxy/{port}{path or '/'}"
    return local + path
