"""Typed handler parameters: path, query, header, cookie and body, validated by pydantic."""

import dataclasses
import datetime
import decimal
import json
import uuid
from typing import Annotated

import pytest
from pydantic import BaseModel

import nbroutes
from nbroutes.testing import TestClient

app = nbroutes.App()


class NewPost(BaseModel):
    title: str
    views: int = 0


class Out(BaseModel):
    id: int
    name: str


@dataclasses.dataclass
class Point:
    x: int
    y: int


@app.route("/api/users/[id]")
def GET_user(req, id: int):
    return {"id": id, "type": type(id).__name__}


@app.route("/api/search")
def GET_search(req, q: str = "all", page: int = 1, tags: list[str] = []):  # noqa: B006 - never mutated
    return {"q": q, "page": page, "tags": tags}


@app.route("/api/pages")
def GET_pages(req, page: Annotated[int, nbroutes.Query(ge=1)] = 1):
    return {"page": page}


@app.route("/api/count")
def GET_count(req, n: int):
    return {"n": n}


@app.route("/api/posts", "POST")
def POST_post(req, body: NewPost):
    return {"title": body.title, "views": body.views, "model": type(body).__name__}


@app.route("/api/missing/[id]")
def GET_missing(req, id: int):
    raise nbroutes.HTTPException(404, "User not found", headers={"X-A": "1"})


@app.route("/api/filtered")
def GET_filtered(req) -> Out:
    return {"id": 1, "name": "a", "password": "secret"}


@app.route("/api/modelled", response_model=Out)
def GET_modelled(req):
    return {"id": 2, "name": "b", "password": "secret"}


@app.route("/api/values")
def GET_values(req):
    return {
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "day": datetime.date(2024, 1, 2),
        "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "price": decimal.Decimal("1.50"),
        "set": {3},
        "point": Point(1, 2),
    }


@app.route("/api/plain")
def GET_plain(req, res):
    res.status(201).json({"method": req.method, "query": req.query})


@app.route("/api/headers")
def GET_headers(
    req,
    user_agent: Annotated[str, nbroutes.Header()] = "none",
    x_count: Annotated[int, nbroutes.Header()] = 0,
    session: Annotated[str, nbroutes.Cookie()] = "anon",
):
    return {"user_agent": user_agent, "x_count": x_count, "session": session}


@pytest.fixture
def client():
    with TestClient(app) as c:
        yield c


def assert_validation_error(r):
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "Validation failed"
    assert isinstance(body["detail"], list) and body["detail"]
    for item in body["detail"]:
        assert {"type", "loc", "msg"} <= item.keys()
        assert isinstance(item["loc"], list)
    return body["detail"]


# -- path parameters -------------------------------------------------------------------


def test_path_param_by_name_is_converted_to_int(client):
    r = client.get("/api/users/42")
    assert r.status_code == 200
    assert r.json() == {"id": 42, "type": "int"}


def test_path_param_that_is_not_an_int_is_422(client):
    detail = assert_validation_error(client.get("/api/users/x"))
    assert [d["loc"] for d in detail] == [["path", "id"]]
    assert detail[0]["type"] == "int_parsing"


# -- query parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("/api/search", {"q": "all", "page": 1, "tags": []}),
        ("/api/search?q=cats&page=3", {"q": "cats", "page": 3, "tags": []}),
        ("/api/search?tags=a", {"q": "all", "page": 1, "tags": ["a"]}),
        ("/api/search?tags=a&tags=b&tags=c", {"q": "all", "page": 1, "tags": ["a", "b", "c"]}),
        ("/api/search?page=1&page=2", {"q": "all", "page": 2, "tags": []}),
    ],
)
def test_query_params_with_defaults_and_lists(client, url, expected):
    r = client.get(url)
    assert r.status_code == 200
    assert r.json() == expected


def test_query_param_constraint_ok(client):
    assert client.get("/api/pages?page=5").json() == {"page": 5}
    assert client.get("/api/pages").json() == {"page": 1}


def test_query_param_constraint_violated_is_422_with_ctx(client):
    detail = assert_validation_error(client.get("/api/pages?page=0"))
    assert len(detail) == 1
    assert detail[0]["loc"] == ["query", "page"]
    assert detail[0]["type"] == "greater_than_equal"
    assert detail[0]["ctx"] == {"ge": 1}


def test_required_query_param_missing_is_422(client):
    detail = assert_validation_error(client.get("/api/count"))
    assert detail[0]["loc"] == ["query", "n"]
    assert detail[0]["type"] == "missing"


@pytest.mark.parametrize("value", ["abc", "1.5", "9" * 5000, "", "1e3"])
def test_bad_numbers_are_422_never_500(client, value):
    r = client.get("/api/count", params={"n": value})
    detail = assert_validation_error(r)
    assert detail[0]["loc"] == ["query", "n"]


def test_huge_path_number_is_422_not_500(client):
    detail = assert_validation_error(client.get("/api/users/" + "9" * 5000))
    assert detail[0]["loc"] == ["path", "id"]


# -- the body ----------------------------------------------------------------------------


