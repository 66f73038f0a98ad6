"""crud() at the edges: integers SQLite cannot hold are a 404 or a 422, and the Link header stays small."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlite_utils import Database

from nbroutes import App
from nbroutes.data import sqlite as data
from nbroutes.data.resources import LINK_QUERY_LIMIT, crud
from nbroutes.testing import TestClient
from tests.support import raw_request

BIG = [2**63, 2**64, 10**30, -(2**63) - 1]
EDGES = [2**63 - 1, -(2**63)]  # SQLite's own integers: in range, merely absent


class Todo(BaseModel):
    title: str
    done: bool = False
    count: int = 0


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    yield data.db(tmp_path / "todo.db")
    data.close_all()


@pytest.fixture
def app(db: Database) -> App:
    app = App()
    crud(app, "/api/todos", db["todos"], Todo)
    return app


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(app) as client:
        assert client.post("/api/todos", json={"title": "first"}).status_code == 201
        yield client


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("key", BIG + EDGES)
def test_an_id_no_sqlite_integer_can_be_is_not_found(client, method, key):
    body = {"json": {"title": "x"}} if method in ("PUT", "PATCH") else {}
    response = client.request(method, f"/api/todos/{key}", **body)
    assert response.status_code == 404
    assert response.json()["error"] == f"no row in todos with id {key}"
    assert client.get("/api/todos/1").status_code == 200


@pytest.mark.parametrize("column", ["id", "count"])
@pytest.mark.parametrize("value", BIG)
def test_a_filter_no_sqlite_integer_can_be_is_a_422(client, column, value):
    response = client.get(f"/api/todos?{column}={value}")
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", column]
    assert "-9223372036854775808" in error["msg"] and "9223372036854775807" in error["msg"]


@pytest.mark.parametrize("value", EDGES)
def test_a_filter_at_the_edge_of_sqlite_integers_finds_nothing(client, value):
    response = client.get(f"/api/todos?count={value}")
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize("method, url", [("POST", "/api/todos"), ("PUT", "/api/todos/1"), ("PATCH", "/api/todos/1")])
@pytest.mark.parametrize("value", BIG)
def test_a_body_integer_no_sqlite_integer_can_be_is_a_422(client, method, url, value):
    response = client.request(method, url, json={"title": "big", "count": value})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "count"]
    assert client.get("/api/todos/1").json()["title"] == "first"  # nothing was written


def test_a_page_past_sqlite_integers_is_empty(client):
    response = client.get(f"/api/todos?_page={2**63}")
    assert (response.status_code, response.json()) == (200, [])


def test_the_link_header_keeps_a_short_filter(client):
    response = client.get("/api/todos?title=first&_size=1")
    assert response.json()[0]["title"] == "first"
    assert "title=first" in response.headers["link"]


def test_a_long_filter_is_answered_without_a_link_header(client):
    response = client.get("/api/todos?title=" + "x" * 50_000)
    assert (response.status_code, response.json()) == (200, [])
    assert response.headers["x-total-count"] == "0"
    assert "link" not in response.headers
    assert all(len(name) + len(value) < 1024 for name, value in response.response.headers)


def test_the_link_header_stays_within_the_limit(client):
    fits = "x" * (LINK_QUERY_LIMIT - len("title=") - 10)
    response = client.get(f"/api/todos?title={fits}")
    link = response.headers["link"]
    assert fits in link
    assert len(link) < 4 * (LINK_QUERY_LIMIT + 100)


# -- over a real socket --------------------------------------------------------------------------------


def test_over_a_socket_big_integers_and_long_filters_are_answered(app, serve):
    port = serve(app).port
    json_type = {"Content-Type": "application/json"}
    assert raw_request(port, "POST", "/api/todos", b'{"title": "first"}', json_type).status == 201
    assert raw_request(port, "GET", "/api/todos/9223372036854775808").status == 404
    assert raw_request(port, "GET", "/api/todos?count=9223372036854775808").status == 422
    assert raw_request(port, "POST", "/api/todos", b'{"title": "x", "count": 1e999}', json_type).status == 422
    big = b'{"title": "x", "count": 9223372036854775808}'
    assert raw_request(port, "POST", "/api/todos", big, json_type).status == 422
    answer = raw_request(port, "GET", "/api/todos?title=" + "x" * 50_000)
    assert answer.status == 200
    assert "link" not in answer.headers and answer.headers["x-total-count"] == "0"
    assert raw_request(port, "GET", "/api/todos/1").status == 200


# -- served: nbroutes serve, uvicorn and a kernel, on raw sockets (the ``hostile`` fixture) -----------------------


def test_served_big_integers_and_long_filters_are_answered(hostile):
    port, json_type = hostile.port, {"Content-Type": "application/json"}
    made = raw_request(port, "POST", "/api/todos", b'{"title": "first"}', json_type)
    assert made.status == 201, made
    assert raw_request(port, "GET", f"/api/todos/{2**63}").status == 404
    assert raw_request(port, "GET", f"/api/todos?count={2**63}").status == 422
    assert raw_request(port, "POST", "/api/todos", b'{"title": "x", "count": 1e999}', json_type).status == 422
    big = b'{"title": "x", "count": 9223372036854775808}'
    assert raw_request(port, "POST", "/api/todos", big, json_type).status == 422
    # 10 KB: ten times the Link header's bound, and within uvicorn's own 16 KB bound on a request's head.
    answer = raw_request(port, "GET", "/api/todos?title=" + "x" * 10_000)
    assert answer.status == 200, answer
    assert "link" not in answer.headers and answer.headers["x-total-count"] == "0"
    assert raw_request(port, "GET", f"/api/todos/{made.json()['id']}").json()["title"] == "first"
