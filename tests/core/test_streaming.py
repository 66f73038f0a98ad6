"""Streaming responses: generators, res.write()/res.end(), and server-sent events, in-process and over a socket."""

from __future__ import annotations

import asyncio
import http.client
import time

import pytest

from nbroutes import App, sse
from nbroutes.servers.tornado import Server
from nbroutes.testing import TestClient
from tests.support import on_loop

app = App()
released = asyncio.Event()
closed: list[str] = []


@app.route("/sync-gen")
def sync_gen(req):
    yield "a,"
    yield b"b,"
    yield {"c": 1}


@app.route("/async-gen")
async def async_gen(req):
    for i in range(3):
        await asyncio.sleep(0)
        yield f"{i};"


@app.route("/write-sync")
def write_sync(req, res):
    res.status(201).set_header("Content-Type", "text/csv")
    res.write("x,y\n")
    res.write("1,2\n")
    res.end()


@app.route("/write-async")
async def write_async(req, res):
    res.write("first\n")
    await released.wait()  # the test releases it only after reading "first": proof it was flushed
    res.write("second\n")
    res.end()


@app.route("/write-async-no-end")
async def write_async_no_end(req, res):
    res.write("only\n")


@app.route("/events")
def events(req):
    async def gen():
        yield "hello"
        yield {"event": "tick", "id": 1, "data": {"n": 1}}
        await released.wait()
        yield {"comment": "keep-alive"}

    return sse(gen())


@app.route("/forever")
def forever(req):
    async def gen():
        try:
            n = 0
            while True:
                n += 1
                yield {"n": n}
                await asyncio.sleep(0.01)
        finally:
            closed.append("forever")

    return sse(gen())


@app.route("/after-write-crash")
async def after_write_crash(req, res):
    res.write("partial\n")
    await asyncio.sleep(0)
    raise ValueError("boom")


client = TestClient(app)


@pytest.mark.parametrize(
    "path, body",
    [("/sync-gen", b'a,b,{"c":1}\n'), ("/async-gen", b"0;1;2;"), ("/write-async-no-end", b"only\n")],
)
def test_generators_and_writes_stream(path, body):
    r = client.get(path)
    assert r.status_code == 200
    assert r.content == body
    assert "content-length" not in r.headers


def test_res_write_keeps_status_and_headers():
    r = client.get("/write-sync")
    assert (r.status_code, r.headers["content-type"], r.text) == (201, "text/csv", "x,y\n1,2\n")


def test_head_of_a_stream_has_no_body():
    r = client.head("/sync-gen")
    assert r.status_code == 200 and r.content == b""


def test_a_crash_after_streaming_began_ends_the_stream():
    r = client.get("/after-write-crash")
    assert r.status_code == 200 and r.text == "partial\n"


@pytest.fixture
def server(loop):
    global released
    released = asyncio.Event()  # a new loop per test: an Event binds to the loop it is first awaited on
    srv = Server(app, port=0)
    on_loop(loop, srv.start)
    yield srv
    on_loop(loop, srv.stop)


def read_until(response, marker: bytes, limit: float = 5.0) -> bytes:
    data = b""
    deadline = time.monotonic() + limit
    while marker not in data and time.monotonic() < deadline:
        data += response.read1(65536)
    return data


def test_res_write_is_flushed_before_the_handler_finishes(server, loop):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/write-async")
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    assert read_until(response, b"first\n") == b"first\n"  # the handler is still waiting
    loop.call_soon_threadsafe(released.set)
    assert response.read() == b"second\n"
    conn.close()


def test_sse_events_arrive_as_produced(server, loop):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/events")
    response = conn.getresponse()
    assert response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert response.getheader("Cache-Control") == "no-cache"
    first = read_until(response, b'data: {"n":1}\n\n')
    assert first == b'data: hello\n\nevent: tick\nid: 1\ndata: {"n":1}\n\n'
    loop.call_soon_threadsafe(released.set)
    assert response.read() == b": keep-alive\n\n"
    conn.close()


def test_client_disconnect_stops_the_generator(server, loop):
    closed.clear()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/forever")
    response = conn.getresponse()
    assert b'data: {"n":1}' in read_until(response, b'data: {"n":1}')
    conn.sock.close()
    conn.close()
    deadline = time.monotonic() + 5
    while not closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert closed == ["forever"]
