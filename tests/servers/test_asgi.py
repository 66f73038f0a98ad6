"""The ASGI adapter: in-process through the ASGI protocol itself, then under real uvicorn beside the Tornado server."""

import asyncio
import contextlib
import http.client
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nbroutes.asgi
from nbroutes import App
from nbroutes.asgi import ASGIApp, from_env
from tests.support import (
    Process,
    connect,
    free_port,
    raw_request,
    read_response,
    request_head,
    uvicorn,
    wait_for_port,
)

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"

app = App()
closed = []  # the names of the streams whose generator ran its finally


@app.route("/api/hello")
def hello(req):
    return {"hello": "world"}


@app.route("/api/whoami")
def whoami(req):
    return {
        "method": req.method,
        "url": req.url,
        "path": req.path,
        "query": req.query,
        "client": list(req.client),
        "scheme": req.scheme,
        "agent": req.headers.get("user-agent"),
    }


@app.route("/api/echo", methods="POST")
def echo(req):
    return {"size": len(req.raw_body), "body": req.body}


@app.route("/api/small", methods="POST", body_limit="16b")
def small(req):
    return {"size": len(req.raw_body)}


@app.route("/api/count")
def count(req):
    n = int(req.query.get("n", "3"))

    def lines():
        for i in range(n):
            yield f"{i}\n"

    return lines()


@app.route("/api/forever")
async def forever(req):
    async def ticks():
        try:
            i = 0
            while True:
                yield f"tick {i}\n"
                i += 1
                await asyncio.sleep(0)
        finally:
            closed.append("forever")

    return ticks()


@app.route("/api/broken-stream")
def broken_stream(req):
    def chunks():
        try:
            yield "first\n"
            raise RuntimeError("the data source failed")
        finally:
            closed.append("broken")

    return chunks()


@app.route("/api/written")
async def written(req, res):
    res.set_header("Content-Type", "text/csv")
    res.write("a,b\n")
    await asyncio.sleep(0)
    res.write("1,2\n")
    res.end()


# -- calling the app the way a server does ----------------------------------------


class Exchange:
    """One HTTP request through the ASGI protocol: the messages the app sent, and how often it read."""

    def __init__(self, messages, receives):
        self.messages = messages
        self.receives = receives
        start = messages[0]
        self.status = start["status"]
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]}
        self.header_lines = [(k.decode(), v.decode()) for k, v in start["headers"]]
        self.chunks = [m.get("body", b"") for m in messages[1:]]
        self.body = b"".join(self.chunks)

    def json(self):
        return json.loads(self.body)


def http_scope(method="GET", path="/api/hello", *, query=b"", headers=(), root_path="", include_root=True):
    prefix = root_path if include_root else ""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": prefix + path,
        "raw_path": (prefix + path).encode(),
        "query_string": query,
        "root_path": root_path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("10.1.2.3", 50123),
        "server": ("127.0.0.1", 8000),
    }


async def exchange(asgi, scope, body=(b"",), *, leave_after=None):
    """Run one request: ``body`` is sent as one ``http.request`` per item, then the client waits; it leaves
    (``http.disconnect``) once the app has sent ``leave_after`` body messages, or when the response is complete.
    """
    messages, receives = [], []
    pending = [{"type": "http.request", "body": chunk, "more_body": i < len(body) - 1} for i, chunk in enumerate(body)]
    gone = asyncio.Event()

    async def receive():
        receives.append(len(receives))
        if pending:
            return pending.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        messages.append(message)
        bodies = [m for m in messages if m["type"] == "http.response.body"]
        if (leave_after is not None and len(bodies) >= leave_after) or (bodies and not bodies[-1].get("more_body")):
            gone.set()

    await asyncio.wait_for(asgi(scope, receive, send), 5)
    return messages, len(receives)


def call(method="GET", path="/api/hello", body=(b"",), *, asgi=None, leave_after=None, **scope):
    messages, receives = asyncio.run(
        exchange(asgi or ASGIApp(app), http_scope(method, path, **scope), body, leave_after=leave_after)
    )
    return Exchange(messages, receives)


