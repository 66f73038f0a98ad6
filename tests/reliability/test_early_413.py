"""A body over its route's limit is refused from its headers, before it is read; a chunked one as it crosses the limit.

Over raw sockets, under ``nbroutes serve`` (the Tornado adapter) and uvicorn (the ASGI adapter), on a route
limited to 1 kB.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.support import Process, connect, read_response, request_head

FIFTY_MB = 50 * 1024**2


def test_a_declared_length_over_the_limit_is_413_before_a_byte_of_body(wire_server: Process) -> None:
    with connect(wire_server.port) as sock:
        sock.sendall(request_head("POST", "/api/small", {"Content-Length": str(FIFTY_MB)}))  # and no body at all
        answer = read_response(sock, timeout=3)
        assert answer.status == 413
        assert b"Body exceeded 1kb limit" in answer.body
        assert answer.headers.get("connection") == "close"


@pytest.mark.parametrize("size", [FIFTY_MB, 200 * 1024**2, 10**15])
def test_expect_100_continue_over_the_limit_gets_413_and_never_100(wire_server: Process, size: int) -> None:
    # Over 100 MB too: that was a bare 400 from Tornado's own max_body_size.
    with connect(wire_server.port) as sock:
        sock.sendall(request_head("POST", "/api/small", {"Content-Length": str(size), "Expect": "100-continue"}))
        answer = read_response(sock, timeout=3)
        assert (answer.status, answer.interim) == (413, [])


def test_expect_100_continue_within_the_limit_still_gets_100(wire_server: Process) -> None:
    with connect(wire_server.port) as sock:
        sock.sendall(request_head("POST", "/api/small", {"Content-Length": "5", "Expect": "100-continue"}))
        sock.settimeout(3)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"hello")
        answer = read_response(sock)
        assert answer.status == 200 and answer.body == b'{"size":5}'


def test_a_50mb_upload_to_a_1kb_route_is_answered_before_it_is_sent(wire_server: Process) -> None:
    with connect(wire_server.port) as sock:
        start = request_head("POST", "/api/small", {"Content-Length": str(FIFTY_MB)})
        sent = _send_in_background(sock, start, FIFTY_MB)
        answer = read_response(sock, timeout=5)
        assert answer.status == 413
        assert sent[0] < FIFTY_MB // 2, f"the client had sent {sent[0]} bytes before the 413"


def test_a_chunked_body_is_refused_as_soon_as_it_crosses_the_limit(wire_server: Process) -> None:
    with connect(wire_server.port) as sock:
        start = request_head("POST", "/api/small", {"Transfer-Encoding": "chunked"})
        sent = _send_in_background(sock, start, FIFTY_MB, chunked=True)
        answer = read_response(sock, timeout=5)
        assert answer.status == 413 and b"Body exceeded 1kb limit" in answer.body
        assert sent[0] < FIFTY_MB // 2, f"the client had sent {sent[0]} bytes before the 413"


def test_the_server_still_answers_after_refusing(wire_server: Process) -> None:
    for _ in range(3):
        with connect(wire_server.port) as sock:
            sock.sendall(request_head("POST", "/api/small", {"Content-Length": str(FIFTY_MB)}))
            assert read_response(sock, timeout=3).status == 413
    with connect(wire_server.port) as sock:
        sock.sendall(request_head("GET", "/api/hello"))
        assert read_response(sock).status == 200


def _send_in_background(sock: socket.socket, start: bytes, size: int, *, chunked: bool = False) -> list[int]:
    """Send ``start`` then ``size`` bytes of body from a thread, slowly enough to be overtaken; returns [bytes sent].

    The count stops when the server closes the connection.
    """
    sent = [0]
    block = b"x" * 65536
    if chunked:
        block = b"%x\r\n" % len(block) + block + b"\r\n"

    def send() -> None:
        try:
            sock.sendall(start)
            while sent[0] < size:
                sock.sendall(block)
                sent[0] += 65536
                time.sleep(0.002)  # about 30 MB/s: the 50 MB would take more than a second
        except OSError:
            pass

    threading.Thread(target=send, daemon=True).start()
    return sent
