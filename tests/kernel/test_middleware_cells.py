"""``%%middleware`` cells in a real kernel: they guard routes, re-running replaces them in place."""

from __future__ import annotations

from .conftest import Kernel

GUARD = """%%middleware /api/guarded/:path*
def middleware(req, call_next):
    if req.headers.get("x-key") != "{key}":
        return {{"error": "no"}}, 401
    return call_next(req)
"""


def test_middleware_cell_guards_rerun_replaces_and_unmarking_removes(kernel: Kernel) -> None:
    kernel.ok("%%route /api/guarded/data\ndef GET(req):\n    return {'secret': 1}", {"cellId": "guarded-route"})
    kernel.ok(GUARD.format(key="one"), {"cellId": "guard"})
    assert kernel.get("/api/guarded/data").status == 401
    assert kernel.request("GET", "/api/guarded/data", headers={"x-key": "one"}).status == 200

    kernel.ok(GUARD.format(key="two"), {"cellId": "guard"})  # re-run with new code: replaced, not added
    assert kernel.request("GET", "/api/guarded/data", headers={"x-key": "one"}).status == 401
    assert kernel.request("GET", "/api/guarded/data", headers={"x-key": "two"}).status == 200
    assert kernel.ok("%routes").stdout.count("/api/guarded/:path*") == 1

    kernel.ok("pass", {"cellId": "guard"})  # the cell is no longer a middleware cell
    assert kernel.get("/api/guarded/data").status == 200


def test_a_middleware_cell_without_the_function_is_a_usage_error(kernel: Kernel) -> None:
    result = kernel.execute("%%middleware\nx = 1", {"cellId": "not-mw"})
    assert result.status == "error"
    assert "must define middleware(req, call_next)" in (result.error_text or "")