def lifespan(asgi, *events):
    """Send lifespan events; returns the app's answers."""

    async def run():
        queue = asyncio.Queue()
        for event in events:
            queue.put_nowait({"type": event})
        answers = []

        async def send(message):
            answers.append(message)

        await asyncio.wait_for(asgi({"type": "lifespan", "asgi": {"version": "3.0"}}, queue.get, send), 10)
        return answers

    return asyncio.run(run())


# -- in-process ----------------------------------------------------------------------


def test_get_json():
    r = call("GET", "/api/hello")
    assert r.status == 200
    assert r.json() == {"hello": "world"}
    assert r.headers["content-type"] == JSON
    assert r.headers["content-length"] == str(len(r.body))
    assert r.headers["etag"]
    assert r.messages[-1].get("more_body", False) is False


def test_scope_becomes_the_request():
    r = call("GET", "/api/whoami", query=b"q=a%20b&q=c", headers=[("User-Agent", "pytest")])
    assert r.json() == {
        "method": "GET",
        "url": "/api/whoami?q=a%20b&q=c",
        "path": "/api/whoami",
        "query": {"q": ["a b", "c"]},
        "client": ["10.1.2.3", 50123],
        "scheme": "https",
        "agent": "pytest",
    }


@pytest.mark.parametrize("include_root", [True, False], ids=["path-has-root", "proxy-stripped-it"])
def test_root_path_is_where_the_app_is_mounted(include_root):
    r = call("GET", "/api/whoami", root_path="/user/ada/proxy/8000", include_root=include_root)
    assert r.status == 200
    assert r.json()["path"] == "/api/whoami"
    redirect = call("GET", "/api/hello/", query=b"x=1", root_path="/user/ada/proxy/8000", include_root=include_root)
    assert redirect.status == 308
    assert redirect.headers["location"] == "/user/ada/proxy/8000/api/hello?x=1"


def test_a_root_path_only_strips_whole_segments():
    r = call("GET", "/apix/whoami", root_path="/api", include_root=False)
    assert r.status == 404


def test_redirect_without_root_path_is_the_cores():
    r = call("GET", "//evil.example/")
    assert r.status == 308
    assert r.headers["location"] == "/evil.example"


def test_body_in_several_messages_is_joined():
    r = call("POST", "/api/echo", [b'{"a": ', b"[1, 2]", b"}"], headers=[("Content-Type", "application/json")])
    assert r.status == 200
    assert r.json() == {"size": 13, "body": {"a": [1, 2]}}
    assert r.receives == 3


def test_body_over_the_limit_mid_stream_is_413_and_reading_stops():
    r = call("POST", "/api/small", [b"x" * 8, b"x" * 8, b"x" * 8, b"x" * 8], headers=[("Content-Type", "text/plain")])
    assert r.status == 413
    assert r.body == b"Body exceeded 16b limit"
    assert r.headers["content-type"] == TEXT
    assert r.receives == 3  # the third message went over: the fourth was never asked for


def test_declared_length_over_the_limit_is_413_without_reading():
    headers = [("Content-Type", "text/plain"), ("Content-Length", "17")]
    r = call("POST", "/api/small", [b"x" * 17], headers=headers)
    assert r.status == 413
    assert r.receives == 0


def test_body_within_the_limit():
    r = call("POST", "/api/small", [b"x" * 8, b"x" * 8], headers=[("Content-Type", "text/plain")])
    assert r.status == 200
    assert r.json() == {"size": 16}


def test_client_leaving_before_the_body_ends_gets_nothing():
    async def run():
        sent = []

        async def receive():
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        await ASGIApp(app)(http_scope("POST", "/api/echo"), receive, send)
        return sent

    assert asyncio.run(run()) == []


def test_head_keeps_content_length_without_a_body():
    get = call("GET", "/api/hello")
    head = call("HEAD", "/api/hello")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["content-length"] == str(len(get.body))


