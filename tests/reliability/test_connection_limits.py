"""More idle connections than file descriptors: the server still answers, and the log stays a few lines long.

``nbroutes serve`` runs with RLIMIT_NOFILE lowered to 128 (the default bound on connections derives from it),
or with ``--max-connections`` (the Tornado ``Server`` in-process with ``max_connections``, as a kernel runs it);
the client opens more idle connections than that, then asks for a page.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nbroutes import App
from tests.support import connect, nbroutes_serve, read_response, request_head


@contextmanager
def idle_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that send nothing (some may be refused or reset: that is the server's right)."""
    socks = []
    try:
        for _ in range(count):
            try:
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                pass
        yield socks
    finally:
        for sock in socks:
            sock.close()


def ask(port: int) -> int:
    """The status of a GET /api/hello on a fresh connection (503 counts: it is an answer)."""
    with connect(port, timeout=3) as sock:
        sock.sendall(request_head("GET", "/api/hello"))
        return read_response(sock, timeout=3).status


def test_beyond_max_connections_a_request_gets_503_and_the_log_one_line(wire_notebook: Path) -> None:
    with nbroutes_serve(wire_notebook, "--no-access-log", "--max-connections", "20", "--idle-timeout", "30") as served:
        with idle_connections(served.port, 40):
            start = time.monotonic()
            statuses = {ask(served.port) for _ in range(5)}
            assert statuses == {503}
            assert time.monotonic() - start < 3
            time.sleep(0.3)
            assert served.output.count("answering new ones 503") == 1, served.output  # once, not once per refusal
        time.sleep(0.3)
        assert ask(served.port) == 200  # the idle ones gone, answers again


def test_with_1024_idle_connections_and_128_descriptors_serve_answers(wire_notebook: Path) -> None:
    with nbroutes_serve(wire_notebook, "--no-access-log", "--idle-timeout", "30", nofile=128) as served:
        with idle_connections(served.port, 1024):
            start = time.monotonic()
            assert ask(served.port) in (200, 503)
            assert time.monotonic() - start < 3
            time.sleep(2)  # the flood was 1.4 million log lines in 8 s
            assert len(served.output) < 4000, served.output[-2000:]
        time.sleep(0.3)
        assert ask(served.port) == 200


def test_in_process_beyond_max_connections_a_request_gets_503_then_200(serve) -> None:
    app = App()
    app.route("/api/hello")(lambda req: {"hello": "world"})
    port = serve(app, max_connections=20, idle_timeout=30).port
    with idle_connections(port, 40):
        assert {ask(port) for _ in range(5)} == {503}
    time.sleep(0.3)
    assert ask(port) == 200  # the idle ones gone, answers again
