"""Endpoint: a handler's signature worked out once, then called as ``(req, res)``, ``(req)``, ``()`` or typed."""

from __future__ import annotations

import functools

import pytest
from pydantic import BaseModel

from nbroutes.core.handlers import METHODS, Endpoint
from nbroutes.core.requests import Request
from nbroutes.core.responses import ApiResponse
from nbroutes.errors import RequestValidationError, SignatureError
from nbroutes.testing import TestClient


class Item(BaseModel):
    name: str


def request(**params: str) -> Request:
    """A GET request whose route matched ``params``, as the router leaves it."""
    req = Request("GET", "/api/x?q=1", {"X-Token": "t"})
    req.params.update(params)
    return req


def both(req, res):
    return ("both", req.method, type(res).__name__)


def only_req(req):
    return ("req", req.query["q"])


def nothing():
    return ("nothing",)


@pytest.mark.parametrize(
    "fn, expected",
    [(both, ("both", "GET", "ApiResponse")), (only_req, ("req", "1")), (nothing, ("nothing",))],
    ids=["req-res", "req", "none"],
)
def test_untyped_handlers_are_called_positionally(fn, expected):
    endpoint = Endpoint(fn)
    endpoint.prepare([])
    assert endpoint.call(request(), ApiResponse()) == expected


def test_typed_parameters_come_from_the_path_and_are_converted():
    def GET(id: int, q: int):
        return id + q

    endpoint = Endpoint(GET)
    endpoint.prepare(["id"])
    assert endpoint.call(request(id="41"), ApiResponse()) == 42


def test_a_typed_parameter_that_does_not_validate_raises_422():
    def GET(id: int):
        return id

    endpoint = Endpoint(GET)
    endpoint.prepare(["id"])
    with pytest.raises(RequestValidationError):
        endpoint.call(request(id="abc"), ApiResponse())


def test_a_wrapped_handler_is_called_with_what_the_wrapper_takes():
    # follow_wrapped=False: a decorator's (req, res) wrapper is called as such, not as the function it wraps.
    def GET():
        return "inner"

    @functools.wraps(GET)
    def wrapper(req, res):
        return ("wrapped", GET())

    endpoint = Endpoint(wrapper)
    endpoint.prepare([])
    assert endpoint.call(request(), ApiResponse()) == ("wrapped", "inner")


def test_a_handler_taking_star_args_gets_req_and_res():
    def handler(*args):
        return len(args)

    endpoint = Endpoint(handler)
    endpoint.prepare([])
    assert endpoint.call(request(), ApiResponse()) == 2


def test_not_a_function_is_refused_by_name():
    with pytest.raises(SignatureError, match="'GET' must be a function, not int"):
        Endpoint(3, "GET")


def test_a_signature_nbroutes_cannot_supply_is_refused_at_prepare():
    def POST(first: Item, second: Item):
        return first

    endpoint = Endpoint(POST)
    with pytest.raises(SignatureError, match="POST: only one parameter can be the body, not first, second"):
        endpoint.prepare([])


def test_name_async_doc_and_repr():
    async def fetch_user(req):
        """Fetch one user.

        More detail."""

    endpoint = Endpoint(fetch_user)
    assert endpoint.name == "fetch_user"
    assert endpoint.is_async
    assert endpoint.doc == "Fetch one user.\n\nMore detail."
    assert repr(endpoint) == "<Endpoint fetch_user>"
    assert not Endpoint(nothing, "GET").is_async
    assert Endpoint(nothing, "GET").name == "GET"
    assert Endpoint(nothing).doc == ""


def test_the_status_code_and_response_model_are_kept_for_the_document():
    endpoint = Endpoint(nothing, status_code=201, response_model=dict)
    assert (endpoint.status_code, endpoint.response_model) == (201, dict)


def test_methods_are_the_ones_a_method_cell_may_define():
    assert METHODS == ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def test_an_endpoint_answers_through_an_app():
    from nbroutes import App

    app = App()
    app.add("/api/users/[id]", {"GET": Endpoint(lambda id: {"id": id})})
    with TestClient(app) as client:
        assert client.get("/api/users/7").json() == {"id": "7"}
