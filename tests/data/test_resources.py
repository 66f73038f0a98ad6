"""``crud()``: a REST resource from a SQLite table and a pydantic model, through the in-process TestClient."""

from __future__ import annotations

import datetime
import importlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict, Field
from sqlite_utils import Database

import nbroutes
from nbroutes.core.openapi import build_openapi
from nbroutes.core.output import Console
from nbroutes.data import sqlite as data
from nbroutes.data.resources import crud
from nbroutes.errors import CrudError
from nbroutes.testing import TestClient


class Todo(BaseModel):
    title: str = Field(min_length=1)
    done: bool = False
    created: datetime.datetime | None = None
    tags: list[str] = []


class Thing(BaseModel):
    slug: str
    size: int = 0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "todo.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    yield data.db(db_path)
    data.close_all()


@pytest.fixture
def app(db: Database) -> nbroutes.App:
    app = nbroutes.App()
    crud(app, "/api/todos", db["todos"], Todo)
    return app


@pytest.fixture
def client(app: nbroutes.App) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def on_disk(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the file through a connection of its own: only committed rows are there."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def add(client: TestClient, n: int, **fields: Any) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        r = client.post("/api/todos", json={"title": f"t{i:02}", "done": i % 2 == 0, **fields})
        assert r.status_code == 201, r.text
        rows.append(r.json())
    return rows


def links(header: str) -> dict[str, str]:
    """An RFC 8288 Link header as {rel: url}."""
    out = {}
    for part in header.split(","):
        url, _, rel = part.partition(";")
        out[rel.strip().removeprefix('rel="').removesuffix('"')] = url.strip().strip("<>")
    return out


# -- the table ---------------------------------------------------------------------------------------
def test_creates_the_table_from_the_model(db: Database, app: nbroutes.App) -> None:
    columns = {c.name: (c.type, c.notnull, c.default_value, c.is_pk) for c in db["todos"].columns}
    assert columns == {
        "id": ("INTEGER", 0, None, 1),
        "title": ("TEXT", 1, None, 0),
        "done": ("INTEGER", 1, "0", 0),
        "created": ("TEXT", 0, None, 0),
        "tags": ("TEXT", 1, "'[]'", 0),
    }


def test_rows_inserted_from_a_cell_get_the_models_defaults(db: Database, client: TestClient) -> None:
    db["todos"].insert({"title": "from a cell"})
    assert client.get("/api/todos/1").json() == {
        "id": 1,
        "title": "from a cell",
        "done": False,
        "created": None,
        "tags": [],
    }


class Odd(BaseModel):
    note: str = "it's'); DROP TABLE odd; --"
    stamp: datetime.datetime = Field(default_factory=datetime.datetime.now)


def test_string_defaults_are_literals_and_factories_are_not_frozen(db: Database) -> None:
    crud(nbroutes.App(), "/api/odd", db["odd"], Odd)
    db["odd"].insert({})
    assert list(db["odd"].rows) == [{"id": 1, "note": "it's'); DROP TABLE odd; --", "stamp": None}]


def test_a_model_that_declares_the_key_makes_it_the_primary_key(db: Database, db_path: Path) -> None:
    app = nbroutes.App()
    crud(app, "/api/things", db["things"], Thing, pk="slug")
    assert db["things"].pks == ["slug"]
    assert db["things"].columns_dict["slug"] is str
    with TestClient(app) as client:
        r = client.post("/api/things", json={"slug": "a b", "size": 3})
        assert r.status_code == 201
        assert r.headers["location"] == "/api/things/a%20b"
        assert client.get("/api/things/a%20b").json() == {"slug": "a b", "size": 3}
        duplicate = client.post("/api/things", json={"slug": "a b"})
        assert duplicate.status_code == 409
        assert "UNIQUE" in duplicate.json()["error"]
    assert on_disk(db_path, "SELECT slug, size FROM things") == [("a b", 3)]


def test_an_existing_table_is_not_altered(db: Database) -> None:
    db["todos"].create({"id": int, "title": str, "done": int, "created": str, "tags": str, "extra": str}, pk="id")
    schema = db["todos"].schema
    with TestClient(app := nbroutes.App()) as client:
        crud(app, "/api/todos", db["todos"], Todo)
        db["todos"].insert({"title": "x", "done": 1, "tags": "[]", "extra": "hidden"})
        assert client.get("/api/todos").json() == [
            {"id": 1, "title": "x", "done": True, "created": None, "tags": []}
        ]  # columns the model does not name stay in the database
    assert db["todos"].schema == schema


def test_a_model_field_missing_from_the_table_is_a_clear_error(db: Database) -> None:
    db["todos"].create({"id": int, "title": str}, pk="id")
    with pytest.raises(CrudError, match="no column done, created, tags for the fields of Todo"):
        crud(nbroutes.App(), "/api/todos", db["todos"], Todo)


def test_a_different_primary_key_is_a_clear_error(db: Database) -> None:
    db["things"].create({"slug": str, "size": int}, pk="slug")
    with pytest.raises(CrudError, match="primary key of things is slug, not id"):
        crud(nbroutes.App(), "/api/things", db["things"], Thing)


def test_without_a_model_one_is_made_from_the_columns(db: Database) -> None:
    db["notes"].insert({"id": 1, "text": "hi", "stars": 2}, pk="id")
    app = nbroutes.App()
    crud(app, "/api/notes", db["notes"])
    with TestClient(app) as client:
        assert client.get("/api/notes/1").json() == {"id": 1, "text": "hi", "stars": 2}
        assert client.get("/api/notes?stars=2").json()[0]["text"] == "hi"
        assert client.patch("/api/notes/1", json={"stars": 5}).json()["stars"] == 5
    with pytest.raises(CrudError, match="pass a model"):
        crud(app, "/api/nothing", db["nothing"])


@pytest.mark.parametrize(
    ("prefix", "match"),
    [
        ("/api/users/[id]/todos", "static path"),
        ("/api/[oops", "oops"),
        ("/_nbroutes/todos", "nbroutes' own"),
    ],
)
def test_every_bad_prefix_is_a_crud_error(db: Database, prefix: str, match: str) -> None:
    with pytest.raises(CrudError, match=match):
        crud(nbroutes.App(), prefix, db["todos"], Todo)


def test_bad_tables_models_and_options(db: Database) -> None:
    db["todos"].create({"id": int, "title": str}, pk="id")
    db.create_view("titles", "SELECT title FROM todos")
    with pytest.raises(CrudError, match="not a table"):
        crud(nbroutes.App(), "/api/titles", db["titles"], Todo)  # type: ignore[arg-type]
    with pytest.raises(CrudError, match="pydantic BaseModel"):
        crud(nbroutes.App(), "/api/x", db["x"], dict)  # type: ignore[arg-type]
    with pytest.raises(CrudError, match="page_size"):
        crud(nbroutes.App(), "/api/x", db["x"], Thing, page_size=500)


# -- create, read, replace, patch, delete ------------------------------------------------------------
def test_post_creates_commits_and_answers_201_with_location(client: TestClient, db: Database, db_path: Path) -> None:
    r = client.post("/api/todos", json={"title": "milk", "tags": ["shop"]})
    assert r.status_code == 201
    assert r.json() == {"id": 1, "title": "milk", "done": False, "created": None, "tags": ["shop"]}
    assert r.headers["location"] == "/api/todos/1"
    assert not db.conn.in_transaction
    assert on_disk(db_path, "SELECT id, title, done, tags FROM todos") == [(1, "milk", 0, '["shop"]')]


def test_post_stores_datetimes_as_iso_text(client: TestClient, db_path: Path) -> None:
    r = client.post("/api/todos", json={"title": "x", "created": "2026-11-24T17:00:00"})
    assert r.json()["created"] == "2026-11-24T17:00:00"
    assert on_disk(db_path, "SELECT created FROM todos") == [("2026-11-24T17:00:00",)]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"title": ""}, ["body", "title"]),
        ({"done": True}, ["body", "title"]),
        ({"title": "x", "done": "perhaps"}, ["body", "done"]),
        (None, ["body"]),
    ],
)
def test_post_422_has_pydantics_errors(client: TestClient, db_path: Path, body: Any, loc: list[str]) -> None:
    r = client.post("/api/todos", json=body) if body is not None else client.post("/api/todos")
    assert r.status_code == 422
    assert r.json()["error"] == "Validation failed"
    assert [e["loc"] for e in r.json()["detail"]] == [loc]
    assert on_disk(db_path, "SELECT count(*) FROM todos") == [(0,)]