def test_streaming_sends_a_message_per_chunk():
    r = call("GET", "/api/count", query=b"n=3")
    assert r.status == 200
    assert r.headers["content-type"] == TEXT
    assert "content-length" not in r.headers
    assert [(m.get("body"), m.get("more_body", False)) for m in r.messages[1:]] == [
        (b"0\n", True),
        (b"1\n", True),
        (b"2\n", True),
        (b"", False),
    ]


def test_res_write_streams():
    r = call("GET", "/api/written")
    assert r.status == 200
    assert r.headers["content-type"] == "text/csv"
    assert r.body == b"a,b\n1,2\n"
    assert r.messages[-1] == {"type": "http.response.body", "body": b""}


def test_disconnect_during_streaming_closes_the_generator():
    closed.clear()
    r = call("GET", "/api/forever", leave_after=3)
    assert r.status == 200
    assert closed == ["forever"]  # the generator's finally ran before the app returned
    assert all(m["more_body"] for m in r.messages[1:])  # the response was never said to be complete
    assert len(r.messages) < 10  # it stopped within a few loop turns of the client leaving


def test_a_stream_that_fails_is_closed_and_the_server_told():
    closed.clear()
    with pytest.raises(RuntimeError, match="the data source failed"):
        call("GET", "/api/broken-stream")
    assert closed == ["broken"]


def test_internal_failure_is_a_500_json(caplog):
    broken = App()

    async def dispatch(request):
        raise KeyError("a bug in nbroutes")

    broken.dispatch = dispatch
    with caplog.at_level(logging.ERROR, "nbroutes.application"):
        r = call("GET", "/anything", asgi=ASGIApp(broken))
    assert r.status == 500
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "Internal Server Error"}
    assert r.headers["content-length"] == str(len(r.body))
    assert "nbroutes failed to answer GET /anything" in caplog.text


def test_a_header_that_cannot_be_sent_is_a_500():
    odd = App()

    @odd.route("/api/odd")
    def handler(req, res):
        res.set_header("X-Name", "Zoë ✓")
        return {"ok": True}

    assert call("GET", "/api/odd", asgi=ASGIApp(odd)).status == 500


def test_lifespan_with_an_app():
    asgi = ASGIApp(app)
    answers = lifespan(asgi, "lifespan.startup", "lifespan.shutdown")
    assert [a["type"] for a in answers] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert asgi.app is app


def test_lifespan_startup_fails_for_a_missing_notebook(tmp_path, caplog):
    asgi = nbroutes.asgi.app(tmp_path / "missing.ipynb")
    assert asgi.app is None
    with caplog.at_level(logging.ERROR, "nbroutes.application"):
        answers = lifespan(asgi, "lifespan.startup")
    assert [a["type"] for a in answers] == ["lifespan.startup.failed"]
    assert answers[0]["message"]
    assert "could not load" in caplog.text


def test_without_lifespan_a_failed_load_answers_500(tmp_path, caplog):
    asgi = nbroutes.asgi.app(str(tmp_path / "missing.ipynb"))
    with caplog.at_level(logging.ERROR, "nbroutes.application"):
        r = call("GET", "/api/hello", asgi=asgi)
    assert r.status == 500
    assert r.json() == {"error": "Internal Server Error"}


def test_websocket_is_refused():
    async def run():
        sent = []

        async def receive():
            return {"type": "websocket.connect"}

        async def send(message):
            sent.append(message)

        await ASGIApp(app)({"type": "websocket", "path": "/ws", "headers": []}, receive, send)
        return sent

    [close] = asyncio.run(run())
    assert close["type"] == "websocket.close"


def test_unknown_scope_type_raises():
    async def never():
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="not 'webtransport'"):
        asyncio.run(ASGIApp(app)({"type": "webtransport"}, never, never))


@pytest.mark.parametrize(
    ("target", "error"),
    [("api.py", ValueError), (42, TypeError), (None, TypeError)],
)
def test_targets_that_are_not_an_app_or_a_notebook(target, error):
    with pytest.raises(error):
        nbroutes.asgi.app(target)


