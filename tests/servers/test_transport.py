"""The transport kit: body limits, header rules, the 500, streams, binding and URLs; then both adapters on it."""

import asyncio
import email.utils
import errno
import gc
import http.client
import json
import logging
import re
import socket
import time
import warnings
from datetime import datetime, timezone

import pytest
from tornado import httputil

from nbroutes import App
from nbroutes.core.output import Console
from nbroutes.core.requests import Request
from nbroutes.servers.asgi import ASGIApp
from nbroutes.servers.tornado import Server
from nbroutes.servers.transport import (
    ERROR_BODY,
    ERROR_HEADERS,
    BodyReader,
    HeaderError,
    close_stream,
    console_for,
    encode_headers,
    http_date,
    listen,
    local_url,
    log_access,
    mounted_location,
    public_url,
    report_failure,
    reserve,
    send_stream,
)
from tests.support import background_loop, on_loop

# -- BodyReader ----------------------------------------------------------------------

# limit, Content-Length as sent, chunks -> what accept() said to each, declared, declared_too_large, exceeded, body
BODY_CASES = {
    "no limit, no length": (None, None, [b"ab", b"cd"], [True, True], None, False, False, b"abcd"),
    "no limit, any length": (None, "999999999999", [b"ab"], [True], 999999999999, False, False, b"ab"),
    "within, declared": (4, "4", [b"ab", b"cd"], [True, True], 4, False, False, b"abcd"),
    "declared over": (4, "5", [b"abcde"], [False], 5, True, True, b""),
    "over while reading": (4, None, [b"ab", b"cd", b"e", b"f"], [True, True, False, False], None, False, True, b""),
    "declared under, sent over": (4, "2", [b"ab", b"cde"], [True, False], 2, False, True, b""),
    "zero limit, empty body": (0, "0", [b""], [True], 0, False, False, b""),
    "zero limit, one byte": (0, None, [b"x"], [False], None, False, True, b""),
    "empty chunks are nothing": (2, None, [b"", b"ab", b""], [True, True, True], None, False, False, b"ab"),
    "length not a number": (4, "abc", [b"ab"], [True], None, False, False, b"ab"),
    "length with a sign": (4, "+9", [b"ab"], [True], None, False, False, b"ab"),
    "length a non-ASCII digit": (4, "\u00b2", [b"ab"], [True], None, False, False, b"ab"),
    "empty length": (4, "", [], [], None, False, False, b""),
}


@pytest.mark.parametrize("case", BODY_CASES)
def test_body_reader(case):
    limit, length, chunks, accepted, declared, too_large, exceeded, body = BODY_CASES[case]
    reader = BodyReader(limit, length)
    assert (reader.declared, reader.declared_too_large, reader.exceeded) == (declared, too_large, too_large)
    assert [reader.accept(chunk) for chunk in chunks] == accepted
    assert (reader.exceeded, reader.body) == (exceeded, body)


def test_body_reader_stops_counting_once_over():
    reader = BodyReader(3)
    assert reader.accept(b"ab")
    assert not reader.accept(b"cd")
    assert not reader.accept(b"ef" * 1000)
    assert reader.size == 4  # what it took to know; the rest was never counted, let alone kept


def test_a_body_in_one_chunk_is_not_copied():
    chunk = b"x" * 1024
    reader = BodyReader(None)
    reader.accept(chunk)
    assert reader.body is chunk


# -- headers -------------------------------------------------------------------------

# name, value, whether HTTP can carry it
HEADER_CASES = {
    "plain": ("Content-Type", "text/plain", True),
    "latin-1": ("X-Name", "Zo\u00eb", True),
    "empty value": ("X-Empty", "", True),
    "inner spaces and tabs": ("X-Spaced", "a b\tc", True),
    "token punctuation in the name": ("X-A!#$%&'*+-.^_`|~9", "v", True),
    "beyond latin-1": ("X-Name", "snow\u2603man", False),
    "newline": ("X-Split", "a\r\nSet-Cookie: evil=1", False),
    "NUL": ("X-Nul", "a\x00b", False),
    "DEL": ("X-Del", "a\x7fb", False),
    "leading space": ("X-Padded", " a", False),
    "trailing tab": ("X-Padded", "a\t", False),
    "space in the name": ("X Name", "v", False),
    "colon in the name": ("X:Name", "v", False),
    "empty name": ("", "v", False),
    "non-ASCII name": ("X-Na\u00efve", "v", False),
}


