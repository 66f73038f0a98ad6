"""In a real Jupyter kernel: no request takes the kernel down (its variables survive a handler's sys.exit()),
and no spelling of a path gets past the middleware of the shipped validation notebook.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.kernel.conftest import Kernel
from tests.support import raw_request

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "validation-and-middleware.ipynb"

ROUTES = {
    "/api/k-exit": ("import sys\n\ndef GET(req):\n    sys.exit()", "SystemExit"),
    "/api/k-exit-code": ("import sys\n\ndef GET(req):\n    sys.exit(3)", "SystemExit: 3"),
    "/api/k-interrupt": ("def GET(req):\n    raise KeyboardInterrupt", "KeyboardInterrupt"),
    "/api/k-generator-exit": ("def GET(req):\n    raise GeneratorExit", "GeneratorExit"),
    "/api/k-async-exit": (
        "import asyncio, sys\n\nasync def GET(req):\n    await asyncio.sleep(0)\n    sys.exit()",
        "SystemExit",
    ),
    "/api/k-async-interrupt": (
        "import asyncio\n\nasync def GET(req):\n    await asyncio.sleep(0)\n    raise KeyboardInterrupt",
        "KeyboardInterrupt",
    ),
    "/api/k-async-cancelled": (
        "import asyncio\n\nasync def GET(req):\n    await asyncio.sleep(0)\n    raise asyncio.CancelledError",
        "CancelledError",
    ),
}


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """A kernel with nbroutes loaded, state worth keeping, the routes above and one that answers."""
    k = Kernel(tmp_path_factory.mktemp("kernel") / "kernel.log")
    try:
        assert k.execute("%load_ext nbroutes").status == "ok"
        k.ok("state = {'rows': [1, 2, 3]}")
        k.ok("%%route /api/k-ok\ndef GET(req):\n    return {'rows': len(state['rows'])}", {"cellId": "k-ok"})
        yield k
    finally:
        k.shutdown()


def alive(kernel: Kernel) -> None:
    """The kernel runs a cell that still sees its variables, and its server answers."""
    assert kernel.ok("print(sum(state['rows']))").stdout == "6\n"
    assert raw_request(kernel.port, "GET", "/api/k-ok", timeout=5).json() == {"rows": 3}


@pytest.mark.parametrize("path", list(ROUTES))
def test_a_handler_base_exception_is_a_500_and_the_kernel_keeps_its_state(kernel: Kernel, path: str) -> None:
    code, name = ROUTES[path]
    cell = kernel.ok(f"%%route {path}\n{code}", {"cellId": path})
    answer = raw_request(kernel.port, "GET", path, timeout=5)
    assert answer.status == 500, answer
    assert answer.json()["detail"].startswith(name)
    text = kernel.wait_for_card(cell.card, name.split(":")[0])  # the traceback under the route's own cell
    assert "Traceback (most recent call last)" in text
    alive(kernel)


def test_a_stream_that_calls_sys_exit_midway_is_cut_and_the_kernel_goes_on(kernel: Kernel) -> None:
    kernel.ok(
        "%%route /api/k-stream-exit\nimport sys\n\ndef GET(req):\n    def chunks():\n        yield 'first\\n'\n"
        "        sys.exit()\n    return chunks()",
        {"cellId": "k-stream-exit"},
    )
    try:
        answer = raw_request(kernel.port, "GET", "/api/k-stream-exit", timeout=5, partial=True)
    except ConnectionError:
        pass
    else:
        assert answer.status == 200 and answer.body.startswith(b"first")
    alive(kernel)


def test_a_cell_that_calls_sys_exit_does_not_kill_the_kernel(kernel: Kernel) -> None:
    result = kernel.execute("import sys\nsys.exit('bye')")
    assert "SystemExit" in result.error_text
    alive(kernel)
    result = kernel.execute("%%route /api/k-exits-when-defined\nimport sys\nsys.exit()\n\ndef GET(req):\n    return 1")
    assert "SystemExit" in result.error_text
    alive(kernel)


# -- the shipped validation notebook: its admin middleware ----------------------------------------


@pytest.fixture(scope="module")
def notebook_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """A kernel that ran every code cell of notebooks/validation-and-middleware.ipynb, in order."""
    k = Kernel(tmp_path_factory.mktemp("kernel") / "kernel.log")
    try:
        for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
            if cell.cell_type == "code":
                result = k.execute(cell.source, {"cellId": cell.id})
                assert result.status == "ok", f"cell failed: {cell.source!r}\n{result.error_text}"
                served = re.search(r"nbroutes: serving on http://127\.0\.0\.1:(\d+)", result.stdout)
                if served:
                    k.port = int(served.group(1))
        yield k
    finally:
        k.shutdown()


@pytest.mark.parametrize(
    "target, status",
    [
        ("/api/admin/stats", 401),
        ("/api/%61dmin/stats", 401),
        ("/%61pi/admin/stats", 401),
        ("/api/admin/%73tats", 401),
        ("api/admin/stats", 400),
        ("/api/posts/../admin/stats", 401),  # undecodable for routing (a 400), so the middleware runs: fail closed
    ],
)
def test_the_admin_middleware_sees_every_spelling(notebook_kernel: Kernel, target: str, status: int) -> None:
    answer = raw_request(notebook_kernel.port, "GET", target)
    assert answer.status == status, answer
    assert b'"posts"' not in answer.body


def test_the_admin_route_answers_an_admin_however_spelled(notebook_kernel: Kernel) -> None:
    for target in ("/api/admin/stats", "/api/%61dmin/stats"):
        answer = raw_request(notebook_kernel.port, "GET", target, headers={"X-User": "admin"})
        assert answer.status == 200 and answer.headers["x-checked"] == "yes", answer