def test_model_body_from_json(client):
    r = client.post("/api/posts", json={"title": "Hello", "views": 3})
    assert r.status_code == 200
    assert r.json() == {"title": "Hello", "views": 3, "model": "NewPost"}


def test_model_body_from_form_data(client):
    r = client.post("/api/posts", data={"title": "Hello", "views": "7"})
    assert r.status_code == 200
    assert r.json() == {"title": "Hello", "views": 7, "model": "NewPost"}


def test_missing_body_is_422(client):
    detail = assert_validation_error(client.post("/api/posts"))
    assert detail == [{"type": "missing", "loc": ["body"], "msg": "Field required"}]


def test_malformed_json_body_is_422_json_invalid(client):
    r = client.post("/api/posts", content=b'{"title": ', headers={"Content-Type": "application/json"})
    detail = assert_validation_error(r)
    assert detail[0]["type"] == "json_invalid"
    assert detail[0]["loc"] == ["body"]


@pytest.mark.parametrize(
    "payload, loc",
    [
        ({"views": 1}, ["body", "title"]),
        ({"title": "t", "views": "many"}, ["body", "views"]),
        ({"title": "t", "views": 1.5}, ["body", "views"]),
        ({"title": ["not", "a", "string"]}, ["body", "title"]),
    ],
)
def test_wrong_body_fields_are_422(client, payload, loc):
    detail = assert_validation_error(client.post("/api/posts", json=payload))
    assert loc in [d["loc"] for d in detail]


@pytest.mark.parametrize("body", [[1, 2], "a string", 5, None])
def test_body_that_is_not_an_object_is_422(client, body):
    r = client.post("/api/posts", content=json.dumps(body), headers={"Content-Type": "application/json"})
    detail = assert_validation_error(r)
    assert all(d["loc"][0] == "body" for d in detail)


def test_text_body_to_a_model_is_422_not_500(client):
    r = client.post("/api/posts", content="title=Hello", headers={"Content-Type": "text/plain"})
    detail = assert_validation_error(r)
    assert detail[0]["loc"][0] == "body"


def test_huge_json_number_in_body_is_422_not_500(client):
    r = client.post(
        "/api/posts",
        content='{"title": "t", "views": ' + "9" * 5000 + "}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422)
    assert r.status_code != 500


# -- errors and output -------------------------------------------------------------------


def test_http_exception_from_typed_handler(client):
    r = client.get("/api/missing/3")
    assert r.status_code == 404
    assert r.json() == {"error": "User not found"}
    assert r.headers.get("X-A") == "1"


def test_validation_runs_before_handler_raises(client):
    detail = assert_validation_error(client.get("/api/missing/x"))
    assert detail[0]["loc"] == ["path", "id"]


@pytest.mark.parametrize(
    "url, expected",
    [("/api/filtered", {"id": 1, "name": "a"}), ("/api/modelled", {"id": 2, "name": "b"})],
)
def test_return_type_filters_extra_keys(client, url, expected):
    r = client.get(url)
    assert r.status_code == 200
    assert r.json() == expected
    assert "secret" not in r.text


def test_returned_values_serialise(client):
    r = client.get("/api/values")
    assert r.status_code == 200
    assert r.json() == {
        "when": "2024-01-02T03:04:05",
        "day": "2024-01-02",
        "uid": "12345678-1234-5678-1234-567812345678",
        "price": 1.5,
        "set": [3],
        "point": {"x": 1, "y": 2},
    }


def test_handler_without_annotations_behaves_as_before(client):
    r = client.get("/api/plain?a=1")
    assert r.status_code == 201
    assert r.json() == {"method": "GET", "query": {"a": "1"}}


# -- headers and cookies -----------------------------------------------------------------


def test_header_and_cookie_params(client):
    r = client.get("/api/headers", headers={"User-Agent": "pytest", "X-Count": "4"}, cookies={"session": "s1"})
    assert r.status_code == 200
    assert r.json() == {"user_agent": "pytest", "x_count": 4, "session": "s1"}


def test_header_and_cookie_defaults(client):
    assert client.get("/api/headers").json() == {"user_agent": "none", "x_count": 0, "session": "anon"}


def test_bad_header_is_422_with_header_loc(client):
    detail = assert_validation_error(client.get("/api/headers", headers={"X-Count": "many"}))
    assert detail[0]["loc"] == ["header", "x_count"]


class Tagged(BaseModel):
    title: str
    tags: list[str] = []


form_app = nbroutes.App()


@form_app.route("/api/tagged", methods="POST")
def tagged(req, body: Tagged):
    return body, 201


@pytest.mark.parametrize(
    "data, tags",
    [
        ({"title": "t", "tags": "one"}, ["one"]),
        ({"title": "t", "tags": ["one", "two"]}, ["one", "two"]),
        ({"title": "t"}, []),
    ],
)
def test_a_form_field_sent_once_fills_a_list_field(data, tags):
    with TestClient(form_app) as client:
        for files in (None, {"attachment": ("a.txt", b"x", "text/plain")}):  # urlencoded, then multipart
            r = client.post("/api/tagged", data=data, files=files)
            assert (r.status_code, r.json()["tags"]) == (201, tags)
