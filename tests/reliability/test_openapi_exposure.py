"""The OpenAPI document says which routes need a token, and every server can be told to serve no docs at all.

Over raw sockets: the document as ``nbroutes serve``, uvicorn and a kernel serve it, and the docs turned off on
the Tornado server in-process, an App under uvicorn, ``nbroutes serve`` and a notebook under uvicorn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nbroutes import App
from tests.support import nbroutes_serve, raw_request

from .servers import HOSTILE_TOKEN, notebook, tornado_server, uvicorn_app, uvicorn_notebook

DOCS = ["/_nbroutes/openapi.json", "/_nbroutes/docs"]


def test_served_the_document_marks_the_protected_route_with_its_bearer_scheme(hostile):
    spec = raw_request(hostile.port, "GET", "/_nbroutes/openapi.json").json()
    assert spec["components"]["securitySchemes"] == {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    assert spec["paths"]["/api/admin/stats"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in spec["paths"]["/api/ok"]["get"]
    assert raw_request(hostile.port, "GET", "/api/admin/stats").status == 401
    bearer = {"Authorization": f"Bearer {HOSTILE_TOKEN}"}
    assert raw_request(hostile.port, "GET", "/api/admin/stats", headers=bearer).json() == {"admin": True}
    assert raw_request(hostile.port, "GET", "/_nbroutes/docs").status == 200


APP_SOURCE = """
import nbroutes.asgi
from nbroutes import App

app = App(docs=False)


@app.route("/api/ok")
def ok(req):
    return {"ok": True}


asgi = nbroutes.asgi.app(app)
"""

OK_CELLS = ("%load_ext nbroutes", "%%route GET /api/ok\nreturn {'ok': True}")


@contextmanager
def without_docs(adapter: str, here: Path) -> Iterator[int]:
    """A server whose docs were turned off the way ``adapter`` offers; yields its port."""
    if adapter == "tornado App(docs=False)":
        app = App(docs=False)
        app.route("/api/ok")(lambda req: {"ok": True})
        with tornado_server(app) as server:
            yield server.port
    elif adapter == "uvicorn App(docs=False)":
        with uvicorn_app(APP_SOURCE, here) as process:
            yield process.port
    elif adapter == "serve --no-docs":
        with nbroutes_serve(notebook(here / "ok.ipynb", *OK_CELLS), "--no-docs") as process:
            yield process.port
    elif adapter == "serve NBROUTES_DOCS=0":
        with nbroutes_serve(notebook(here / "ok.ipynb", *OK_CELLS), env={"NBROUTES_DOCS": "0"}) as process:
            yield process.port
    else:
        with uvicorn_notebook(notebook(here / "ok.ipynb", *OK_CELLS), env={"NBROUTES_DOCS": "0"}) as process:
            yield process.port


@pytest.mark.parametrize(
    "adapter",
    [
        "tornado App(docs=False)",
        "uvicorn App(docs=False)",
        "serve --no-docs",
        "serve NBROUTES_DOCS=0",
        "uvicorn notebook NBROUTES_DOCS=0",
    ],
)
def test_docs_turned_off_are_404_and_the_routes_still_answer(adapter: str, tmp_path: Path) -> None:
    with without_docs(adapter, tmp_path) as port:
        for path in DOCS:
            answer = raw_request(port, "GET", path)
            assert answer.status == 404, (path, answer)
        assert raw_request(port, "GET", "/api/ok").json() == {"ok": True}