def test_post_bad_json_is_422(client: TestClient) -> None:
    r = client.post("/api/todos", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_get_one_row(client: TestClient) -> None:
    row = add(client, 1)[0]
    r = client.get(f"/api/todos/{row['id']}")
    assert r.status_code == 200
    assert r.json() == row
    assert r.json()["done"] is True


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_missing_row_is_404(client: TestClient, method: str) -> None:
    r = client.request(method, "/api/todos/99", json={"title": "x"})
    assert r.status_code == 404
    assert r.json() == {"error": "no row in todos with id 99"}


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_non_integer_id_is_422(client: TestClient, method: str) -> None:
    r = client.request(method, "/api/todos/abc", json={"title": "x"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["path", "id"]


def test_put_replaces_the_whole_row(client: TestClient, db_path: Path) -> None:
    row = add(client, 1, tags=["a"])[0]
    r = client.put(f"/api/todos/{row['id']}", json={"title": "new"})
    assert r.status_code == 200
    assert r.json() == {"id": row["id"], "title": "new", "done": False, "created": None, "tags": []}
    assert on_disk(db_path, "SELECT title, done, tags FROM todos") == [("new", 0, "[]")]


def test_put_validates_the_whole_body(client: TestClient) -> None:
    row = add(client, 1)[0]
    r = client.put(f"/api/todos/{row['id']}", json={"done": True})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "title"]


def test_patch_merges_into_the_row(client: TestClient, db_path: Path) -> None:
    row = add(client, 1, tags=["a"])[0]
    r = client.patch(f"/api/todos/{row['id']}", json={"done": False})
    assert r.status_code == 200
    assert r.json() == {**row, "done": False}
    assert on_disk(db_path, "SELECT title, done, tags FROM todos") == [("t00", 0, '["a"]')]


@pytest.mark.parametrize("body", [{"title": ""}, {"title": None}, {"done": "perhaps"}])
def test_patch_validates_the_merged_row(client: TestClient, db_path: Path, body: dict[str, Any]) -> None:
    row = add(client, 1)[0]
    r = client.patch(f"/api/todos/{row['id']}", json=body)
    assert r.status_code == 422
    assert r.json()["error"] == "Validation failed"
    assert r.json()["detail"][0]["loc"][0] == "body"
    assert on_disk(db_path, "SELECT title, done FROM todos") == [("t00", 1)]


def test_delete_answers_204_and_removes_the_row(client: TestClient, db_path: Path) -> None:
    rows = add(client, 2)
    r = client.delete(f"/api/todos/{rows[0]['id']}")
    assert r.status_code == 204
    assert r.content == b""
    assert client.get(f"/api/todos/{rows[0]['id']}").status_code == 404
    assert on_disk(db_path, "SELECT id FROM todos") == [(rows[1]["id"],)]


def test_head_and_options(client: TestClient) -> None:
    add(client, 1)
    assert client.head("/api/todos").status_code == 200
    assert client.options("/api/todos/1").headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"
    assert client.request("DELETE", "/api/todos").status_code == 405


# -- listing -----------------------------------------------------------------------------------------
def test_list_returns_rows_through_the_model(client: TestClient) -> None:
    rows = add(client, 3)
    r = client.get("/api/todos")
    assert r.status_code == 200
    assert r.json() == rows
    assert [row["done"] for row in r.json()] == [True, False, True]
    assert r.headers["x-total-count"] == "3"
    assert r.headers["access-control-expose-headers"] == "X-Total-Count, Link"


@pytest.mark.parametrize(
    ("page", "rels", "count"),
    [
        (1, {"first": 1, "next": 2, "last": 3}, 20),
        (2, {"first": 1, "prev": 1, "next": 3, "last": 3}, 20),
        (3, {"first": 1, "prev": 2, "last": 3}, 5),
        (9, {"first": 1, "prev": 3, "last": 3}, 0),
    ],
)
def test_paging_headers(client: TestClient, page: int, rels: dict[str, int], count: int) -> None:
    add(client, 45)
    r = client.get(f"/api/todos?_page={page}")
    assert r.status_code == 200
    assert len(r.json()) == count
    assert r.headers["x-total-count"] == "45"
    found = links(r.headers["link"])
    assert found == {rel: f"/api/todos?_page={n}&_size=20" for rel, n in rels.items()}


def test_link_keeps_the_other_query_params(client: TestClient) -> None:
    add(client, 12)
    r = client.get("/api/todos?done=true&_sort=-title&_size=2&_page=2")
    assert r.headers["x-total-count"] == "6"
    assert [row["title"] for row in r.json()] == ["t06", "t04"]
    assert links(r.headers["link"]) == {
        "first": "/api/todos?done=true&_sort=-title&_page=1&_size=2",
        "prev": "/api/todos?done=true&_sort=-title&_page=1&_size=2",
        "next": "/api/todos?done=true&_sort=-title&_page=3&_size=2",
        "last": "/api/todos?done=true&_sort=-title&_page=3&_size=2",
    }


def test_page_size_is_capped(db: Database) -> None:
    app = nbroutes.App()
    crud(app, "/api/todos", db["todos"], Todo, page_size=3, max_page_size=5)
    with TestClient(app) as client:
        add(client, 8)
        assert len(client.get("/api/todos").json()) == 3
        capped = client.get("/api/todos?_size=1000")
        assert len(capped.json()) == 5
        assert links(capped.headers["link"])["next"] == "/api/todos?_page=2&_size=5"


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("_page=0", ["query", "_page"]),
        ("_page=two", ["query", "_page"]),
        ("_size=0", ["query", "_size"]),
        ("_size=abc", ["query", "_size"]),
        ("done=perhaps", ["query", "done"]),
        ("id=x", ["query", "id"]),
        ("created=yesterday", ["query", "created"]),
    ],
)
def test_bad_paging_and_filter_values_are_422(client: TestClient, query: str, loc: list[str]) -> None:
    r = client.get(f"/api/todos?{query}")
    assert r.status_code == 422
    assert r.json()["error"] == "Validation failed"
    assert [e["loc"] for e in r.json()["detail"]] == [loc]


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("done=1", ["t00", "t02", "t04"]),
        ("done=true", ["t00", "t02", "t04"]),
        ("done=false", ["t01", "t03"]),
        ("done=0&title=t03", ["t03"]),
        ("title=t04", ["t04"]),
        ("id=2", ["t01"]),
        ("title=nothing", []),
        ("title=' OR '1'='1", []),
    ],
)
def test_filters_by_column_equality(client: TestClient, query: str, titles: list[str]) -> None:
    add(client, 5)
    r = client.get(f"/api/todos?{query}")
    assert r.status_code == 200, r.text
    assert [row["title"] for row in r.json()] == titles
    assert r.headers["x-total-count"] == str(len(titles))


