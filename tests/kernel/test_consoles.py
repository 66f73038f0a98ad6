"""The consoles of route cells: route cards in a kernel, and the request a card's "Try it" opens."""

from __future__ import annotations

import pytest

from nbroutes import App
from nbroutes.core.handlers import Endpoint
from nbroutes.kernel.cards import RouteCard
from nbroutes.kernel.consoles import RouteConsole, request_widget_for, route_cards
from nbroutes.kernel.extension import KernelState


class Shell:
    """Where the state is kept: any object will do."""


def route(pattern: str, *methods: str):
    """The route an App makes for ``pattern`` with a handler per method ("*" for the pages form)."""
    app = App()
    app.add(pattern, {m: Endpoint(lambda: None, m) for m in methods})
    [made] = [r for r in app.router.routes if r.pattern.text == pattern]
    return made


@pytest.mark.parametrize(
    "methods, pattern, request_line",
    [
        (("POST", "GET"), "/api/users/[id]", "GET /api/users/1"),  # GET when the route has it
        (("DELETE", "PUT"), "/api/items/[id]", "PUT /api/items/1"),  # else its first, in GET, POST, PUT... order
        (("*",), "/api/docs/[...slug]", "GET /api/docs/a/b"),  # the pages form answers GET
    ],
)
def test_try_it_opens_the_first_method_on_an_example_path(methods, pattern, request_line):
    widget = request_widget_for(route(pattern, *methods))
    assert f"{widget.method_input.value} {widget.path_input.value}" == request_line


def test_a_route_card_links_the_public_url_and_offers_try_it(monkeypatch):
    monkeypatch.setenv("NBROUTES_PORT", "8123")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    state = KernelState(Shell())
    card = route_cards(state, "GET", "/api/users/[id]", "typed")
    assert isinstance(card, RouteCard)
    assert card.url == "/user/ada/proxy/8123/api/users/[id]"
    assert card.try_it is not None
    card.route = route("/api/users/[id]", "GET")
    assert card.try_it().path_input.value == "/api/users/1"


def test_a_middleware_card_has_no_url_and_nothing_to_try():
    card = route_cards(KernelState(Shell()), "middleware", "auth", tryable=False)
    assert card.url is None
    assert card.try_it is None


def test_a_plain_console_belongs_to_no_route_until_registered():
    console = RouteConsole("/api/x")
    assert (console.name, console.route) == ("/api/x", None)
