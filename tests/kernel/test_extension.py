"""The per-kernel state without a kernel: its URLs and the console factory it is given."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from IPython.core.interactiveshell import InteractiveShell

from nbroutes.core.output import Console
from nbroutes.kernel import extension
from nbroutes.kernel.consoles import RouteConsole, route_cards
from nbroutes.kernel.extension import KernelState


class Shell:
    """Where the state is kept: any object will do, as it is an attribute of the shell."""


def test_local_and_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    monkeypatch.setenv("NBROUTES_PORT", "8123")
    state = KernelState(Shell())
    assert state.local_url("/api/x") == "http://127.0.0.1:8123/api/x"
    assert state.public_url("/api/x") == "http://127.0.0.1:8123/api/x"
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    assert state.local_url("/api/x") == "http://127.0.0.1:8123/api/x"  # the kernel reaches its server directly
    assert state.public_url("/api/x") == "/user/ada/proxy/8123/api/x"  # a browser goes through the proxy


def test_the_state_makes_consoles_with_the_factory_it_was_given() -> None:
    made: list[tuple[str, str, str, bool]] = []

    def plain(state: KernelState, kind: str, pattern: str, note: str = "", *, tryable: bool = True) -> RouteConsole:
        made.append((kind, pattern, note, tryable))
        return RouteConsole(pattern)

    shell = Shell()
    state = extension.state(shell, consoles=plain)
    assert extension.state(shell) is state
    console = state.console("middleware", "auth", "on every route", tryable=False)
    assert type(console) is RouteConsole and isinstance(console, Console)
    assert made == [("middleware", "auth", "on every route", False)]


def test_route_cards_are_the_default() -> None:
    assert extension.state(Shell()).consoles is route_cards


def test_consoles_are_chosen_when_the_state_is_created() -> None:
    shell = Shell()
    extension.state(shell)
    with pytest.raises(ValueError, match="chosen when it is created"):
        extension.state(shell, consoles=lambda *args, **kwargs: RouteConsole())


def test_url_before_load_ext_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(InteractiveShell, "_instance", None)
    with pytest.raises(RuntimeError, match="run %load_ext nbroutes first"):
        extension.url("/api/x")


def test_the_post_run_hook_finds_a_cells_routes_without_listing_them_all(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbroutes.core import routing
    from nbroutes.core.handlers import Endpoint

    listings: list[bool] = []
    listing = routing._Table.routes.fget

    def counting_listing(table: routing._Table) -> list[routing.Route]:
        listings.append(table._routes is None)
        return listing(table)

    monkeypatch.setattr(routing._Table, "routes", property(counting_listing))
    shell = Shell()
    state = extension.state(shell, consoles=lambda *args, **kwargs: RouteConsole())
    post_run_cell = extension._forget_unmarked_cells(shell)

    def run(cell_id: str, *made: str) -> None:
        state.cell_metadata = {"cellId": cell_id}
        for owner in made:
            state.app.add(f"/api/{owner}", {"GET": Endpoint(lambda req: None)}, owner=owner)
            state.registered_now.add(owner)
        post_run_cell(SimpleNamespace(success=True))

    for i in range(200):
        run(f"cell-{i}", f"cell-{i}", f"cell-{i}:crud")  # a route cell
        run(f"plain-{i}")  # then a cell that makes no route: the hook looks for routes it no longer defines
    assert sum(listings) == 0
    run("cell-7")  # run again without its routes
    assert state.app.router.owners_under("cell-7") == frozenset()
    assert state.app.router.find("/api/cell-7") is None and state.app.router.find("/api/cell-8") is not None
