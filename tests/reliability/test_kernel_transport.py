"""In a real kernel: cells still run with more idle connections than descriptors, an oversized body is a 413
from its headers, and a ``--body-limit false`` upload is streamed, not held in the kernel's memory.

The server shares the kernel's process, so its file descriptors are the kernel's: a flood of connections
that used them all would stop the kernel's own sockets too.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.conftest import Kernel
from tests.support import connect, read_response, request_head

from .servers import TRANSPORT_CELLS


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    started = Kernel(tmp_path_factory.mktemp("kernel") / "kernel.log")
    try:
        started.ok(
            "import resource\n"
            "_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, _hard))"
        )
        started.ok("%load_ext nbroutes")
        started.ok('%%route GET /api/hello\nreturn {"hello": "world"}')
        started.ok('%%route POST /api/small --body-limit 1kb\nreturn {"size": len(req.raw_body)}')
        started.ok(TRANSPORT_CELLS[3])  # POST /api/upload --body-limit false: counts what req.stream() gives
        yield started
    finally:
        started.shutdown()


def test_a_cell_runs_while_more_connections_than_descriptors_are_open(kernel: Kernel) -> None:
    socks = []
    try:
        for _ in range(400):
            try:
                socks.append(socket.create_connection(("127.0.0.1", kernel.port), timeout=2))
            except OSError:
                pass
        time.sleep(0.5)
        start = time.monotonic()
        result = kernel.execute("6 * 7", timeout=10)
        assert result.status == "ok"
        assert time.monotonic() - start < 3
        with connect(kernel.port, timeout=3) as sock:
            sock.sendall(request_head("GET", "/api/hello"))
            assert read_response(sock, timeout=3).status in (200, 503)
    finally:
        for sock in socks:
            sock.close()
    kernel.drain(1)
    assert len(kernel.log_text()) < 4000, kernel.log_text()[-2000:]
    notebook_text = "".join(str(m["content"].get("text", "")) for m in kernel.iopub if m["msg_type"] == "stream")
    assert notebook_text.count("connections") <= 1, notebook_text[-2000:]


def test_an_oversized_body_is_413_from_its_headers_without_100_continue(kernel: Kernel) -> None:
    with connect(kernel.port) as sock:
        headers = {"Content-Length": str(50 * 1024**2), "Expect": "100-continue"}
        sock.sendall(request_head("POST", "/api/small", headers))
        answer = read_response(sock, timeout=3)
        assert (answer.status, answer.interim) == (413, [])


def test_a_300mb_upload_to_a_streamed_route_is_not_held_in_the_kernel(kernel: Kernel) -> None:
    # The kernel holds the user's data: a buffered upload would take its memory (four 400 MB ones held 1.75 GB).
    status = Path(f"/proc/{int(kernel.ok('import os; print(os.getpid())').stdout)}/status")

    def peak() -> int:
        return int(re.search(r"VmHWM:\s+(\d+) kB", status.read_text()).group(1)) * 1024  # type: ignore[union-attr]

    before, size, block = peak(), 300 * 1024**2, b"x" * 1024**2
    with connect(kernel.port, timeout=60) as sock:
        sock.sendall(request_head("POST", "/api/upload", {"Content-Length": str(size)}))
        for _ in range(size // len(block)):
            sock.sendall(block)
        answer = read_response(sock, timeout=60)
    assert (answer.status, answer.json()["size"]) == (200, size)
    grown = peak() - before
    assert grown < 40 * 1024**2, f"the kernel's peak memory grew by {grown / 1024**2:.0f} MB for the upload"
    assert kernel.ok("print(6 * 7)").stdout == "42\n"  # and it still runs cells