def test_filter_by_datetime_uses_the_stored_form(client: TestClient) -> None:
    add(client, 1, created="2026-01-02T03:04:05")
    add(client, 1, created="2026-01-03T00:00:00")
    r = client.get("/api/todos", params={"created": "2026-01-02 03:04:05"})
    assert [row["created"] for row in r.json()] == ["2026-01-02T03:04:05"]


@pytest.mark.parametrize(
    ("sort", "titles"),
    [
        ("title", ["a", "b", "c", "d"]),
        ("-title", ["d", "c", "b", "a"]),
        ("done,-title", ["d", "b", "c", "a"]),
        ("-done, title", ["a", "c", "b", "d"]),
        ("", ["c", "a", "d", "b"]),  # by key
    ],
)
def test_sort(client: TestClient, sort: str, titles: list[str]) -> None:
    for title, done in [("c", True), ("a", True), ("d", False), ("b", False)]:
        client.post("/api/todos", json={"title": title, "done": done})
    r = client.get("/api/todos", params={"_sort": sort})
    assert r.status_code == 200
    assert [row["title"] for row in r.json()] == titles


@pytest.mark.parametrize(
    ("query", "name", "where"),
    [
        ("colour=red", "colour", "filter"),
        ("_sort=colour", "colour", "_sort"),
        ("_sort=title,-colour", "colour", "_sort"),
        ("_pages=2", "_pages", "filter"),
    ],
)
def test_unknown_column_is_400_naming_the_valid_ones(client: TestClient, query: str, name: str, where: str) -> None:
    r = client.get(f"/api/todos?{query}")
    assert r.status_code == 400
    error = r.json()["error"]
    assert f"unknown column {name!r} in {where}" in error
    assert "todos has id, title, done, created, tags" in error


