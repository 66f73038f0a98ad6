"""Responses: what a handler's return value becomes, and the ``res`` object."""

import dataclasses
import datetime
import decimal
import enum
import json
import uuid

import pydantic
import pytest

from nbroutes.core.responses import ApiResponse, Response, to_response
from nbroutes.errors import ResponseSentError

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"


class User(pydantic.BaseModel):
    id: int
    name: str
    joined: datetime.date


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Colour(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    "value, body",
    [
        ({"hello": "world"}, {"hello": "world"}),
        ([1, "two", None, True], [1, "two", None, True]),
        ({}, {}),
        ([], []),
        (0, 0),
        (3.5, 3.5),
        (False, False),
        ({"name": "café"}, {"name": "café"}),
        (User(id=1, name="Ada", joined=datetime.date(2024, 1, 2)), {"id": 1, "name": "Ada", "joined": "2024-01-02"}),
        ([User(id=2, name="Bo", joined=datetime.date(2024, 3, 4))], [{"id": 2, "name": "Bo", "joined": "2024-03-04"}]),
        (Point(1, 2), {"x": 1, "y": 2}),
        ({"at": datetime.datetime(2024, 5, 6, 7, 8, 9)}, {"at": "2024-05-06T07:08:09"}),
        ({"d": datetime.date(2024, 5, 6)}, {"d": "2024-05-06"}),
        (
            {"id": uuid.UUID("12345678-1234-5678-1234-567812345678")},
            {"id": "12345678-1234-5678-1234-567812345678"},
        ),
        ({"price": decimal.Decimal("1.50")}, {"price": 1.5}),
        ({"count": decimal.Decimal("3")}, {"count": 3}),
        ({"tags": {"a"}}, {"tags": ["a"]}),
        ({"tags": frozenset({"b"})}, {"tags": ["b"]}),
        ({"colour": Colour.RED}, {"colour": "red"}),
    ],
)
def test_json_values(value, body):
    response = to_response(value)
    assert response.status == 200
    assert response.content_type == JSON
    assert json.loads(response.body) == body


def test_json_is_compact_utf8():
    assert to_response({"a": [1, 2], "n": "é"}).body == '{"a":[1,2],"n":"é"}'.encode()


def test_set_becomes_a_list_of_its_items():
    assert sorted(json.loads(to_response({"s": {1, 2, 3}}).body)["s"]) == [1, 2, 3]


def test_unserialisable_value_raises_type_error():
    with pytest.raises(TypeError):
        to_response({"x": object()})


@pytest.mark.parametrize(
    "value, content_type, body",
    [
        ("hello", TEXT, b"hello"),
        ("café", TEXT, "café".encode()),
        ("", TEXT, b""),
        (b"\x00\x01", BINARY, b"\x00\x01"),
        (bytearray(b"ab"), BINARY, b"ab"),
    ],
)
def test_text_and_bytes(value, content_type, body):
    response = to_response(value)
    assert response.status == 200
    assert response.content_type == content_type
    assert response.body == body


@pytest.mark.parametrize(
    "value, status, content_type, body",
    [
        (({"created": True}, 201), 201, JSON, b'{"created":true}'),
        (("gone", 410), 410, TEXT, b"gone"),
        ((b"\x00", 202), 202, BINARY, b"\x00"),
        ((None, 202), 202, None, b""),
    ],
)
def test_body_and_status_tuple(value, status, content_type, body):
    response = to_response(value)
    assert response.status == status
    assert response.content_type == content_type
    assert response.body == body


def test_body_status_and_headers_tuple():
    response = to_response(("<p>hi</p>", 200, {"Content-Type": "text/html", "X-Extra": "1"}))
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.get_header("x-extra") == "1"
    assert [k for k, _ in response.headers if k.lower() == "content-type"] == ["Content-Type"]


@pytest.mark.parametrize("value", [("x",), ("x", "200"), ("x", 200, {}, "extra")])
def test_bad_tuples_raise_type_error(value):
    with pytest.raises(TypeError):
        to_response(value)


def test_response_is_returned_as_is():
    original = Response(b"<x/>", 203, {"Content-Type": "application/xml"})
    response = to_response(original)
    assert response is original
    assert response.status == 203
    assert response.body == b"<x/>"


def test_response_in_a_tuple_takes_the_status():
    response = to_response((Response.text("nope"), 418))
    assert response.status == 418
    assert response.body == b"nope"


def test_none_with_res_unused_is_204():
    response = to_response(None, ApiResponse())
    assert response.status == 204
    assert response.body == b""
    assert to_response(None).status == 204


def test_none_after_res_used_is_what_res_holds():
    res = ApiResponse()
    res.status(201).json({"id": 7})
    response = to_response(None, res)
    assert response.status == 201
    assert response.content_type == JSON
    assert response.body == b'{"id":7}'


