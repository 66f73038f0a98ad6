"""No web page may write to the notebook's API, and DNS rebinding may not read it.

A browser on the user's machine reaches the server on 127.0.0.1 in two ways a page should not have:
a cross-site form or ``fetch`` that writes (a form-encoded POST needs no CORS preflight), and DNS
rebinding, where the attacker's name resolves to 127.0.0.1 and the page reads the API as its own
origin, with ``Host: rebind.attacker.example``. Every request here goes over a real socket: the
Tornado ``Server`` in-process, ``nbroutes serve`` and uvicorn as subprocesses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbroutes import App, cors
from nbroutes.servers.tornado import Server
from tests.support import HTTPResult, nbroutes_serve, raw_request

from .servers import notebook, tornado_server, uvicorn_notebook

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
EVIL = "http://evil.example"


def todo_app(**options: Any) -> tuple[App, list[Any]]:
    """An App with ``/api/todos``: GET lists the rows, POST adds one; returns the App and its rows."""
    app = App(**options)
    rows: list[Any] = []

    @app.route("/api/todos", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def todos(req):  # type: ignore[no-untyped-def]  # annotations would make it a typed handler
        if req.method == "GET":
            return {"rows": rows}
        rows.append(req.body)
        return {"rows": rows}, 201

    return app, rows


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, list[Any]]]:
    """The todo App on the Tornado server at 127.0.0.1, as the kernel serves it."""
    monkeypatch.delenv("NBROUTES_ALLOWED_HOSTS", raising=False)
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    app, rows = todo_app()
    with tornado_server(app) as server:
        yield server, rows


def post(port: int, headers: dict[str, str], path: str = "/api/todos") -> HTTPResult:
    return raw_request(port, "POST", path, "title=csrf", {**FORM, **headers})


# -- cross-site writes ---------------------------------------------------------------------


def test_a_cross_site_form_post_is_refused_and_writes_nothing(served: tuple[Server, list[Any]]) -> None:
    server, rows = served
    answer = post(server.port, {"Origin": EVIL})
    assert answer.status == 403, answer.text
    assert rows == []
    detail = answer.json()["detail"]
    assert EVIL in detail and "cors(" in detail, detail


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null"},  # a sandboxed iframe, a data: URL, a file:// page
        {"Sec-Fetch-Site": "cross-site"},  # a browser that sent no Origin still says where the request came from
        {"Origin": "http://localhost:3000"},  # another server on this machine is another site
        {"Origin": "http://127.0.0.1"},  # same host, other port
    ],
    ids=["null", "fetch-metadata", "other-local-port", "no-port"],
)
def test_every_state_changing_method_from_another_site_is_refused(
    served: tuple[Server, list[Any]], method: str, headers: dict[str, str]
) -> None:
    server, rows = served
    answer = raw_request(server.port, method, "/api/todos", "title=csrf", {**FORM, **headers})
    assert answer.status == 403, answer.text
    assert rows == []


def test_same_origin_pages_and_scripts_still_write(served: tuple[Server, list[Any]]) -> None:
    server, rows = served
    port = server.port
    own = f"127.0.0.1:{port}"
    assert post(port, {"Host": own, "Origin": f"http://{own}"}).status == 201  # Swagger's "Try it out"
    assert post(port, {"Host": f"localhost:{port}", "Origin": f"http://LOCALHOST:{port}"}).status == 201
    assert post(port, {"Sec-Fetch-Site": "same-origin", "Origin": f"http://{own}"}).status == 201
    assert post(port, {}).status == 201  # curl, the request widget: no Origin at all
    assert post(port, {"Sec-Fetch-Site": "none"}).status == 201  # typed into the address bar, a bookmark
    assert len(rows) == 5


def test_cross_site_reads_and_preflights_pass_the_browser_keeps_their_answers(
    served: tuple[Server, list[Any]],
) -> None:
    server, _ = served
    assert raw_request(server.port, "GET", "/api/todos", headers={"Origin": EVIL}).status == 200
    preflight = raw_request(
        server.port, "OPTIONS", "/api/todos", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 204
    assert "access-control-allow-origin" not in preflight.headers  # so the browser sends no POST after it


def test_the_cors_policy_opens_writes_to_the_origins_it_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBROUTES_ALLOWED_HOSTS", raising=False)
    app, rows = todo_app()
    app.use(cors(["https://app.example"]), "/api/:path*")
    with tornado_server(app) as server:
        allowed = post(server.port, {"Origin": "https://app.example"})
        assert allowed.status == 201, allowed.text
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert post(server.port, {"Origin": EVIL}).status == 403
    assert len(rows) == 1

    anyone, rows = todo_app()
    anyone.use(cors("*"))
    with tornado_server(anyone) as server:
        assert post(server.port, {"Origin": EVIL}).status == 201
    assert len(rows) == 1


def test_a_cors_policy_on_other_paths_does_not_open_this_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBROUTES_ALLOWED_HOSTS", raising=False)
    app, rows = todo_app()
    app.use(cors("*"), "/api/public/:path*")
    with tornado_server(app) as server:
        assert post(server.port, {"Origin": EVIL}).status == 403
    assert rows == []


# -- the Host header: DNS rebinding ---------------------------------------------------------


def test_a_rebound_host_is_refused_and_the_refusal_names_the_option(served: tuple[Server, list[Any]]) -> None:
    server, _ = served
    answer = raw_request(server.port, "GET", "/api/todos", headers={"Host": "rebind.attacker.example"})
    assert answer.status == 403, answer.text
    detail = answer.json()["detail"]
    assert "rebind.attacker.example" in detail
    assert "--allowed-host rebind.attacker.example" in detail
    assert "NBROUTES_ALLOWED_HOSTS=rebind.attacker.example" in detail
    assert "rows" not in answer.text


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}",
        "127.0.0.1",
        "localhost:{port}",
        "LocalHost:{port}",
        "localhost.:{port}",
        "app.localhost:{port}",  # *.localhost resolves to loopback in the browser itself: it cannot be rebound
        "[::1]:{port}",
        "[::1]",
        "10.1.2.3:{port}",  # an IP address cannot be rebound either
    ],
)
def test_loopback_names_and_ip_addresses_are_answered(served: tuple[Server, list[Any]], host: str) -> None:
    server, _ = served
    answer = raw_request(server.port, "GET", "/api/todos", headers={"Host": host.format(port=server.port)})
    assert answer.status == 200, answer.text


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:{port}",
        "localhost.attacker.example:{port}",
        "127.0.0.1.nip.io:{port}",
        "localhost@attacker.example",
        "evil.example#.localhost",
        "[::1",
    ],
)
def test_other_names_are_refused(served: tuple[Server, list[Any]], host: str) -> None:
    server, _ = served
    assert raw_request(server.port, "GET", "/api/todos", headers={"Host": host.format(port=server.port)}).status == 403


def test_allowed_hosts_come_from_the_app_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBROUTES_ALLOWED_HOSTS", " from-env.example ,other.example")
    app, _ = todo_app(allowed_hosts=["api.example.com", ".example.org"])
    with tornado_server(app) as server:

        def status(host: str) -> int:
            return raw_request(server.port, "GET", "/api/todos", headers={"Host": host}).status

        assert status("api.example.com") == 200
        assert status("API.Example.COM:443") == 200  # names are case-insensitive; the port is not checked
        assert status("example.org") == 200 and status("deep.sub.example.org") == 200  # ".name": it and below
        assert status("from-env.example") == 200 and status("other.example") == 200
        assert status("example.com") == 403 and status("evil-example.org") == 403


def test_a_star_turns_the_host_check_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBROUTES_ALLOWED_HOSTS", "*")
    app, rows = todo_app()
    with tornado_server(app) as server:
        assert raw_request(server.port, "GET", "/api/todos", headers={"Host": "anything.example"}).status == 200
        assert post(server.port, {"Host": "anything.example", "Origin": EVIL}).status == 403  # writes still checked
    assert rows == []


def test_a_server_bound_to_a_name_answers_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBROUTES_ALLOWED_HOSTS", raising=False)
    app, _ = todo_app()
    with tornado_server(app) as server:
        server.app.allow_hosts("box.internal")  # what Server.start does with the name it binds
        assert raw_request(server.port, "GET", "/api/todos", headers={"Host": "box.internal:8000"}).status == 200


# -- behind jupyter-server-proxy under JupyterHub and Binder ------------------------------------


def test_requests_the_jupyter_proxy_forwarded_keep_the_hubs_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """jupyter-server-proxy keeps the browser's ``Host`` (the hub's public name) and says where it forwarded from."""
    monkeypatch.delenv("NBROUTES_ALLOWED_HOSTS", raising=False)
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    app, rows = todo_app()
    with tornado_server(app) as server:
        hub = "hub.example.org"
        forwarded = {"Host": hub, "X-Forwarded-Context": f"/user/ada/proxy/{server.port}"}
        assert raw_request(server.port, "GET", "/api/todos", headers=forwarded).status == 200
        # The page's origin is the hub's (https), the request's Host the same name: same origin.
        assert post(server.port, {**forwarded, "Origin": f"https://{hub}"}).status == 201
        assert post(server.port, {**forwarded, "Origin": EVIL}).status == 403
        assert raw_request(server.port, "GET", "/api/todos", headers={"Host": hub}).status == 403
        other_user = {"Host": hub, "X-Forwarded-Context": f"/user/eve/proxy/{server.port}"}
        assert raw_request(server.port, "GET", "/api/todos", headers=other_user).status == 403
    assert len(rows) == 1

    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX")
    app, _ = todo_app()
    with tornado_server(app) as server:  # outside JupyterHub the header proves nothing
        forwarded = {"Host": "hub.example.org", "X-Forwarded-Context": f"/user/ada/proxy/{server.port}"}
        assert raw_request(server.port, "GET", "/api/todos", headers=forwarded).status == 403


# -- nbroutes serve and the ASGI app ---------------------------------------------------------------

TODO_CELLS = (
    "%load_ext nbroutes",
    "rows = []",
    "%%route /api/todos\n"
    "def GET(req):\n    return {'rows': rows}\n"
    "def POST(req):\n    rows.append(req.body)\n    return {'rows': rows}, 201\n",
)


def test_nbroutes_serve_refuses_other_hosts_and_cross_site_writes(tmp_path: Path) -> None:
    path = notebook(tmp_path / "todo.ipynb", *TODO_CELLS)
    with nbroutes_serve(path, "--allowed-host", "api.example.com", "--allowed-host", "x.example.net") as served:
        port = served.port
        assert raw_request(port, "GET", "/api/todos", headers={"Host": "api.example.com"}).status == 200
        assert raw_request(port, "GET", "/api/todos", headers={"Host": "x.example.net"}).status == 200
        refused = raw_request(port, "GET", "/api/todos", headers={"Host": "rebind.attacker.example"})
        assert refused.status == 403 and "--allowed-host rebind.attacker.example" in refused.json()["detail"]
        assert post(port, {"Origin": EVIL}).status == 403
        assert post(port, {"Host": "api.example.com", "Origin": "https://api.example.com"}).status == 201
        assert raw_request(port, "GET", "/api/todos").json() == {"rows": [{"title": "csrf"}]}


def test_the_asgi_app_under_uvicorn_takes_its_hosts_from_the_environment(tmp_path: Path) -> None:
    path = notebook(tmp_path / "todo.ipynb", *TODO_CELLS)
    with uvicorn_notebook(path) as served:
        port = served.port
        assert raw_request(port, "GET", "/api/todos").status == 200
        refused = raw_request(port, "GET", "/api/todos", headers={"Host": "api.example.com"})
        assert refused.status == 403
        # A deployed app behind a real domain: the refusal says how to name it.
        assert "NBROUTES_ALLOWED_HOSTS=api.example.com" in refused.json()["detail"]
        assert post(port, {"Origin": EVIL}).status == 403
        assert raw_request(port, "GET", "/api/todos").json() == {"rows": []}
    with uvicorn_notebook(path, env={"NBROUTES_ALLOWED_HOSTS": "api.example.com"}) as served:
        assert raw_request(served.port, "GET", "/api/todos", headers={"Host": "api.example.com"}).status == 200