@pytest.mark.parametrize(
    "query",
    [
        {"_sort": "id;DROP TABLE todos"},
        {"_sort": "id; DROP TABLE todos--"},
        {"_sort": "title DESC"},
        {"_sort": '"title"'},
        {"_sort": "(SELECT 1)"},
        {'"x"': "1"},
        {"title = title OR 1": "1"},
        {"id) OR (1=1": "1"},
        {'title" = "title': "x"},
    ],
)
def test_injection_in_column_names_is_rejected(client: TestClient, db_path: Path, query: dict[str, str]) -> None:
    add(client, 2)
    r = client.get("/api/todos", params=query)
    assert r.status_code == 400
    assert "unknown column" in r.json()["error"]
    assert on_disk(db_path, "SELECT count(*) FROM todos") == [(2,)]
    assert on_disk(db_path, "SELECT name FROM sqlite_master WHERE type = 'table'") == [("todos",)]


def test_a_table_name_needing_quotes(db: Database) -> None:
    app = nbroutes.App()
    crud(app, "/api/odd", db['odd "name"; --'], Thing, pk="slug")
    with TestClient(app) as client:
        assert client.post("/api/odd", json={"slug": "s"}).status_code == 201
        assert client.get("/api/odd?_sort=-size").json() == [{"slug": "s", "size": 0}]


