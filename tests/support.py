"""What many test files need, written once: free ports, HTTP from the test process, a loop in a thread, processes.

As Tornado's ``tornado/test/util.py``: ports and sockets, a plain HTTP request, an asyncio loop running in a
background thread (as the kernel's loop runs beside the code that calls it), stopping a child process, and
a real ``jupyter server`` or ``jupyter lab`` with its own directories (``JupyterServer``), for the proxy
and browser tests. Nothing here imports nbroutes: the helpers work on whatever a test starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, NoReturn

import pytest

HOST = "127.0.0.1"


# -- ports -------------------------------------------------------------------------------------


def free_port() -> int:
    """A port that nothing listens on now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now, all different (held together while they are chosen)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def port_is_free(port: int) -> bool:
    """True if this process can bind and listen on ``port`` (so no one else listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR lets TIME_WAIT connections of earlier requests pass, but never a listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
            sock.listen(1)
        except OSError:
            return False
        return True


def listen_on(port: int = 0) -> socket.socket:
    """Hold ``port`` (any free one for 0) with a listening socket; the caller closes it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
        sock.listen(1)
    except OSError:
        sock.close()
        raise
    return sock


def refuses_connections(port: int) -> bool:
    """True if a TCP connect to ``port`` is refused."""
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def wait_for_port(process: subprocess.Popen[Any], port: int, timeout: float = 15) -> int:
    """``port`` once ``process`` listens on it.

    Raises RuntimeError (with what it wrote to a piped stderr) if the process exits first, TimeoutError after
    ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr is not None else b""
            raise RuntimeError(f"the server exited: {stderr.decode() if isinstance(stderr, bytes) else stderr}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return port
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port} after {timeout}s")


# -- HTTP --------------------------------------------------------------------------------------


@dataclass
class HTTPResult:
    """A response read whole: status, headers (names lower-cased) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | str | Iterable[bytes] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> HTTPResult:
    """One request to 127.0.0.1:``port`` over a fresh connection; an iterable body is sent chunked."""
    chunked = body is not None and not isinstance(body, (bytes, str))
    conn = HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        data = response.read()
        return HTTPResult(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


# -- an event loop in a background thread ------------------------------------------------------


def on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn`` on the loop's thread, with the loop running, and return its (awaited) result."""

    async def call() -> Any:
        result = fn(*args)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    return asyncio.run_coroutine_threadsafe(call(), loop).result(10)


async def drain() -> None:
    """Let the tasks still on the loop (closing connections) finish."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if tasks:
        await asyncio.wait(tasks, timeout=5)


@contextmanager
def background_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop running in a daemon thread, as the kernel's loop runs beside the code calling it.

    On exit the tasks left on it finish (up to 5 s), then it stops and closes.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        on_loop(loop, drain)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


# -- processes ---------------------------------------------------------------------------------


def stop_process(process: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not exited within ``timeout`` seconds; waits for it either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def unavailable(reason: str, install: str) -> NoReturn:
    """Skip a test that needs something missing, or fail it under ``CI=true``: CI must not lose tests silently."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; install with: {install}", pytrace=False)
    pytest.skip(f"{reason} (install with: {install})")


# -- a real Jupyter server ---------------------------------------------------------------------

#: The directories a JupyterServer keeps to itself, under the ``base`` it is given.
JUPYTER_DIRS = ("root", "config", "data", "runtime", "ipython", "settings", "workspaces")


