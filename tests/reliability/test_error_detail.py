"""A handler's exception text reaches the client only when asked for; its traceback always reaches the log.

In the kernel the detail helps the person writing the route, and stays on (tests/kernel/test_handlers.py).
A served notebook (``nbroutes serve``) and the ASGI app answer a crash with ``{"error": "Internal Server
Error"}`` alone, unless ``--debug`` or ``NBROUTES_DEBUG=1`` says otherwise; under uvicorn the traceback goes
to the ``nbroutes.application`` logger and so to uvicorn's stderr.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nbroutes import App
from tests.support import Process, nbroutes_serve, raw_request

from .servers import notebook, tornado_server, uvicorn_app, uvicorn_notebook

SECRET = "db password is hunter2"
PLAIN = {"error": "Internal Server Error"}
DETAIL = {"error": "Internal Server Error", "detail": f"RuntimeError: {SECRET}"}

BOOM_CELLS = (
    "%load_ext nbroutes",
    f"%%route /api/boom\ndef GET(req):\n    raise RuntimeError({SECRET!r})\n",
    "%%route GET /api/ok\nreturn {'ok': True}",
)

APP_MODULE = f"""
import nbroutes.asgi
from nbroutes import App

app = App()


@app.route("/api/boom")
def boom(req):
    raise RuntimeError({SECRET!r})


@app.route("/api/ok")
def ok(req):
    return {{"ok": True}}


asgi = nbroutes.asgi.app(app)
"""


def assert_traceback_logged(process: Process) -> None:
    process.wait_for(rf"RuntimeError: {SECRET}")
    output = process.output
    assert "Traceback (most recent call last)" in output, output
    assert "GET /api/boom raised RuntimeError" in output, output
    assert raw_request(process.port, "GET", "/api/ok").json() == {"ok": True}  # and the ordinary route answers


def test_an_app_sends_no_exception_text_unless_made_with_debug() -> None:
    for app, expected in ((App(), PLAIN), (App(debug=True), DETAIL)):

        @app.route("/api/boom")
        def boom(req):  # type: ignore[no-untyped-def]
            raise RuntimeError(SECRET)

        with tornado_server(app) as server:
            answer = raw_request(server.port, "GET", "/api/boom")
        assert answer.status == 500
        assert answer.json() == expected


def test_nbroutes_serve_sends_no_exception_text_and_prints_the_traceback(tmp_path: Path) -> None:
    path = notebook(tmp_path / "boom.ipynb", *BOOM_CELLS)
    with nbroutes_serve(path) as served:
        answer = raw_request(served.port, "GET", "/api/boom")
        assert answer.status == 500
        assert answer.json() == PLAIN
        assert "hunter2" not in answer.text
        assert_traceback_logged(served)


@pytest.mark.parametrize("switch", [("--debug",), ()], ids=["--debug", "NBROUTES_DEBUG=1"])
def test_nbroutes_serve_sends_the_detail_when_asked(tmp_path: Path, switch: tuple[str, ...]) -> None:
    path = notebook(tmp_path / "boom.ipynb", *BOOM_CELLS)
    with nbroutes_serve(path, *switch, env=None if switch else {"NBROUTES_DEBUG": "1"}) as served:
        assert raw_request(served.port, "GET", "/api/boom").json() == DETAIL


def test_a_notebook_under_uvicorn_sends_no_exception_text_and_logs_the_traceback(tmp_path: Path) -> None:
    path = notebook(tmp_path / "boom.ipynb", *BOOM_CELLS)
    with uvicorn_notebook(path) as served:
        answer = raw_request(served.port, "GET", "/api/boom")
        assert answer.status == 500
        assert answer.json() == PLAIN
        assert_traceback_logged(served)
    with uvicorn_notebook(path, env={"NBROUTES_DEBUG": "1"}) as served:
        assert raw_request(served.port, "GET", "/api/boom").json() == DETAIL


def test_an_app_under_uvicorn_sends_no_exception_text_and_logs_the_traceback(tmp_path: Path) -> None:
    with uvicorn_app(APP_MODULE, tmp_path) as served:
        answer = raw_request(served.port, "GET", "/api/boom")
        assert answer.status == 500
        assert answer.json() == PLAIN
        assert_traceback_logged(served)
