"""A handler's BaseException (sys.exit(), KeyboardInterrupt, GeneratorExit, its own CancelledError) is that
request's 500: the server answers the next request, under nbroutes' Tornado server, a real uvicorn and
``nbroutes serve``. (The same in a real kernel: tests/reliability/test_kernel_hardening.py.)

Every request has a client timeout: the defect was a hang as often as a dead server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Process, nbroutes_serve, raw_request

from .servers import notebook, tornado_server, uvicorn_app

#: The routes, as %%route cells: the notebook ``nbroutes serve`` and the kernel run, and (see APP_SOURCE) an App.
CELLS = {
    "/api/exit": "import sys\n\ndef GET(req):\n    sys.exit()",
    "/api/exit-code": "import sys\n\ndef GET(req):\n    sys.exit(3)",
    "/api/interrupt": "def GET(req):\n    raise KeyboardInterrupt",
    "/api/generator-exit": "def GET(req):\n    raise GeneratorExit",
    "/api/cancelled": "import asyncio\n\ndef GET(req):\n    raise asyncio.CancelledError",
    "/api/async-exit": "import asyncio, sys\n\nasync def GET(req):\n    await asyncio.sleep(0)\n    sys.exit()",
    "/api/async-interrupt": "import asyncio\n\nasync def GET(req):\n    await asyncio.sleep(0)\n"
    "    raise KeyboardInterrupt",
    "/api/async-cancelled": "import asyncio\n\nasync def GET(req):\n    await asyncio.sleep(0)\n"
    "    raise asyncio.CancelledError",
    "/api/async-generator-exit": "import asyncio\n\nasync def GET(req):\n    await asyncio.sleep(0)\n"
    "    raise GeneratorExit",
    "/api/ok": "def GET(req):\n    return {'ok': True}",
}

#: After the response started: the client sees the body cut short, and the server goes on.
STREAM_CELLS = {
    "/api/stream-exit": "import sys\n\ndef GET(req):\n    def chunks():\n        yield 'first\\n'\n"
    "        sys.exit()\n    return chunks()",
    "/api/stream-interrupt": "async def GET(req):\n    async def chunks():\n        yield 'first\\n'\n"
    "        raise KeyboardInterrupt\n    return chunks()",
    "/api/write-then-exit": "import asyncio, sys\n\nasync def GET(req, res):\n    res.write('first\\n')\n"
    "    await asyncio.sleep(0.01)\n    sys.exit()",
}

EXITS = [path for path in CELLS if path != "/api/ok"]
NAMES = {
    "/api/exit": "SystemExit",
    "/api/exit-code": "SystemExit: 3",
    "/api/interrupt": "KeyboardInterrupt",
    "/api/generator-exit": "GeneratorExit",
    "/api/cancelled": "CancelledError",
    "/api/async-exit": "SystemExit",
    "/api/async-interrupt": "KeyboardInterrupt",
    "/api/async-cancelled": "CancelledError",
    "/api/async-generator-exit": "GeneratorExit",
}


def app_source() -> str:
    """A module with ``app`` (and ``asgi``) serving CELLS and STREAM_CELLS, each cell run in its own namespace."""
    lines = ["import nbroutes.asgi", "from nbroutes import App", "", "app = App(debug=True)", "CELLS = {"]
    lines += [f"    {path!r}: {code!r}," for path, code in {**CELLS, **STREAM_CELLS}.items()]
    lines += [
        "}",
        "for path, code in CELLS.items():",
        "    namespace = {}",
        "    exec(code, namespace)",
        "    app.route(path)(namespace['GET'])",
        "asgi = nbroutes.asgi.app(app)",
    ]
    return "\n".join(lines) + "\n"


def make_app():
    namespace: dict[str, object] = {}
    exec(compile(app_source(), "appmod.py", "exec"), namespace)
    return namespace["app"]


def write_notebook(path: Path) -> Path:
    routes = [f"%%route {route}\n{code}" for route, code in {**CELLS, **STREAM_CELLS}.items()]
    return notebook(path, "%load_ext nbroutes", *routes)


@pytest.fixture(scope="module", params=["tornado", "uvicorn"])
def port(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if request.param == "tornado":
        with tornado_server(make_app()) as server:
            yield server.port
    else:
        with uvicorn_app(app_source(), tmp_path_factory.mktemp("uvicorn")) as process:
            yield process.port
            assert process.proc.poll() is None, "uvicorn died"


@pytest.mark.parametrize("path", EXITS)
def test_a_base_exception_is_that_requests_500_and_the_server_goes_on(port: int, path: str) -> None:
    answer = raw_request(port, "GET", path, timeout=5)
    assert answer.status == 500, answer
    body = answer.json()
    assert body["error"] == "Internal Server Error"
    assert body["detail"].startswith(NAMES[path]), body
    assert raw_request(port, "GET", "/api/ok", timeout=5).json() == {"ok": True}


@pytest.mark.parametrize("path", list(STREAM_CELLS))
def test_a_base_exception_mid_stream_cuts_the_body_and_the_server_goes_on(port: int, path: str) -> None:
    try:
        answer = raw_request(port, "GET", path, timeout=5, partial=True)
    except ConnectionError:
        pass  # cut before anything came: also an answer that ends
    else:
        assert answer.status == 200 and answer.body.startswith(b"first")
    assert raw_request(port, "GET", "/api/ok", timeout=5).json() == {"ok": True}


# -- nbroutes serve: a real process ---------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with nbroutes_serve(write_notebook(tmp_path_factory.mktemp("serve") / "exits.ipynb")) as process:
        yield process


@pytest.mark.parametrize("path", EXITS + list(STREAM_CELLS))
def test_nbroutes_serve_survives(served: Process, path: str) -> None:
    try:
        answer = raw_request(served.port, "GET", path, timeout=5, partial=True)
    except ConnectionError:
        assert path in STREAM_CELLS
    else:
        assert answer.status == (200 if path in STREAM_CELLS else 500), answer
    assert served.proc.poll() is None, f"nbroutes serve exited with {served.proc.returncode}:\n{served.output}"
    assert raw_request(served.port, "GET", "/api/ok", timeout=5).json() == {"ok": True}


def test_nbroutes_serve_logs_the_traceback(served: Process) -> None:
    assert raw_request(served.port, "GET", "/api/interrupt", timeout=5).status == 500
    served.wait_for("raise KeyboardInterrupt", timeout=5)  # printed by the server as it answered: read by a thread
    assert "Traceback (most recent call last)" in served.output


# -- the server's own cancellation still stops a request -------------------------------------------


def test_cancelling_the_request_task_still_cancels_it() -> None:
    # The client left, or the server is stopping: catching BaseException must not turn that into a 500.
    from nbroutes import App
    from nbroutes.core.requests import Request

    app = App(debug=True)  # the reason in the body, as the kernel shows it
    reached: list[str] = []

    async def slow_middleware(req, call_next):
        reached.append("middleware")
        return await call_next(req)

    app.use(slow_middleware, "/api/slow-mw")

    @app.route("/api/slow")
    async def slow(req):
        reached.append("handler")
        await asyncio.sleep(10)

    @app.route("/api/slow-mw")
    async def slow_mw(req):
        await asyncio.sleep(10)

    async def cancel(path: str) -> None:
        task = asyncio.ensure_future(app.dispatch(Request("GET", path)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def run() -> None:
        await cancel("/api/slow")
        await cancel("/api/slow-mw")

    asyncio.run(run())
    assert reached == ["handler", "middleware"]


def test_cancelling_a_stream_still_closes_it() -> None:
    from nbroutes.core.streaming import stream_response

    closed: list[bool] = []

    async def chunks():
        try:
            while True:
                await asyncio.sleep(0.001)  # the cancellation lands in here, inside the source
                yield "tick"
        finally:
            closed.append(True)

    async def run() -> None:
        stream = stream_response(chunks()).stream

        async def consume() -> None:
            async for _ in stream:
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await stream.aclose()

    asyncio.run(run())
    assert closed == [True]
