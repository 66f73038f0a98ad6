"""What many test files need, written once: free ports, HTTP from the test process, a loop in a thread, processes.

As Tornado's ``tornado/test/util.py``: ports and sockets; a plain HTTP request, and a raw HTTP/1.1 exchange
written byte for byte on a socket (``raw_request``, ``read_response``: clients normalise the very requests a
hostile test sends); an asyncio loop running in a background thread (as the kernel's loop runs beside the code
that calls it); child processes whose output is read as it comes (``Process``), among them ``nbroutes serve``
and uvicorn; and a real ``jupyter server`` or ``jupyter lab`` with its own directories (``JupyterServer``), for
the proxy and browser tests. Nothing here imports nbroutes: the helpers work on whatever a test starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, NoReturn

import pytest

HOST = "127.0.0.1"
#: The checkout under test: on every child's PYTHONPATH, so that ``python -m nbroutes`` is this one from any cwd.
ROOT = Path(__file__).resolve().parent.parent
#: How long a server process may take to listen.
START_TIMEOUT = 30.0


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


def wait_for_port(process: subprocess.Popen[Any] | Process, port: int, timeout: float = 15) -> int:
    """``port`` once ``process`` listens on it.

    Raises RuntimeError (with what it printed, or wrote to a piped stderr) if the process exits first,
    TimeoutError after ``timeout`` seconds.
    """
    popen = process.proc if isinstance(process, Process) else process
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            if isinstance(process, Process):
                raise RuntimeError(f"the server exited ({popen.returncode}):\n{process.output}")
            stderr = popen.stderr.read() if popen.stderr is not None else b""
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
    """A response read whole: status, headers (names lower-cased; the last of repeated ones) and body.

    ``fields`` are the header lines as sent, repeats included (``get_all``); ``interim`` the 1xx statuses that came
    first (a ``100 Continue``); ``complete`` is False for a body the server cut short (``read_response(partial=True)``).
    """

    status: int
    headers: dict[str, str]
    body: bytes
    fields: list[tuple[str, str]] = field(default_factory=list)
    interim: list[int] = field(default_factory=list)
    complete: bool = True

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name``, in order (several ``Set-Cookie`` lines, say); [] if none came."""
        return [value for key, value in self.fields if key.lower() == name.lower()]

    def __repr__(self) -> str:
        cut = "" if self.complete else " (cut short)"
        return f"<HTTPResult {self.status} {self.headers} {self.body[:200]!r}{cut} after {self.interim}>"


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
        fields = response.getheaders()
        return HTTPResult(response.status, {k.lower(): v for k, v in fields}, data, fields)
    finally:
        conn.close()


# -- raw HTTP/1.1 on a socket ------------------------------------------------------------------
# http.client and browsers normalise a request before sending it (a target's ``..``, ``%61``, a missing
# ``/``; the Host; a whole body at once); a hostile client does not, so these write the bytes themselves.


