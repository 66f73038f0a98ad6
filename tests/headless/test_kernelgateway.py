"""Kernel Gateway notebooks: nbroutes answers as real Kernel Gateway does, request for request.

Each notebook under ``kg_notebooks/`` is served twice, by ``jupyter kernelgateway`` (notebook-http mode, a real
kernel) and by nbroutes (behind ``Server``, in a subprocess: ``build_app`` with IPython's own shell for one,
``load_notebook``, as ``nbroutes serve`` does, for the other); the same requests go to both over
sockets, and status, content type and body (and a few headers) must be equal.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from nbroutes.errors import KernelGatewayNotebookError
from nbroutes.headless.kernelgateway import NotebookKernel, build_app, is_kernel_gateway_notebook, swagger_document
from tests.support import free_ports, unavailable

NOTEBOOKS = Path(__file__).parents[1] / "kg_notebooks"
REPO = Path(__file__).parents[2]
HOST = "127.0.0.1"
START_TIMEOUT = 45

# people: build_app with IPython's own instance; request_details: the notebook runner of `nbroutes serve`.
SERVE_NBROUTES = """
import asyncio, sys
from pathlib import Path
import nbformat
from nbroutes.headless.kernelgateway import build_app
from nbroutes.headless.runner import load_notebook
from nbroutes.servers.tornado import Server

path = Path(sys.argv[1])
if path.stem == "people":
    app = build_app(nbformat.read(path, 4), None, directory=path.parent, filename=path.name)
else:
    app = load_notebook(path)

