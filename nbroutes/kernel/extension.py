"""The notebook side: one App and one server per kernel, cell identity, and output under route cells.

``load``/``unload`` back ``%load_ext``/``%unload_ext``. The state lives on the
IPython shell, so ``%reload_ext nbroutes`` comes back on the same port with
the routes kept.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from nbroutes.core.app import App
from nbroutes.core.middlewares import Middleware
from nbroutes.core.output import route_stdio, unroute_stdio
from nbroutes.core.requests import Request
from nbroutes.core.responses import Response
from nbroutes.data import sqlite as data
from nbroutes.errors import PortInUseError
from nbroutes.kernel.accesslog import AccessLog
from nbroutes.kernel.cards import RouteCard, example_path
from nbroutes.kernel.threads import KernelLoop
from nbroutes.servers.tornado import Server

__all__ = [
    "KernelRoutes",
    "current_cell",
    "load",
    "register_middleware",
    "state",
    "unload",
    "url",
]

_STATE_ATTR = "_nbroutes_state"
_TAG_PREFIX = "route:"


def _parent_metadata(shell: Any) -> dict[str, Any]:
    """The execute request's metadata (cellId, tags) when a frontend sent any, or what ``nbroutes serve`` set."""
    routes = getattr(shell, _STATE_ATTR, None)
    if routes is not None and routes.cell_metadata is not None:
        return routes.cell_metadata  # type: ignore[no-any-return]
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return {}
    get_parent = getattr(kernel, "get_parent", None)
    parent = get_parent() if get_parent is not None else getattr(kernel, "_parent_header", {})
    metadata = (parent or {}).get("metadata") or {}
    return metadata if isinstance(metadata, dict) else {}


def current_cell(shell: Any) -> tuple[str | None, str]:
    """The running cell's id (None when the frontend sends none, as nbclient) and its label, e.g. "In [3]"."""
    cell_id = _parent_metadata(shell).get("cellId")
    # The input history holds the running cell already (IPython stores it before
    # running), while execution_count is bumped before or after depending on the version.
    history = getattr(shell, "user_ns", {}).get("_ih")
    label = f"In [{len(history) - 1}]" if history else "a cell"
    return (cell_id if isinstance(cell_id, str) and cell_id else None), label


class KernelRoutes:
    """The App, the server and the settings of one kernel."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.app = App(debug=True)  # the person reading a 500 here is the one who wrote the route
        self.host = os.environ.get("NBROUTES_HOST", "127.0.0.1")
        self.port = _env_port()
        self.server: Server | None = None
        #: Owners that registered a route in the cell now running.
        self.registered_now: set[str] = set()
        self.post_run_cell: Any = None
        #: Set by the route-tag transformer: the running cell's %%route line is not the user's.
        self.magic_line_added = False
        #: The kernel's event loop, where requests are served and widget callbacks send their work.
        self.loop: KernelLoop | None = None
        #: The last requests answered, for ``%nbroutes log``.
        self.log = AccessLog()
        #: The running cell's metadata (cellId, tags) when no kernel sends an execute request:
        #: ``nbroutes serve`` runs a notebook's cells itself and sets this for each one.
        self.cell_metadata: dict[str, Any] | None = None

    def observe(self, request: Request, response: Response, seconds: float, size: int) -> None:
        """After each response: log it, tick its route's card, tell data browsers if the data changed."""
        self.log.add(request, response, seconds, size)
        route = request.route
        if route is not None:
            touch = getattr(route.console, "touch", None)
            if touch is not None:
                touch(response.status)
        data.check_changes()

    def start(self, host: str | None = None, port: int | None = None) -> Server:
        """Start (or move) the server; prints where it listens.

        Raises PortInUseError when no port near the requested one is free.
        """
        host = host or self.host
        port = self.port if port is None else port
        if self.server is not None and self.server.running:
            if (self.server.host, self.server.requested_port) == (host, port) or (
                self.server.host == host and self.server.port == port
            ):
                print(f"nbroutes: already serving on {self.server.url}")
                return self.server
            self.stop(quiet=True)
        server = Server(self.app, host, port, observer=self.observe)
        actual = server.start()
        self.server, self.host, self.port = server, host, actual
        if actual != port and port != 0:
            print(f"nbroutes: port {port} is in use; serving on {server.url} instead")
        else:
            print(f"nbroutes: serving on {server.url}")
        proxied = server.public_url("/")
        if proxied != server.url + "/":
            print(f"nbroutes: from your browser: {proxied}")
        return server

    def stop(self, *, quiet: bool = False) -> None:
        if self.server is not None and self.server.running:
            self.server.stop()
            if not quiet:
                print(f"nbroutes: stopped (port {self.port} is free)")
        elif not quiet:
            print("nbroutes: not running")

    def card(self, kind: str, pattern: str, note: str = "", *, tryable: bool = True) -> RouteCard:
        """A card for a route (or middleware) cell; "Try it" opens a request widget for its ``route``."""
        card = RouteCard(kind, pattern, self.url(pattern) if tryable else None, note)
        if tryable:
            card.try_it = lambda: self.request_widget_for(card.route)
        return card

    def request_widget_for(self, route: Any) -> Any:
        """A request widget filled in for ``route``: its first method (GET if it has one) and an example path."""
        from nbroutes.kernel.request_widget import RequestWidget

        methods = [m for m in route.methods if m not in ("HEAD", "OPTIONS", "ANY")]
        method = "GET" if not methods or "GET" in methods else methods[0]
        return RequestWidget(method, example_path(route.pattern.text), kernel_loop=self.loop)

    def url(self, path: str = "") -> str:
        """Where ``path`` is reached from a browser (through the proxy under JupyterHub)."""
        server = self.server or Server(self.app, self.host, self.port)
        return server.public_url(path)


