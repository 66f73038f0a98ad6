"""The nbroutes command: real processes on real sockets (serve, --reload, --workers), routes and openapi."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nbroutes.cli import build_parser, main
from nbroutes.core.app import App
from nbroutes.servers.tornado import Server
from tests.support import nbroutes_serve

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
ROOT = Path(__file__).parent.parent
README_SERVE = ROOT / "docs" / "serve.md"


def write(path: Path, *sources: str | tuple[str, list[str]]) -> Path:
    """A notebook of code cells (a (source, tags) pair is a tagged one), with a markdown cell first."""
    cells = [new_markdown_cell("# A test notebook")]
    for source in sources:
        if isinstance(source, tuple):
            cells.append(new_code_cell(source[0], metadata={"tags": source[1]}))
        else:
            cells.append(new_code_cell(source))
    nbformat.write(new_notebook(cells=cells), path)
    return path


def request(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        data = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        kind = response.getheader("Content-Type", "")
        return response.status, dict(response.getheaders()), json.loads(raw) if "json" in kind else raw.decode()
    finally:
        connection.close()


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copy(NOTEBOOKS / name, tmp_path / name))


@pytest.mark.subprocess
def test_serve_quickstart_answers_as_the_kernel_does(tmp_path: Path) -> None:
    with nbroutes_serve(copy("quickstart.ipynb", tmp_path)) as served:
        assert request(served.port, "GET", "/api/users/42")[::2] == (200, {"id": "42", "name": "Ada"})
        assert request(served.port, "GET", "/api/greet?name=Grace")[2] == {"message": "Hello, Grace!"}
        assert request(served.port, "GET", "/api/docs/intro/setup")[2] == {"slug": ["intro", "setup"]}
        status, _, body = request(served.port, "GET", "/api/status")  # the route: cell tag
        assert status == 200 and body["ok"] is True
        # The notebook's own cell posted one item while it ran, as it does in Jupyter.
        assert request(served.port, "POST", "/api/items", {"title": "x"})[::2] == (
            201,
            {"added": {"title": "x"}, "count": 2},
        )
        served.wait_for(r"^\d\d:\d\d:\d\d POST /api/items 201 \d+\.\dms$")
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(15) == 0
        served.wait_for("nbroutes: stopped")
    assert "Traceback" not in served.output  # the notebook's own 500 demo is its cell output, not a log line


@pytest.mark.subprocess
def test_serve_todo_api_on_sqlite(tmp_path: Path) -> None:
    with nbroutes_serve(copy("todo-api.ipynb", tmp_path), "--no-access-log") as served:
        status, headers, body = request(served.port, "POST", "/api/todos", {"title": "Ship serve"})
        assert status == 201 and body["title"] == "Ship serve" and body["done"] is False
        assert headers["Location"] == f"/api/todos/{body['id']}"
        assert request(served.port, "GET", "/api/todos/stats")[::2] == (200, {"total": 3, "done": 1, "open": 2})
        assert request(served.port, "GET", f"/api/todos/{body['id']}")[2] == body
        served.proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert served.proc.wait(15) == 0
    assert (tmp_path / "todo.db").exists()  # next to the notebook, not in the working directory
    assert " GET /api/todos/stats " not in served.output


@pytest.mark.subprocess
def test_a_broken_notebook_exits_1_naming_the_cell(tmp_path: Path) -> None:
    notebook = write(
        tmp_path / "broken.ipynb", "%load_ext nbroutes", "%%route /api/ok\n'ok'", "settings = {}\nsettings['missing']"
    )
    with nbroutes_serve(notebook, ready=False) as served:
        assert served.proc.wait(15) == 1
        served.wait_for(r"code cell 3 \(notebook cell 4\) failed: settings = \{\}")
        served.wait_for("KeyError: 'missing'")
        assert "serving" not in served.output


def test_routes_lists_methods_pattern_and_cell_and_honours_the_skip_tag(tmp_path: Path, capsys: Any) -> None:
    notebook = write(
        tmp_path / "api.ipynb",
        "%load_ext nbroutes",
        "%%route /api/users/[id]\ndef GET(req):\n    return {}",
        ("raise SystemExit('a skipped cell ran')", ["nbroutes:skip"]),
        ("%%route /api/skipped\n'no'", ["nbroutes:skip"]),
        ("'tagged'", ["route:POST:/api/tagged"]),
        "import nbroutes\nnbroutes.middleware(nbroutes.cors(['http://localhost:3000']))",
    )
    assert main(["routes", str(notebook)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["METHODS", "PATTERN", "CELL"]
    rows = sorted(line.split(None, 2) for line in lines[1:])
    assert rows == [
        ["GET,HEAD", "/api/users/[id]", "code cell 2 (notebook cell 3)"],
        ["MIDDLEWARE", "*", "cors_middleware in code cell 6 (notebook cell 7)"],
        ["POST", "/api/tagged", "code cell 5 (notebook cell 6)"],
    ]


@pytest.mark.subprocess
def test_openapi_prints_the_document(tmp_path: Path) -> None:
    notebook = copy("todo-api.ipynb", tmp_path)
    compact = subprocess.run(
        [sys.executable, "-m", "nbroutes", "openapi", str(notebook)], capture_output=True, text=True, timeout=20
    )
    assert compact.returncode == 0, compact.stderr
    document = json.loads(compact.stdout)
    assert document["openapi"].startswith("3.1") and document["info"]["title"] == "todo-api"
    assert {"/api/todos", "/api/todos/{id}", "/api/todos/stats"} <= set(document["paths"])
    assert "201" in document["paths"]["/api/todos"]["post"]["responses"]
    assert compact.stdout.count("\n") == 1
    pretty = subprocess.run(
        [sys.executable, "-m", "nbroutes", "openapi", str(notebook), "--indent"], capture_output=True, text=True
    )
    assert json.loads(pretty.stdout) == document and '\n  "paths": {' in pretty.stdout


@pytest.mark.subprocess
def test_serve_serves_the_document_openapi_prints(tmp_path: Path) -> None:
    notebook = copy("todo-api.ipynb", tmp_path)
    printed = subprocess.run(
        [sys.executable, "-m", "nbroutes", "openapi", str(notebook)], capture_output=True, text=True, timeout=20
    )
    assert printed.returncode == 0, printed.stderr
    with nbroutes_serve(notebook) as served:
        status, _, document = request(served.port, "GET", "/_nbroutes/openapi.json")
        assert status == 200
        assert document == json.loads(printed.stdout)
        assert document["info"]["title"] == "todo-api"
        status, _, page = request(served.port, "GET", "/_nbroutes/docs")
        assert status == 200 and "<title>todo-api: API docs</title>" in page


DOCS_PATHS = ("/_nbroutes/openapi.json", "/_nbroutes/docs", "/_nbroutes/docs/swagger-ui.css")


@pytest.mark.subprocess
def test_serve_no_docs_answers_404_under_the_prefix_and_keeps_it_after_a_reload(tmp_path: Path) -> None:
    notebook = write(tmp_path / "api.ipynb", "%load_ext nbroutes", "%%route /api/version\n{'version': 1}")
    with nbroutes_serve(notebook, "--no-docs", "--reload") as served:
        assert request(served.port, "GET", "/api/version")[2] == {"version": 1}
        for path in DOCS_PATHS:
            assert request(served.port, "GET", path)[::2] == (
                404,
                {"error": "Not Found", "detail": f"No route matches {path}"},
            ), path
        served.wait_for("watching api.ipynb")
        time.sleep(0.5)  # the file watcher starts in a thread of its own just after
        write(notebook, "%load_ext nbroutes", "%%route /api/version\n{'version': 2}")
        served.wait_for(r"reloaded api\.ipynb")
        assert request(served.port, "GET", "/api/version")[2] == {"version": 2}
        for path in DOCS_PATHS:
            assert request(served.port, "GET", path)[0] == 404, path


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["serve"],
        ["frobnicate", "x.ipynb"],
        ["serve", "missing.ipynb"],
        ["serve", "notebooks/quickstart.ipynb", "--workers", "0"],
        ["serve", "notebooks/quickstart.ipynb", "--workers", "2", "--reload"],
        ["serve", "notebooks/quickstart.ipynb", "--port", "eighty"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_help_exits_0(capsys: Any) -> None:
    assert main(["serve", "--help"]) == 0
    assert "--workers" in capsys.readouterr().out


@pytest.mark.subprocess
def test_a_taken_port_exits_1(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        notebook = write(tmp_path / "api.ipynb", "%load_ext nbroutes")
        done = subprocess.run(
            [sys.executable, "-m", "nbroutes", "serve", str(notebook), "--port", port],
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_every_command_and_option_is_documented() -> None:
    text = README_SERVE.read_text()
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, sub in commands.items():
        assert f"nbroutes {name}" in text, name
        for option in re.findall(r"(--[a-z][a-z-]+)", sub.format_help()):
            assert option == "--help" or option in text, f"{name} {option}"


@pytest.mark.subprocess
def test_reload_swaps_the_routes_and_keeps_them_when_the_new_version_fails(tmp_path: Path) -> None:
    notebook = write(tmp_path / "api.ipynb", "%load_ext nbroutes", "%%route /api/version\n{'version': 1}")
    with nbroutes_serve(notebook, "--reload") as served:
        assert request(served.port, "GET", "/api/version")[2] == {"version": 1}
        served.wait_for("watching api.ipynb")
        time.sleep(0.5)  # the file watcher starts in a thread of its own just after
        write(notebook, "%load_ext nbroutes", "%%route /api/version\n{'version': 2}", "%%route /api/new\n'new'")
        served.wait_for(r"reloaded api\.ipynb \(2 routes")
        assert request(served.port, "GET", "/api/version")[2] == {"version": 2}
        assert request(served.port, "GET", "/api/new")[2] == "new"
        write(notebook, "%load_ext nbroutes", "%%route /api/version\n{'version': 3}", "1 / 0")
        served.wait_for(r"code cell 3 \(notebook cell 4\) failed: 1 / 0")
        served.wait_for("ZeroDivisionError")
        served.wait_for("the previous version keeps serving")
        assert request(served.port, "GET", "/api/version")[2] == {"version": 2}
        write(notebook, "%load_ext nbroutes", "%%route /api/version\n{'version': 4}")
        served.wait_for(r"reloaded api\.ipynb \(1 route from")
        assert request(served.port, "GET", "/api/new")[0] == 404  # a fresh run keeps no old route
        assert request(served.port, "GET", "/api/version")[2] == {"version": 4}


WORKER_NOTEBOOK = (
    "%load_ext nbroutes",
    "import asyncio, os, time",
    "%%route /api/pid\ntime.sleep(0.3)  # holds this worker, so the next connection goes to another\nos.getpid()",
    "%%route /api/slow\nasync def GET(req):\n    await asyncio.sleep(2)\n    return {'pid': os.getpid()}",
)


@pytest.mark.subprocess
def test_workers_share_the_port_and_drain_on_sigterm(tmp_path: Path) -> None:
    notebook = write(tmp_path / "api.ipynb", *WORKER_NOTEBOOK)
    with nbroutes_serve(notebook, "--workers", "2") as served:
        found = served.wait_for(r"with 2 workers \((\d+), (\d+)\)")
        workers = {int(found.group(1)), int(found.group(2))}
        answers: list[int] = []

        def ask() -> None:
            answers.append(request(served.port, "GET", "/api/pid")[2])

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        for thread in threads:
            thread.join(15)
        assert len(answers) == 6 and set(answers) == workers

        lost = min(workers)
        os.kill(lost, signal.SIGKILL)
        served.wait_for(rf"worker {lost} exited \(-9\); starting another")
        known = "|".join(f"{pid}\\]" for pid in workers)
        replacement = int(served.wait_for(rf"^\[(?!{known})(\d+)\] nbroutes: worker ready").group(1))
        workers = workers - {lost} | {replacement}

        slow: list[Any] = []
        thread = threading.Thread(target=lambda: slow.append(request(served.port, "GET", "/api/slow")))
        thread.start()
        time.sleep(0.5)  # the request is in flight
        served.proc.send_signal(signal.SIGTERM)
        thread.join(15)
        assert slow and slow[0][0] == 200 and slow[0][2]["pid"] in workers
        assert served.proc.wait(15) == 0
        for pid in workers:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        served.wait_for(r"finishing 1 request")


def test_server_drain_finishes_requests_in_flight_and_stops_listening() -> None:
    app = App()

    @app.route("/slow")
    async def slow(req, res):  # type: ignore[no-untyped-def]  # untyped: annotations would make it a typed handler
        await asyncio.sleep(0.3)
        return "done"

    async def scenario() -> tuple[int, str, bool]:
        server = Server(app, "127.0.0.1", 0)
        port = server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        in_flight = server.in_flight
        finished = await server.drain(5)
        answer = (await reader.read()).decode()
        writer.close()
        await writer.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        return in_flight, answer, finished

    in_flight, answer, finished = asyncio.run(scenario())
    assert in_flight == 1 and finished
    assert answer.startswith("HTTP/1.1 200") and answer.endswith("done")


def test_server_swap_app_serves_the_new_app_from_the_next_request() -> None:
    first, second = App(), App()
    first.route("/v")(lambda req, res: "one")
    second.route("/v")(lambda req, res: "two")

    async def scenario() -> list[str]:
        server = Server(first, "127.0.0.1", 0)
        port = server.start()
        bodies = []
        for swap in (None, second):
            if swap is not None:
                server.swap_app(swap)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /v HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            bodies.append((await reader.read()).decode().rsplit("\r\n", 1)[-1])
            writer.close()
            await writer.wait_closed()
        server.stop()
        return bodies

    assert asyncio.run(scenario()) == ["one", "two"]
