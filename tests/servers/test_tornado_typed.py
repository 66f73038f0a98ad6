"""Typed handlers, middleware and the docs page over a real socket, with malformed and hostile input."""

from __future__ import annotations

import http.client
import json

import pytest
from pydantic import BaseModel

from nbroutes import App, HTTPException, cors, require_token
from nbroutes.servers.tornado import Server
from tests.support import on_loop

app = App()


class Item(BaseModel):
    name: str
    price: float
    quantity: int


@app.route("/api/items", methods="POST")
def create(req, body: Item) -> Item:
    """Create an item."""
    return body, 201


@app.route("/api/items/[id]", methods="GET")
def read(req, id: int, verbose: bool = False):
    if id == 404:
        raise HTTPException(404, "Item not found")
    return {"id": id, "verbose": verbose}


@app.route("/api/untyped", methods="POST")
def untyped(req, res):
    return {"body": req.body}


@app.route("/api/admin/stats")
def stats(req):
    return {"ok": True}


app.use(cors(["http://app.example"]))
app.use(require_token("NBROUTES_TEST_TOKEN"), "/api/admin/:path*")


@pytest.fixture
def server(loop, monkeypatch):
    monkeypatch.setenv("NBROUTES_TEST_TOKEN", "s3cret")
    srv = Server(app, port=0)
    on_loop(loop, srv.start)
    yield srv
    on_loop(loop, srv.stop)


@pytest.fixture
def call(server):
    def call(method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request(method, path, body, headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()  # headers: case-insensitive
        finally:
            conn.close()

    return call


JSON = {"Content-Type": "application/json"}


def test_valid_body_is_201_with_the_model(call):
    status, _, body = call("POST", "/api/items", '{"name":"w","price":9.5,"quantity":3}', JSON)
    assert (status, json.loads(body)) == (201, {"name": "w", "price": 9.5, "quantity": 3})


@pytest.mark.parametrize(
    "body, headers, loc",
    [
        ('{"name":"w","price":"cheap","quantity":3}', JSON, ["body", "price"]),  # wrong type
        ('{"name":"w","price":1,"quantity":' + "9" * 5000 + "}", JSON, ["body"]),  # a number too long to read
        ("", JSON, ["body"]),  # missing body
        ("{not json", JSON, ["body"]),  # malformed
        ('{"name":"w"}', {"Content-Type": "text/plain"}, ["body"]),  # wrong content type
        ("[" * 100_000 + "]" * 100_000, JSON, ["body"]),  # nested deeper than any parser recurses
        ("null", JSON, ["body"]),
    ],
)
def test_bad_bodies_are_422_never_500(call, body, headers, loc):
    status, _, raw = call("POST", "/api/items", body, headers)
    assert status == 422
    answer = json.loads(raw)
    assert answer["error"] == "Validation failed"
    assert answer["detail"][0]["loc"][: len(loc)] == loc


def test_deeply_nested_json_to_an_untyped_handler_is_a_400(call):
    status, _, raw = call("POST", "/api/untyped", "[" * 100_000 + "]" * 100_000, JSON)
    assert (status, raw) == (400, b"Invalid JSON")


@pytest.mark.parametrize(
    "path, status",
    [
        ("/api/items/7?verbose=yes", 200),
        ("/api/items/x", 422),
        ("/api/items/7?verbose=maybe", 422),
        ("/api/items/" + "9" * 5000, 422),
        ("/api/items/404", 404),
    ],
)
def test_path_and_query_validation(call, path, status):
    assert call("GET", path)[0] == status


def test_http_exception_body(call):
    assert json.loads(call("GET", "/api/items/404")[2]) == {"error": "Item not found"}


def test_token_middleware_over_the_socket(call):
    status, headers, _ = call("GET", "/api/admin/stats")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert call("GET", "/api/admin/stats", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert call("GET", "/api/admin/stats", headers={"Authorization": "Bearer s3cret"})[0] == 200


def test_cors_preflight_over_the_socket(call):
    status, headers, body = call(
        "OPTIONS",
        "/api/items",
        headers={
            "Origin": "http://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert (status, body) == (204, b"")
    assert headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert headers["Access-Control-Allow-Headers"] == "content-type"


def test_openapi_and_docs_over_the_socket(call):
    status, headers, raw = call("GET", "/_nbroutes/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert {"/api/items", "/api/items/{id}"} <= set(json.loads(raw)["paths"])
    status, headers, page = call("GET", "/_nbroutes/docs")
    assert status == 200 and b"swagger-ui-bundle.js" in page
    status, headers, script = call("GET", "/_nbroutes/docs/swagger-ui-bundle.js")
    assert status == 200 and len(script) > 100_000
