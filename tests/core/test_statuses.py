"""The OpenAPI document names every status a route answers, as schemathesis found it did not.

Against the example notebooks, schemathesis's ``status_code_conformance`` got answers the document did not
list: crud's 404 for a missing row and 400 for an unknown filter, a typed handler's
``raise HTTPException(404, ...)`` and ``return post, 201``, the 204 of a handler's ``None``, a middleware's
``return {...}, 401``, a pages-form handler's ``res.status(201)``. Each is listed now, with its body's schema
where nbroutes knows it; ``nbroutes.core.statuses`` reads the literal ones from the handler's source.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from nbroutes import ApiResponse, App, HTTPException, Request, crud
from nbroutes.core.handlers import Endpoint
from nbroutes.core.statuses import Answered, statuses_in_source
from nbroutes.data.sqlite import db
from nbroutes.testing import TestClient

ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


class Post(BaseModel):
    id: int
    title: str


POSTS = {1: Post(id=1, title="one")}


def get_post(req: Request, id: int) -> Post:
    if id not in POSTS:
        raise HTTPException(404, "Post not found")
    return POSTS[id]


def create_post(req: Request, body: Post) -> Post:
    POSTS[body.id] = body
    return body, 201  # type: ignore[return-value]  # (body, status), as the notebooks write it


def delete_post(req: Request, id: int) -> None:
    POSTS.pop(id, None)


def delete_quietly(req: Request, id: int):  # type: ignore[no-untyped-def]  # no annotation: the source says 204
    POSTS.pop(id, None)
    return None


def items(req: Request, res: ApiResponse) -> None:
    if req.method == "POST":
        res.status(201).json({"added": True})
        return
    res.status(405).json({"error": "not allowed"})


async def admins_only(req: Request, call_next: Any) -> Any:
    if req.headers.get("x-user") != "admin":
        return {"error": "Unauthorized"}, 401
    return await call_next(req)


def statuses(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return dict(document["paths"][path][method]["responses"])


def test_statuses_in_source_reads_the_literal_statuses_of_the_function_alone() -> None:
    def handler(req: Request, code: int) -> Any:
        if code:
            raise HTTPException(code)  # a status in a variable: not known
        if req.query:
            raise HTTPException(status_code=409, detail="taken")
        if req.body:
            return {"made": True}, 201
        return None

    assert statuses_in_source(handler) == {
        409: Answered("taken", error=True),
        201: Answered("Created"),
        204: Answered("No Content"),
    }
    assert statuses_in_source(get_post) == {404: Answered("Post not found", error=True)}
    assert statuses_in_source(items) == {
        201: Answered("Created"),
        405: Answered("Method Not Allowed"),
        204: Answered("No Content"),
    }
    assert statuses_in_source(lambda req: ({}, 202)) == {202: Answered("Accepted")}
    assert statuses_in_source(len) == {}  # no source
    namespace: dict[str, Any] = {}
    exec("def typed_in(req):\n    return {}, 201\n", namespace)  # noqa: S102 - source that inspect cannot find
    assert statuses_in_source(namespace["typed_in"]) == {}


def test_a_typed_handlers_raised_and_returned_statuses_are_documented() -> None:
    app = App()
    app.add("/api/posts/[id]", {"GET": Endpoint(get_post), "DELETE": Endpoint(delete_post)})
    app.add("/api/posts", {"POST": Endpoint(create_post)})
    app.add("/api/quiet/[id]", {"DELETE": Endpoint(delete_quietly)})
    document = app.openapi()
    got = statuses(document, "/api/posts/{id}", "get")
    assert set(got) == {"200", "404", "422"}
    assert got["404"] == {"description": "Post not found", "content": ERROR}
    created = statuses(document, "/api/posts", "post")
    assert created["201"]["content"] == created["200"]["content"]  # the body a 201 carries is the Post
    assert set(statuses(document, "/api/posts/{id}", "delete")) == {"204", "422"}  # -> None is a 204, not a 200
    assert "204" in statuses(document, "/api/quiet/{id}", "delete")
    with TestClient(app) as client:  # and the answers are those
        assert client.get("/api/posts/99").status_code == 404
        assert client.post("/api/posts", json={"id": 2, "title": "two"}).status_code == 201
        assert client.delete("/api/posts/2").status_code == 204


def test_a_handler_that_writes_through_res_is_documented_without_a_204_for_its_bare_return() -> None:
    app = App()
    app.add("/api/items", {"*": Endpoint(items)})
    got = statuses(app.openapi(), "/api/items", "post")
    assert set(got) == {"200", "201", "405"}
    with TestClient(app) as client:
        assert client.post("/api/items").status_code == 201
        assert client.put("/api/items").status_code == 405


def test_a_middlewares_statuses_are_documented_on_the_paths_it_runs_for() -> None:
    app = App()
    app.add("/api/admin/stats", {"GET": Endpoint(lambda req: {"posts": 1})})
    app.add("/api/public", {"GET": Endpoint(lambda req: {"ok": True})})
    app.use(admins_only, "/api/admin/:path*", owner="admins")
    document = app.openapi()
    assert statuses(document, "/api/admin/stats", "get")["401"] == {"description": "Unauthorized"}
    assert "401" not in statuses(document, "/api/public", "get")
    with TestClient(app) as client:
        assert client.get("/api/admin/stats").status_code == 401


class Todo(BaseModel):
    title: str
    done: bool = False


@pytest.fixture
def todos_app() -> App:
    app = App()
    crud("/api/todos", db(":memory:")["todos"], model=Todo, app=app)
    return app


def test_crud_documents_its_missing_rows_unknown_columns_and_failed_writes(todos_app: App) -> None:
    document = todos_app.openapi()
    assert set(statuses(document, "/api/todos", "get")) == {"200", "400", "422"}
    assert set(statuses(document, "/api/todos", "post")) == {"201", "409", "422", "503"}
    assert set(statuses(document, "/api/todos/{id}", "get")) == {"200", "404", "422"}
    for method in ("put", "patch"):
        assert set(statuses(document, "/api/todos/{id}", method)) == {"200", "404", "409", "422", "503"}
    assert set(statuses(document, "/api/todos/{id}", "delete")) == {"204", "404", "409", "422", "503"}
    assert statuses(document, "/api/todos/{id}", "get")["404"]["content"] == ERROR
    with TestClient(todos_app) as client:
        assert client.get("/api/todos/7").status_code == 404
        assert client.delete("/api/todos/7").status_code == 404
        assert client.get("/api/todos?colour=red").status_code == 400