@dataclass
class JupyterServer:
    """A running ``jupyter lab`` or ``jupyter server`` from this venv, on a free port, with a random token.

    Its kernels inherit ``NBROUTES_PORT=nbroutes_port``. ``dirs`` are its own root, config, data, runtime,
    IPython, settings and workspace directories; ``log`` holds its stdout and stderr.
    """

    port: int
    token: str
    base_url: str
    nbroutes_port: int
    dirs: dict[str, Path]
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port><base_url>``, without the trailing slash."""
        return f"http://{HOST}:{self.port}{self.base_url}".rstrip("/")

    @property
    def root_dir(self) -> Path:
        return self.dirs["root"]

    @property
    def runtime_dir(self) -> Path:
        return self.dirs["runtime"]

    def request(
        self, method: str, path: str, body: Any = None, timeout: float = 10, headers: dict[str, str] | None = None
    ) -> HTTPResult:
        """``path`` (absolute, base URL included) on the server's port with the token; ``body`` is sent as JSON."""
        lines = {"Authorization": f"token {self.token}", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            lines.setdefault("Content-Type", "application/json")
        return http_request(self.port, method, path, data, lines, timeout)

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
        """The REST API at ``<base_url>api/<path>``: (status, parsed JSON or None)."""
        reply = self.request(method, f"{self.base_url}api/{path.lstrip('/')}", body, timeout)
        return reply.status, reply.json() if reply.body.strip() else None

    def kernels(self) -> list[dict[str, Any]]:
        """The running kernels, as ``GET /api/kernels`` lists them (``execution_state``, ``name``, ...)."""
        return self.api("GET", "kernels")[1]

    def shutdown_kernels(self) -> None:
        """Delete every session and shut every kernel down (so ``nbroutes_port`` is free again)."""
        for session in self.api("GET", "sessions")[1]:
            self.api("DELETE", f"sessions/{session['id']}", timeout=30)
        for kernel in self.kernels():
            self.api("DELETE", f"kernels/{kernel['id']}", timeout=30)

    def log_tail(self, lines: int = 80) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Shut kernels down through the API (so no ipykernel outlives the test), then stop the server."""
        if self.process.poll() is None:
            try:
                self.shutdown_kernels()
            except OSError:
                pass
        stop_process(self.process)


@contextmanager
def jupyter_server(
    base: Path,
    *,
    lab: bool = False,
    base_url: str = "/",
    env: dict[str, str] | None = None,
    args: Iterable[str] = (),
    config: dict[str, Any] | None = None,
    lab_settings: dict[str, dict[str, Any]] | None = None,
    files: Iterable[Path] = (),
    timeout: float = 60,
) -> Iterator[JupyterServer]:
    """``jupyter lab`` (``lab=True``) or ``jupyter server``, up and answering ``<base_url>api/status``; stopped after.

    Its directories are made under ``base``; ``files`` are copied into its root, ``config`` is its
    ``jupyter_server_config.json`` and ``lab_settings`` its JupyterLab user settings (file name: values).
    Nothing of the user's own Jupyter or IPython setup, ``NBROUTES_*`` or ``JUPYTERHUB_*`` reaches it; ``env``
    is added last, ``args`` after the command line's own. Fails the test, with the log's tail, if the server
    exits or does not answer within ``timeout`` seconds.
    """
    dirs = {name: base / name for name in JUPYTER_DIRS}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    for file in files:
        shutil.copy(file, dirs["root"] / Path(file).name)
    if config is not None:
        (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps(config))
    for name, values in (lab_settings or {}).items():
        path = dirs["settings"] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))
    port, nbroutes_port, token = free_port(), free_port(), secrets.token_hex(16)
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NBROUTES_", "JUPYTERHUB_")) and k not in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH")
    }
    environ.update(
        {
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            # Also keeps a user's own kernelspecs out: python3 is the venv's (sys.prefix/share/jupyter/kernels).
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "IPYTHONDIR": str(dirs["ipython"]),
            "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
            "JUPYTER_PLATFORM_DIRS": "1",
            "NBROUTES_PORT": str(nbroutes_port),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
    )
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab" if lab else "server",
        "--no-browser",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={base_url}",
        f"--IdentityProvider.token={token}",
        "--allow-root",
        f"--ServerApp.root_dir={dirs['root']}",
        *args,
    ]
    log = base / ("jupyter-lab.log" if lab else "jupyter-server.log")
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=dirs["root"], env=environ, stdout=out, stderr=subprocess.STDOUT)
    server = JupyterServer(port, token, base_url, nbroutes_port, dirs, log, process)
    what = " ".join(command[2:4])
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"{what} exited with {process.returncode}:\n{server.log_tail()}", pytrace=False)
            try:
                if server.api("GET", "status", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not up in {timeout}s:\n{server.log_tail()}", pytrace=False)
            time.sleep(0.2)
        yield server
    finally:
        server.stop()
