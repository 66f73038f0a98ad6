"""A status a handler gives must be one HTTP can send: 200-599, else it is the handler's error (a 500)."""

from __future__ import annotations

import pytest

from nbroutes import App, HTTPException
from nbroutes.core.responses import Response
from nbroutes.testing import TestClient
from tests.support import raw_request

from .servers import add

BAD = [-1, 0, 99, 100, 101, 103, 199, 600, 999, 1000, True]


def answer_with(make):
    """An app whose /api/x answers with ``make(req, res)``, and its route console."""
    app = App(debug=True)  # the reason in the body, as the kernel shows it
    console = add(app, "/api/x", make)
    add(app, "/api/ok", lambda req: {"ok": True})
    return app, console


def tuple_status(code):
    return lambda req: ({"a": 1}, code)


def res_status(code):
    def handler(req, res):
        res.status(code).json({"a": 1})

    return handler


def response_status(code):
    return lambda req: Response(b"body", code)


def raised_status(code):
    def handler(req):
        raise HTTPException(code)

    return handler


def streamed_status(code):
    def handler(req, res):
        res.status_code = code  # as Node's res.statusCode = code: the attribute, unchecked until it is sent

        def chunks():
            yield "chunk"

        return chunks()

    return handler


def attribute_status(code):
    def handler(req, res):
        res.status_code = code
        res.json({"a": 1})

    return handler


def redirect_status(code):
    return lambda req, res: res.redirect("/elsewhere", code)


SHAPES = [tuple_status, res_status, response_status, raised_status, streamed_status, attribute_status, redirect_status]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.__name__)
@pytest.mark.parametrize("code", BAD)
def test_a_status_outside_200_599_is_a_handler_error(shape, code):
    app, console = answer_with(shape(code))
    with TestClient(app) as client:
        response = client.get("/api/x")
        assert response.status_code == 500
        assert response.json()["error"] == "Internal Server Error"
        assert "status" in response.json()["detail"]
        assert "200" in response.json()["detail"] and "599" in response.json()["detail"]
        (summary, _), *more = console.errors
        assert not more
        assert summary.startswith("GET /api/x raised ValueError")
        assert client.get("/api/ok").status_code == 200


@pytest.mark.parametrize("code", [200, 201, 299, 302, 404, 418, 500, 599])
@pytest.mark.parametrize("shape", [tuple_status, res_status, response_status], ids=lambda s: s.__name__)
def test_statuses_200_to_599_are_sent_as_given(shape, code):
    app, console = answer_with(shape(code))
    with TestClient(app) as client:
        assert client.get("/api/x").status_code == code
    assert console.errors == []


def test_a_status_set_on_a_response_afterwards_is_checked_too():
    def handler(req):
        response = Response.json({"a": 1})
        response.status = 101
        return response

    app, console = answer_with(handler)
    with TestClient(app) as client:
        assert client.get("/api/x").status_code == 500
    assert "ValueError" in console.reasons()


def test_a_middleware_status_outside_200_599_is_its_error():
    app = App(debug=True)  # the reason in the body, as the kernel shows it
    add(app, "/api/ok", lambda req: {"ok": True})
    app.use(lambda req, call_next: Response(b"", 101))
    with TestClient(app) as client:
        assert client.get("/api/ok").status_code == 500


@pytest.mark.parametrize("code", [-1, 100, 101, 600])
def test_over_a_socket_a_bad_status_is_a_500_and_the_client_does_not_hang(serve, code):
    app, console = answer_with(tuple_status(code))
    port = serve(app).port
    answer = raw_request(port, "GET", "/api/x", timeout=5)  # the timeout turns a hung client (a 1xx) into a failure
    assert answer.status == 500
    assert b"599" in answer.body
    assert "ValueError" in console.reasons()
    assert raw_request(port, "GET", "/api/ok", timeout=5).status == 200


def test_over_a_socket_res_status_100_is_a_500(serve):
    app, console = answer_with(res_status(100))
    assert raw_request(serve(app).port, "GET", "/api/x", timeout=5).status == 500


def test_an_async_handler_that_writes_with_a_bad_status_is_a_500(serve):
    async def handler(req, res):
        res.status_code = 101
        res.write("first")
        res.end()

    app, console = answer_with(handler)
    with TestClient(app) as client:
        assert client.get("/api/x").status_code == 500
    assert "ValueError" in console.reasons()
    assert raw_request(serve(app).port, "GET", "/api/x", timeout=5).status == 500


# -- served: nbroutes serve, uvicorn and a kernel, on raw sockets (the ``hostile`` fixture) -----------------------


@pytest.mark.parametrize("code", [-1, 100, 101, 600])
def test_served_a_bad_status_is_a_500_and_the_client_does_not_hang(hostile, code):
    answer = raw_request(hostile.port, "GET", f"/api/status/{code}", timeout=5)
    assert answer.status == 500, answer
    assert raw_request(hostile.port, "GET", "/api/ok", timeout=5).json() == {"ok": True}


@pytest.mark.parametrize("code", [201, 418, 599])
def test_served_a_status_in_range_is_sent_as_given(hostile, code):
    assert raw_request(hostile.port, "GET", f"/api/status/{code}", timeout=5).status == code