def url(path: str = "", *, public: bool = False) -> str:
    """The URL of ``path`` on this kernel's nbroutes server: the local one, for requests from the kernel,
    or with ``public`` the one a browser uses (through jupyter-server-proxy under JupyterHub and Binder).

    Raises RuntimeError outside IPython or before ``%load_ext nbroutes``.
    """
    from IPython import get_ipython

    shell = get_ipython()
    routes = getattr(shell, _STATE_ATTR, None)
    if routes is None or routes.server is None:
        raise RuntimeError("nbroutes is not loaded: run %load_ext nbroutes first")
    return routes.server.public_url(path) if public else routes.server.url + path


def register_middleware(shell: Any, fn: Any, matchers: tuple[str, ...] = (), *, owner: str | None = None) -> Middleware:
    """Add middleware ``fn`` to this kernel's app, owned by the running cell, and show it there.

    Raises MatcherError for a matcher that is not Next.js syntax.
    """
    routes = state(shell)
    cell_id, label = current_cell(shell)
    name = getattr(fn, "__name__", "middleware")
    if owner is None:
        owner = f"{cell_id}:{name}" if cell_id else f"middleware {getattr(fn, '__qualname__', name)}"
    where = ", ".join(matchers) if matchers else "every route"
    console = routes.card("middleware", name, f"on {where}", tryable=False)
    middleware = routes.app.use(fn, matchers, owner=owner, cell=cell_id, console=console)
    middleware.label = label
    routes.registered_now.add(owner)
    console.show()
    return middleware


def register_crud(shell: Any, prefix: str, table: Any, model: Any = None, **options: Any) -> list[Any]:
    """``nbroutes.crud`` in a notebook: the resource's routes on this kernel's app, owned by the running cell.

    Raises UsageError (shown without a traceback; the routes already there keep serving)
    for a bad prefix, model or table.
    """
    from IPython.core.error import UsageError

    from nbroutes.data.resources import crud
    from nbroutes.errors import CrudError, RouteConflictError

    routes = state(shell)
    cell_id, label = current_cell(shell)
    owner = f"{cell_id}:crud {prefix}" if cell_id else f"crud {prefix}"
    name = getattr(table, "name", "table")
    card = routes.card("CRUD", prefix, f"(table {name})")
    try:
        made = crud(routes.app, prefix, table, model, owner=owner, console=card, **options)
    except (CrudError, RouteConflictError) as exc:
        raise UsageError(f"nbroutes.crud({prefix!r}): {exc}") from None
    for route in made:
        route.label = label
    card.route = made[0]
    routes.registered_now.add(owner)
    card.show()
    return made


