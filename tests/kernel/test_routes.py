"""Route cells in a real kernel: loading, the three cell forms, cell identity, the route: tag and broken cells.

One kernel serves the module; every test uses its own paths and cell ids.
"""

from __future__ import annotations

import json
from http.client import HTTPConnection

from .conftest import HOST, Kernel

USERS = '%%route /api/users/[id]\ndef GET(req, res):\n    return {"id": req.query["id"], "name": "Ada"}'


# -- 1. load and the issue's example ------------------------------------------------------


def test_load_prints_the_url_on_the_env_port_and_serves_the_issue_example(kernel: Kernel) -> None:
    assert kernel.load_result is not None
    assert kernel.load_result.stdout == f"nbroutes: serving on http://{HOST}:{kernel.env_port}\n"
    assert kernel.load_result.stderr == ""

    cell = kernel.ok(USERS)
    assert cell.stderr == ""
    [display] = cell.displays
    assert display["data"]["text/plain"] == f"GET /api/users/[id]  http://{HOST}:{kernel.env_port}/api/users/[id]"
    assert "/api/users/[id]" in kernel.widget_text(cell.card)

    r = kernel.get("/api/users/42")
    assert r.status == 200
    assert r.body == b'{"id":"42","name":"Ada"}'
    assert r.header("content-type") == "application/json; charset=utf-8"


# -- 2. re-running a cell -----------------------------------------------------------------


def test_rerunning_the_cell_changes_the_very_next_response(kernel: Kernel) -> None:
    meta = {"cellId": "rerun"}
    kernel.ok('%%route /api/rerun\ndef GET(req):\n    return {"version": 1}', meta)
    assert kernel.get("/api/rerun").json() == {"version": 1}
    kernel.ok('%%route /api/rerun\ndef GET(req):\n    return {"version": 2}', meta)
    assert kernel.get("/api/rerun").json() == {"version": 2}


def test_rerunning_the_cell_changes_the_next_response_on_a_kept_alive_connection(kernel: Kernel) -> None:
    meta = {"cellId": "rerun-keepalive"}
    kernel.ok('%%route /api/rerun-ka\ndef GET(req):\n    return {"version": 1}', meta)
    conn = HTTPConnection(HOST, kernel.port, timeout=10)
    try:
        conn.request("GET", "/api/rerun-ka")
        assert json.loads(conn.getresponse().read()) == {"version": 1}
        kernel.ok('%%route /api/rerun-ka\ndef GET(req):\n    return {"version": 2}', meta)
        conn.request("GET", "/api/rerun-ka")
        assert json.loads(conn.getresponse().read()) == {"version": 2}
    finally:
        conn.close()


def test_rerunning_a_cell_without_cell_id_changes_the_very_next_response(kernel: Kernel) -> None:
    kernel.ok('%%route /api/rerun-anon\ndef GET(req):\n    return {"version": 1}')
    assert kernel.get("/api/rerun-anon").json() == {"version": 1}
    kernel.ok('%%route /api/rerun-anon\ndef GET(req):\n    return {"version": 2}')
    assert kernel.get("/api/rerun-anon").json() == {"version": 2}


# -- 3. the three forms -------------------------------------------------------------------


def test_pages_form_answers_every_method_and_sees_req_method(kernel: Kernel) -> None:
    kernel.ok(
        "%%route /api/pages\n"
        "def handler(req, res):\n"
        "    if req.method == 'POST':\n"
        "        return {'created': True}\n"
        "    return {'method': req.method}\n",
        {"cellId": "pages"},
    )
    assert kernel.get("/api/pages").json() == {"method": "GET"}
    assert kernel.request("POST", "/api/pages", b"").json() == {"created": True}
    assert kernel.request("DELETE", "/api/pages").json() == {"method": "DELETE"}


def test_method_form_two_cells_both_define_get_and_leave_no_get_in_the_namespace(kernel: Kernel) -> None:
    kernel.ok("%%route /api/method-one\ndef GET(req):\n    return {'cell': 'one'}", {"cellId": "method-1"})
    kernel.ok(
        "%%route /api/method-two\n"
        "import json as _json_in_route\n"
        "def helper():\n"
        "    return 'two'\n"
        "def GET(req):\n"
        "    return {'cell': helper()}\n"
        "def POST(req):\n"
        "    return {'posted': req.body}\n",
        {"cellId": "method-2"},
    )
    assert kernel.get("/api/method-one").json() == {"cell": "one"}
    assert kernel.get("/api/method-two").json() == {"cell": "two"}
    posted = kernel.request("POST", "/api/method-two", b'{"a": 1}', {"Content-Type": "application/json"})
    assert posted.status == 200
    assert posted.json() == {"posted": {"a": 1}}
    # method-one defines no POST
    refused = kernel.request("POST", "/api/method-one", b"")
    assert refused.status == 405
    assert "GET" in refused.header("allow")

    check = kernel.ok("print('GET' in globals(), 'POST' in globals(), 'helper' in globals())")
    assert check.stdout == "False False True\n"


