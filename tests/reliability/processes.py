"""Servers for the host and error-detail tests: the Tornado ``Server`` in-process, ``nbroutes serve`` and uvicorn
as real subprocesses, and HTTP requests with whatever ``Host`` and ``Origin`` a test names.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from nbroutes.core.app import App
from nbroutes.servers.tornado import Server

HOST = "127.0.0.1"
START_TIMEOUT = 30.0


@dataclass
class Answer:
    """A response as it came over the wire; header names lower-cased."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def fetch(
    port: int, method: str, path: str, body: bytes | str | None = None, headers: dict[str, str] | None = None
) -> Answer:
    """One request to 127.0.0.1:``port`` on a new connection. A ``Host`` in ``headers`` replaces http.client's."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        given = dict(headers or {})
        host = given.pop("Host", None)
        conn.putrequest(method, path, skip_host=host is not None, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        data = body.encode() if isinstance(body, str) else body
        for name, value in given.items():
            conn.putheader(name, value)
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


# -- the Tornado server on a loop in a background thread, as in a kernel -------------------------


class LoopThread:
    """An asyncio loop running in a background thread; ``call`` runs a function on it and returns the result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        async def run() -> Any:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def close(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if tasks:
                await asyncio.wait(tasks, timeout=5)

        self.call(drain)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@contextlib.contextmanager
def tornado_server(app: App, **options: Any) -> Iterator[Server]:
    """``Server(app, port=0, **options)`` started on a background loop; stopped afterwards."""
    runner = LoopThread()
    server = Server(app, port=0, **options)
    try:
        runner.call(server.start)
        yield server
    finally:
        runner.call(server.stop)
        runner.close()


# -- real processes ----------------------------------------------------------------------


def notebook(path: Path, *sources: str) -> Path:
    """A notebook of the given code cells."""
    nbformat.write(new_notebook(cells=[new_code_cell(source) for source in sources]), path)
    return path


class Process:
    """A server in a subprocess, what it printed (both streams, read as they come) and the port it serves."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("NBROUTES_", "JUPYTERHUB_"))}
        environ.update({"PYTHONUNBUFFERED": "1", **(env or {})})
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=cwd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self.port = 0
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._new.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """The first line printed that matches ``pattern``, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if found := re.search(pattern, line):
                return found
        while time.monotonic() < deadline:
            try:
                line = self._new.get(timeout=0.05)
            except queue.Empty:
                if self.proc.poll() is not None and self._new.empty():
                    break
                continue
            self.lines.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matching {pattern!r}; printed:\n" + self.output)

    @property
    def output(self) -> str:
        """Everything printed so far."""
        while not self._new.empty():
            self.lines.append(self._new.get())
        return "\n".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(process: Process, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise AssertionError(f"the server exited ({process.proc.returncode}):\n{process.output}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {START_TIMEOUT}s:\n{process.output}")


@contextlib.contextmanager
def nbroutes_serve(path: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[Process]:
    """``python -m nbroutes serve path --port 0 options``, up and serving; stopped afterwards."""
    process = Process(["-m", "nbroutes", "serve", str(path), "--port", "0", *options], path.parent, env)
    try:
        process.port = int(process.wait_for(r"serving \S+ on http://\S+:(\d+)").group(1))
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def uvicorn(target: str, cwd: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[Process]:
    """``python -m uvicorn target`` on a free port of 127.0.0.1, up and serving; stopped afterwards."""
    port = free_port()
    process = Process(["-m", "uvicorn", target, "--port", str(port), "--log-level", "warning", *options], cwd, env)
    try:
        _wait_for_port(process, port)
        process.port = port
        yield process
    finally:
        process.stop()
