"""Middleware matches exactly the path that routing matches: no spelling of a protected path gets past it.

Every request here is written byte for byte on a raw socket, to nbroutes' Tornado server in-process, to
``nbroutes serve`` and a real uvicorn, and in a real kernel, because http clients normalise the very targets an
attacker sends.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from tests.support import raw_request

from .servers import ADAPTERS, notebook, serve_notebook, tornado_server, uvicorn_app

TOKEN = "s3cret-token"

APP_SOURCE = f"""
import os

import nbroutes.asgi
from nbroutes import App, require_token

os.environ["BYPASS_TEST_TOKEN"] = {TOKEN!r}
app = App()
app.use(require_token("BYPASS_TEST_TOKEN"), "/api/admin/:path*")
app.use(require_token("BYPASS_TEST_TOKEN"), "/api/files/:name", owner="files-guard")


@app.route("/api/admin/secret")
def secret(req):
    return {{"secret": "the launch codes"}}


@app.route("/api/files/[name]")
def file(req):
    return {{"file": req.params["name"]}}


@app.route("/api/public/[...rest]")
def public(req):
    return {{"rest": req.params["rest"]}}


asgi = nbroutes.asgi.app(app)
"""

#: The same routes and guards as notebook cells, for ``nbroutes serve`` and the kernel.
CELLS = (
    "%load_ext nbroutes",
    f"import os\nimport nbroutes\n\nos.environ['BYPASS_TEST_TOKEN'] = {TOKEN!r}",
    "nbroutes.middleware(nbroutes.require_token('BYPASS_TEST_TOKEN'), matcher='/api/admin/:path*')",
    "nbroutes.middleware(nbroutes.require_token('BYPASS_TEST_TOKEN'), matcher='/api/files/:name')",
    "%%route /api/admin/secret\ndef GET(req):\n    return {'secret': 'the launch codes'}",
    "%%route /api/files/[name]\ndef GET(req):\n    return {'file': req.params['name']}",
    "%%route /api/public/[...rest]\ndef GET(req):\n    return {'rest': req.params['rest']}",
)


def make_app():
    namespace: dict[str, object] = {}
    exec(compile(APP_SOURCE, "appmod.py", "exec"), namespace)
    return namespace["app"]


@pytest.fixture(scope="module", params=["tornado", "uvicorn-app", *ADAPTERS])
def port(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The same routes on nbroutes' Tornado server, under a real uvicorn, and as a notebook served three ways."""
    here = tmp_path_factory.mktemp("bypass")
    if request.param == "tornado":
        with tornado_server(make_app()) as server:
            yield server.port
    elif request.param == "uvicorn-app":
        with uvicorn_app(APP_SOURCE, here) as process:
            yield process.port
    else:
        with serve_notebook(request.param, notebook(here / "bypass.ipynb", *CELLS)) as served:
            yield served.port


#: uvicorn picks httptools over h11 when it is installed.
HTTPTOOLS = importlib.util.find_spec("httptools") is not None

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_the_protected_path_needs_the_token(port: int) -> None:
    assert raw_request(port, "GET", "/api/admin/secret").status == 401
    answer = raw_request(port, "GET", "/api/admin/secret", headers=AUTH)
    assert answer.status == 200 and answer.json() == {"secret": "the launch codes"}


@pytest.mark.parametrize(
    "target",
    [
        "/api/%61dmin/secret",  # routing decodes %61 to 'a'
        "/%61pi/admin/secret",
        "/api/%61%64%6d%69%6e/secret",
        "/api/admin/%73ecret",
        "/api/adm%69n/secret?x=1",
    ],
)
def test_a_percent_encoded_spelling_still_meets_the_middleware(port: int, target: str) -> None:
    answer = raw_request(port, "GET", target)
    assert answer.status == 401, answer
    assert b"launch codes" not in answer.body
    assert raw_request(port, "GET", target, headers=AUTH).json() == {"secret": "the launch codes"}


def test_an_encoded_slash_does_not_take_a_parameter_out_of_its_matcher(port: int) -> None:
    # Routing keeps %2F inside one segment, so [name] is "a/b": a matcher on the decoded and re-joined path
    # ("/api/files/a/b") would miss ":name" and let the request through.
    answer = raw_request(port, "GET", "/api/files/a%2Fb")
    assert answer.status == 401, answer
    assert raw_request(port, "GET", "/api/files/a%2Fb", headers=AUTH).json() == {"file": "a/b"}
    assert raw_request(port, "GET", "/api/files/%61%2f%62", headers=AUTH).json() == {"file": "a/b"}


@pytest.mark.parametrize("target", ["api/admin/secret", "*", "http://127.0.0.1/api/admin/secret", "api"])
def test_a_target_that_is_not_origin_form_is_400(port: int, target: str) -> None:
    answer = raw_request(port, "GET", target)
    assert b"launch codes" not in answer.body
    if answer.headers.get("server") == "uvicorn" and HTTPTOOLS:
        # uvicorn's httptools parser (uvicorn[standard]) answers a bare target with its own 400 and hands an
        # absolute-form one on as its path, which the token middleware then guards: no handler sees either.
        assert answer.status in (400, 401), answer
        return
    assert answer.status == 400, answer
    assert "must start with '/'" in answer.json()["detail"]


def test_options_asterisk_is_400_not_a_route(port: int) -> None:
    answer = raw_request(port, "OPTIONS", "*")
    assert answer.status == 400, answer


@pytest.mark.parametrize(
    "target",
    [
        "/api/public/../admin/secret",
        "/api/public/%2e%2e/admin/secret",
        "/api/public/%2E%2E/admin/secret",
        "/api/public/./x",
        "/api/public/.%2e/x",
        "/api/files/..",
    ],
)
def test_dot_segments_are_400(port: int, target: str) -> None:
    # A catch-all or a [name] handed ".." is a path traversal waiting for a handler that opens files.
    answer = raw_request(port, "GET", target, headers=AUTH)
    assert answer.status == 400, answer
    assert "'.' and '..'" in answer.json()["detail"]


@pytest.mark.parametrize(
    "target, location",
    [
        ("/api//admin/secret", "/api/admin/secret"),
        ("//api/admin/secret", "/api/admin/secret"),
        ("/api/admin//secret?x=1", "/api/admin/secret?x=1"),
        ("/api/public//x", "/api/public/x"),
    ],
)
def test_doubled_slashes_redirect_to_the_one_path(port: int, target: str, location: str) -> None:
    # As Next.js does: one spelling per resource, whose request then meets the middleware like any other.
    answer = raw_request(port, "GET", target, headers=AUTH)
    assert answer.status == 308, answer
    assert answer.headers["location"] == location
    assert b"launch codes" not in answer.body
    assert raw_request(port, "GET", target).status in (308, 401)  # '/api/admin//x' is still under '/api/admin/:path*'


def test_dots_inside_a_segment_are_ordinary(port: int) -> None:
    assert raw_request(port, "GET", "/api/public/a..b/.x/x.", headers=AUTH).json() == {"rest": ["a..b", ".x", "x."]}


def test_other_paths_stay_open(port: int) -> None:
    assert raw_request(port, "GET", "/api/public/a%20b/c").json() == {"rest": ["a b", "c"]}