def _env_port() -> int:
    value = os.environ.get("NBROUTES_PORT", "8000")
    try:
        return int(value)
    except ValueError:
        print(f"nbroutes: NBROUTES_PORT={value!r} is not a port number; using 8000", file=sys.stderr)
        return 8000


def state(shell: Any) -> KernelRoutes:
    """The kernel's routes, created on first use."""
    existing = getattr(shell, _STATE_ATTR, None)
    if existing is None:
        existing = KernelRoutes(shell)
        setattr(shell, _STATE_ATTR, existing)
    return existing  # type: ignore[no-any-return]


def route_tag_transformer(shell: Any) -> Any:
    """An input transformer: a cell tagged ``route:/api/x`` runs as if it began with ``%%route /api/x``."""

    def transform(lines: list[str]) -> list[str]:
        tags = _parent_metadata(shell).get("tags") or []
        spec = next((t[len(_TAG_PREFIX) :] for t in tags if isinstance(t, str) and t.startswith(_TAG_PREFIX)), None)
        if spec is None or (lines and lines[0].lstrip().startswith("%%route")):
            return lines
        if not spec.startswith("/") and ":" in spec:
            methods, _, path = spec.partition(":")  # route:GET,POST:/api/x
            spec = f"{methods} {path}"
        # The magic line is not in the cell the user sees: line numbers must not count it.
        state(shell).magic_line_added = True
        return [f"%%route {spec}\n", *lines]

    transform.has_side_effects = False  # type: ignore[attr-defined]
    return transform


def _forget_unmarked_cells(shell: Any) -> Any:
    def post_run_cell(result: Any) -> None:
        routes = state(shell)
        routes.magic_line_added = False
        data.check_changes()  # the cell may have written to a database a browser shows
        cell_id, _ = current_cell(shell)
        registered, routes.registered_now = routes.registered_now, set()
        if cell_id is None or cell_id in registered:
            return
        if not getattr(result, "success", True):
            return  # a failed run changes nothing, as a broken route cell keeps its route
        router = routes.app.router
        # The cell's own routes (%%route) and those it made by calling (nbroutes.crud: "<cell>:crud /api/x").
        owners = {r.owner for r in router.routes if r.owner == cell_id or r.owner.startswith(f"{cell_id}:")}
        gone = [r for owner in sorted(owners - registered) for r in router.owned_by(owner)]
        for owner in owners - registered:
            router.remove(owner)
        if gone:
            names = ", ".join(r.pattern.text for r in gone)
            print(f"nbroutes: removed {names}: this cell no longer defines them", file=sys.stderr)
        for gone in routes.app.middleware.remove_cell(cell_id, keep=registered):
            print(f"nbroutes: removed middleware {gone.name}: this cell no longer defines it", file=sys.stderr)

    return post_run_cell


def load(shell: Any) -> None:
    """Register the magics, route output to route cells and start the server."""
    from nbroutes.kernel.magics import RouteMagics

    routes = state(shell)
    try:
        routes.loop = KernelLoop.current()
    except RuntimeError:
        routes.loop = None  # a shell with no running loop (plain IPython): widgets cannot send
    shell.register_magics(RouteMagics(shell, routes))
    data.reopen_all()  # after %reload_ext: the databases the routes use work again
    if not any(getattr(t, "_nbroutes", False) for t in shell.input_transformers_cleanup):
        transform = route_tag_transformer(shell)
        transform._nbroutes = True  # type: ignore[attr-defined]
        shell.input_transformers_cleanup.append(transform)
    if routes.post_run_cell is None:
        routes.post_run_cell = _forget_unmarked_cells(shell)
        shell.events.register("post_run_cell", routes.post_run_cell)
    route_stdio()
    try:
        routes.start()
    except PortInUseError as exc:
        print(f"nbroutes: {exc.strerror}", file=sys.stderr)


def unload(shell: Any) -> None:
    """Stop the server (freeing the port) and undo ``load``; the routes stay for a reload."""
    routes = state(shell)
    routes.stop(quiet=True)
    shell.input_transformers_cleanup[:] = [
        t for t in shell.input_transformers_cleanup if not getattr(t, "_nbroutes", False)
    ]
    if routes.post_run_cell is not None:
        try:
            shell.events.unregister("post_run_cell", routes.post_run_cell)
        except ValueError:
            pass
        routes.post_run_cell = None
    unroute_stdio()
    data.close_all()