def test_from_env(monkeypatch, tmp_path):
    monkeypatch.delenv("NBROUTES_NOTEBOOK", raising=False)
    with pytest.raises(LookupError, match="NBROUTES_NOTEBOOK=todo-api.ipynb uvicorn"):
        from_env()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBROUTES_NOTEBOOK", "todo-api.ipynb")
    asgi = from_env()
    assert asgi.source == tmp_path / "todo-api.ipynb"
    assert asgi.app is None


# -- a notebook, in-process ------------------------------------------------------------

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"


@pytest.fixture
def todo_notebook(tmp_path):
    """The todo-api notebook, copied where its todo.db can be made."""
    pytest.importorskip("nbroutes.headless.runner")
    path = tmp_path / "todo-api.ipynb"
    shutil.copy(NOTEBOOKS / "todo-api.ipynb", path)
    return path


def test_lifespan_runs_the_notebook_and_serves_its_routes(todo_notebook):
    asgi = nbroutes.asgi.app(todo_notebook)

    async def cycle(*requests):
        """One lifespan around ``requests``, as Mangum runs one around every Lambda invocation."""
        events, answers = asyncio.Queue(), []

        async def send(message):
            answers.append(message)

        events.put_nowait({"type": "lifespan.startup"})
        life = asyncio.ensure_future(asgi({"type": "lifespan", "asgi": {"version": "3.0"}}, events.get, send))
        while not answers:
            await asyncio.sleep(0.01)
        assert answers[0]["type"] == "lifespan.startup.complete", answers
        done = []
        for method, path, headers, body in requests:
            done.append(Exchange(*await exchange(asgi, http_scope(method, path, headers=headers), body)))
        events.put_nowait({"type": "lifespan.shutdown"})
        await asyncio.wait_for(life, 5)
        assert [a["type"] for a in answers] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        return done

    async def run():
        json_body = [("Content-Type", "application/json")]
        [made] = await cycle(("POST", "/api/todos", json_body, [b'{"title": "Deploy it"}']))
        app_of_first_cycle = asgi.app
        listed, stats = await cycle(("GET", "/api/todos", [], [b""]), ("GET", "/api/todos/stats", [], [b""]))
        assert asgi.app is app_of_first_cycle  # the notebook ran once
        return made, listed, stats

    made, listed, stats = asyncio.run(run())
    assert made.status == 201, made.body
    assert made.headers["location"] == f"/api/todos/{made.json()['id']}"
    assert "Deploy it" in [row["title"] for row in listed.json()]
    assert stats.json() == {"total": 3, "done": 1, "open": 2}
    assert (todo_notebook.parent / "todo.db").exists()  # made in the notebook's own directory


def test_without_lifespan_the_notebook_runs_once_on_the_first_requests(todo_notebook):
    asgi = nbroutes.asgi.app(todo_notebook)

    async def run():
        first = [exchange(asgi, http_scope("GET", "/api/todos/stats")) for _ in range(3)]
        return [Exchange(*done) for done in await asyncio.gather(*first)]

    answers = asyncio.run(run())
    assert [a.status for a in answers] == [200, 200, 200]
    assert {a.body for a in answers} == {b'{"total":2,"done":1,"open":1}'}  # seeded once: the notebook ran once
    assert isinstance(asgi.app, App)


# -- under real servers: uvicorn and nbroutes' Tornado server, side by side ----------------

APP_MODULE = """
import asyncio
import contextlib
import http.client
import os

from pydantic import BaseModel

import nbroutes.asgi
from nbroutes import App

app = App()


class Item(BaseModel):
    name: str
    price: float


@app.route("/api/hello")
def hello(req):
    return {"hello": "world"}


@app.route("/api/text", methods="GET")
def text(req):
    return "plain text, ünïcode"


@app.route("/api/items", methods=["GET", "POST"])
def items(req, res):
    if req.method == "POST":
        res.status(201).set_header("Location", "/api/items/7").json({"id": 7, **req.body})
        return None
    return [{"id": 7, "name": "pen"}]


@app.route("/api/typed", methods="POST")
def typed(req, body: Item) -> Item:
    return body, 201


@app.route("/api/small", methods="POST", body_limit="16b")
def small(req):
    return {"size": len(req.raw_body)}


@app.route("/api/stream")
def stream(req):
    return ({"n": i} for i in range(3))


@app.route("/api/forever")
async def forever(req):
    async def ticks():
        try:
            while True:
                yield "tick\\n"
                await asyncio.sleep(0.01)
        finally:
            with open(os.environ["CLOSED_FILE"], "a") as f:
                f.write("closed\\n")

    return ticks()


@app.route("/api/cookie")
def cookie(req, res):
    res.set_cookie("session", "abc 1", httponly=True, samesite="lax")
    res.set_cookie("theme", "dark")
    return {"seen": req.cookies}


@app.route("/api/empty")
def empty(req):
    return None


asgi = nbroutes.asgi.app(app)
"""