@pytest.mark.parametrize("case", HEADER_CASES)
def test_encode_headers(case):
    name, value, sendable = HEADER_CASES[case]
    if sendable:
        assert encode_headers([(name, value)]) == [(name.lower().encode("latin-1"), value.encode("latin-1"))]
    else:
        with pytest.raises(HeaderError):
            encode_headers([(name, value)])


@pytest.mark.parametrize("case", HEADER_CASES)
def test_tornado_refuses_the_headers_the_kit_refuses(case):
    # The Tornado adapter relies on HTTPHeaders.add for the check: it must be the kit's rule.
    name, value, sendable = HEADER_CASES[case]
    try:
        httputil.HTTPHeaders().add(name, value)
        refused = False
    except httputil.HTTPInputError:
        refused = True
    assert refused is not sendable


def test_encode_headers_keeps_order_and_repeats():
    headers = [("Set-Cookie", "a=1"), ("Content-Type", "text/plain"), ("Set-Cookie", "b=2")]
    assert encode_headers(headers) == [
        (b"set-cookie", b"a=1"),
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"b=2"),
    ]


# -- the fallback 500, failure reports and the access log ----------------------------


def test_the_fallback_500_is_json_with_its_length():
    assert json.loads(ERROR_BODY) == {"error": "Internal Server Error"}
    assert dict(ERROR_HEADERS) == {"Content-Type": "application/json", "Content-Length": str(len(ERROR_BODY))}
    encode_headers(ERROR_HEADERS)  # sendable


class RecordingConsole(Console):
    def __init__(self):
        super().__init__("recording")
        self.errors = []

    def error(self, summary, exc):
        self.errors.append((summary, exc))


def routed_request(url="/api/hello"):
    """A request that went through an App, so it knows its route."""
    app = App()
    app.route("/api/hello")(lambda req: "hi")
    request = Request("GET", url)
    asyncio.run(app.dispatch(request))
    return request


def test_a_failure_is_reported_to_the_routes_console():
    request = routed_request("/api/hello?x=1")
    console = RecordingConsole()
    request.route.console = console
    assert console_for(request) is console
    boom = KeyError("boom")
    report_failure(request, boom)
    assert console.errors == [("nbroutes failed to answer GET /api/hello?x=1: 'boom'", boom)]


def test_a_failure_without_a_route_goes_to_the_application_log(caplog):
    request = Request("GET", "/nowhere")
    bug = ValueError("a bug")
    with caplog.at_level(logging.ERROR, "nbroutes.application"):
        report_failure(request, bug)
    [record] = caplog.records
    assert record.name == "nbroutes.application"
    assert record.getMessage() == "nbroutes failed to answer GET /nowhere: a bug"
    assert record.exc_info[1] is bug


def test_access_log_line(caplog):
    request = Request("POST", "/api/items?page=2")
    with caplog.at_level(logging.INFO, "nbroutes.access"):
        log_access(request, 201, time.perf_counter() - 0.0125)
    [record] = caplog.records
    assert record.name == "nbroutes.access"
    status, method, url, ms = record.getMessage().split(" ")
    assert (status, method, url) == ("201", "POST", "/api/items?page=2")
    assert re.fullmatch(r"\d+\.\dms", ms)
    assert 12.5 <= float(ms[:-2]) < 1000


def test_access_log_is_quiet_below_info(caplog):
    with caplog.at_level(logging.WARNING, "nbroutes.access"):
        log_access(Request("GET", "/"), 200, time.perf_counter())
    assert caplog.records == []


# -- streams -------------------------------------------------------------------------