def test_method_form_leaves_a_users_own_get_as_it_was(kernel: Kernel) -> None:
    kernel.ok("GET = 'the notebook variable'")
    kernel.ok("%%route /api/method-three\ndef GET(req):\n    return {'cell': 'three'}", {"cellId": "method-3"})
    assert kernel.get("/api/method-three").json() == {"cell": "three"}
    assert kernel.ok("print(GET)").stdout == "the notebook variable\n"
    kernel.ok("del GET")


def test_body_form_does_not_run_at_registration_and_its_last_expression_is_the_response(kernel: Kernel) -> None:
    kernel.ok("body_calls = []")
    kernel.ok(
        "%%route /api/body-form\nbody_calls.append(req.method)\n{'calls': len(body_calls), 'q': req.query.get('q')}",
        {"cellId": "body-form"},
    )
    assert kernel.ok("print(len(body_calls))").stdout == "0\n"

    r = kernel.get("/api/body-form?q=x")
    assert r.status == 200
    assert r.json() == {"calls": 1, "q": "x"}
    assert kernel.ok("print(body_calls)").stdout == "['GET']\n"


def test_handlers_see_a_global_changed_by_a_later_cell(kernel: Kernel) -> None:
    kernel.ok("greeting = 'hello'")
    kernel.ok("%%route /api/greet\ndef GET(req):\n    return {'greeting': greeting}", {"cellId": "greet"})
    assert kernel.get("/api/greet").json() == {"greeting": "hello"}
    kernel.ok("greeting = 'goodbye'")
    assert kernel.get("/api/greet").json() == {"greeting": "goodbye"}


# -- 4. cell identity ---------------------------------------------------------------------


def test_same_cell_id_with_a_new_path_moves_the_route(kernel: Kernel) -> None:
    meta = {"cellId": "cell-a"}
    kernel.ok("%%route /api/ident/a\ndef GET(req):\n    return {'at': 'a'}", meta)
    assert kernel.get("/api/ident/a").json() == {"at": "a"}

    kernel.ok("%%route /api/ident/b\ndef GET(req):\n    return {'at': 'b'}", meta)
    assert kernel.get("/api/ident/a").status == 404
    r = kernel.get("/api/ident/b")
    assert r.status == 200
    assert r.json() == {"at": "b"}


def test_a_cell_that_is_no_longer_a_route_cell_removes_its_route(kernel: Kernel) -> None:
    meta = {"cellId": "cell-gone"}
    kernel.ok("%%route /api/ident/gone\ndef GET(req):\n    return {'here': True}", meta)
    assert kernel.get("/api/ident/gone").status == 200

    plain = kernel.ok("x_gone = 1", meta)
    assert "/api/ident/gone" in plain.stderr
    assert kernel.get("/api/ident/gone").status == 404


def test_without_cell_id_the_path_is_the_identity(kernel: Kernel) -> None:
    kernel.ok("%%route /api/ident/p1\ndef GET(req):\n    return {'cell': 'first'}")
    kernel.ok("%%route /api/ident/p2\ndef GET(req):\n    return {'cell': 'other'}")
    second = kernel.ok("%%route /api/ident/p1\ndef GET(req):\n    return {'cell': 'second'}")
    assert "was served by" not in second.stderr  # the same owner: nothing was taken from another cell

    assert kernel.get("/api/ident/p1").json() == {"cell": "second"}
    # another path registered without a cell id is another route, untouched
    assert kernel.get("/api/ident/p2").json() == {"cell": "other"}


def test_another_cell_claiming_a_path_replaces_the_route_and_warns_naming_both(kernel: Kernel) -> None:
    first = kernel.ok("%%route /api/ident/shared\ndef GET(req):\n    return {'owner': 1}", {"cellId": "owner-1"})
    assert first.stderr == ""
    assert kernel.get("/api/ident/shared").json() == {"owner": 1}

    second = kernel.ok("%%route /api/ident/shared\ndef GET(req):\n    return {'owner': 2}", {"cellId": "owner-2"})
    assert kernel.get("/api/ident/shared").json() == {"owner": 2}
    assert first.label in second.stderr, second.stderr
    assert "this cell" in second.stderr
    assert second.label in second.stderr
    assert "/api/ident/shared" in second.stderr


# -- 5. the route: tag --------------------------------------------------------------------


def test_route_tag_makes_a_cell_without_a_magic_line_a_route(kernel: Kernel) -> None:
    cell = kernel.ok(
        "def GET(req):\n    return {'tagged': True}",
        {"tags": ["route:/api/tagged"], "cellId": "t1"},
    )
    assert len(cell.displays) == 1
    r = kernel.get("/api/tagged")
    assert r.status == 200
    assert r.json() == {"tagged": True}
    assert kernel.ok("print('GET' in globals())").stdout == "False\n"


def test_route_tag_with_methods_restricts_them(kernel: Kernel) -> None:
    kernel.ok(
        "def handler(req, res):\n    return {'method': req.method}",
        {"tags": ["notes", "route:GET,POST:/api/tagged2"], "cellId": "t2"},
    )
    assert kernel.get("/api/tagged2").json() == {"method": "GET"}
    assert kernel.request("POST", "/api/tagged2", b"").json() == {"method": "POST"}

    refused = kernel.request("PUT", "/api/tagged2", b"")
    assert refused.status == 405
    allow = {m.strip() for m in refused.header("allow").split(",")}
    assert {"GET", "POST"} <= allow
    assert "PUT" not in allow


