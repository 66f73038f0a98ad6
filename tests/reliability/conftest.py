"""What every reliability test needs: a console that remembers, and the app served over a real socket."""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nbroutes import App
from nbroutes.core.handlers import Endpoint
from nbroutes.core.output import Console
from nbroutes.servers.tornado import Server
from tests.support import background_loop, on_loop


class RecordingConsole(Console):
    """A route console that remembers the errors it was given, as a route's cell output does."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.errors: list[tuple[str, BaseException]] = []

    def error(self, summary: str, exc: BaseException) -> None:
        self.errors.append((summary, exc))

    def reasons(self) -> str:
        """Every summary, one a line: what the notebook shows under the route's cell."""
        return "\n".join(summary for summary, _ in self.errors)


def add(app: App, pattern: str, fn: Callable[..., Any]) -> RecordingConsole:
    """Serve ``fn`` at ``pattern`` with a console of its own; returns the console."""
    console = RecordingConsole(pattern)
    app.add(pattern, {"*": Endpoint(fn)}, console=console)
    return console


class Fetch:
    """HTTP/1.1 requests to a server on 127.0.0.1, each on a new connection with a short timeout.

    The timeout is what turns a response the client waits on forever (a 1xx) into a failure.
    """

    def __init__(self, port: int) -> None:
        self.port = port

    def __call__(
        self, method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, url, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()


@pytest.fixture
def serve() -> Iterator[Callable[[App], Fetch]]:
    """``serve(app)`` runs the Tornado ``Server`` on a loop in a background thread, as in a kernel; returns a Fetch."""
    with background_loop() as loop:
        servers: list[Server] = []

        def start(app: App) -> Fetch:
            server = Server(app, port=0)
            on_loop(loop, server.start)
            servers.append(server)
            return Fetch(server.port)

        yield start
        for server in servers:
            on_loop(loop, server.stop)
