"""Route cells compiled into endpoints: the pages, method and body forms, the namespace, and line numbers.

Moved here from tests/core/test_app.py, which keeps what the compiled cells answer through an App.
"""

import traceback

import pytest

from nbroutes import App
from nbroutes.core.output import Console
from nbroutes.errors import CellError
from nbroutes.kernel.cells import compile_cell
from nbroutes.testing import TestClient

TEXT = "text/plain; charset=utf-8"

PAGES_CELL = """
def handler(req, res):
    res.status(200).json({"method": req.method})
"""

METHOD_CELL = """
def GET(req):
    return {"items": [1, 2, 3]}

def POST(req, res):
    res.status(201)
    return {"created": req.body}

def DELETE():
    return None
"""

BODY_CELL = """
calls.append(req.method)
{"calls": len(calls), "id": req.query["id"]}
"""


def add_cell(app, pattern, source, namespace=None, **options):
    """Register a route cell as the notebook does: compile it, then add its endpoints."""
    compiled = compile_cell(source, {} if namespace is None else namespace)
    app.add(pattern, compiled.endpoints, **options)
    return compiled


# -- the body form -------------------------------------------------------------------------


def test_body_form_does_not_run_at_registration():
    namespace = {"calls": []}
    compiled = compile_cell("calls.append(1)\n{'n': len(calls)}", namespace)
    assert compiled.form == "body"
    assert namespace["calls"] == []
    local = App()
    local.add("/api/run", compiled.endpoints)
    with TestClient(local) as c:
        assert c.get("/api/run").json() == {"n": 1}
        assert c.get("/api/run").json() == {"n": 2}
    assert namespace["calls"] == [1, 1]


def test_body_form_with_await_is_async():
    compiled = compile_cell("import asyncio\nawait asyncio.sleep(0)\n{'async': True}", {})
    assert compiled.endpoints["*"].is_async
    local = App()
    local.add("/api/a", compiled.endpoints)
    with TestClient(local) as c:
        assert c.get("/api/a").json() == {"async": True}


def test_body_form_without_await_is_sync():
    assert not compile_cell("{'a': 1}", {}).endpoints["*"].is_async


# -- cells and the namespace ---------------------------------------------------------------


def test_cell_forms():
    assert compile_cell(PAGES_CELL, {}).form == "pages"
    assert compile_cell(METHOD_CELL, {}).form == "method"
    assert sorted(compile_cell(METHOD_CELL, {}).endpoints) == ["DELETE", "GET", "POST"]
    assert compile_cell(BODY_CELL, {}).form == "body"


def test_handler_names_are_not_left_in_the_namespace():
    namespace = {}
    compile_cell(PAGES_CELL, namespace)
    compile_cell(METHOD_CELL, namespace)
    assert not {"handler", "GET", "POST", "DELETE"} & set(namespace)


def test_previous_values_of_handler_names_are_restored():
    namespace = {"GET": "my GET", "handler": "my handler"}
    compile_cell(METHOD_CELL + "\ndef helper():\n    return 1\n", namespace)
    compile_cell(PAGES_CELL, namespace)
    assert namespace["GET"] == "my GET"
    assert namespace["handler"] == "my handler"
    assert "POST" not in namespace
    assert namespace["helper"]() == 1  # helpers and imports stay, for the handlers to use


def test_handlers_see_namespace_globals_live():
    namespace = {"greeting": "hello"}
    local = App()
    add_cell(local, "/api/method", "def GET(req):\n    return {'greeting': greeting}\n", namespace)
    add_cell(local, "/api/body", "{'greeting': greeting}", namespace)
    with TestClient(local) as c:
        assert c.get("/api/method").json() == {"greeting": "hello"}
        namespace["greeting"] = "bye"
        assert c.get("/api/method").json() == {"greeting": "bye"}
        assert c.get("/api/body").json() == {"greeting": "bye"}


def test_cell_defining_handler_and_get_is_refused():
    namespace = {}
    with pytest.raises(CellError, match="both handler and GET"):
        compile_cell("def handler(req, res):\n    pass\n\ndef GET(req):\n    pass\n", namespace)
    assert namespace == {}


def test_syntax_error_names_the_line():
    with pytest.raises(CellError, match="line 2"):
        compile_cell("x = 1\ndef GET(req)\n    return 1\n", {})


def test_line_offset_shifts_the_syntax_error_line():
    with pytest.raises(CellError, match="line 3"):
        compile_cell("x = 1\ndef GET(req)\n    return 1\n", {}, line_offset=1)


@pytest.mark.parametrize("offset", [0, 1, 5])
def test_line_offset_shifts_traceback_lines(offset):
    local = App()
    compiled = compile_cell("def GET(req):\n    raise ValueError('boom')\n", {}, "<cell>", line_offset=offset)
    local.add("/api/x", compiled.endpoints, console=Console())
    with TestClient(local, raise_server_exceptions=True) as c, pytest.raises(ValueError) as info:
        c.get("/api/x")
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (frame.filename, frame.lineno) == ("<cell>", 2 + offset)


def test_async_method_handler():
    local = App()
    add_cell(local, "/api/a", "import asyncio\n\nasync def GET(req):\n    await asyncio.sleep(0)\n    return 'done'\n")
    with TestClient(local) as c:
        response = c.get("/api/a")
    assert response.text == "done"
    assert response.headers["content-type"] == TEXT


@pytest.mark.parametrize(
    ("source", "hint"),
    [
        ("def get(req, res):\n    return {'a': 1}", "name it GET to answer GET requests"),
        ("async def post(req):\n    return 1", "name it POST"),
        ('"""Users."""\ndef users(req):\n    return []', "GET, POST, ... (one function per method) or handler"),
    ],
)
def test_a_cell_that_only_defines_functions_nbroutes_does_not_call_is_refused(source: str, hint: str) -> None:
    # As a body it would define the function on every request and answer 204: refused, with the name to use.
    with pytest.raises(CellError, match="but no handler nbroutes calls") as caught:
        compile_cell(source, {})
    assert hint in str(caught.value)


def test_a_body_that_defines_a_helper_and_uses_it_is_still_a_body() -> None:
    compiled = compile_cell("def double(x):\n    return 2 * x\n{'n': double(21)}", {})
    assert compiled.form == "body"
