"""A cookie's name, value and attributes can never add to the Set-Cookie line: a bad one is the handler's error."""

from __future__ import annotations

import datetime

import pytest

from nbroutes import App
from nbroutes.testing import TestClient
from tests.support import raw_request

from .servers import add

INJECTED = [
    {"path": "/; Domain=evil.com"},
    {"path": "/a\r\nSet-Cookie: admin=1"},
    {"path": "/a\nX: y"},
    {"path": "/a\x00b"},
    {"path": "/a\x7fb"},
    {"path": "/caf\u00e9"},
    {"domain": "example.com; Secure"},
    {"domain": "evil.com; Path=/"},
    {"domain": "a b.com"},
    {"domain": "exa\r\nmple.com"},
    {"domain": ""},
    {"expires": "Thu, 01 Jan 1970 00:00:00 GMT; Domain=evil.com"},
    {"expires": "tomorrow"},
    {"expires": 12345},
    {"max_age": "60; Domain=evil.com"},
    {"max_age": float("inf")},
    {"samesite": "Lax; Domain=evil.com"},
    {"priority": "high"},
]


def cookie_app(name="c", value="ok", **attributes):
    app = App()
    console = add(app, "/api/x", lambda req, res: res.set_cookie(name, value, **attributes) and {"set": True})
    add(app, "/api/ok", lambda req: {"ok": True})
    return app, console


def assert_handler_error(app, console, client):
    response = client.get("/api/x")
    assert response.status_code == 500
    assert "set-cookie" not in response.headers
    (summary, _), *more = console.errors
    assert not more
    assert summary.startswith("GET /api/x raised ValueError: "), summary
    assert client.get("/api/ok").status_code == 200
    return summary


@pytest.mark.parametrize("attributes", INJECTED, ids=repr)
def test_an_attribute_that_would_add_to_the_line_is_a_handler_error(attributes):
    app, console = cookie_app(**attributes)
    with TestClient(app) as client:
        summary = assert_handler_error(app, console, client)
    assert "cookie" in summary


@pytest.mark.parametrize("name", ["", "a=b", "a;b", "a b", "a\r\nb", "caf\u00e9", "a,b", '"a"'])
def test_a_name_that_is_not_a_token_is_a_handler_error(name):
    app, console = cookie_app(name=name)
    with TestClient(app) as client:
        assert_handler_error(app, console, client)


def test_a_value_that_cannot_be_encoded_is_a_handler_error():
    app, console = cookie_app(value="\ud800")
    with TestClient(app) as client:
        summary = assert_handler_error(app, console, client)
    assert "cookie" in summary


def test_clear_cookie_checks_its_attributes_too():
    def handler(req, res):
        res.clear_cookie("sid", path="/; Domain=evil.com")
        return {"cleared": True}

    app = App()
    console = add(app, "/api/x", handler)
    add(app, "/api/ok", lambda req: {"ok": True})
    with TestClient(app) as client:
        assert_handler_error(app, console, client)


@pytest.mark.parametrize(
    "value, attributes, expected",
    [
        ("a;b c", {}, "c=a%3Bb%20c; Path=/"),
        ("\r\nSet-Cookie: x=1", {}, "c=%0D%0ASet-Cookie%3A%20x%3D1; Path=/"),
        ("ok", {"path": "/api/items"}, "c=ok; Path=/api/items"),
        ("ok", {"path": "/a,b=c%20d"}, "c=ok; Path=/a,b=c%20d"),
        ("ok", {"domain": "example.com"}, "c=ok; Path=/; Domain=example.com"),
        ("ok", {"domain": ".sub.example.com"}, "c=ok; Path=/; Domain=.sub.example.com"),
        ("ok", {"domain": "localhost"}, "c=ok; Path=/; Domain=localhost"),
        ("ok", {"domain": "127.0.0.1"}, "c=ok; Path=/; Domain=127.0.0.1"),
        ("ok", {"max_age": "60"}, "c=ok; Max-Age=60; Path=/"),
        ("ok", {"expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, "c=ok; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"),
        (
            "ok",
            {"expires": datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)},
            "c=ok; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Path=/",
        ),
    ],
)
def test_good_cookies_are_sent_as_before(value, attributes, expected):
    app, console = cookie_app(value=value, **attributes)
    with TestClient(app) as client:
        response = client.get("/api/x")
    assert response.status_code == 200
    (line,) = response.headers.getlist("set-cookie")
    assert sorted(line.split("; ")) == sorted(expected.split("; "))
    assert console.errors == []


def test_over_a_socket_an_injected_path_is_a_500_with_no_cookie(serve):
    app, console = cookie_app(path="/; Domain=evil.com")
    port = serve(app).port
    answer = raw_request(port, "GET", "/api/x")
    assert answer.status == 500
    assert answer.get_all("Set-Cookie") == []
    assert answer.json()["error"] == "Internal Server Error"
    assert "cookie c: path must start with /" in console.reasons()
    assert raw_request(port, "GET", "/api/ok").status == 200


def test_over_a_socket_a_good_cookie_arrives_whole(serve):
    app, _ = cookie_app(value="a; b", path="/api", domain="localhost", httponly=True)
    answer = raw_request(serve(app).port, "GET", "/api/x")
    assert answer.status == 200
    assert answer.get_all("Set-Cookie") == ["c=a%3B%20b; Path=/api; Domain=localhost; HttpOnly"]


# -- served: nbroutes serve, uvicorn and a kernel, on raw sockets (the ``hostile`` fixture) -----------------------


def test_served_an_injected_path_is_a_500_with_no_cookie(hostile):
    answer = raw_request(hostile.port, "GET", "/api/cookie-injected")
    assert answer.status == 500, answer
    assert answer.get_all("Set-Cookie") == []
    assert answer.json()["error"] == "Internal Server Error"
    assert raw_request(hostile.port, "GET", "/api/ok").json() == {"ok": True}


def test_served_a_good_cookie_arrives_whole(hostile):
    answer = raw_request(hostile.port, "GET", "/api/cookie-good")
    assert answer.status == 200, answer
    assert answer.get_all("Set-Cookie") == ["c=a%3B%20b; Path=/api; Domain=localhost; HttpOnly"]
