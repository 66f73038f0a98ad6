"""Plain decorators around route functions (the seed's with_auth / with_error_handler) work unchanged."""

from __future__ import annotations

from nbroutes import App
from nbroutes.kernel.cells import compile_cell
from nbroutes.testing import TestClient

SEED = """
import functools
import inspect

def with_auth(handler):
    @functools.wraps(handler)
    async def wrapper(req, res):
        if req.headers.get("authorization") != "Bearer ok":
            return res.status(401).json({"error": "Unauthorized"})
        result = handler(req, res)
        return await result if inspect.isawaitable(result) else result
    return wrapper

def with_error_handler(handler):
    @functools.wraps(handler)
    async def wrapper(req, res):
        try:
            return await handler(req, res)
        except KeyError as exc:
            res.status(400).json({"error": f"missing {exc}"})
    return wrapper
"""


def make_client() -> TestClient:
    namespace: dict = {}
    exec(SEED, namespace)  # noqa: S102 - the notebook's helper cell
    app = App()
    cell = """
async def get_user(req, res):
    return {"id": req.query["id"], "q": req.query["q"]}

GET = with_error_handler(with_auth(lambda req, res: get_user(req, res)))

@with_auth
def DELETE(req, res):
    res.status(204).end()
"""
    compiled = compile_cell(cell, namespace)
    app.add("/api/users/[id]", compiled.endpoints)
    return TestClient(app)


def test_decorated_handlers_run_through_their_wrappers() -> None:
    with make_client() as client:
        check(client)


def check(client: TestClient) -> None:
    ok = {"authorization": "Bearer ok"}
    assert client.get("/api/users/1?q=x").status_code == 401
    r = client.get("/api/users/1?q=x", headers=ok)
    assert (r.status_code, r.json()) == (200, {"id": "1", "q": "x"})
    r = client.get("/api/users/1", headers=ok)
    assert (r.status_code, r.json()) == (400, {"error": "missing 'q'"})
    assert client.delete("/api/users/1").status_code == 401
    assert client.delete("/api/users/1", headers=ok).status_code == 204