def test_route_tag_cell_reports_the_lines_of_the_cell_as_written(kernel: Kernel) -> None:
    """The tag adds no line to the cell the user sees: its line 2 is line 2 in tracebacks and syntax errors."""
    meta = {"tags": ["route:/api/tagged-lines"], "cellId": "t-lines"}
    cell = kernel.ok("def GET(req):\n    return 1 / 0", meta)
    assert kernel.get("/api/tagged-lines").status == 500
    text = kernel.wait_for_card(cell.card, "ZeroDivisionError")
    assert "line 2, in GET" in text, text

    broken = kernel.execute("def GET(req):\n    return 1 +\n", meta)
    assert broken.status == "error"
    assert "SyntaxError in route cell, line 2" in broken.error_text, broken.error_text


# -- 6. broken cells keep the old route -----------------------------------------------------


def test_syntax_error_keeps_the_old_route(kernel: Kernel) -> None:
    meta = {"cellId": "keep"}
    kernel.ok("%%route /api/keep\ndef GET(req):\n    return {'kept': True}", meta)
    assert kernel.get("/api/keep").json() == {"kept": True}

    broken = kernel.execute("%%route /api/keep\ndef GET(req):\n    return {'kept': False\n\nx = (", meta)
    assert broken.status == "error"
    assert broken.error is not None and broken.error["ename"] == "UsageError"
    assert "UsageError" in broken.error_text
    assert "SyntaxError in route cell, line " in broken.error_text

    r = kernel.get("/api/keep")
    assert r.status == 200
    assert r.json() == {"kept": True}


def test_syntax_error_names_the_cell_line(kernel: Kernel) -> None:
    broken = kernel.execute("%%route /api/keep-line\ndef GET(req):\n    return 1 +\n", {"cellId": "keep-line"})
    assert broken.status == "error"
    # line 1 is the %%route line, so the bad return is line 3 of the cell
    assert "SyntaxError in route cell, line 3" in broken.error_text
    assert kernel.get("/api/keep-line").status == 404


def test_bad_pattern_is_a_usage_error(kernel: Kernel) -> None:
    bad = kernel.execute("%%route /api/[a\ndef GET(req):\n    return 1", {"cellId": "bad-pattern"})
    assert bad.status == "error"
    assert bad.error is not None and bad.error["ename"] == "UsageError"
    assert "[a" in bad.error_text
    assert "Traceback" not in bad.error_text


def test_catch_all_not_last_is_a_usage_error(kernel: Kernel) -> None:
    bad = kernel.execute("%%route /api/[...a]/b\ndef GET(req):\n    return 1", {"cellId": "bad-catch-all"})
    assert bad.status == "error"
    assert bad.error is not None and bad.error["ename"] == "UsageError"
    assert "[...a]" in bad.error_text
    assert "last" in bad.error_text


def test_two_names_for_one_dynamic_segment_is_a_usage_error_and_keeps_the_first(kernel: Kernel) -> None:
    kernel.ok("%%route /api/dyn/[id]\ndef GET(req, id):\n    return {'id': id}", {"cellId": "dyn-1"})
    bad = kernel.execute("%%route /api/dyn/[uid]/y\ndef GET(req):\n    return 1", {"cellId": "dyn-2"})
    assert bad.status == "error"
    assert bad.error is not None and bad.error["ename"] == "UsageError"
    assert "[uid]" in bad.error_text
    assert "[id]" in bad.error_text

    assert kernel.get("/api/dyn/7").json() == {"id": "7"}
    assert kernel.get("/api/dyn/7/y").status == 404


def test_renaming_a_dynamic_segment_in_the_same_cell_is_no_conflict(kernel: Kernel) -> None:
    meta = {"cellId": "dyn-rename"}
    kernel.ok("%%route /api/dyn-rename/[id]\ndef GET(req, id):\n    return {'id': id}", meta)
    kernel.ok("%%route /api/dyn-rename/[uid]\ndef GET(req, uid):\n    return {'uid': uid}", meta)
    assert kernel.get("/api/dyn-rename/4").json() == {"uid": "4"}


def test_runtime_error_in_a_method_form_cell_keeps_the_old_route(kernel: Kernel) -> None:
    meta = {"cellId": "runtime"}
    kernel.ok("%%route /api/runtime\ndef GET(req):\n    return {'version': 1}", meta)
    assert kernel.get("/api/runtime").json() == {"version": 1}

    broken = kernel.execute(
        "%%route /api/runtime\ndef GET(req):\n    return {'version': 2}\nraise RuntimeError('setup failed')", meta
    )
    assert broken.status == "error"
    assert broken.error is not None
    assert broken.error["ename"] == "RuntimeError"
    assert "setup failed" in broken.error_text

    assert kernel.get("/api/runtime").json() == {"version": 1}
    assert kernel.ok("print('GET' in globals())").stdout == "False\n"
