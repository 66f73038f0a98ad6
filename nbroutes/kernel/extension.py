"""The notebook side: one App and one server per kernel, cell identity, and output under route cells.

``load``/``unload`` back ``%load_ext``/``%unload_ext``. The state lives on the
IPython shell, so ``%reload_ext nbroutes`` comes back on the same port with
the routes kept. What a route cell shows is the state's ``consoles`` factory:
route cards in Jupyter, plain consoles when the headless runner runs the cells,
so this module imports neither ipywidgets nor sqlite-utils itself.
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
from nbroutes.errors import PortInUseError
from nbroutes.kernel.accesslog import AccessLog
from nbroutes.kernel.consoles import ConsoleFactory, RouteConsole, route_cards
from nbroutes.kernel.threads import KernelLoop
from nbroutes.servers.tornado import Server

__all__ = [
    "KernelState",
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
    kernel_state = getattr(shell, _STATE_ATTR, None)
    if kernel_state is not None and kernel_state.cell_metadata is not None:
        return kernel_state.cell_metadata  # type: ignore[no-any-return]
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


def _databases() -> Any:
    """The shared-database module once something opened a database, else None.

    ``nbroutes.data`` (and sqlite-utils) is imported by the first ``nbroutes.db()``; before
    that no database is open, so there is nothing to check, reopen or close.
    """
    return sys.modules.get("nbroutes.data.sqlite")


def _check_data_changes() -> None:
    databases = _databases()
    if databases is not None:
        databases.check_changes()


class KernelState:
    """The App, the server and the settings of one kernel, and the factory of its route cells' consoles."""

    def __init__(self, shell: Any, consoles: ConsoleFactory = route_cards) -> None:
        self.shell = shell
        #: Makes what a route cell shows: route cards in Jupyter, plain consoles headless.
        self.consoles = consoles
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
        if route is not None and isinstance(route.console, RouteConsole):
            route.console.touch(response.status)
        _check_data_changes()

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

    def console(self, kind: str, pattern: str, note: str = "", *, tryable: bool = True) -> RouteConsole:
        """The console of a route (or middleware) cell, from this kernel's ``consoles`` factory."""
        return self.consoles(self, kind, pattern, note, tryable=tryable)

    def local_url(self, path: str = "") -> str:
        """Where ``path`` is reached from this machine (requests from the kernel itself)."""
        return self._server().url + path

    def public_url(self, path: str = "") -> str:
        """Where ``path`` is reached from a browser (through the proxy under JupyterHub and Binder)."""
        return self._server().public_url(path)

    def _server(self) -> Server:
        # Before the first start, an unstarted Server says where it would listen.
        return self.server or Server(self.app, self.host, self.port)


def url(path: str = "", *, public: bool = False) -> str:
    """The URL of ``path`` on this kernel's nbroutes server: the local one, for requests from the kernel,
    or with ``public`` the one a browser uses (through jupyter-server-proxy under JupyterHub and Binder).

    Raises RuntimeError outside IPython or before ``%load_ext nbroutes``.
    """
    from IPython import get_ipython

    shell = get_ipython()
    kernel_state: KernelState | None = getattr(shell, _STATE_ATTR, None)
    if kernel_state is None or kernel_state.server is None:
        raise RuntimeError("nbroutes is not loaded: run %load_ext nbroutes first")
    return kernel_state.public_url(path) if public else kernel_state.local_url(path)


def register_middleware(shell: Any, fn: Any, matchers: tuple[str, ...] = (), *, owner: str | None = None) -> Middleware:
    """Add middleware ``fn`` to this kernel's app, owned by the running cell, and show it there.

    Raises MatcherError for a matcher that is not Next.js syntax.
    """
    kernel_state = state(shell)
    cell_id, label = current_cell(shell)
    name = getattr(fn, "__name__", "middleware")
    if owner is None:
        owner = f"{cell_id}:{name}" if cell_id else f"middleware {getattr(fn, '__qualname__', name)}"
    where = ", ".join(matchers) if matchers else "every route"
    console = kernel_state.console("middleware", name, f"on {where}", tryable=False)
    middleware = kernel_state.app.use(fn, matchers, owner=owner, cell=cell_id, console=console)
    middleware.label = label
    kernel_state.registered_now.add(owner)
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

    kernel_state = state(shell)
    cell_id, label = current_cell(shell)
    owner = f"{cell_id}:crud {prefix}" if cell_id else f"crud {prefix}"
    name = getattr(table, "name", "table")
    console = kernel_state.console("CRUD", prefix, f"(table {name})")
    try:
        made = crud(kernel_state.app, prefix, table, model, owner=owner, console=console, **options)
    except (CrudError, RouteConflictError) as exc:
        raise UsageError(f"nbroutes.crud({prefix!r}): {exc}") from None
    for route in made:
        route.label = label
    console.route = made[0]
    kernel_state.registered_now.add(owner)
    console.show()
    return made


