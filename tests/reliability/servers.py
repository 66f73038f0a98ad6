"""The servers the reliability tests attack, and what they serve.

nbroutes' Tornado ``Server`` in-process on a loop in a background thread (as in a kernel), ``nbroutes serve`` and
uvicorn on a notebook or on an App's module source (as real processes: tests/support.py starts them), the
notebooks themselves, and a route console that remembers its errors as a route's cell output does. The requests
are tests/support.py's: ``raw_request``, or ``connect`` / ``request_head`` / ``read_response`` for a conversation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbroutes.core.app import App
from nbroutes.core.handlers import Endpoint
from nbroutes.core.output import Console
from nbroutes.servers.tornado import Server
from tests.kernel.conftest import Kernel
from tests.support import Process, background_loop, nbroutes_serve, on_loop, uvicorn

#: What ``serve_notebook`` serves a notebook with: the Tornado adapter in a process of its own, the ASGI adapter,
#: and a real Jupyter kernel (the Tornado adapter on the kernel's loop, beside the user's cells).
ADAPTERS = ["serve", "uvicorn", pytest.param("kernel", marks=pytest.mark.kernel)]

# -- in-process ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def tornado_server(app: App, **options: Any) -> Iterator[Server]:
    """``Server(app, port=0, **options)`` started on a loop in a background thread; stopped afterwards.

    Fails if the loop died while it served (a handler's BaseException once took it down).
    """
    with background_loop() as loop:
        server = Server(app, port=0, **options)
        on_loop(loop, server.start)
        try:
            yield server
            assert loop.is_running(), "the server's event loop died"
        finally:
            if loop.is_running():
                on_loop(loop, server.stop)


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


# -- notebooks, and the processes that serve them -----------------------------------------------------------


def notebook(path: Path, *sources: str) -> Path:
    """A notebook at ``path`` of the given code cells."""
    nbformat.write(new_notebook(cells=[new_code_cell(source) for source in sources]), path)
    return path


@contextlib.contextmanager
def uvicorn_notebook(path: Path, *options: str, env: dict[str, str] | None = None, **limits: Any) -> Iterator[Process]:
    """uvicorn serving the notebook at ``path`` through ``nbroutes.asgi:from_env``, run in its directory."""
    env = {"NBROUTES_NOTEBOOK": path.name, **(env or {})}
    with uvicorn("nbroutes.asgi:from_env", path.parent, "--factory", *options, env=env, **limits) as process:
        yield process


@contextlib.contextmanager
def uvicorn_app(source: str, directory: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[Process]:
    """uvicorn serving ``appmod:asgi`` from a module ``appmod.py`` of ``source``, written into ``directory``."""
    (directory / "appmod.py").write_text(source)
    with uvicorn("appmod:asgi", directory, *options, env=env, path=[directory]) as process:
        yield process


@contextlib.contextmanager
def notebook_in_kernel(path: Path) -> Iterator[Kernel]:
    """A real Jupyter kernel that ran the notebook's code cells in order, in its directory; shut down afterwards."""
    kernel = Kernel(path.parent / f"{path.stem}-kernel.log")
    try:
        kernel.ok(f"__import__('os').chdir({str(path.parent)!r})")  # as Jupyter starts it: in the notebook's folder
        for number, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code":
                kernel.ok(cell.source, {"cellId": f"cell-{number}"})
        yield kernel
    finally:
        kernel.shutdown()


@contextlib.contextmanager
def serve_notebook(adapter: str, path: Path, *options: str, **settings: Any) -> Iterator[Process | Kernel]:
    """The notebook at ``path`` under ``nbroutes serve`` (``adapter`` "serve"), uvicorn ("uvicorn") or in a kernel
    ("kernel", which takes no ``options``); what it yields has the ``port`` it serves on.
    """
    if adapter == "kernel":
        assert not options and not settings, "a kernel takes no server options"
        with notebook_in_kernel(path) as kernel:
            yield kernel
        return
    start = {"serve": nbroutes_serve, "uvicorn": uvicorn_notebook}[adapter]
    with start(path, *options, **settings) as process:
        yield process


#: The routes the transport tests share (timeouts, limits, streamed bodies), as notebook cells.
TRANSPORT_CELLS = [
    "%load_ext nbroutes",
    '%%route GET /api/hello\nreturn {"hello": "world"}',
    '%%route POST /api/small --body-limit 1kb\nreturn {"size": len(req.raw_body)}',
    "%%route POST /api/upload --body-limit false\n"
    "async def POST(req):\n"
    "    size = chunks = 0\n"
    "    async for chunk in req.stream():\n"
    "        size += len(chunk)\n"
    "        chunks += 1\n"
    '    return {"size": size, "chunks": chunks}',
    '%%route POST /api/ignore --body-limit false\nreturn {"ignored": True}',
    '%%route POST /api/parsed --body-limit false\nreturn {"body": req.body}',
    "%%route GET /api/flood\n"
    "def GET(req):\n"
    "    def chunks():\n"
    '        block = "x" * 65536\n'
    "        try:\n"
    "            while True:\n"
    "                yield block\n"
    "        finally:\n"
    '            with open("closed.txt", "a") as f:\n'
    '                f.write("flood closed\\n")\n'
    "    return chunks()",
]


def transport_notebook(directory: Path) -> Path:
    """The notebook of ``TRANSPORT_CELLS`` in ``directory`` (where the flood route writes ``closed.txt``)."""
    return notebook(directory / "wire.ipynb", *TRANSPORT_CELLS)


#: The token of the admin route in ``HOSTILE_CELLS``.
HOSTILE_TOKEN = "hostile-s3cret"

#: One route or more per defect of issue 10 that each adapter must get right, and ``/api/ok`` beside them:
#: served the same way by ``nbroutes serve``, uvicorn and a kernel (the ``hostile`` fixture).
HOSTILE_CELLS = [
    "%load_ext nbroutes",
    "%%route GET /api/ok\nreturn {'ok': True}",
    # 4: a token-protected route, and the OpenAPI document that lists it
    f"import os\nimport nbroutes\n\nos.environ['HOSTILE_TOKEN'] = {HOSTILE_TOKEN!r}",
    "nbroutes.middleware(nbroutes.require_token('HOSTILE_TOKEN'), matcher='/api/admin/:path*')",
    "%%route GET /api/admin/stats\nreturn {'admin': True}",
    # 5: cookies
    "%%route /api/cookie-injected\ndef GET(req, res):\n    res.set_cookie('c', 'ok', path='/; Domain=evil.com')\n"
    "    return {'set': True}",
    "%%route /api/cookie-good\ndef GET(req, res):\n"
    "    res.set_cookie('c', 'a; b', path='/api', domain='localhost', httponly=True)\n    return {'set': True}",
    # 7: forms
    "%%route /api/form\ndef POST(req):\n"
    "    return {'fields': sum(len(v) if isinstance(v, list) else 1 for v in req.body.values())}",
    "%%route GET /api/ping\nreturn 'pong'",
    # 12: hostile JSON, as quickstart's /api/items keeps it; a typed route; values only JavaScript would send
    "items = []",
    "%%route /api/items\ndef GET(req):\n    return items\n\n"
    "def POST(req):\n    items.append(req.body)\n    return {'count': len(items)}, 201",
    "from pydantic import BaseModel\n\n\nclass Item(BaseModel):\n    t: int",
    "%%route /api/typed\ndef POST(req, body: Item) -> Item:\n    return body",
    "%%route GET /api/held\nreturn {'name': 'a\\udcffb', 'mean': float('nan')}",
    # 13: crud over SQLite
    "class Todo(BaseModel):\n    title: str\n    done: bool = False\n    count: int = 0\n\n\n"
    "db = nbroutes.db('hostile.db')",
    "nbroutes.crud('/api/todos', db['todos'], model=Todo)",
    # 14: any status a handler gives
    "%%route /api/status/[code]\ndef GET(req):\n    return {'a': 1}, int(req.params['code'])",
]


def hostile_notebook(directory: Path) -> Path:
    """The notebook of ``HOSTILE_CELLS`` in ``directory`` (where crud keeps ``hostile.db``)."""
    return notebook(directory / "hostile.ipynb", *HOSTILE_CELLS)