# -- registration ------------------------------------------------------------------------------------
def test_routes_are_registered_together_under_the_owner(db: Database) -> None:
    app = nbroutes.App()
    console = Console("todos")
    routes = crud(app, "/api/todos", db["todos"], Todo, console=console)
    assert [r.pattern.text for r in routes] == ["/api/todos", "/api/todos/[id]"]
    assert {r.owner for r in routes} == {"/api/todos"}
    assert all(r.console is console for r in routes)
    assert app.router.owned_by("/api/todos") == routes


def test_registering_the_same_owner_again_replaces_its_routes(db: Database) -> None:
    app = nbroutes.App()
    crud(app, "/api/todos", db["todos"], Todo, owner="cell-1")
    version = app.router.version
    crud(app, "/api/todos", db["todos"], Todo, owner="cell-1")
    assert app.router.version == version + 1  # one swap for both routes
    assert len(app.router.routes) == 2
    crud(app, "/api/tasks", db["todos"], Todo, owner="cell-1")
    assert sorted(r.pattern.text for r in app.router.routes) == ["/api/tasks", "/api/tasks/[id]"]
    with TestClient(app) as client:
        assert client.get("/api/todos").status_code == 404
        assert client.get("/api/tasks").status_code == 200


def test_a_broken_registration_keeps_the_routes(db: Database) -> None:
    app = nbroutes.App()
    crud(app, "/api/todos", db["todos"], Todo, owner="cell-1")
    with pytest.raises(CrudError):
        crud(app, "/api/todos/[oops", db["todos"], Todo, owner="cell-1")
    assert len(app.router.owned_by("cell-1")) == 2


