"""TestClient: requests built as a client would send them, the app called in-process, cookies kept."""

from __future__ import annotations

import pytest

from nbroutes import App
from nbroutes.testing import TestClient

app = App()


@app.route("/api/echo", methods=["GET", "POST", "PUT"])
def echo(req):
    return {
        "method": req.method,
        "query": req.query,
        "type": req.headers.get("content-type"),
        "length": req.headers.get("content-length"),
        "body": req.body if not req.files else {name: f.text() for name, f in req.files.items()},
        "cookies": req.cookies,
        "token": req.headers.get("x-token"),
    }


@app.route("/api/login")
def login(req, res):
    res.set_cookie("sid", "s1")
    return "in"


@app.route("/api/logout")
def logout(req, res):
    res.clear_cookie("sid")
    return "out"


@app.route("/api/boom")
def boom(req):
    raise ZeroDivisionError("no")


@app.route("/api/stream")
def stream(req):
    def parts():
        yield "a"
        yield "b"

    return parts()


@pytest.fixture
def client():
    with TestClient(app) as c:
        yield c


def test_json_sets_the_type_and_length(client):
    reply = client.post("/api/echo", json={"n": 1}).json()
    assert reply["type"] == "application/json"
    assert reply["length"] == str(len(b'{"n": 1}'))
    assert reply["body"] == {"n": 1}


def test_a_data_mapping_is_a_form(client):
    reply = client.post("/api/echo", data={"tag": ["a", "b"], "name": "x"}).json()
    assert reply["type"] == "application/x-www-form-urlencoded"
    assert reply["body"] == {"tag": ["a", "b"], "name": "x"}


def test_files_are_multipart(client):
    reply = client.post("/api/echo", files={"doc": ("notes.txt", b"hello", "text/plain")}).json()
    assert reply["type"].startswith("multipart/form-data; boundary=")
    assert reply["body"] == {"doc": "hello"}


def test_raw_content_and_a_given_content_type_win(client):
    reply = client.put("/api/echo", content="plain words", headers={"Content-Type": "text/plain"}).json()
    assert (reply["type"], reply["body"]) == ("text/plain", "plain words")
    reply = client.post("/api/echo", json=[1], headers={"content-type": "application/vnd.x+json"}).json()
    assert reply["type"] == "application/vnd.x+json"


def test_params_are_added_to_the_query_string(client):
    assert client.get("/api/echo?a=1", params={"b": "2"}).json()["query"] == {"a": "1", "b": "2"}
    assert client.get("/api/echo", params=[("t", "x"), ("t", "y")]).json()["query"] == {"t": ["x", "y"]}


def test_base_headers_go_with_every_request_and_a_request_can_override_them():
    with TestClient(app, base_headers={"X-Token": "base"}) as c:
        assert c.get("/api/echo").json()["token"] == "base"
        assert c.get("/api/echo", headers={"X-Token": "mine"}).json()["token"] == "mine"


def test_cookies_are_kept_sent_back_and_cleared_as_a_browser_would(client):
    assert client.get("/api/login").cookies == {"sid": "s1"}
    assert client.cookies == {"sid": "s1"}
    assert client.get("/api/echo").json()["cookies"] == {"sid": "s1"}
    assert client.get("/api/echo", cookies={"extra": "1"}).json()["cookies"] == {"sid": "s1", "extra": "1"}
    client.get("/api/logout")
    assert client.cookies == {}
    assert client.get("/api/echo").json()["cookies"] == {}


def test_a_handler_error_is_a_500_or_raised_when_asked(client):
    response = client.get("/api/boom")
    assert response.status_code == response.status == 500
    with TestClient(app, raise_server_exceptions=True) as c, pytest.raises(ZeroDivisionError, match="no"):
        c.get("/api/boom")


def test_a_streamed_body_is_read_whole(client):
    response = client.get("/api/stream")
    assert response.text == "ab"
    assert response.response.stream is None


def test_the_response_repr_names_status_and_type(client):
    assert repr(client.get("/api/login")) == "<TestResponse 200 text/plain; charset=utf-8>"


def test_build_request_is_what_would_be_sent(client):
    request = client.build_request("POST", "/api/echo", json={"a": 1}, params={"q": "1"})
    assert (request.method, request.path, request.query_params) == ("POST", "/api/echo", {"q": "1"})
    assert request.raw_body == b'{"a": 1}'
    assert request.client == ("testclient", 50000)


def test_close_closes_the_private_loop_and_a_new_request_makes_another():
    c = TestClient(app)
    assert c.get("/api/login").status_code == 200
    private = c._loop
    c.close()
    assert private is not None and private.is_closed()
    assert c.get("/api/login").status_code == 200
    c.close()