class Source:
    """An async stream that records how it ends."""

    def __init__(self, chunks, fail_after=None, wait=False):
        self.chunks = list(chunks)
        self.fail_after = fail_after
        self.wait = wait
        self.given = 0
        self.closed = 0

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.fail_after is not None and self.given == self.fail_after:
            raise RuntimeError("the data source failed")
        if self.given == len(self.chunks):
            if self.wait:
                await asyncio.Event().wait()  # a stream that has nothing yet
            raise StopAsyncIteration
        self.given += 1
        return self.chunks[self.given - 1]

    async def aclose(self):
        self.closed += 1


def test_send_stream_sends_chunks_after_start_and_closes():
    source, sent = Source([b"a", b"", b"bc"]), []

    async def start():
        sent.append("headers")

    async def write(chunk):
        sent.append(chunk)

    assert asyncio.run(send_stream(source, write, start)) == 3
    assert sent == ["headers", b"a", b"bc"]  # the empty chunk is not a write: chunked encoding would end there
    assert source.closed == 1


async def gone(*args):
    raise ConnectionResetError("the client left")


async def keep(*args):
    pass


@pytest.mark.parametrize(
    ("source", "write", "start", "error"),
    [
        (Source([b"a"]), gone, keep, ConnectionResetError),
        (Source([b"a", b"b"], fail_after=1), keep, keep, RuntimeError),
        (Source([b"a"]), keep, gone, ConnectionResetError),
    ],
    ids=["client gone", "stream raised", "headers failed"],
)
def test_send_stream_closes_the_stream_however_it_ends(source, write, start, error):
    with pytest.raises(error):
        asyncio.run(send_stream(source, write, start))
    assert source.closed == 1


def test_a_cancelled_stream_runs_the_generators_finally():
    ran = []

    async def forever():
        try:
            yield b"tick"
            await asyncio.Event().wait()
            yield b"never"
        finally:
            ran.append("finally")

    async def run():
        async def write(chunk):
            pass

        sending = asyncio.ensure_future(send_stream(forever(), write))
        await asyncio.sleep(0.01)
        sending.cancel()  # what an adapter does when the client leaves
        with pytest.raises(asyncio.CancelledError):
            await sending

    asyncio.run(run())
    assert ran == ["finally"]


def test_close_stream_is_safe_on_anything():
    async def run():
        await close_stream(iter([b"x"]))  # no aclose: nothing to do
        source = Source([])
        await close_stream(source)
        return source.closed

    assert asyncio.run(run()) == 1


# -- Date, Location under a prefix ---------------------------------------------------


def test_http_date_is_now_in_the_http_format():
    value = http_date()
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", value)
    assert abs((email.utils.parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds()) < 2


prefixed = App()
prefixed.route("/api/hello")(lambda req: "hi")
prefixed.route("/api/moved")(lambda req, res: res.redirect("/api/hello", 308))

# request URL, mount prefix -> Location to send instead of the core's, or None to keep it
LOCATION_CASES = {
    "no prefix": ("/api/hello/?x=1", "", None),
    "under a prefix": ("/api/hello/?x=1", "/user/ada/proxy/8000", "/user/ada/proxy/8000/api/hello?x=1"),
    "prefix with its slash": ("/api/hello/", "/p/", "/p/api/hello"),
    "off-site slashes stay on the site": ("//evil.example/", "/p", "/p/evil.example"),
    "not a redirect": ("/api/hello", "/p", None),
    "a handler's own redirect": ("/api/moved", "/p", None),
}


@pytest.mark.parametrize("case", LOCATION_CASES)
def test_mounted_location(case):
    url, prefix, expected = LOCATION_CASES[case]
    request = Request("GET", url)
    response = asyncio.run(prefixed.dispatch(request))  # the core's own answer, so the kit keeps up with it
    assert mounted_location(request, response, prefix) == expected


# -- binding and URLs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "family"), [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6), ("", socket.AF_INET)]
)
def test_listen(host, family):
    with listen(host, 0) as sock:
        assert sock.family == family
        assert not sock.getblocking()
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1" if family == socket.AF_INET else "::1", port), timeout=5):
            pass  # it listens


