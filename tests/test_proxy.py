"""nbroutes behind jupyter-server-proxy, as on JupyterHub and Binder: every URL it gives works through the proxy.

A real ``jupyter server`` runs with Binder's layout: ``base_url=/user/ada/`` and ``JUPYTERHUB_SERVICE_PREFIX``
set to the same, a token, its own config/data/runtime dirs, and jupyter-server-proxy enabled as it is once
installed. A kernel is started through the server's REST API (so it inherits the server's environment, with
``NBROUTES_PORT`` a free port), driven over ZMQ from its connection file in the server's runtime dir, and asked
to ``%load_ext nbroutes`` and run a route cell. Then the route, the OpenAPI document and the docs page (and every
asset the page loads) are fetched the way a browser on Binder does: from the Jupyter server's port, under
``/user/ada/proxy/<port>/``, with the token.

Without jupyter-server-proxy the tests skip, except under ``CI=true``; a server that does not start is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support import HTTPResult, JupyterServer, jupyter_server, unavailable

HOST = "127.0.0.1"
PREFIX = "/user/ada/"
START_TIMEOUT = 45  # until the server answers /api/status, and until the kernel is ready
EXECUTE_TIMEOUT = 30


@dataclass
class Hub:
    """A ``jupyter server`` laid out as on Binder, and a kernel it started (``kc``: a BlockingKernelClient)."""

    server: JupyterServer
    kernel_id: str = ""
    kc: Any = None
    #: What ``%load_ext nbroutes`` printed.
    load_output: str = ""

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def nbroutes_port(self) -> int:
        return self.server.nbroutes_port

    def request(
        self, method: str, path: str, body: Any = None, timeout: float = 10, headers: dict[str, str] | None = None
    ) -> HTTPResult:
        """``path`` (absolute, with the base URL) on the Jupyter server's port, with the token in a header."""
        return self.server.request(method, path, body, timeout, headers)

    def proxied(self, path: str) -> str:
        """The path a browser uses for nbroutes' ``path``: ``/user/ada/proxy/<port>/api/...``."""
        return f"{PREFIX}proxy/{self.nbroutes_port}{path}"

    def log_tail(self, lines: int = 60) -> str:
        return self.server.log_tail(lines)

    def execute(self, code: str) -> str:
        """Run ``code`` in the kernel; returns the text it showed (streams and text/plain). Fails on an error."""
        shown: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                shown.append(content["text"])
            elif msg["msg_type"] in ("display_data", "execute_result"):
                shown.append(content["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                shown.append("\n".join(content["traceback"]))

        try:
            reply = self.kc.execute_interactive(code, timeout=EXECUTE_TIMEOUT, output_hook=hook, allow_stdin=False)
        except TimeoutError:
            pytest.fail(f"{code!r} did not finish in {EXECUTE_TIMEOUT}s:\n{''.join(shown)}\n{self.log_tail()}")
        text = "".join(shown)
        assert reply["content"]["status"] == "ok", f"{code!r} failed:\n{text}"
        return text


def _start_kernel(hub: Hub) -> None:
    from jupyter_client import BlockingKernelClient

    reply = hub.request("POST", f"{PREFIX}api/kernels", {"name": "python3"}, timeout=START_TIMEOUT)
    assert reply.status == 201, f"POST /api/kernels: {reply.status} {reply.body!r}\n{hub.log_tail()}"
    hub.kernel_id = reply.json()["id"]
    runtime_dir = hub.server.runtime_dir
    connection_file = runtime_dir / f"kernel-{hub.kernel_id}.json"
    assert connection_file.exists(), f"no {connection_file.name} in {sorted(os.listdir(runtime_dir))}"
    kc = BlockingKernelClient()
    kc.load_connection_file(str(connection_file))
    kc.start_channels()
    hub.kc = kc
    try:
        kc.wait_for_ready(timeout=START_TIMEOUT)
    except RuntimeError as error:
        pytest.fail(f"the kernel never became ready: {error}\n{hub.log_tail()}", pytrace=False)
    while True:  # what the kernel said while starting is no cell's output
        try:
            kc.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            break


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """The server, up, with jupyter-server-proxy loaded and a kernel that ran ``%load_ext nbroutes``."""
    if importlib.util.find_spec("jupyter_server_proxy") is None:
        unavailable("jupyter-server-proxy is not installed", ".venv/bin/pip install -e '.[test]'")
    # As on Binder: the single-user server's base URL is the service prefix; kernels inherit both.
    env = {"JUPYTERHUB_SERVICE_PREFIX": PREFIX}
    # As JupyterHub's single-user server: the hub's public name reaches it, not only localhost.
    args = ["--ServerApp.allow_remote_access=True"]
    with jupyter_server(
        tmp_path_factory.mktemp("hub"), base_url=PREFIX, env=env, args=args, timeout=START_TIMEOUT
    ) as server:
        hub = Hub(server)
        try:
            loaded = "jupyter_server_proxy | extension was successfully loaded"
            log = server.log.read_text(errors="replace")
            assert loaded in log, f"jupyter-server-proxy not loaded:\n{hub.log_tail()}"
            _start_kernel(hub)
            hub.load_output = hub.execute("%load_ext nbroutes")
            yield hub
        finally:
            if hub.kc is not None:
                hub.kc.stop_channels()


ROUTE_CELL = """%%route /api/hello/[name]
def GET(req):
    return {"hello": req.query["name"], "path": req.path}
"""


@pytest.fixture(scope="module")
def route_output(hub: Hub) -> str:
    """What the route cell showed (its card's text)."""
    return hub.execute(ROUTE_CELL)


def test_load_prints_the_proxied_url(hub: Hub) -> None:
    assert f"nbroutes: serving on http://127.0.0.1:{hub.nbroutes_port}" in hub.load_output
    assert f"nbroutes: from your browser: {hub.proxied('/')}" in hub.load_output


def test_a_route_answers_through_the_proxy(hub: Hub, route_output: str) -> None:
    reply = hub.request("GET", hub.proxied("/api/hello/ada"))
    assert reply.status == 200, (reply.status, reply.body, hub.log_tail())
    assert reply.headers["content-type"].startswith("application/json")
    # nbroutes sees its own path: the proxy strips the prefix.
    assert reply.json() == {"hello": "ada", "path": "/api/hello/ada"}


def test_the_route_card_and_url_name_the_proxied_path(hub: Hub, route_output: str) -> None:
    assert hub.proxied("/api/hello/[name]") in route_output, route_output
    url = hub.execute('import nbroutes\nprint(nbroutes.url("/api/hello/ada", public=True))').strip()
    assert url == hub.proxied("/api/hello/ada")
    assert hub.request("GET", url).status == 200
    # From the kernel itself, the local URL (no proxy, no token).
    local = hub.execute('print(nbroutes.url("/api/hello/ada"))').strip()
    assert local == f"http://127.0.0.1:{hub.nbroutes_port}/api/hello/ada"


def test_a_redirect_stays_under_the_proxy(hub: Hub, route_output: str) -> None:
    reply = hub.request("GET", hub.proxied("/api/hello/ada/"))
    assert reply.status == 308
    assert reply.headers["location"] == hub.proxied("/api/hello/ada")


def test_openapi_servers_point_at_the_proxied_prefix(hub: Hub, route_output: str) -> None:
    reply = hub.request("GET", hub.proxied("/_nbroutes/openapi.json"))
    assert reply.status == 200, (reply.status, reply.body)
    document = reply.json()
    server = hub.proxied("")
    assert document["servers"] == [{"url": server}]
    assert "/api/hello/{name}" in document["paths"]
    # What Swagger UI's "Try it out" sends: the server's URL + the path, from the page's origin.
    tried = hub.request("GET", server + "/api/hello/grace")
    assert tried.status == 200 and tried.json()["hello"] == "grace"


def test_the_docs_page_and_its_assets_load_through_the_proxy(hub: Hub, route_output: str) -> None:
    page_path = hub.proxied("/_nbroutes/docs")
    page = hub.request("GET", page_path)
    assert page.status == 200, (page.status, page.body)
    html = page.body.decode()
    assets = re.findall(r'(?:href|src)="([^"]+)"', html) + re.findall(r'url:\s*"([^"]+)"', html)
    assert len(assets) == 3, assets  # the stylesheet, the script, the document
    page_url = f"http://{HOST}:{hub.port}{page_path}"
    for asset in assets:
        resolved = urljoin(page_url, asset)
        assert resolved.startswith(f"http://{HOST}:{hub.port}{hub.proxied('/_nbroutes/')}"), (asset, resolved)
        reply = hub.request("GET", urlsplit(resolved).path)
        assert reply.status == 200, (asset, reply.status, reply.body[:200])
        assert len(reply.body) > 100, asset
    # The trailing-slash form redirects relative to itself, which works under any prefix.
    slash = hub.request("GET", page_path + "/")
    assert slash.status == 308
    assert urljoin(page_url + "/", slash.headers["location"]) == page_url


def test_openapi_fetched_directly_names_the_proxied_prefix_too(hub: Hub, route_output: str) -> None:
    """``curl`` from a Binder terminal reaches the port itself; the document still tells browsers the proxy."""
    conn = HTTPConnection(HOST, hub.nbroutes_port, timeout=10)
    try:
        conn.request("GET", "/_nbroutes/openapi.json")
        document = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert document["servers"] == [{"url": hub.proxied("")}]


WRITE_CELL = """%%route /api/notes
notes = []
def POST(req):
    notes.append(req.body)
    return {"notes": notes}, 201
"""


def test_the_hubs_name_and_same_origin_writes_pass_through_the_proxy(hub: Hub, route_output: str) -> None:
    """A browser on Binder: ``Host`` and ``Origin`` are the hub's public name, which jupyter-server-proxy keeps."""
    hub.execute(WRITE_CELL)
    public = {"Host": "hub.example.org", "Origin": "https://hub.example.org"}
    read = hub.request("GET", hub.proxied("/api/hello/ada"), headers={"Host": "hub.example.org"})
    assert read.status == 200, (read.status, read.body, hub.log_tail())
    written = hub.request("POST", hub.proxied("/api/notes"), {"title": "from the hub"}, headers=public)
    assert written.status == 201, (written.status, written.body)
    assert written.json() == {"notes": [{"title": "from the hub"}]}
    # A page on another site gets the write refused, though the proxy forwarded it.
    evil = {**public, "Origin": "https://evil.example"}
    refused = hub.request("POST", hub.proxied("/api/notes"), {"title": "csrf"}, headers=evil)
    assert refused.status == 403, (refused.status, refused.body)
    # The hub's name straight at the kernel's port, not through the proxy: a rebinding page's request.
    conn = HTTPConnection(HOST, hub.nbroutes_port, timeout=10)
    try:
        conn.request("GET", "/api/hello/ada", headers={"Host": "hub.example.org"})
        direct = conn.getresponse()
        assert direct.status == 403 and b"NBROUTES_ALLOWED_HOSTS" in direct.read()
    finally:
        conn.close()
