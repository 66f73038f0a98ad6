"""Hostile JSON: refused at the door with a 400, never a 500; whatever a handler holds can always be sent.

The rule: a value a handler stores must be sendable later, or refused when it arrives. So the
door refuses what JSON.parse refuses (NaN, Infinity), a number that overflows to infinity
(1e999: it cannot be stored as written) and a lone surrogate ("\\ud800": not text; I-JSON,
RFC 7493, forbids it and SQLite cannot store it as UTF-8). And ``dumps`` sends what a handler
holds as JSON.stringify does: NaN and Infinity as null, a lone surrogate as its escape.
"""

from __future__ import annotations

import json
import math

import pydantic
import pytest

from nbroutes import App, HTTPException
from nbroutes.core.requests import Request
from nbroutes.core.responses import dumps
from nbroutes.core.validation import RequestValidationError, validation_errors
from nbroutes.testing import TestClient
from tests.support import raw_request

from .servers import add

JSON_TYPE = {"Content-Type": "application/json"}

NOT_JSON = [
    b'{"t": NaN}',
    b'{"t": Infinity}',
    b'{"t": -Infinity}',
    b"NaN",
    b"[1, -Infinity]",
    b'{"t": "\xed\xa0\x80"}',  # a surrogate encoded in the bytes: not UTF-8
    '{"t": "\ud800"}'.encode("utf-16", "surrogatepass"),  # nor UTF-16
]
UNSENDABLE = [
    b'{"t": 1e999}',
    b'{"t": -1e999}',
    b'{"t": 1E400}',
    b'{"t": ' + b"1" * 400 + b".5}",
    b'{"t": "\\ud800"}',
    b'{"t": "\\uDFFF"}',
    b'{"t": "\\ud800x"}',
    b'{"t": "\\udc00\\ud800"}',
    b'{"\\ud800": 1}',
    b'[[{"deep": ["\\udbff"]}]]',
]
HOSTILE = NOT_JSON + UNSENDABLE
ACCEPTED = [
    (b'{"t": "\\ud83d\\ude00"}', {"t": "\U0001f600"}),  # a surrogate pair is one character
    (b'{"t": "\\\\ud800"}', {"t": "\\ud800"}),  # an escaped backslash, then text
    (b'{"t": 1e308}', {"t": 1e308}),
    (b'{"t": -0.0, "u": 5e-324}', {"t": -0.0, "u": 5e-324}),
    (b'{"t": 123456789012345678901234567890}', {"t": 123456789012345678901234567890}),
    (b'{"t": "NaN", "u": "Infinity"}', {"t": "NaN", "u": "Infinity"}),
]


def quickstart():
    """The pages-form handler of notebooks/quickstart.ipynb: it keeps what is POSTed and lists it."""
    app = App()
    items: list = []

    def handler(req, res):
        if req.method == "POST":
            items.append(req.body)
            res.status(201).json({"added": req.body, "count": len(items)})
        elif req.method == "GET":
            res.json(items)
        else:
            res.set_header("Allow", "GET, POST")
            res.status(405).json({"error": f"{req.method} is not allowed"})

    console = add(app, "/api/items", handler)
    return app, console


class Item(pydantic.BaseModel):
    t: int


def typed_app():
    app = App()

    def create(body: Item):
        return body

    return app, add(app, "/api/typed", create)


@pytest.mark.parametrize("raw", NOT_JSON, ids=repr)
def test_nan_and_infinity_are_not_json(raw):
    app, console = quickstart()
    with TestClient(app) as client:
        response = client.post("/api/items", content=raw, headers=JSON_TYPE)
        assert (response.status_code, response.text) == (400, "Invalid JSON")
        assert client.get("/api/items").json() == []
    assert console.errors == []