def test_listen_on_a_taken_port_fails_and_leaks_no_socket():
    with listen("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            with pytest.raises(OSError) as failed:
                listen("127.0.0.1", port)
            gc.collect()  # a socket left to the collector would warn here
    assert failed.value.errno == errno.EADDRINUSE


def test_workers_share_a_reserved_port():
    with reserve("127.0.0.1", 0) as claim:
        port = claim.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()  # reserved, not listening
        with listen("127.0.0.1", port, reuse_port=True) as one, listen("127.0.0.1", port, reuse_port=True) as two:
            assert one.getsockname()[1] == two.getsockname()[1] == port
        with pytest.raises(OSError):
            listen("127.0.0.1", port)  # outside the SO_REUSEPORT group: taken


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("localhost", "http://localhost:8000"),
        ("", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000"),
    ],
)
def test_local_url(host, url):
    assert local_url(host, 8000) == url


# prefix in the environment (None: not under JupyterHub), path -> the URL a browser uses
PUBLIC_CASES = {
    "local": (None, "/api/x", "http://127.0.0.1:8000/api/x"),
    "local root": (None, "", "http://127.0.0.1:8000"),
    "hub": ("/user/ada/", "/api/x", "/user/ada/proxy/8000/api/x"),
    "hub, no trailing slash": ("/user/ada", "/api/x", "/user/ada/proxy/8000/api/x"),
    "hub root": ("/user/ada/", "", "/user/ada/proxy/8000/"),
    "empty prefix is no hub": ("", "/api/x", "http://127.0.0.1:8000/api/x"),
}


@pytest.mark.parametrize("case", PUBLIC_CASES)
def test_public_url(case):
    prefix, path, url = PUBLIC_CASES[case]
    environ = {} if prefix is None else {"JUPYTERHUB_SERVICE_PREFIX": prefix}
    assert public_url("http://127.0.0.1:8000", 8000, path, environ) == url


def test_public_url_reads_the_environment(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    assert public_url("http://127.0.0.1:9000", 9000, "/api/x") == "/user/ada/proxy/9000/api/x"
    assert Server(App(), port=9000).public_url("/api/x") == "/user/ada/proxy/9000/api/x"


# -- both adapters on the kit --------------------------------------------------------


def sending(name, value):
    """A handler that answers with header ``name: value``."""

    def handler(req, res):
        res.append_header(name, value)
        return "never sent"

    return handler


unsendable = App()
for _case, (_name, _value, _sendable) in HEADER_CASES.items():
    if not _sendable:
        unsendable.route(f"/api/{_case.replace(' ', '-')}")(sending(_name, _value))


def asgi_get(asgi, path):
    """GET ``path`` from an ASGI app in-process: (status, headers, body)."""

    async def run():
        sent = []
        requested = False

        async def receive():
            nonlocal requested
            if requested:
                await asyncio.Event().wait()
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "headers": []}
        await asgi(scope, receive, send)
        return sent

    start, *bodies = asyncio.run(run())
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in bodies)


@pytest.fixture(scope="module")
def tornado_port():
    """``unsendable`` on the Tornado Server, on a loop in a background thread."""
    server = Server(unsendable, port=0)
    with background_loop() as loop:
        yield on_loop(loop, server.start)
        on_loop(loop, server.stop)


@pytest.mark.parametrize("case", [case for case, (_, _, sendable) in HEADER_CASES.items() if not sendable])
def test_both_adapters_answer_the_same_500_for_a_header_http_cannot_carry(case, tornado_port, caplog):
    path = f"/api/{case.replace(' ', '-')}"
    conn = http.client.HTTPConnection("127.0.0.1", tornado_port, timeout=10)
    with caplog.at_level(logging.ERROR, "nbroutes.application"):
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            tornado = (response.status, response.getheader("Content-Type"), response.read())
        finally:
            conn.close()
        status, headers, body = asgi_get(ASGIApp(unsendable), path)
    assert tornado == (status, headers["content-type"], body) == (500, "application/json", ERROR_BODY)
    assert headers["content-length"] == str(len(ERROR_BODY))
    assert caplog.text.count(f"nbroutes failed to answer GET {path}") == 2
