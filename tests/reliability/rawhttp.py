"""Raw HTTP/1.1 over a socket, and the servers to send it to: nbroutes' Tornado ``Server`` and a real uvicorn.

Clients such as http.client and browsers normalise a request target before sending it
(``..``, ``%61``, a missing ``/``); an attacker does not, so these tests write the
request line's bytes themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbroutes.core.app import App
from nbroutes.servers.tornado import Server

HOST = "127.0.0.1"


@dataclass
class Answer:
    """A response as it came over the wire; header names lower-cased."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    port: int, target: str, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 10
) -> Answer:
    """Send ``METHOD target HTTP/1.1`` exactly as given and read the answer until the server closes.

    Raises TimeoutError if no complete answer comes within ``timeout`` seconds (a hung request).
    """
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    data = b""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise TimeoutError(f"{method} {target}: no complete answer in {timeout}s; got {data!r}") from None
            if not chunk:
                break
            data += chunk
    if not data:
        raise ConnectionError(f"{method} {target}: the server closed the connection without answering")
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    if parsed.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return Answer(int(status_line.split()[1]), parsed, body)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


@contextlib.contextmanager
def tornado_server(app: App) -> Iterator[int]:
    """``app`` on nbroutes' Tornado ``Server``, on an event loop in a thread as the kernel's runs; yields the port."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = Server(app, port=0)

    def call(fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(10)

    try:
        yield call(server.start)
        assert thread.is_alive(), "the server's event loop died"
    finally:
        if thread.is_alive():
            asyncio.run_coroutine_threadsafe(server.drain(1), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
        loop.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(process: subprocess.Popen[bytes], port: int, timeout: float = 20) -> int:
    """``port`` once ``process`` listens on it.

    Raises RuntimeError if the process exits first, TimeoutError if nothing listens in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return port
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port} after {timeout}s")


@contextlib.contextmanager
def uvicorn_server(module_source: str, directory: Path, target: str = "appmod:asgi") -> Iterator[int]:
    """A real uvicorn in a subprocess serving ``target`` from a module written with ``module_source``; yields the port.

    The repository is on its PYTHONPATH, so it serves this checkout's nbroutes.
    """
    (directory / "appmod.py").write_text(module_source)
    port = free_port()
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(directory), root])}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--log-level", "warning"],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield wait_for_port(process, port)
        assert process.poll() is None, "uvicorn died"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