async def main() -> None:
    port = Server(app, "127.0.0.1", int(sys.argv[2])).start(search=False)
    print("listening", port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str | None
    body: bytes
    headers: tuple[tuple[str, str | None], ...]


Headers = tuple[tuple[str, str], ...]
COMPARED_HEADERS = ("Location", "X-Tea")


def send(port: int, method: str, url: str, body: bytes | None = None, headers: Headers = ()) -> Answer:
    """One request on a fresh connection; repeated header names are sent as separate lines."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.putrequest(method, url, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        compared = tuple((name, response.getheader(name)) for name in COMPARED_HEADERS)
        return Answer(response.status, response.getheader("Content-Type"), data, compared)
    finally:
        conn.close()


@dataclass
class Pair:
    """The same notebook served by Kernel Gateway and by nbroutes."""

    kernel_gateway: int
    nbroutes: int


def _environment(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "IPYTHONDIR"):
        env[name] = str(tmp / name.lower())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.pop("KERNEL_GATEWAY", None)
    return env


def _answers(port: int) -> bool:
    try:
        return send(port, "GET", "/_api/spec/swagger.json").status == 200
    except OSError:
        return False


def _not_started(message: str) -> None:
    unavailable(message, ".venv/bin/pip install -e '.[test]'")


@pytest.fixture(scope="module")
def gateway_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Pair]]:
    """Every test notebook under Kernel Gateway and under nbroutes, all started at once."""
    try:
        import kernel_gateway  # noqa: F401
    except ImportError:
        _not_started("Kernel Gateway is not installed: pip install jupyter_kernel_gateway")
    tmp = tmp_path_factory.mktemp("kg")
    env = _environment(tmp)
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    pairs: dict[str, Pair] = {}
    try:
        notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
        ports = free_ports(2 * len(notebooks))
        for index, notebook in enumerate(notebooks):
            pair = Pair(ports[2 * index], ports[2 * index + 1])
            pairs[notebook.stem] = pair
            kg_log = tmp / f"{notebook.stem}.kernelgateway.log"
            kg_command = [
                sys.executable,
                "-m",
                "jupyter",
                "kernelgateway",
                "--KernelGatewayApp.api=kernel_gateway.notebook_http",
                f"--KernelGatewayApp.seed_uri={notebook}",
                f"--KernelGatewayApp.port={pair.kernel_gateway}",
                "--KernelGatewayApp.port_retries=0",
                f"--KernelGatewayApp.ip={HOST}",
            ]
            nbroutes_log = tmp / f"{notebook.stem}.nbroutes.log"
            nbroutes_command = [sys.executable, "-c", SERVE_NBROUTES, str(notebook), str(pair.nbroutes)]
            for name, command, log in (
                ("Kernel Gateway", kg_command, kg_log),
                ("nbroutes", nbroutes_command, nbroutes_log),
            ):
                with open(log, "wb") as out:
                    process = subprocess.Popen(command, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
                processes.append((f"{name} serving {notebook.name}", process, log))
        deadline = time.monotonic() + START_TIMEOUT
        waiting = {port for pair in pairs.values() for port in (pair.kernel_gateway, pair.nbroutes)}
        while waiting and time.monotonic() < deadline:
            for name, process, log in processes:
                if process.poll() is not None:
                    _not_started(f"{name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            waiting = {port for port in waiting if not _answers(port)}
            time.sleep(0.1)
        if waiting:
            logs = "\n".join(f"{name}:\n{log.read_text()[-2000:]}" for name, _, log in processes)
            _not_started(f"not answering after {START_TIMEOUT}s on ports {sorted(waiting)}:\n{logs}")
        yield pairs
    finally:
        for _, process, _ in processes:
            process.terminate()
        for _, process, _ in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


JSON = (("Content-Type", "application/json"),)
FORM = (("Content-Type", "application/x-www-form-urlencoded"),)

# (notebook, method, url, body, headers): sent in this order to both servers, so state changes alike.
REQUESTS: list[tuple[str, str, str, bytes | None, Headers]] = [
    ("people", "GET", "/hello", None, ()),
    ("people", "GET", "/hello/world", None, ()),
    ("people", "GET", "/hello/caf%C3%A9%20au%20lait", None, ()),
    ("people", "GET", "/people", None, ()),
    ("people", "GET", "/people/ada", None, ()),
    ("people", "GET", "/people/bob", None, ()),
    ("people", "POST", "/people", b"name=bob&born=1990", FORM),
    ("people", "POST", "/people", b'{"name": "cy", "born": 2001}', JSON),
    ("people", "GET", "/people", None, ()),
    ("people", "GET", "/people/bob", None, ()),
    ("people", "PUT", "/people/cy", b'{"born": 2002}', JSON),
    ("people", "GET", "/people/cy", None, ()),
    ("people", "DELETE", "/people/bob", None, ()),
    ("people", "DELETE", "/people/bob", None, ()),
    ("people", "GET", "/people/ada/friends", None, ()),
    ("people", "GET", "/kernel-gateway", None, ()),
    ("people", "POST", "/hello", b"", ()),
    ("people", "PATCH", "/people/ada", b"{}", JSON),
    ("people", "HEAD", "/hello", None, ()),
    ("people", "OPTIONS", "/people/ada", None, ()),
    ("people", "GET", "/people/", None, ()),
    ("people", "GET", "/nowhere", None, ()),
    ("people", "DELETE", "/nowhere/at/all", None, ()),
    ("people", "GET", "/_api/spec/swagger.json", None, ()),
    ("people", "POST", "/_api/spec/swagger.json", b"", ()),
    ("request_details", "POST", "/echo?x=1&x=2&y=&z=%E2%9C%93", b"a=1&a=2&b=&c=%E2%9C%93", FORM),
    ("request_details", "POST", "/echo", b'{"nested": {"list": [1, 2.5, null, true]}}', JSON),
    ("request_details", "POST", "/echo", b"{not json", JSON),
    (
        "request_details",
        "POST",
        "/echo",
        b'{"charset": "not parsed"}',
        (("Content-Type", "application/json; charset=utf-8"),),
    ),
    ("request_details", "POST", "/echo", b"plain text \xc3\xa9", (("Content-Type", "text/plain"),)),
    ("request_details", "POST", "/echo", b"no content type", ()),
    (
        "request_details",
        "POST",
        "/echo",
        b'--XyZ\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="upload"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nfile body\r\n--XyZ--\r\n",
        (("Content-Type", "multipart/form-data; boundary=XyZ"),),
    ),
    ("request_details", "POST", "/echo", b"no boundary", (("Content-Type", "multipart/form-data"),)),
    ("request_details", "POST", "/echo", b"[" * 100_000, JSON),
    ("request_details", "POST", "/echo", b"garbage", (("Content-Type", "multipart/form-data; boundary=XyZ"),)),
    ("request_details", "POST", "/echo", b"a=1", (*FORM, ("Content-Encoding", "gzip"))),
    ("request_details", "POST", "/echo", b"a=1&a=%E9", FORM),
    ("request_details", "POST", "/echo", b"a=1", (("Content-Type", FORM[0][1] + "; charset=utf-8"),)),
    ("request_details", "POST", "/nowhere", b"no boundary", (("Content-Type", "multipart/form-data"),)),
    ("request_details", "PROPFIND", "/echo", None, ()),
    ("request_details", "PROPFIND", "/nowhere", None, ()),
    ("request_details", "POST", "/echo", b"", (("x-token", "secret"), ("X-Many", "1"), ("X-Many", "2"))),
    ("request_details", "GET", "/echo/one/two%2Fthree?q=a+b", None, ()),
    ("request_details", "PUT", "/echo/1/2", b'["a", "list"]', JSON),
    ("request_details", "GET", "/result", None, ()),
    ("request_details", "GET", "/quiet", None, ()),
    ("request_details", "GET", "/printed-and-result", None, ()),
    ("request_details", "GET", "/html", None, ()),
    ("request_details", "GET", "/display", None, ()),
    ("request_details", "GET", "/error", None, ()),
    ("request_details", "GET", "/key-error", None, ()),
    ("request_details", "GET", "/teapot", None, ()),
    ("request_details", "GET", "/not-json-info", None, ()),
    ("request_details", "GET", "/info-error", None, ()),
    ("request_details", "GET", "/users/me", None, ()),
    ("request_details", "GET", "/users/42", None, ()),
    ("request_details", "GET", "/", None, ()),
    ("request_details", "GET", "/same/1", None, ()),
    ("request_details", "POST", "/same/1", b"", ()),
    ("request_details", "GET", "/only-delete", None, ()),
    ("request_details", "DELETE", "/only-delete", None, ()),
    ("request_details", "GET", "/_api/spec/swagger.json", None, ()),
    # Bytes that are not UTF-8, and a '%' that starts no escape.
    ("request_details", "POST", "/echo", b"caf\xe9", (("Content-Type", "text/plain"),)),
    ("request_details", "POST", "/echo?q=%E9", b"", ()),
    ("request_details", "POST", "/echo", b"q=%E9", FORM),
    ("request_details", "GET", "/users/%E9", None, ()),
    ("request_details", "GET", "/echo/ok/%E9%E8", None, ()),
    ("request_details", "GET", "/nowhere/%E9", None, ()),
    ("request_details", "GET", "/users/%E9/", None, ()),
    ("request_details", "GET", "/users/100%", None, ()),
    ("request_details", "GET", "/users/a%zzb", None, ()),
]


@pytest.mark.parametrize(
    ("notebook", "method", "url", "body", "headers"),
    REQUESTS,
    ids=[f"{nb}:{method} {url}" for nb, method, url, *_ in REQUESTS],
)
def test_same_answer_as_kernel_gateway(
    gateway_pair: dict[str, Pair], notebook: str, method: str, url: str, body: bytes | None, headers: Headers
) -> None:
    pair = gateway_pair[notebook]
    expected = send(pair.kernel_gateway, method, url, body, headers)
    actual = send(pair.nbroutes, method, url, body, headers)
    assert actual == expected


def test_the_table_covers_each_endpoint_of_the_notebooks() -> None:
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        paths = swagger_document(nbformat.read(notebook, 4), notebook.stem)["paths"]
        asked = {url.partition("?")[0] for nb, _, url, *_ in REQUESTS if nb == notebook.stem}
        for path in paths:
            prefix = path.split("/:")[0]
            assert any(url == path or url.startswith(prefix + "/") or url == prefix for url in asked), path


# -- nbroutes' side alone --
def _notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (("# GET /hello\nprint('hi')",), True),
        (("import json", "# POST /items/:id\nprint(1)"), True),
        (("# ResponseInfo GET /hello\nprint('{}')",), False),
        (("\n# GET /hello\nprint('hi')",), False),  # the annotation must open the cell, as in Kernel Gateway
        (("%load_ext nbroutes", "# GET /hello\nprint('hi')"), False),
        (("%%route /hello\nreturn 'hi'",), False),
        (("print('no API here')",), False),
    ],
)
def test_is_kernel_gateway_notebook(sources: tuple[str, ...], expected: bool) -> None:
    assert is_kernel_gateway_notebook(_notebook(*sources)) is expected


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (("print('no endpoints')",), "No endpoints were discovered"),
        (("# GET /files/name:id\nprint(1)",), "as a whole segment"),
        (("# GET /files/:\nprint(1)",), "must be ':' and a Python name"),
        (("# GET /files/[x]\nprint(1)",), "is a regular expression"),
        (("# GET /files/v1.*\nprint(1)",), "is a regular expression"),
    ],
)
def test_notebooks_nbroutes_cannot_serve(sources: tuple[str, ...], message: str, tmp_path: Path) -> None:
    with pytest.raises(KernelGatewayNotebookError, match=message.replace("[", r"\[")):
        build_app(_notebook(*sources), None, directory=tmp_path)


def test_a_notebook_in_another_language_is_left_to_kernel_gateway(tmp_path: Path) -> None:
    nb = _notebook("# GET /hello\ncat('hi')")
    nb.metadata["language_info"] = {"name": "R"}
    with pytest.raises(KernelGatewayNotebookError, match="runs r, and nbroutes runs cells in Python"):
        build_app(nb, None, directory=tmp_path)


@pytest.mark.subprocess
def test_a_failing_startup_cell_stops_the_start_and_leaves_the_environment_as_it_was(
    tmp_path: Path,
) -> None:
    # In a subprocess: the shell is IPython's process-wide instance, which this test process must not get.
    script = (
        "import os, nbformat\n"
        "from pathlib import Path\n"
        "from nbroutes.headless.kernelgateway import StartupCellError, build_app\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in (\n"
        '    \'import os\\nassert os.environ["KERNEL_GATEWAY"] == "1"\\nopen("here.txt", "w").close()\',\n'
        "    '# GET /hello\\nprint(1)',\n"
        "    'missing_name',\n"
        ")])\n"
        "try:\n"
        "    build_app(nb, None, directory=Path(os.environ['NB_DIR']))\n"
        "except StartupCellError as exc:\n"
        "    print('raised', exc)\n"
        "print('after', os.environ.get('KERNEL_GATEWAY'), os.getcwd() != os.environ['NB_DIR'])\n"
    )
    env = {**_environment(tmp_path), "NB_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "raised code cell 3 raised NameError: name 'missing_name' is not defined" in done.stdout
    assert done.stdout.strip().endswith("after None True")
    assert (tmp_path / "here.txt").exists()  # the cells ran in the notebook's directory


@pytest.mark.subprocess
def test_a_long_running_server_keeps_a_bounded_history(tmp_path: Path) -> None:
    """A cell runs per request; what IPython keeps of each (In, Out, _iN, _N) must not grow without end."""
    script = (
        "import os, nbformat\n"
        "from pathlib import Path\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from nbroutes.headless.kernelgateway import NotebookKernel, build_app\n"
        "from nbroutes.testing import TestClient\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('# GET /n\\n{\"n\": 1}')])\n"
        "client = TestClient(build_app(nb, None, directory=Path(os.environ['NB_DIR'])))\n"
        "for _ in range(1500):\n"
        "    assert client.get('/n').json() == {'text/plain': \"{'n': 1}\"}\n"
        "shell = InteractiveShell.instance()\n"
        "history = shell.history_manager\n"
        "kept = sum(1 for s in history.input_hist_parsed if s)\n"
        "names = sum(1 for k in shell.user_ns if k[:2] == '_i' and k[2:].isdigit())\n"
        "print(len(history.input_hist_parsed) > 1500, kept, len(history.output_hist), names)\n"
        "print(shell.user_ns['Out'][max(history.output_hist)])\n"
    )
    env = {**_environment(tmp_path), "NB_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ran_all, kept, outputs, names = done.stdout.split("\n")[0].split()
    bound = 2 * NotebookKernel.history_kept
    assert ran_all == "True"
    assert int(kept) <= bound and int(outputs) <= bound and int(names) <= bound, done.stdout
    assert done.stdout.split("\n")[1] == "{'n': 1}"  # the latest output is still there, as in a kernel