TORNADO_MAIN = """
import asyncio
import contextlib
import http.client
import sys

from nbroutes.servers.tornado import Server


async def main():
    if sys.argv[1].endswith(".ipynb"):
        from nbroutes.headless.runner import run_notebook_async

        app = (await run_notebook_async(sys.argv[1])).app
    else:
        import appmod

        app = appmod.app
    server = Server(app, port=0)
    server.start()
    print(server.port, flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
"""


@contextlib.contextmanager
def tornado(argument, cwd, env=None):
    """nbroutes' Tornado ``Server`` in a subprocess (tornado_main.py) on a port of its choosing; yields the port."""
    process = Process(["tornado_main.py", argument], cwd, env, path=[cwd])
    try:
        yield wait_for_port(process, int(process.wait_for(r"^(\d+)$").group(1)))
    finally:
        process.stop()


PROXY_PREFIX = "/user/ada/proxy/8000"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The same app under uvicorn and under the Tornado server: ``{"uvicorn": port, "tornado": port}``."""
    here = tmp_path_factory.mktemp("servers")
    (here / "appmod.py").write_text(APP_MODULE)
    (here / "tornado_main.py").write_text(TORNADO_MAIN)
    u_env = {"CLOSED_FILE": str(here / "uvicorn-closed.txt")}
    t_env = {"CLOSED_FILE": str(here / "tornado-closed.txt")}
    prefixed = uvicorn("appmod:asgi", here, "--root-path", PROXY_PREFIX, path=[here])
    with contextlib.ExitStack() as stack:
        yield {
            "uvicorn": stack.enter_context(uvicorn("appmod:asgi", here, env=u_env, path=[here])).port,
            "tornado": stack.enter_context(tornado("appmod", here, env=t_env)),
            "prefixed": stack.enter_context(prefixed).port,
            "dir": here,
        }


def fetch(port, method, url, body=None, headers=None, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        if chunked:
            conn.request(method, url, body=iter(body), headers=headers or {}, encode_chunked=True)
        else:
            conn.request(method, url, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


COMPARED_HEADERS = ["content-type", "content-length", "transfer-encoding", "location", "allow", "etag", "set-cookie"]
JSON_BODY = {"Content-Type": "application/json"}

CASES = {
    "json": ("GET", "/api/hello", None, {}),
    "head": ("HEAD", "/api/hello", None, {}),
    "text": ("GET", "/api/text", None, {}),
    "query": ("GET", "/api/hello?a=1&a=2", None, {}),
    "created with location": ("POST", "/api/items", b'{"name": "pen"}', JSON_BODY),
    "list": ("GET", "/api/items", None, {}),
    "not found": ("GET", "/api/nope", None, {}),
    "malformed escape": ("GET", "/api/%zz", None, {}),
    "method not allowed": ("DELETE", "/api/text", None, {}),
    "options": ("OPTIONS", "/api/text", None, {}),
    "trailing slash": ("GET", "/api/hello/?x=1", None, {}),
    "off-site slash": ("GET", "//evil.example/", None, {}),
    "etag match": ("GET", "/api/hello", None, {"If-None-Match": "etag of /api/hello"}),
    "etag mismatch": ("GET", "/api/hello", None, {"If-None-Match": '"other"'}),
    "invalid json": ("POST", "/api/items", b"{bad", JSON_BODY),
    "typed": ("POST", "/api/typed", b'{"name": "pen", "price": "1.5"}', JSON_BODY),
    "typed 422": ("POST", "/api/typed", b'{"name": "pen", "price": "cheap"}', JSON_BODY),
    "within limit": ("POST", "/api/small", b"x" * 16, {"Content-Type": "text/plain"}),
    "over limit": ("POST", "/api/small", b"x" * 17, {"Content-Type": "text/plain"}),
    "over limit chunked": ("POST", "/api/small", [b"x" * 10, b"x" * 10], {"Content-Type": "text/plain"}),
    "streaming": ("GET", "/api/stream", None, {}),
    "cookies": ("GET", "/api/cookie", None, {"Cookie": "session=old; theme=light"}),
    "no content": ("GET", "/api/empty", None, {}),
}


@pytest.mark.parametrize("case", CASES)
def test_uvicorn_answers_as_the_tornado_server_does(servers, case):
    method, url, body, headers = CASES[case]
    if headers.get("If-None-Match") == "etag of /api/hello":
        headers = {"If-None-Match": fetch(servers["tornado"], "GET", "/api/hello")[1]["ETag"]}
    chunked = isinstance(body, list)
    answers = {}
    for name in ("uvicorn", "tornado"):
        status, got, content = fetch(servers[name], method, url, body, headers, chunked)
        assert got["Date"], f"{name} sent no Date"
        assert len(got.get_all("Date")) == 1
        answers[name] = (status, content, {h: got.get_all(h) for h in COMPARED_HEADERS})
    assert answers["uvicorn"] == answers["tornado"]


@pytest.mark.parametrize("name", ["uvicorn", "tornado"])
def test_a_client_leaving_a_stream_closes_the_generator(servers, name):
    closed = servers["dir"] / f"{name}-closed.txt"
    before = closed.read_text().count("closed") if closed.exists() else 0
    conn = http.client.HTTPConnection("127.0.0.1", servers[name], timeout=10)
    conn.request("GET", "/api/forever")
    response = conn.getresponse()
    assert response.status == 200
    assert response.read1(64).startswith(b"tick")
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (closed.read_text().count("closed") if closed.exists() else 0) == before:
        time.sleep(0.02)
    assert closed.read_text().count("closed") == before + 1


@pytest.mark.parametrize("name", ["uvicorn", "tornado"])
def test_after_a_413_the_next_request_is_answered(servers, name):
    # On a raw socket: the 413 comes from the headers, with Connection: close, while a client such as
    # http.client is still sending the 2 MB (and then fails on a broken pipe before it reads the answer).
    with connect(servers[name]) as sock:
        head = request_head("POST", "/api/small", {"Content-Type": "text/plain", "Content-Length": str(2 * 1024**2)})
        sock.sendall(head + b"x" * 65536)
        response = read_response(sock)
        assert (response.status, response.body) == (413, b"Body exceeded 16b limit")
        if response.header("connection") != "close":  # a server that keeps the connection reads the body first
            sock.sendall(b"x" * (2 * 1024**2 - 65536))
            sock.sendall(request_head("GET", "/api/hello"))
            again = read_response(sock)
            assert (again.status, again.body) == (200, b'{"hello":"world"}')
    answer = raw_request(servers[name], "GET", "/api/hello")  # and a new connection is served
    assert (answer.status, answer.body) == (200, b'{"hello":"world"}')


def todo_requests(port):
    """Create a todo, list them, read the stats: (status, Location, body) of each."""
    answers = []
    for method, url, body in [
        ("POST", "/api/todos", b'{"title": "Deploy it"}'),
        ("GET", "/api/todos", None),
        ("GET", "/api/todos/stats", None),
    ]:
        status, headers, content = fetch(port, method, url, body, JSON_BODY if body else {})
        answers.append((status, headers["Location"], json.loads(content)))
    return answers


@pytest.mark.subprocess
def test_the_todo_notebook_under_uvicorn_answers_as_under_tornado(todo_notebook):
    here = todo_notebook.parent
    (here / "tornado_main.py").write_text(TORNADO_MAIN)
    twin = here / "twin"  # its own todo.db
    twin.mkdir()
    shutil.copy(todo_notebook, twin / todo_notebook.name)
    env = {"NBROUTES_NOTEBOOK": str(todo_notebook)}
    with uvicorn("nbroutes.asgi:from_env", here, "--factory", env=env) as u_served:
        with tornado(str(twin / todo_notebook.name), here) as t_port:
            under_uvicorn, under_tornado = todo_requests(u_served.port), todo_requests(t_port)
    assert under_uvicorn == under_tornado
    (made, location, todo), (_, _, listed), (_, _, stats) = under_uvicorn
    assert made == 201
    assert location == f"/api/todos/{todo['id']}"
    assert todo["title"] == "Deploy it"
    assert [t["title"] for t in listed] == ["Read the quick start", "Build a todo API", "Deploy it"]
    assert stats == {"total": 3, "done": 1, "open": 2}


@pytest.mark.subprocess
def test_the_todo_notebook_with_two_uvicorn_workers(todo_notebook):
    env = {"NBROUTES_NOTEBOOK": todo_notebook.name}  # relative to uvicorn's directory
    with uvicorn("nbroutes.asgi:from_env", todo_notebook.parent, "--factory", "--workers", "2", env=env) as served:
        port = served.port
        deadline = time.monotonic() + 15
        while True:  # the port is open before both workers have run the notebook
            status, _, _ = fetch(port, "GET", "/api/todos/stats")
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        made = [fetch(port, "POST", "/api/todos", b'{"title": "t%d"}' % i, JSON_BODY) for i in range(6)]
        assert [status for status, _, _ in made] == [201] * 6
        _, _, listed = fetch(port, "GET", "/api/todos")
        _, _, stats = fetch(port, "GET", "/api/todos/stats")
    titles = [t["title"] for t in json.loads(listed)]
    assert titles[-6:] == [f"t{i}" for i in range(6)]  # every worker wrote to the one file
    assert json.loads(stats)["total"] == len(titles)


@pytest.mark.subprocess
def test_a_failing_cell_stops_uvicorn_at_startup_and_names_the_cell(todo_notebook):
    notebook = json.loads(todo_notebook.read_text())
    position = [i for i, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"][2]
    notebook["cells"][position]["source"] = "raise ValueError('no table')"
    todo_notebook.write_text(json.dumps(notebook))
    command = [sys.executable, "-m", "uvicorn", "nbroutes.asgi:from_env", "--factory", "--port", str(free_port())]
    env = {**os.environ, "NBROUTES_NOTEBOOK": str(todo_notebook)}
    done = subprocess.run(command, cwd=todo_notebook.parent, env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode != 0
    assert f"code cell 3 (notebook cell {position + 1}) failed" in done.stderr
    assert "ValueError: no table" in done.stderr
    assert "Application startup failed" in done.stderr


def test_uvicorn_root_path_behind_a_proxy_that_strips_it(servers):
    # uvicorn's --root-path means the proxy strips the prefix (jupyter-server-proxy's /proxy/<port>/ does):
    # uvicorn puts it back in front of scope["path"], and the adapter takes it off again to route.
    status, _, body = fetch(servers["prefixed"], "GET", "/api/hello")
    assert (status, body) == (200, b'{"hello":"world"}')
    status, headers, _ = fetch(servers["prefixed"], "GET", "/api/hello/?x=1")
    assert status == 308
    assert headers["Location"] == f"{PROXY_PREFIX}/api/hello?x=1"  # the browser stays under the proxy


def test_the_deploy_docs_name_what_exists():
    docs = (Path(__file__).parents[2] / "docs" / "deploy.md").read_text()
    named = set(re.findall(r"nbroutes\.asgi[:.]([a-z_]+)", docs))
    assert named == {"app", "from_env"}
    assert all(callable(getattr(nbroutes.asgi, name)) for name in named)
    assert nbroutes.asgi.NOTEBOOK_ENV in docs