# -- OpenAPI -----------------------------------------------------------------------------------------
def test_openapi_documents_the_resource(client: TestClient) -> None:
    r = client.get("/_nbroutes/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    validate(spec)
    paths = spec["paths"]
    assert set(paths["/api/todos"]) == {"get", "post"}
    assert set(paths["/api/todos/{id}"]) == {"get", "put", "patch", "delete"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["Todo"]["properties"]) == {"title", "done", "created", "tags"}
    assert schemas["Todo"]["required"] == ["title"]
    assert set(schemas["TodoRow"]["properties"]) == {"id", "title", "done", "created", "tags"}
    post = paths["/api/todos"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Todo"}
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationError")
    assert set(post["responses"]) == {"201", "409", "422", "503"}  # the statuses crud really answers with
    assert post["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/TodoRow"}
    assert set(paths["/api/todos/{id}"]["delete"]["responses"]) == {"204", "404", "409", "422", "503"}
    assert "content" not in paths["/api/todos/{id}"]["delete"]["responses"]["204"]
    listing = paths["/api/todos"]["get"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/TodoRow"},
    }
    query = {p["name"]: p for p in listing["parameters"]}
    assert {"_page", "_size", "_sort", "id", "title", "done", "created"} <= set(query)
    assert query["_size"]["schema"]["minimum"] == 1
    item = paths["/api/todos/{id}"]
    assert item["get"]["parameters"][0]["schema"] == {"type": "integer"}
    patch_body = item["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert patch_body == {"$ref": "#/components/schemas/TodoPatch"}
    assert "required" not in schemas["TodoPatch"]
    assert item["get"]["summary"] == "One row of todos."


def test_openapi_keeps_a_declared_key_as_the_path_parameter(db: Database) -> None:
    app = nbroutes.App()
    crud(app, "/api/things", db["things"], Thing, pk="slug")
    spec = build_openapi(app)
    validate(spec)
    assert "/api/things/{slug}" in spec["paths"]
    assert spec["paths"]["/api/things/{slug}"]["get"]["parameters"][0]["schema"] == {"type": "string"}


def test_nbroutes_crud_stays_callable_after_its_module_is_imported(db: Database) -> None:
    importlib.import_module("nbroutes.data.resources")  # a submodule import sets a package attribute; not "crud"
    app = nbroutes.App()
    routes = nbroutes.crud("/api/todos", db["todos"], Todo, app=app)
    assert [r.pattern.text for r in routes] == ["/api/todos", "/api/todos/[id]"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    done: bool = False


def test_a_model_that_forbids_extra_fields(db: Database) -> None:
    app = nbroutes.App()
    crud(app, "/api/strict", db["strict"], Strict)
    with TestClient(app) as client:
        assert client.post("/api/strict", json={"title": "a", "x": 1}).status_code == 422
        assert client.post("/api/strict", json={"title": "a"}).status_code == 201
        r = client.patch("/api/strict/1", json={"done": True})
        assert r.status_code == 200, r.text
        assert r.json() == {"id": 1, "title": "a", "done": True}


def test_a_write_inside_someone_elses_open_transaction_is_refused(
    client: TestClient, db: Database, db_path: Path
) -> None:
    db.conn.execute("INSERT INTO todos (title) VALUES ('uncommitted')")  # a cell that forgot db.commit()
    r = client.post("/api/todos", json={"title": "mine"})
    assert r.status_code == 503
    assert "open transaction" in r.json()["error"]
    db.conn.rollback()
    assert client.post("/api/todos", json={"title": "mine"}).status_code == 201
    assert on_disk(db_path, "SELECT title FROM todos") == [("mine",)]


def test_a_constraint_the_write_breaks_is_409(db: Database) -> None:
    db["todos"].create({"id": int, "title": str, "done": int, "created": str, "tags": str}, pk="id")
    db.execute("CREATE UNIQUE INDEX one_title ON todos (title)")
    app = nbroutes.App()
    crud(app, "/api/todos", db["todos"], Todo)
    with TestClient(app) as client:
        assert client.post("/api/todos", json={"title": "a"}).status_code == 201
        r = client.post("/api/todos", json={"title": "a"})
        assert r.status_code == 409
        assert "UNIQUE constraint failed: todos.title" in r.json()["error"]
        assert client.get("/api/todos").headers["x-total-count"] == "1"
