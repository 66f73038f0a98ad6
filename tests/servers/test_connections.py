"""The connections a Tornado Server holds: a bound on how many, and the sweep that closes those past their time.

Over real sockets to a ``Server`` on a loop in a background thread, with timeouts small enough to watch.
tests/reliability/ holds the hostile versions (a descriptor limit lowered, 1,024 idle connections, slowloris).
"""

from __future__ import annotations

from nbroutes import App
from nbroutes.servers.connections import Listener
from tests.reliability.servers import tornado_server
from tests.support import connect, raw_request, read_response, seconds_until_closed

app = App()


@app.route("/api/hello")
def hello(req):
    return {"hello": "world"}


def test_a_connection_over_the_bound_gets_a_503_and_the_ones_held_still_answer() -> None:
    with tornado_server(app, max_connections=2) as server:
        held = [connect(server.port), connect(server.port)]
        try:
            # Queued after the two held ones, so accepted after them: the third.
            over = raw_request(server.port, "GET", "/api/hello")
            assert over.status == 503, over
            assert over.headers["connection"] == "close"
            held[0].sendall(b"GET /api/hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert read_response(held[0]).json() == {"hello": "world"}
        finally:
            for sock in held:
                sock.close()


def test_an_idle_connection_is_closed_after_the_idle_timeout_and_a_slow_head_after_the_header_timeout() -> None:
    with tornado_server(app, idle_timeout=0.3, header_timeout=0.3) as server:
        with connect(server.port) as idle:
            assert seconds_until_closed(idle, limit=5) < 5
        with connect(server.port) as slow:
            slow.sendall(b"GET /api/hel")  # a head that never ends
            assert seconds_until_closed(slow, limit=5) < 5
        assert raw_request(server.port, "GET", "/api/hello").status == 200  # the server itself goes on


def test_the_listener_is_the_server_s_http_server() -> None:
    with tornado_server(app) as server:
        assert isinstance(server._http, Listener)
        assert raw_request(server.port, "GET", "/api/hello").status == 200