def connect(port: int, timeout: float = 5) -> socket.socket:
    """A TCP connection to 127.0.0.1:``port`` that sends each write at once (TCP_NODELAY)."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request_head(method: str, target: str, headers: dict[str, str] | None = None, host: str = HOST) -> bytes:
    """``METHOD target HTTP/1.1`` and its header lines as given, ``Host`` first (one in ``headers`` replaces it)."""
    given = dict(headers or {})
    host = next((given.pop(name) for name in list(given) if name.lower() == "host"), host)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in given.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Reader:
    """Bytes off a socket against one deadline; a close before the response ends is ``Cut``."""

    class Cut(Exception):
        pass

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock, self.buffer = sock, b""
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout

    def more(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no whole response within {self.timeout}s; got {self.buffer[:500]!r}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError(f"no whole response within {self.timeout}s; got {self.buffer[:500]!r}") from None
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            raise self.Cut
        self.buffer += data

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self.more()
        taken, _, self.buffer = self.buffer.partition(marker)
        return taken

    def take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.more()
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken


def read_response(sock: socket.socket, timeout: float = 5, *, method: str = "GET", partial: bool = False) -> HTTPResult:
    """The next response on ``sock``, and no more: 1xx heads first, then a Content-Length, chunked or to-the-close body.

    Raises TimeoutError if it is not all there within ``timeout`` seconds, ConnectionError if the server closes the
    connection before the head ends, or before the body ends unless ``partial`` (then ``complete`` is False).
    """
    reader = _Reader(sock, timeout)
    interim: list[int] = []
    try:
        while True:
            lines = reader.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            if not 100 <= status < 200:
                break
            interim.append(status)
    except reader.Cut:
        raise ConnectionError(f"the server closed the connection before a response; got {reader.buffer!r}") from None
    fields = [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])]
    headers = {name.lower(): value for name, value in fields}

    def result(body: bytes, complete: bool = True) -> HTTPResult:
        return HTTPResult(status, headers, body, fields, interim, complete)

    body = b""
    try:
        if method == "HEAD" or status in (204, 304):
            return result(b"")
        if "content-length" in headers:
            return result(reader.take(int(headers["content-length"])))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while size := int(reader.until(b"\r\n").split(b";")[0], 16):
                body += reader.take(size)
                reader.take(2)
            reader.until(b"\r\n")  # no trailers are sent to these tests: the empty line after the last chunk
            return result(body)
        while True:  # neither: the body runs to the close
            reader.more()
    except reader.Cut:
        if "content-length" not in headers and "transfer-encoding" not in headers:
            return result(reader.buffer)
        if partial:
            return result(body + reader.buffer, complete=False)
        cut = (body + reader.buffer)[:500]
        raise ConnectionError(f"the server closed the connection mid-body; got {cut!r}") from None


def raw_request(
    port: int,
    method: str,
    target: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 10,
    partial: bool = False,
) -> HTTPResult:
    """``METHOD target HTTP/1.1`` to 127.0.0.1:``port`` on a new connection, byte for byte, and its one response.

    Sends ``Host: 127.0.0.1:port`` (unless ``headers`` has one), ``Connection: close``, and a Content-Length
    with a body. Raises as ``read_response`` does, so a request the server never answers fails in ``timeout``.
    """
    data = body.encode() if isinstance(body, str) else body
    lines = {"Connection": "close", **(headers or {})}
    if data is not None:
        lines["Content-Length"] = str(len(data))
    with connect(port, timeout) as sock:
        sock.sendall(request_head(method, target, lines, host=f"{HOST}:{port}") + (data or b""))
        return read_response(sock, timeout, method=method, partial=partial)


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


class Process:
    """``python args`` in a child process, what it prints (stdout and stderr as one stream, read as it comes), its port.

    The child gets this environment less ``NBROUTES_*`` and ``JUPYTERHUB_*`` (a developer's own must not leak
    in), plus ``env``; ``path`` and this checkout go first on its PYTHONPATH. ``nofile`` lowers its
    RLIMIT_NOFILE (the descriptor limit) before it starts.
    """

    def __init__(
        self,
        args: Sequence[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        *,
        path: Sequence[Path] = (),
        nofile: int | None = None,
    ) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("NBROUTES_", "JUPYTERHUB_"))}
        paths = [*map(str, path), str(ROOT), *filter(None, [environ.get("PYTHONPATH")])]
        environ.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(paths), **(env or {})})

        def lower_limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))  # type: ignore[arg-type]

        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=lower_limit if nofile else None,  # noqa: PLW1509 - only a setrlimit, before exec
        )
        #: The port it serves on, once a starter (``nbroutes_serve``, ``uvicorn``) has seen it listen.
        self.port = 0
        self._printed = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(65536):  # type: ignore[attr-defined]
            self._printed += chunk

    @property
    def output(self) -> str:
        """Everything printed so far."""
        return bytes(self._printed).decode(errors="replace")

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """The first whole line printed so far or within ``timeout`` seconds that matches ``pattern``.

        Raises AssertionError, with everything printed, if none does (or the process exits first).
        """
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc.poll() is not None
            if exited:
                self._reader.join(1)  # what it printed last is read before the last look
            text = self.output
            lines = text.splitlines() if exited or text.endswith("\n") else text.splitlines()[:-1]
            for line in lines:
                if found := re.search(pattern, line):
                    return found
            if exited or time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern!r}; printed:\n{text}")
            time.sleep(0.02)

    def peak_memory(self) -> int:
        """The process's peak resident memory so far, in bytes (Linux's VmHWM)."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (then SIGKILL after ``timeout`` s); what it printed until then stays in ``output``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._reader.join(5)  # before the pipe closes under it
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextmanager
def nbroutes_serve(
    notebook: Path,
    *options: str,
    env: dict[str, str] | None = None,
    nofile: int | None = None,
    ready: bool = True,
) -> Iterator[Process]:
    """``python -m nbroutes serve notebook --port 0 options``; waits until it says where it serves (unless not
    ``ready``), and sets ``port``; stopped afterwards.
    """
    process = Process(
        ["-m", "nbroutes", "serve", str(notebook), "--port", "0", *options], notebook.parent, env, nofile=nofile
    )
    try:
        if ready:
            process.port = int(process.wait_for(r"serving \S+ on http://127\.0\.0\.1:(\d+)").group(1))
        yield process
    finally:
        process.stop()


@contextmanager
def uvicorn(
    target: str,
    cwd: Path,
    *options: str,
    env: dict[str, str] | None = None,
    path: Sequence[Path] = (),
    nofile: int | None = None,
) -> Iterator[Process]:
    """``python -m uvicorn target`` on a free port of 127.0.0.1 (log level warning), up and listening; stopped after."""
    port = free_port()
    process = Process(
        ["-m", "uvicorn", target, "--port", str(port), "--log-level", "warning", *options],
        cwd,
        env,
        path=path,
        nofile=nofile,
    )
    try:
        process.port = wait_for_port(process, port, START_TIMEOUT)
        yield process
    finally:
        process.stop()


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