def test_none_after_only_a_header_was_set():
    res = ApiResponse()
    res.set_header("X-Seen", "yes")
    response = to_response(None, res)
    assert response.status == 200
    assert response.get_header("x-seen") == "yes"


def test_res_status_applies_to_a_returned_body():
    res = ApiResponse()
    res.status(201)
    response = to_response({"created": True}, res)
    assert response.status == 201
    assert json.loads(response.body) == {"created": True}


def test_tuple_status_wins_over_res_status():
    res = ApiResponse()
    res.status(201)
    assert to_response(("x", 202), res).status == 202


def test_headers_and_cookies_set_on_res_travel_with_a_returned_body():
    res = ApiResponse()
    res.set_cookie("sid", "abc")
    res.set_cookie("theme", "dark")
    res.set_header("X-Request-Id", "42")
    response = to_response({"ok": True}, res)
    assert response.status == 200
    assert response.get_header("x-request-id") == "42"
    cookies = [v for k, v in response.headers if k.lower() == "set-cookie"]
    assert [c.split(";")[0] for c in cookies] == ["sid=abc", "theme=dark"]
    assert response.content_type == JSON


def test_a_returned_body_keeps_its_own_headers_over_res():
    res = ApiResponse()
    res.set_header("Content-Type", "text/html")
    res.set_header("X-A", "from-res")
    response = to_response(Response(b"x", 200, {"X-A": "from-body"}), res)
    assert [v for k, v in response.headers if k.lower() == "x-a"] == ["from-body"]
    assert response.content_type == "text/html"


def test_cookies_travel_with_a_returned_response_object():
    res = ApiResponse()
    res.set_cookie("sid", "abc")
    response = to_response(Response.text("hi", headers={"Set-Cookie": "other=1"}), res)
    cookies = sorted(v.split(";")[0] for k, v in response.headers if k.lower() == "set-cookie")
    assert cookies == ["other=1", "sid=abc"]


# -- Response ------------------------------------------------------------------------


def test_response_constructors():
    assert Response.json({"a": 1}, 201).content_type == JSON
    assert Response.json({"a": 1}, 201).status == 201
    assert Response.text("t").content_type == TEXT
    assert Response.html("<b>").content_type == "text/html; charset=utf-8"
    redirect = Response.redirect("/next")
    assert (redirect.status, redirect.get_header("location")) == (307, "/next")


def test_response_headers():
    response = Response(b"", 200, [("X-A", "1"), ("x-a", "2")])
    assert response.get_header("X-A") == "1"
    response.set_header("X-a", "3")
    assert response.headers == [("X-a", "3")]
    response.remove_header("x-A")
    assert response.headers == []
    assert response.get_header("x-a") is None


# -- ApiResponse -----------------------------------------------------------------------


def test_status_chains():
    res = ApiResponse()
    assert res.status(201) is res
    res.status(404).json({"error": "nope"})
    response = res.to_response()
    assert response.status == 404
    assert response.body == b'{"error":"nope"}'


@pytest.mark.parametrize("code", [99, 1000, "200", 200.0, None])
def test_status_must_be_an_http_status(code):
    with pytest.raises(ValueError):
        ApiResponse().status(code)


def test_json():
    res = ApiResponse()
    res.json([1, 2])
    response = res.to_response()
    assert (response.status, response.content_type, response.body) == (200, JSON, b"[1,2]")
    assert res.finished and res.used


@pytest.mark.parametrize(
    "body, content_type, sent",
    [
        ("hello", TEXT, b"hello"),
        (b"\x00\xff", BINARY, b"\x00\xff"),
        ({"a": 1}, JSON, b'{"a":1}'),
        ([1], JSON, b"[1]"),
        (None, None, b""),
    ],
)
def test_send(body, content_type, sent):
    res = ApiResponse()
    res.send(body)
    response = res.to_response()
    assert response.content_type == content_type
    assert response.body == sent


def test_send_keeps_a_content_type_set_before():
    res = ApiResponse()
    res.set_header("Content-Type", "text/html; charset=utf-8")
    res.send("<p>hi</p>")
    response = res.to_response()
    assert [v for k, v in response.headers if k.lower() == "content-type"] == ["text/html; charset=utf-8"]


def test_end():
    res = ApiResponse()
    res.status(202).end()
    response = res.to_response()
    assert (response.status, response.body, response.content_type) == (202, b"", None)
    assert res.finished

    res = ApiResponse()
    res.end("bye")
    assert res.to_response().body == b"bye"


@pytest.mark.parametrize(
    "args, status, location",
    [
        (("/login",), 307, "/login"),
        (("/login", 308), 308, "/login"),
        ((301, "/moved"), 301, "/moved"),  # Next.js's res.redirect(status, url)
        (("https://example.com/x", 302), 302, "https://example.com/x"),
    ],
)
def test_redirect(args, status, location):
    res = ApiResponse()
    res.redirect(*args)
    response = res.to_response()
    assert response.status == status
    assert response.get_header("location") == location
    assert response.body == b""
    assert res.finished


