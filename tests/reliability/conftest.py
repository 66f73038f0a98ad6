"""Fixtures: an App on the Tornado ``Server`` for as long as a test runs (``serve``); the transport notebook
(``wire_notebook``) served by ``nbroutes serve`` and by uvicorn (``wire_server``); and the notebook with a route
per defect of issue 10 (``servers.HOSTILE_CELLS``) under ``nbroutes serve``, uvicorn and in a kernel (``hostile``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from nbroutes import App
from nbroutes.servers.tornado import Server
from tests.kernel.conftest import Kernel
from tests.support import Process

from .servers import ADAPTERS, hostile_notebook, serve_notebook, tornado_server, transport_notebook


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """``serve(app, **options)`` runs ``Server(app, port=0, **options)`` on a loop in a background thread, as in a
    kernel, and returns it (its ``port``); every one is stopped after the test.
    """
    with ExitStack() as stack:

        def start(app: App, **options: Any) -> Server:
            return stack.enter_context(tornado_server(app, **options))

        yield start


@pytest.fixture(scope="module")
def wire_notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The notebook of ``servers.TRANSPORT_CELLS``, in a folder of its own for the module."""
    return transport_notebook(tmp_path_factory.mktemp("wire"))


@pytest.fixture(scope="module", params=["serve", "uvicorn"])
def wire_server(request: pytest.FixtureRequest, wire_notebook: Path) -> Iterator[Process]:
    """``wire_notebook`` under ``nbroutes serve`` (the Tornado adapter) and under uvicorn (the ASGI adapter)."""
    with serve_notebook(request.param, wire_notebook) as process:
        yield process


@pytest.fixture(scope="session", params=ADAPTERS)
def hostile(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process | Kernel]:
    """``servers.HOSTILE_CELLS`` under ``nbroutes serve``, uvicorn and in a kernel: one of each for the session."""
    with serve_notebook(request.param, hostile_notebook(tmp_path_factory.mktemp("hostile"))) as served:
        yield served
