"""The consoles of route cells: what a cell shows for the route it made, chosen by whoever runs the cells.

Each kernel's state asks its ``ConsoleFactory`` for a console whenever a cell makes a
route, a middleware or a resource. In a Jupyter kernel that is a route card
(``route_cards``); the headless runner passes a factory of plain consoles, so serving a
notebook never imports ipywidgets nor builds a widget that nothing would show. That is
why ``nbroutes.kernel.cards`` is imported here inside ``route_cards``, not at the top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from nbroutes.core.output import Console
from nbroutes.core.paths import example_path

if TYPE_CHECKING:
    from nbroutes.core.routing import Route
    from nbroutes.kernel.extension import KernelState
    from nbroutes.kernel.threads import KernelLoop

__all__ = ["ConsoleFactory", "RouteConsole", "request_widget_for", "route_cards"]


class RouteConsole(Console):
    """A route cell's console: shown once its route is registered, told of each response.

    This base shows nothing and counts nothing; its output goes where ``Console``'s does.
    """

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        #: The route it belongs to (a resource's first route), set once the route is registered.
        self.route: Route | None = None

    def show(self) -> None:
        """Show the console in the running cell; a plain console has nothing to show."""

    def touch(self, status: int) -> None:
        """One of its routes answered with ``status``."""


class ConsoleFactory(Protocol):
    """Makes the console of a route cell: ``kind`` is the methods ("GET, POST"), "CRUD" or "middleware",
    ``note`` follows the pattern, and only a ``tryable`` one (a route, not a middleware) has a URL to try."""

    def __call__(
        self, state: KernelState, kind: str, pattern: str, note: str = "", *, tryable: bool = True
    ) -> RouteConsole: ...


def route_cards(state: KernelState, kind: str, pattern: str, note: str = "", *, tryable: bool = True) -> RouteConsole:
    """A route card (the consoles of a Jupyter kernel): its link, live hits, "Try it" and the route's output."""
    from nbroutes.kernel.cards import RouteCard

    card = RouteCard(kind, pattern, state.public_url(pattern) if tryable else None, note)
    if tryable:
        card.try_it = lambda: request_widget_for(card.route, state.loop)
    return card


def request_widget_for(route: Any, loop: KernelLoop | None = None) -> Any:
    """A request widget filled in for ``route``: its first method (GET if it has one) and an example path."""
    from nbroutes.kernel.request_widget import RequestWidget

    methods = [m for m in route.methods if m not in ("HEAD", "OPTIONS", "ANY")]
    method = "GET" if not methods or "GET" in methods else methods[0]
    return RequestWidget(method, example_path(route.pattern.text), kernel_loop=loop)
