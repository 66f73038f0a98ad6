"""``--body-limit false`` streams the body to the handler (``async for chunk in req.stream()``): it is never buffered.

Under ``nbroutes serve`` and uvicorn, with the server's peak memory measured around a large upload; and
in-process through the ``TestClient``, which hands the handler a stream too.
"""

from __future__ import annotations

import json
import socket

import pytest

from nbroutes import App
from nbroutes.errors import BodyStreamedError
from nbroutes.testing import TestClient
from tests.support import Process, connect, read_response, request_head

UPLOAD = 300 * 1024**2


def _upload(sock: socket.socket, path: str, size: int, *, chunked: bool = False) -> None:
    block = b"x" * (1024 * 1024)
    if chunked:
        sock.sendall(request_head("POST", path, {"Transfer-Encoding": "chunked"}))
        framed = b"%x\r\n" % len(block) + block + b"\r\n"
        for _ in range(size // len(block)):
            sock.sendall(framed)
        sock.sendall(b"0\r\n\r\n")
    else:
        sock.sendall(request_head("POST", path, {"Content-Length": str(size)}))
        for _ in range(size // len(block)):
            sock.sendall(block)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_300mb_upload_is_streamed_not_buffered(wire_server: Process, chunked: bool) -> None:
    before = wire_server.peak_memory()
    with connect(wire_server.port, timeout=60) as sock:
        _upload(sock, "/api/upload", UPLOAD, chunked=chunked)
        answer = read_response(sock, timeout=60)
    assert answer.status == 200
    assert json.loads(answer.body)["size"] == UPLOAD
    grown = wire_server.peak_memory() - before
    assert grown < 40 * 1024**2, f"the server's peak memory grew by {grown / 1024**2:.0f} MB for the upload"


def test_a_handler_that_never_reads_the_body_still_answers(wire_server: Process) -> None:
    with connect(wire_server.port) as sock:
        sock.sendall(request_head("POST", "/api/ignore", {"Content-Length": str(10 * 1024**2)}) + b"x" * 65536)
        answer = read_response(sock, timeout=5)
        assert (answer.status, json.loads(answer.body)) == (200, {"ignored": True})
    with connect(wire_server.port) as sock:  # and the server goes on
        sock.sendall(request_head("GET", "/api/hello"))
        assert read_response(sock).status == 200


def test_req_body_on_a_streamed_route_says_to_use_stream(wire_server: Process) -> None:
    with connect(wire_server.port) as sock:
        headers = {"Content-Length": "2", "Content-Type": "application/json"}
        sock.sendall(request_head("POST", "/api/parsed", headers) + b"{}")
        assert read_response(sock).status == 500
    if "nbroutes" in wire_server.proc.args:  # type: ignore[operator] - uvicorn's log level hides the route's error
        wire_server.wait_for(r"req\.stream\(\)", timeout=5)  # printed as it answered: read by a thread


def test_a_bodyless_request_to_a_streamed_route_streams_nothing(wire_server: Process) -> None:
    with connect(wire_server.port) as sock:
        sock.sendall(request_head("POST", "/api/upload", {"Content-Length": "0"}))
        answer = read_response(sock)
        assert (answer.status, json.loads(answer.body)) == (200, {"size": 0, "chunks": 0})


# -- in-process: the TestClient streams too -------------------------------------------------------

app = App()


@app.route("/api/upload", methods="POST", body_limit=None)
async def upload(req):
    return {"chunks": [chunk.decode() async for chunk in req.stream()]}


@app.route("/api/limited", methods="POST")
async def limited(req):
    # On a limited route the body is read for the handler; stream() hands it over in one chunk.
    return {"chunks": [chunk.decode() async for chunk in req.stream()], "raw": req.raw_body.decode()}


@app.route("/api/raw", methods="POST", body_limit=None)
def raw(req):
    return {"size": len(req.raw_body)}


@app.route("/api/twice", methods="POST", body_limit=None)
async def twice(req):
    first = [chunk async for chunk in req.stream()]
    return {"first": len(first), "again": [chunk async for chunk in req.stream()]}


def test_the_test_client_hands_a_streamed_route_a_stream() -> None:
    with TestClient(app) as client:
        assert client.post("/api/upload", content=b"hello").json() == {"chunks": ["hello"]}
        assert client.post("/api/upload").json() == {"chunks": []}
        assert client.post("/api/limited", content=b"hi").json() == {"chunks": ["hi"], "raw": "hi"}


def test_raw_body_on_a_streamed_route_is_an_error_that_says_what_to_do() -> None:
    with TestClient(app) as client:
        response = client.post("/api/raw", content=b"hello")
        assert response.status_code == 500
    expected = r"async for chunk in req\.stream\(\)"
    with TestClient(app, raise_server_exceptions=True) as client, pytest.raises(BodyStreamedError, match=expected):
        client.post("/api/raw", content=b"hello")


def test_a_stream_is_read_once() -> None:
    with TestClient(app, raise_server_exceptions=True) as client, pytest.raises(BodyStreamedError, match="already"):
        client.post("/api/twice", content=b"hello")
