"""No client holds a connection forever: a slow header, a body that never ends, an idle keep-alive, a stalled reader.

Each is timed out by ``nbroutes serve`` (the Tornado adapter, as in a kernel) with the timeouts set small through
its options, and the slow head and short body by the ``Server`` in-process too; under uvicorn the idle timeout is
uvicorn's own ``--timeout-keep-alive``, and the others are uvicorn's business (docs/deploy.md says what to put in
front of it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbroutes import App
from tests.support import (
    Process,
    connect,
    nbroutes_serve,
    raw_request,
    read_response,
    request_head,
    seconds_until_closed,
    trickle,
)

from .servers import uvicorn_notebook

TIMEOUTS = ["--header-timeout", "0.5", "--body-timeout", "0.5", "--idle-timeout", "1", "--write-timeout", "1"]


@pytest.fixture(scope="module")
def served(wire_notebook: Path) -> Iterator[Process]:
    with nbroutes_serve(wire_notebook, "--no-access-log", *TIMEOUTS) as process:
        yield process


def seconds_a_slowloris_is_held(port: int) -> float:
    """How long the server keeps a head sent a byte every 0.1 s: busy, but never finished."""
    with connect(port) as sock:
        stop = threading.Event()
        head = request_head("GET", "/api/hello") * 10
        sender = threading.Thread(target=trickle, args=(sock, head, 0.1, stop.is_set))
        sender.start()
        try:
            return seconds_until_closed(sock, 5)
        finally:
            stop.set()
            sender.join()


def test_a_header_sent_a_byte_at_a_time_is_cut_off(served: Process) -> None:
    assert seconds_a_slowloris_is_held(served.port) < 2.5


def test_a_body_one_byte_short_is_answered_408_and_closed(served: Process) -> None:
    with connect(served.port) as sock:
        sock.sendall(request_head("POST", "/api/small", {"Content-Length": "10"}) + b"123456789")
        start = time.monotonic()
        answer = read_response(sock, timeout=5)
        assert answer.status == 408
        assert answer.headers["connection"] == "close"
        assert seconds_until_closed(sock, 5) + (time.monotonic() - start) < 2.5


def test_a_body_that_keeps_coming_is_not_cut_off(served: Process) -> None:
    # The body timeout is about silence, not the whole upload: 2 s of bytes arriving 0.1 s apart is fine.
    data = b"x" * 20
    with connect(served.port) as sock:
        sock.sendall(request_head("POST", "/api/upload", {"Content-Length": str(len(data))}))
        trickle(sock, data, 0.1, lambda: False)
        answer = read_response(sock)
        assert answer.status == 200 and b'"size":20' in answer.body


def test_an_idle_connection_is_closed(served: Process) -> None:
    with connect(served.port) as sock:
        assert 0.5 < seconds_until_closed(sock, 5) < 2.5
    with connect(served.port) as sock:  # and after a request, on a kept-alive connection
        sock.sendall(request_head("GET", "/api/hello"))
        assert read_response(sock).status == 200
        assert 0.5 < seconds_until_closed(sock, 5) < 2.5


def test_a_client_that_stops_reading_is_dropped_and_its_stream_closed(served: Process, wire_notebook: Path) -> None:
    closed = wire_notebook.parent / "closed.txt"
    closed.unlink(missing_ok=True)
    with connect(served.port) as sock:
        sock.setsockopt(1, 8, 4096)  # SO_RCVBUF: a small window, so the server's writes stall soon
        sock.sendall(request_head("GET", "/api/flood"))
        time.sleep(0.2)  # never read: the endless response fills the buffers and the server's writes stall
        start = time.monotonic()
        deadline = start + 6
        while not closed.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert closed.exists(), "the endless stream is still running for a client that stopped reading"
        assert time.monotonic() - start < 4


def test_the_server_keeps_answering_while_clients_misbehave(served: Process) -> None:
    idle = [connect(served.port) for _ in range(20)]
    try:
        with connect(served.port) as sock:
            sock.sendall(request_head("GET", "/api/hello"))
            assert read_response(sock, timeout=2).status == 200
    finally:
        for sock in idle:
            sock.close()
    assert "Traceback" not in served.output


def test_uvicorn_closes_an_idle_connection_after_its_keep_alive_timeout(wire_notebook: Path) -> None:
    with uvicorn_notebook(wire_notebook, "--timeout-keep-alive", "1") as process, connect(process.port) as sock:
        sock.sendall(request_head("GET", "/api/hello"))
        assert read_response(sock).status == 200
        assert seconds_until_closed(sock, 5) < 2.5


# -- in-process: the Server a kernel runs, with its timeouts given as options ------------------------------------


def test_in_process_a_slow_head_and_a_short_body_are_cut_off_and_others_served(serve) -> None:
    app = App()
    app.route("/api/hello")(lambda req: {"hello": "world"})
    app.route("/api/small", methods="POST")(lambda req: {"size": len(req.raw_body)})
    port = serve(app, header_timeout=0.5, body_timeout=0.5).port
    assert seconds_a_slowloris_is_held(port) < 2.5
    with connect(port) as sock:
        sock.sendall(request_head("POST", "/api/small", {"Content-Length": "10"}) + b"123456789")
        assert read_response(sock, timeout=5).status == 408
    assert raw_request(port, "GET", "/api/hello").json() == {"hello": "world"}