def _env_port() -> int:
    value = os.environ.get("NBROUTES_PORT", "8000")
    try:
        return int(value)
    except ValueError:
        print(f"nbroutes: NBROUTES_PORT={value!r} is not a port number; using 8000", file=sys.stderr)
        return 8000


def state(shell: Any, *, consoles: ConsoleFactory | None = None) -> KernelState:
    """The kernel's state, created on first use: its App, server and settings.

    ``consoles`` makes what route cells show (route cards unless given); the headless
    runner passes plain consoles for the fresh shell it runs a notebook in.
    Raises ValueError when ``consoles`` is given for a shell whose state exists already.
    """
    existing = getattr(shell, _STATE_ATTR, None)
    if existing is None:
        existing = KernelState(shell, consoles or route_cards)
        setattr(shell, _STATE_ATTR, existing)
    elif consoles is not None and existing.consoles is not consoles:
        raise ValueError("this shell's nbroutes state exists already; its consoles are chosen when it is created")
    return existing


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
        kernel_state = state(shell)
        kernel_state.magic_line_added = False
        _check_data_changes()  # the cell may have written to a database a browser shows
        cell_id, _ = current_cell(shell)
        registered, kernel_state.registered_now = kernel_state.registered_now, set()
        if cell_id is None or cell_id in registered:
            return
        if not getattr(result, "success", True):
            return  # a failed run changes nothing, as a broken route cell keeps its route
        router = kernel_state.app.router
        # The cell's own routes (%%route) and those it made by calling (nbroutes.crud: "<cell>:crud /api/x").
        owners = router.owners_under(cell_id)
        gone = [r for owner in sorted(owners - registered) for r in router.owned_by(owner)]
        for owner in owners - registered:
            router.remove(owner)
        if gone:
            names = ", ".join(r.pattern.text for r in gone)
            print(f"nbroutes: removed {names}: this cell no longer defines them", file=sys.stderr)
        for dropped in kernel_state.app.middleware.remove_cell(cell_id, keep=registered):
            print(f"nbroutes: removed middleware {dropped.name}: this cell no longer defines it", file=sys.stderr)

    return post_run_cell


def load(shell: Any) -> None:
    """Register the magics, route output to route cells and start the server."""
    from nbroutes.kernel.magics import RouteMagics

    kernel_state = state(shell)
    try:
        kernel_state.loop = KernelLoop.current()
    except RuntimeError:
        kernel_state.loop = None  # a shell with no running loop (plain IPython): widgets cannot send
    shell.register_magics(RouteMagics(shell, kernel_state))
    databases = _databases()
    if databases is not None:
        databases.reopen_all()  # after %reload_ext: the databases the routes use work again
    if not any(getattr(t, "_nbroutes", False) for t in shell.input_transformers_cleanup):
        transform = route_tag_transformer(shell)
        transform._nbroutes = True
        shell.input_transformers_cleanup.append(transform)
    if kernel_state.post_run_cell is None:
        kernel_state.post_run_cell = _forget_unmarked_cells(shell)
        shell.events.register("post_run_cell", kernel_state.post_run_cell)
    route_stdio()
    try:
        kernel_state.start()
    except PortInUseError as exc:
        print(f"nbroutes: {exc.strerror}", file=sys.stderr)


def unload(shell: Any) -> None:
    """Stop the server (freeing the port) and undo ``load``; the routes stay for a reload."""
    kernel_state = state(shell)
    kernel_state.stop(quiet=True)
    shell.input_transformers_cleanup[:] = [
        t for t in shell.input_transformers_cleanup if not getattr(t, "_nbroutes", False)
    ]
    if kernel_state.post_run_cell is not None:
        try:
            shell.events.unregister("post_run_cell", kernel_state.post_run_cell)
        except ValueError:
            pass
        kernel_state.post_run_cell = None
    unroute_stdio()
    databases = _databases()
    if databases is not None:
        databases.close_all()
