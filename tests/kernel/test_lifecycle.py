"""The server's life in a real kernel: ``%nbroutes start|stop|status``, a taken port, unload, reload, load twice.

Each test starts its own kernel, since it moves or frees the port.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable
from http.client import HTTPConnection

import pytest

from .conftest import HOST, HTTPResult, Kernel, free_port, listen_on, port_is_free, refuses_connections

HELLO = "%%route /api/hello\ndef GET(req):\n    print('hello handler ran')\n    return {'hello': 'world'}"


def _loaded(new_kernel: Callable[..., Kernel], port: int | None = None) -> Kernel:
    kernel = new_kernel(port)
    load = kernel.ok("%load_ext nbroutes")
    assert load.stdout == f"nbroutes: serving on http://{HOST}:{kernel.env_port}\n"
    return kernel


# -- 9. %nbroutes -------------------------------------------------------------------------


def test_stop_frees_the_port_and_start_serves_again(new_kernel: Callable[..., Kernel]) -> None:
    kernel = _loaded(new_kernel)
    port = kernel.port
    kernel.ok(HELLO, {"cellId": "hello"})
    assert kernel.get("/api/hello").json() == {"hello": "world"}
    assert not port_is_free(port)

    kept_alive = HTTPConnection(HOST, port, timeout=10)
    kept_alive.request("GET", "/api/hello")
    assert kept_alive.getresponse().read() == b'{"hello":"world"}'

    stopped = kernel.ok("%nbroutes stop")
    assert str(port) in stopped.stdout
    assert refuses_connections(port)
    assert port_is_free(port)
    # open connections are closed too: no more answers on a kept-alive one
    try:
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            kept_alive.request("GET", "/api/hello")
            kept_alive.getresponse().read()
    finally:
        kept_alive.close()

    # a route cell run while stopped registers, and says the server is stopped
    later = kernel.ok("%%route /api/later\ndef GET(req):\n    return {'later': True}", {"cellId": "later"})
    assert "%nbroutes start" in later.stderr

    status = kernel.ok("%nbroutes status")
    assert "stopped" in status.stdout
    assert str(port) in status.stdout

    started = kernel.ok("%nbroutes start")
    assert started.stdout == f"nbroutes: serving on http://{HOST}:{port}\n"
    assert kernel.ok("%nbroutes start").stdout == f"nbroutes: already serving on http://{HOST}:{port}\n"
    assert kernel.get("/api/hello").json() == {"hello": "world"}
    assert kernel.get("/api/later").json() == {"later": True}


def test_start_with_another_port_moves_the_server(new_kernel: Callable[..., Kernel]) -> None:
    kernel = _loaded(new_kernel)
    old = kernel.port
    kernel.ok(HELLO, {"cellId": "hello"})
    assert kernel.get("/api/hello").status == 200

    new = free_port()
    moved = kernel.ok(f"%nbroutes start --port {new}")
    assert moved.stdout == f"nbroutes: serving on http://{HOST}:{new}\n"
    assert kernel.get("/api/hello", port=new).json() == {"hello": "world"}
    assert refuses_connections(old)
    assert port_is_free(old)

    status = kernel.ok("%nbroutes status")
    lines = status.stdout.splitlines()
    assert lines[0] == f"nbroutes: serving on http://{HOST}:{new}"
    assert "1 route" in lines[1]
    assert "2 requests" in lines[1]


def test_a_taken_port_serves_on_the_next_free_one(
    new_kernel: Callable[..., Kernel], http: Callable[..., HTTPResult]
) -> None:
    holder = listen_on()
    taken = holder.getsockname()[1]
    try:
        kernel = new_kernel(taken)
        load = kernel.ok("%load_ext nbroutes")
        m = re.fullmatch(
            rf"nbroutes: port {taken} is in use; serving on http://{re.escape(HOST)}:(\d+) instead\n", load.stdout
        )
        assert m is not None, load.stdout
        actual = int(m.group(1))
        assert actual != taken
        assert taken < actual <= taken + 100

        kernel.ok(HELLO, {"cellId": "hello"})
        assert http(actual, "GET", "/api/hello").json() == {"hello": "world"}
        assert kernel.ok("%nbroutes status").stdout.startswith(f"nbroutes: serving on http://{HOST}:{actual}\n")
    finally:
        holder.close()


# -- 10. unload, reload, load twice ----------------------------------------------------------


def test_unload_frees_the_port_and_load_serves_the_routes_again(new_kernel: Callable[..., Kernel]) -> None:
    kernel = _loaded(new_kernel)
    port = kernel.port
    kernel.ok(HELLO, {"cellId": "hello"})
    assert kernel.get("/api/hello").status == 200

    kernel.ok("%unload_ext nbroutes")
    assert refuses_connections(port)
    assert port_is_free(port)

    again = kernel.ok("%load_ext nbroutes")
    assert again.stdout == f"nbroutes: serving on http://{HOST}:{port}\n"
    assert kernel.get("/api/hello").json() == {"hello": "world"}


def test_reload_comes_back_on_the_same_port_with_the_routes(new_kernel: Callable[..., Kernel]) -> None:
    kernel = _loaded(new_kernel)
    port = kernel.port
    cell = kernel.ok(HELLO, {"cellId": "hello"})
    assert kernel.get("/api/hello").status == 200

    reloaded = kernel.ok("%reload_ext nbroutes")
    assert reloaded.stdout == f"nbroutes: serving on http://{HOST}:{port}\n"
    assert kernel.get("/api/hello").json() == {"hello": "world"}

    # the notebook side works as before: output under the route's cell, the tag, the magics
    kernel.wait_for_card(cell.card, "hello handler ran")
    kernel.ok("def GET(req):\n    return {'tagged': True}", {"tags": ["route:/api/after-reload"], "cellId": "tagged"})
    assert kernel.get("/api/after-reload").json() == {"tagged": True}
    listing = kernel.ok("%routes").stdout
    assert "/api/hello" in listing
    assert "/api/after-reload" in listing


def test_loading_twice_is_harmless(new_kernel: Callable[..., Kernel]) -> None:
    kernel = _loaded(new_kernel)
    port = kernel.port
    kernel.ok(HELLO, {"cellId": "hello"})

    twice = kernel.ok("%load_ext nbroutes")
    assert "in use" not in twice.stdout + twice.stderr
    assert "http://" not in twice.stdout  # no second server
    assert kernel.get("/api/hello").json() == {"hello": "world"}
    status = kernel.ok("%nbroutes status").stdout
    assert status.startswith(f"nbroutes: serving on http://{HOST}:{port}\n")
    assert "1 route," in status