@pytest.mark.parametrize("raw", UNSENDABLE, ids=repr)
def test_a_value_that_could_not_be_sent_back_is_refused_at_the_door(raw):
    app, console = quickstart()
    with TestClient(app) as client:
        response = client.post("/api/items", content=raw, headers=JSON_TYPE)
        assert response.status_code == 400
        assert response.text.startswith("Invalid JSON: ")
        listed = client.get("/api/items")
        assert (listed.status_code, listed.json()) == (200, [])
    assert console.errors == []


@pytest.mark.parametrize("raw, value", ACCEPTED, ids=repr)
def test_json_that_can_be_sent_back_is_kept_and_sent_back(raw, value):
    app, _ = quickstart()
    with TestClient(app) as client:
        assert client.post("/api/items", content=raw, headers=JSON_TYPE).status_code == 201
        assert client.get("/api/items").json() == [value]


@pytest.mark.parametrize("raw", HOSTILE, ids=repr)
def test_req_json_refuses_the_same(raw):
    app = App()
    add(app, "/api/raw", lambda req: {"got": req.json()})
    with TestClient(app) as client:
        response = client.post("/api/raw", content=raw, headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert response.text.startswith("Invalid JSON")


@pytest.mark.parametrize("raw", HOSTILE, ids=repr)
def test_on_a_typed_route_hostile_json_is_a_422_that_encodes(raw):
    app, console = typed_app()
    with TestClient(app) as client:
        response = client.post("/api/typed", content=raw, headers=JSON_TYPE)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"] and error["type"] == "json_invalid"
    assert console.errors == []


def test_a_422_whose_input_is_nan_or_a_surrogate_still_encodes():
    class Numbers(pydantic.BaseModel):
        n: int
        s: int

    app = App()

    def validate(req):
        try:
            return Numbers.model_validate({"n": float("nan"), "s": "\ud800"})
        except pydantic.ValidationError as exc:
            raise RequestValidationError(validation_errors(exc, ("body",))) from None

    console = add(app, "/api/x", validate)
    with TestClient(app) as client:
        response = client.get("/api/x")
    assert response.status_code == 422
    inputs = {e["loc"][-1]: e["input"] for e in response.json()["detail"]}
    assert inputs == {"n": None, "s": "\ud800"}
    assert console.errors == []


def test_a_422_built_by_hand_with_anything_in_it_still_encodes():
    def handler(req):
        raise RequestValidationError(
            [{"loc": ["query", "x"], "msg": "bad \ud800", "input": float("inf"), "ctx": {"error": ValueError("no")}}]
        )

    app = App()
    console = add(app, "/api/x", handler)
    with TestClient(app) as client:
        response = client.get("/api/x")
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error == {"loc": ["query", "x"], "msg": "bad \ud800", "input": None, "ctx": {"error": "no"}}
    assert console.errors == []


def test_an_http_exception_with_a_surrogate_in_its_detail_encodes():
    def handler(req):
        raise HTTPException(404, "no file named \udcff.txt")

    app = App()
    add(app, "/api/x", handler)
    with TestClient(app) as client:
        response = client.get("/api/x")
    assert (response.status_code, response.json()) == (404, {"error": "no file named \udcff.txt"})


@pytest.mark.parametrize(
    "value, sent",
    [
        ({"x": float("nan")}, b'{"x":null}'),
        ([float("inf"), -math.inf, 1.5], b"[null,null,1.5]"),
        ({"name": "a\udcffb"}, b'{"name":"a\\udcffb"}'),  # a file name os.listdir decoded with surrogateescape
        ({"caf\u00e9": "\U0001f600"}, '{"caf\u00e9":"\U0001f600"}'.encode()),
    ],
)
def test_dumps_sends_what_a_handler_holds_as_json_stringify_does(value, sent):
    assert dumps(value) == sent
    json.loads(sent)  # and it is JSON


def test_dumps_still_refuses_a_circular_value():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        dumps(loop)


def test_a_float_stored_from_the_query_string_can_be_listed_later():
    app = App()
    stored: list = []

    def post(req, x: float):
        stored.append(x)
        return {"count": len(stored)}

    add(app, "/api/add", post)
    add(app, "/api/list", lambda req: stored)
    with TestClient(app) as client:
        for x in ("nan", "inf", "-inf", "2.5"):
            assert client.post(f"/api/add?x={x}").status_code == 200
        for _ in range(2):  # and again: nothing broke for good
            response = client.get("/api/list")
            assert (response.status_code, response.json()) == (200, [None, None, None, 2.5])


def test_request_body_property_refuses_hostile_json():
    request = Request("POST", "/api/x", {"content-type": "application/json"}, b'{"t": NaN}')
    with pytest.raises(Exception) as refused:
        request.body  # noqa: B018
    assert getattr(refused.value, "status_code", None) == 400


# -- over a real socket --------------------------------------------------------------------------------


def test_over_a_socket_the_quickstart_route_survives_hostile_json(serve):
    app, console = quickstart()
    port = serve(app).port
    for raw in HOSTILE:
        answer = raw_request(port, "POST", "/api/items", raw, JSON_TYPE)
        assert answer.status == 400, raw
        assert answer.body.startswith(b"Invalid JSON"), raw
    assert raw_request(port, "POST", "/api/items", b'{"t": "\\ud83d\\ude00", "n": 1e308}', JSON_TYPE).status == 201
    answer = raw_request(port, "GET", "/api/items")
    assert (answer.status, answer.json()) == (200, [{"t": "\U0001f600", "n": 1e308}])
    assert console.errors == []


def test_over_a_socket_a_typed_route_answers_422_not_500(serve):
    app, _ = typed_app()
    port = serve(app).port
    for raw in (b'{"t": NaN}', b'{"t": 1e999}', b'{"t": "\\ud800"}'):
        answer = raw_request(port, "POST", "/api/typed", raw, JSON_TYPE)
        assert answer.status == 422, raw
        assert answer.json()["detail"][0]["type"] == "json_invalid"


def test_over_a_socket_a_stored_surrogate_and_nan_are_sent(serve):
    app = App()
    add(app, "/api/x", lambda req: {"name": "a\udcffb", "mean": float("nan")})
    answer = raw_request(serve(app).port, "GET", "/api/x")
    assert (answer.status, answer.json()) == (200, {"name": "a\udcffb", "mean": None})


# -- served: nbroutes serve, uvicorn and a kernel, on raw sockets (the ``hostile`` fixture) -----------------------


def test_served_the_quickstart_route_refuses_hostile_json_and_keeps_working(hostile):
    for raw in HOSTILE:
        answer = raw_request(hostile.port, "POST", "/api/items", raw, JSON_TYPE)
        assert answer.status == 400, (raw, answer)
        assert answer.body.startswith(b"Invalid JSON"), raw
    kept = b'{"t": "\\ud83d\\ude00", "n": 1e308}'
    assert raw_request(hostile.port, "POST", "/api/items", kept, JSON_TYPE).status == 201
    answer = raw_request(hostile.port, "GET", "/api/items")
    assert answer.status == 200
    assert answer.json()[-1] == {"t": "\U0001f600", "n": 1e308}
    assert {"t": None} not in answer.json()  # nothing hostile was kept


def test_served_a_typed_route_answers_422_not_500(hostile):
    for raw in (b'{"t": NaN}', b'{"t": 1e999}', b'{"t": "\\ud800"}'):
        answer = raw_request(hostile.port, "POST", "/api/typed", raw, JSON_TYPE)
        assert answer.status == 422, (raw, answer)
        assert answer.json()["detail"][0]["type"] == "json_invalid"
    assert raw_request(hostile.port, "POST", "/api/typed", b'{"t": 1}', JSON_TYPE).json() == {"t": 1}


def test_served_a_held_surrogate_and_nan_are_sent(hostile):
    answer = raw_request(hostile.port, "GET", "/api/held")
    assert (answer.status, answer.json()) == (200, {"name": "a\udcffb", "mean": None})
