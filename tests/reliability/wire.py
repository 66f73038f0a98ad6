"""Real servers and raw-socket clients for the transport tests: ``nbroutes serve`` and uvicorn on one notebook.

HTTP client libraries hide what these tests are about (a header sent a byte at a time, a body one byte
short, a client that stops reading, a ``100 Continue``), so the clients here are plain sockets.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).parent.parent.parent
HOST = "127.0.0.1"

#: The routes every transport test uses, as notebook cells (served by ``nbroutes serve`` and by uvicorn).
CELLS = [
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


def write_notebook(directory: Path) -> Path:
    """The notebook of ``CELLS`` in ``directory``."""
    path = directory / "wire.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(source) for source in CELLS]), path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Process:
    """A server in a subprocess: its port, its pid, and everything it printed (read by threads, kept in order)."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None, nofile: int | None = None):
        def lower_limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))  # type: ignore[arg-type]

        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=lower_limit if nofile else None,  # noqa: PLW1509 - only a setrlimit, before exec
        )
        self.output = bytearray()
        self.port = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(65536):  # type: ignore[attr-defined]
            self.output += chunk

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := re.search(pattern, self.text):
                return found
            if self.proc.poll() is not None:
                time.sleep(0.2)
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the server's output:\n{self.text}")

    def peak_memory(self) -> int:
        """The process's peak resident memory so far, in bytes (Linux's VmHWM)."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def nbroutes_serve(notebook: Path, *options: str, nofile: int | None = None) -> Iterator[Process]:
    """``nbroutes serve notebook --port 0 options``, RLIMIT_NOFILE lowered to ``nofile``; waits until it listens."""
    process = Process(
        ["-m", "nbroutes", "serve", str(notebook), "--port", "0", "--no-access-log", *options],
        notebook.parent,
        nofile=nofile,
    )
    try:
        process.port = int(process.wait_for(r"serving \S+ on http://127\.0\.0\.1:(\d+)").group(1))
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def uvicorn(notebook: Path, *options: str, nofile: int | None = None) -> Iterator[Process]:
    """uvicorn serving ``notebook`` through ``nbroutes.asgi:from_env``; waits until it listens."""
    port = free_port()
    process = Process(
        ["-m", "uvicorn", "nbroutes.asgi:from_env", "--factory", "--port", str(port), "--log-level", "warning"]
        + list(options),
        notebook.parent,
        env={"NBROUTES_NOTEBOOK": notebook.name},
        nofile=nofile,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                break
            except OSError:
                if process.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"uvicorn did not start:\n{process.text}") from None
                time.sleep(0.05)
        process.port = port
        yield process
    finally:
        process.stop()


# -- raw-socket clients ----------------------------------------------------------------------------


def connect(port: int, timeout: float = 5) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    """A request head as a client sends it (``Host`` first)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Answer:
    """A response read off a raw socket: its status line, headers (lower-cased names) and body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes, interim: list[int]) -> None:
        self.status, self.headers, self.body = status, headers, body
        #: The 1xx statuses that came first (a ``100 Continue``).
        self.interim = interim

    def __repr__(self) -> str:
        return f"<Answer {self.status} {self.headers} {self.body[:80]!r} after {self.interim}>"


def read_answer(sock: socket.socket, timeout: float = 5) -> Answer:
    """The next response on ``sock`` (a Content-Length body, or a chunked one, or one up to the close).

    Raises TimeoutError if it is not all there within ``timeout``, ConnectionError if the server closed first.
    """
    sock.settimeout(timeout)
    buffer = b""
    interim: list[int] = []
    while True:
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"the server closed the connection; got {buffer!r}")
            buffer += data
        raw, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        if 100 <= status < 200:
            interim.append(status)
            continue
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        break
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(buffer) < size:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection mid-body")
            buffer += data
        return Answer(status, headers, buffer[:size], interim)
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in buffer:
                buffer += sock.recv(65536)
            size_line, _, buffer = buffer.partition(b"\r\n")
            size = int(size_line, 16)
            while len(buffer) < size + 2:
                buffer += sock.recv(65536)
            body, buffer = body + buffer[:size], buffer[size + 2 :]
            if size == 0:
                return Answer(status, headers, body, interim)
    while data := sock.recv(65536):
        buffer += data
    return Answer(status, headers, buffer, interim)


def seconds_until_closed(sock: socket.socket, limit: float) -> float:
    """How long until the server closes ``sock`` (reading and dropping what it sends meanwhile).

    Raises AssertionError if it is still open after ``limit`` seconds.
    """
    start = time.monotonic()
    while True:
        remaining = limit - (time.monotonic() - start)
        if remaining <= 0:
            raise AssertionError(f"the server still holds the connection after {limit}s")
        sock.settimeout(remaining)
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
        except TimeoutError:
            continue


def trickle(sock: socket.socket, data: bytes, every: float, stop: Callable[[], bool]) -> None:
    """Send ``data`` one byte at a time, ``every`` seconds apart, until it is sent, ``stop()`` or the server closes."""
    for byte in data:
        if stop():
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return
        time.sleep(every)
