"""The Tornado adapter over real sockets: a server on an event loop in a background thread."""

import email.utils
import gc
import http.client
import json
import socket
import time
import warnings

import pytest

from nbroutes import App
from nbroutes.errors import PortInUseError
from nbroutes.servers.tornado import Server
from tests.support import on_loop

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"

app = App()


@app.route("/api/hello")
def hello(req):
    return {"hello": "world"}


@app.route("/api/echo")
def echo(req):
    return {"body": req.body}


@app.route("/api/limited", body_limit="10kb")
def limited(req):
    return {"size": len(req.raw_body)}


@app.route("/api/raw", body_limit=None)
async def raw(req):
    size = 0
    async for chunk in req.stream():  # streamed, never held whole
        size += len(chunk)
    return {"size": size}


@app.route("/api/upload", methods=["POST"])
def upload(req):
    doc = req.files["doc"]
    return {"title": req.body["title"], "filename": doc.filename, "size": doc.size, "head": list(doc.content[:4])}


@app.route("/api/empty")
def empty(req):
    return None


@app.route("/api/bad-header")
def bad_header(req, res):
    res.set_header("X-Name", "snow\u2603man")  # HTTP headers carry latin-1 only
    return "never sent"


@app.route("/api/breaks-midway")
def breaks_midway(req):
    def chunks():
        yield "first "
        raise ValueError("the data source went away")

    return chunks()


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture
def server(loop):
    srv = Server(app, port=0)
    on_loop(loop, srv.start)
    yield srv
    on_loop(loop, srv.stop)


@pytest.fixture
def connect(server):
    """Open HTTP connections to the server; all are closed after the test."""
    opened = []

    def connect(port=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or server.port, timeout=10)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


def fetch(conn, method, url, body=None, headers=None):
    conn.request(method, url, body=body, headers=headers or {})
    response = conn.getresponse()
    return response, response.read()


MULTIPART_BOUNDARY = "nbroutes-test-boundary"