def test_set_header_with_a_list_sends_several_lines():
    res = ApiResponse()
    res.set_header("X-Multi", ["a", "b"])
    res.set_header("X-Num", 3)
    response = res.to_response()
    assert [(k, v) for k, v in response.headers if k.lower() == "x-multi"] == [("X-Multi", "a"), ("X-Multi", "b")]
    assert response.get_header("x-num") == "3"
    assert res.get_header("x-multi") == ["a", "b"]
    assert res.getHeader("X-Num") == "3"
    assert res.get_header("missing") is None


def test_set_header_replaces_and_append_header_adds():
    res = ApiResponse()
    res.set_header("X-A", "1")
    res.setHeader("x-a", "2")
    assert res.get_header("X-A") == "2"
    res.append_header("X-A", "3")
    assert res.get_header("X-A") == ["2", "3"]
    res.remove_header("X-A")
    assert res.get_header("X-A") is None


def cookie_parts(res):
    (line,) = [v for k, v in res.to_response().headers if k == "Set-Cookie"]
    first, *attrs = line.split("; ")
    return first, set(attrs)


def test_set_cookie_defaults_to_path_root():
    res = ApiResponse()
    res.set_cookie("sid", "abc")
    assert cookie_parts(res) == ("sid=abc", {"Path=/"})


def test_set_cookie_attributes():
    res = ApiResponse()
    res.set_cookie(
        "sid",
        "a b;c",
        max_age=3600,
        path="/api",
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="lax",
        expires=datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    )
    assert cookie_parts(res) == (
        "sid=a%20b%3Bc",
        {
            "Max-Age=3600",
            "Path=/api",
            "Domain=example.com",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Expires=Wed, 02 Jan 2030 03:04:05 GMT",
        },
    )


@pytest.mark.parametrize(
    "attributes, expected",
    [
        ({"max_age": datetime.timedelta(minutes=2)}, "Max-Age=120"),
        ({"samesite": "strict"}, "SameSite=Strict"),
        ({"samesite": "None", "secure": True}, "SameSite=None"),
        ({"samesite": True}, "SameSite=Strict"),
        ({"partitioned": True, "secure": True}, "Partitioned"),
        ({"http_only": True}, "HttpOnly"),
    ],
)
def test_set_cookie_attribute_table(attributes, expected):
    res = ApiResponse()
    res.set_cookie("c", "v", **attributes)
    assert expected in cookie_parts(res)[1]


def test_set_cookie_false_attributes_are_left_out():
    res = ApiResponse()
    res.set_cookie("c", "v", secure=False, httponly=False, domain=None)
    assert cookie_parts(res) == ("c=v", {"Path=/"})


@pytest.mark.parametrize(
    "name, attributes",
    [("bad name", {}), ("a;b", {}), ("", {}), ("ok", {"samesite": "sideways"}), ("ok", {"colour": "red"})],
)
def test_set_cookie_rejects(name, attributes):
    with pytest.raises(ValueError):
        ApiResponse().set_cookie(name, "v", **attributes)


def test_several_cookies_are_several_lines():
    res = ApiResponse()
    res.set_cookie("a", "1").set_cookie("b", "2")
    lines = [v for k, v in res.to_response().headers if k == "Set-Cookie"]
    assert [line.split(";")[0] for line in lines] == ["a=1", "b=2"]


def test_clear_cookie():
    res = ApiResponse()
    res.clear_cookie("sid", path="/api")
    first, attrs = cookie_parts(res)
    assert first == "sid="
    assert attrs == {"Max-Age=0", "Expires=Thu, 01 Jan 1970 00:00:00 GMT", "Path=/api"}


@pytest.mark.parametrize(
    "first, second",
    [
        (lambda r: r.json({}), lambda r: r.json({})),
        (lambda r: r.send("a"), lambda r: r.send("b")),
        (lambda r: r.end(), lambda r: r.end()),
        (lambda r: r.json({}), lambda r: r.end()),
        (lambda r: r.redirect("/a"), lambda r: r.send("x")),
        (lambda r: r.end(), lambda r: r.redirect("/a")),
        (lambda r: r.send("a"), lambda r: r.set_header("X-A", "1")),
        (lambda r: r.send("a"), lambda r: r.set_cookie("a", "1")),
    ],
)
def test_sending_twice_raises(first, second):
    res = ApiResponse()
    first(res)
    before = res.to_response()
    with pytest.raises(ResponseSentError):
        second(res)
    after = res.to_response()
    assert (after.status, after.headers, after.body) == (before.status, before.headers, before.body)


def test_unused_res():
    res = ApiResponse()
    assert not res.used and not res.finished
    response = res.to_response()
    assert (response.status, response.body, response.headers) == (200, b"", [])
