"""The ``serve`` fixture: an App on the Tornado ``Server`` over a real socket, for as long as the test runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from nbroutes import App
from nbroutes.servers.tornado import Server

from .servers import tornado_server


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """``serve(app, **options)`` runs ``Server(app, port=0, **options)`` on a loop in a background thread, as in a
    kernel, and returns it (its ``port``); every one is stopped after the test.
    """
    with ExitStack() as stack:

        def start(app: App, **options: Any) -> Server:
            return stack.enter_context(tornado_server(app, **options))

        yield start