def multipart(title, filename, content):
    b = MULTIPART_BOUNDARY
    return (
        (
            f'--{b}\r\nContent-Disposition: form-data; name="title"\r\n\r\n{title}\r\n'
            f'--{b}\r\nContent-Disposition: form-data; name="doc"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{b}--\r\n".encode()
    )


# -- tests ---------------------------------------------------------------------------


def test_get_json(server, connect):
    response, body = fetch(connect(), "GET", "/api/hello")
    assert response.status == 200
    assert json.loads(body) == {"hello": "world"}
    assert response.getheader("Content-Type") == JSON
    assert response.getheader("Content-Length") == str(len(body))
    assert server.running
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_head_has_no_body_but_a_content_length(connect):
    conn = connect()
    _, get_body = fetch(conn, "GET", "/api/hello")
    response, body = fetch(conn, "HEAD", "/api/hello")
    assert response.status == 200
    assert body == b""
    assert response.getheader("Content-Length") == str(len(get_body))
    # the connection is still in step: the next response is read whole
    response, body = fetch(conn, "GET", "/api/hello")
    assert json.loads(body) == {"hello": "world"}


def test_trailing_slash_is_308(connect):
    response, body = fetch(connect(), "GET", "/api/hello/?x=1")
    assert response.status == 308
    assert response.getheader("Location") == "/api/hello?x=1"
    assert body == b""


@pytest.mark.parametrize("url", ["//evil.com/", "/\\evil.com/"])
def test_trailing_slash_redirect_stays_on_site(connect, url):
    response, _ = fetch(connect(), "GET", url)
    assert response.status == 308
    location = response.getheader("Location")
    assert location.startswith("/")
    assert location[1:2] not in ("/", "\\")


def test_not_found(connect):
    response, body = fetch(connect(), "GET", "/api/nope")
    assert response.status == 404
    assert json.loads(body)["error"] == "Not Found"


def test_malformed_escape_is_400(connect):
    response, _ = fetch(connect(), "GET", "/api/%zz")
    assert response.status == 400


def test_json_body(connect):
    response, body = fetch(connect(), "POST", "/api/echo", b'{"a": [1, 2]}', {"Content-Type": "application/json"})
    assert response.status == 200
    assert json.loads(body) == {"body": {"a": [1, 2]}}


def test_invalid_json_is_400(connect):
    response, body = fetch(connect(), "POST", "/api/echo", b"{bad", {"Content-Type": "application/json"})
    assert response.status == 400
    assert body == b"Invalid JSON"
    assert response.getheader("Content-Type") == TEXT


def test_2mb_body_is_413_and_the_connection_stays_usable(connect):
    conn = connect()
    big = b"x" * (2 * 1024 * 1024)
    response, body = fetch(conn, "POST", "/api/echo", big, {"Content-Type": "text/plain"})
    assert response.status == 413
    assert body == b"Body exceeded 1mb limit"
    if (response.getheader("Connection") or "").lower() == "close":
        conn = connect()  # the server said it closes: a new connection must work
    response, body = fetch(conn, "GET", "/api/hello")
    assert response.status == 200
    assert json.loads(body) == {"hello": "world"}


def test_chunked_body_over_the_limit_is_413(connect):
    conn = connect()
    chunks = iter([b"x" * 8192, b"x" * 8192])
    conn.request("POST", "/api/limited", body=chunks, headers={"Content-Type": "text/plain"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413
    assert response.read() == b"Body exceeded 10kb limit"


def test_body_within_a_custom_limit(connect):
    response, body = fetch(connect(), "POST", "/api/limited", b"x" * 10240, {"Content-Type": "text/plain"})
    assert response.status == 200
    assert json.loads(body) == {"size": 10240}


def test_unlimited_route_streams_a_2mb_body(connect):
    response, body = fetch(connect(), "POST", "/api/raw", b"x" * (2 * 1024 * 1024), {"Content-Type": "text/plain"})
    assert response.status == 200
    assert json.loads(body) == {"size": 2 * 1024 * 1024}


def test_multipart_upload(connect):
    content = bytes(range(256)) * 40
    headers = {"Content-Type": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"}
    response, body = fetch(connect(), "POST", "/api/upload", multipart("Report", "data.bin", content), headers)
    assert response.status == 200
    assert json.loads(body) == {"title": "Report", "filename": "data.bin", "size": 10240, "head": [0, 1, 2, 3]}


def test_date_header(connect):
    response, _ = fetch(connect(), "GET", "/api/hello")
    date = email.utils.parsedate_to_datetime(response.getheader("Date"))
    assert abs(date.timestamp() - time.time()) < 5


def test_etag_and_304(connect):
    conn = connect()
    response, _ = fetch(conn, "GET", "/api/hello")
    etag = response.getheader("ETag")
    response, body = fetch(conn, "GET", "/api/hello", headers={"If-None-Match": etag})
    assert response.status == 304
    assert body == b""
    response, body = fetch(conn, "GET", "/api/hello")  # the connection is still in step
    assert json.loads(body) == {"hello": "world"}


def test_204_has_no_body(connect):
    conn = connect()
    response, body = fetch(conn, "GET", "/api/empty")
    assert response.status == 204
    assert body == b""
    assert response.getheader("Content-Length") is None
    response, body = fetch(conn, "GET", "/api/hello")
    assert json.loads(body) == {"hello": "world"}


def test_keep_alive(connect):
    conn = connect()
    fetch(conn, "GET", "/api/hello")
    sock = conn.sock
    assert sock is not None
    for _ in range(5):
        response, body = fetch(conn, "POST", "/api/echo", b'{"n": 1}', {"Content-Type": "application/json"})
        assert response.status == 200
        assert json.loads(body) == {"body": {"n": 1}}
        assert conn.sock is sock  # the same socket: nothing was reopened


@pytest.fixture
def taken_port():
    """A port with a listening socket on it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def start(loop):
    """Start servers on the loop; those still running are stopped after the test."""
    started = []

    def start(srv, **options):
        started.append(srv)
        return on_loop(loop, lambda: srv.start(**options))

    yield start
    for srv in started:
        on_loop(loop, srv.stop)


def test_port_fallback(start, taken_port):
    srv = Server(app, port=taken_port)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        port = start(srv)
        gc.collect()
    assert taken_port < port < taken_port + 100
    assert srv.port == port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    response, body = fetch(conn, "GET", "/api/hello")
    conn.close()
    assert json.loads(body) == {"hello": "world"}
    # the socket tried on the taken port must be closed, not left to the garbage collector
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_no_search_on_a_taken_port_raises(start, taken_port):
    with pytest.raises(PortInUseError):
        start(Server(app, port=taken_port), search=False)


def test_stop_frees_the_port(loop, start):
    srv = Server(app, port=0)
    port = start(srv)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert fetch(conn, "GET", "/api/hello")[0].status == 200
    conn.close()
    on_loop(loop, srv.stop)
    assert not srv.running
    again = socket.socket()
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        again.bind(("127.0.0.1", port))  # EADDRINUSE if the server still listens
        again.listen()
    finally:
        again.close()


def test_restart_on_the_same_port(loop, start):
    srv = Server(app, port=0)
    port = start(srv)
    on_loop(loop, srv.stop)
    assert start(Server(app, port=port), search=False) == port


def test_a_header_http_cannot_carry_is_a_500_not_a_hang(server, connect):
    response, body = fetch(connect(), "GET", "/api/bad-header")
    assert response.status == 500
    assert json.loads(body) == {"error": "Internal Server Error"}
    assert fetch(connect(), "GET", "/api/hello")[0].status == 200


def test_a_stream_that_raises_midway_ends_the_response_early_not_never(server, connect):
    conn = connect()
    conn.request("GET", "/api/breaks-midway")
    response = conn.getresponse()
    assert response.status == 200  # the headers and the first chunk went out before the error
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert cut.value.partial == b"first "
    assert fetch(connect(), "GET", "/api/hello")[0].status == 200
