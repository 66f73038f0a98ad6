"""The magics: ``%%route``, ``%routes``, ``%unroute`` and ``%nbroutes``.

A user's mistake raises ``UsageError``: IPython shows its message without a
traceback, and nothing is registered, so the route that was there keeps serving.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, cast

from IPython.core import magic as ipython_magic
from IPython.core import magic_arguments as ipython_magic_arguments
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, magics_class, no_var_expand

from nbroutes.core.handlers import METHODS
from nbroutes.core.paths import compile_pattern, example_path
from nbroutes.core.requests import parse_size
from nbroutes.core.routing import DEFAULT_RESPONSE_LIMIT
from nbroutes.errors import CellError, MatcherError, PatternError, PortInUseError, RouteConflictError, SignatureError
from nbroutes.kernel.cells import compile_cell, parse_cell, run_and_take
from nbroutes.kernel.extension import KernelState, current_cell, register_middleware

__all__ = ["RouteMagics"]

_Magic = TypeVar("_Magic", bound=Callable[..., Any])


class _MagicDecorator(Protocol):
    """A decorator that returns the magic it is given."""

    def __call__(self, magic: _Magic, /) -> _Magic: ...


# IPython types @cell_magic and @line_magic as returning the magic or a decorator (they take a name too);
# used bare, as here, they return the magic. IPython.core.magic_arguments has no annotations: its
# decorators record the arguments on the magic and return it unchanged.
cell_magic = cast(_MagicDecorator, ipython_magic.cell_magic)
line_magic = cast(_MagicDecorator, ipython_magic.line_magic)
magic_arguments = cast(Callable[[], _MagicDecorator], ipython_magic_arguments.magic_arguments)
argument = cast(Callable[..., _MagicDecorator], ipython_magic_arguments.argument)
parse_argstring = cast(Callable[[Callable[..., Any], str], argparse.Namespace], ipython_magic_arguments.parse_argstring)


def _parse_methods(text: str) -> frozenset[str]:
    methods = frozenset(m.strip().upper() for m in text.split(",") if m.strip())
    unknown = sorted(methods - set(METHODS))
    if not methods or unknown:
        raise UsageError(
            f"%%route: {', '.join(unknown) or repr(text)} is not an HTTP method; use some of {', '.join(METHODS)}"
        )
    return methods


def _parse_limit(text: str, option: str) -> int | None:
    if text.strip().lower() == "false":
        if option == "--response-limit":
            raise UsageError("%%route: --response-limit takes a size such as 4mb")
        return None
    try:
        return parse_size(text)
    except ValueError as exc:
        raise UsageError(f"%%route {option}: {exc}") from None


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@magics_class
class RouteMagics(Magics):
    """Route cells and the commands that inspect and control the server."""

    shell: InteractiveShell  # Magics allows None; these magics are always made for a shell

    def __init__(self, shell: InteractiveShell, state: KernelState) -> None:
        super().__init__(shell)
        #: This kernel's App, server and settings (not ``routes``: that is the ``%routes`` magic).
        self.state = state

    @no_var_expand  # the line is taken verbatim: "{user_id}" is a mistake to explain, not a variable to expand
    @magic_arguments()
    @argument("spec", nargs="+", metavar="[METHODS] PATH", help="e.g. /api/users/[id] or GET,POST /api/items")
    @argument(
        "--body-limit",
        default="1mb",
        metavar="SIZE",
        help="largest request body (default 1mb; e.g. 10mb, 500kb); 'false' leaves the body unread",
    )
    @argument(
        "--response-limit",
        default="4mb",
        metavar="SIZE",
        help="warn in the notebook when a response is larger than this (default 4mb)",
    )
    @cell_magic
    def route(self, line: str, cell: str) -> None:
        """Serve this cell at PATH, as a Next.js API route.

        The cell is one of three forms:
          - it defines handler(req, res): that answers every method (or METHODS);
          - it defines GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS functions,
            taking (req) or (req, res);
          - neither: the cell body is the handler, with req and res in scope; the
            value of its last expression is the response.

        PATH segments: static, [id], [...slug] (one or more), [[...slug]] (zero or more).
        Re-running the cell replaces the route on the next request.
        """
        args = parse_argstring(self.route, line)
        if len(args.spec) > 2:
            raise UsageError(f"%%route takes [METHODS] PATH, not {' '.join(args.spec)!r}")
        only = _parse_methods(args.spec[0]) if len(args.spec) == 2 else None
        path = args.spec[-1]
        _refuse_other_frameworks_params(path)
        try:
            pattern = compile_pattern(path)
        except PatternError as exc:
            raise UsageError(f"%%route: {exc}") from None
        body_limit = _parse_limit(args.body_limit, "--body-limit")
        response_limit = _parse_limit(args.response_limit, "--response-limit") or DEFAULT_RESPONSE_LIMIT

        cell_id, label = current_cell(self.shell)
        owner = cell_id or pattern.text
        offset = 0 if self.state.magic_line_added else 1
        self.state.magic_line_added = False
        full_source = f"%%route {line}\n{cell}" if offset else cell
        filename = self.shell.compile.cache(full_source, self.shell.execution_count)
        try:
            compiled = compile_cell(cell, self.shell.user_ns, filename, line_offset=offset)
        except CellError as exc:
            raise UsageError(f"%%route {pattern.text}: {exc}") from None
        if only is not None and compiled.form == "method":
            missing = sorted(only - set(compiled.endpoints) - ({"HEAD"} if "GET" in compiled.endpoints else set()))
            if missing:
                raise UsageError(
                    f"%%route {pattern.text}: the cell lists {', '.join(missing)} but defines no such function"
                )

        methods = (
            ", ".join(sorted(only))
            if only
            else (", ".join(m for m in METHODS if m in compiled.endpoints) if compiled.form == "method" else "ANY")
        )
        console = self.state.console(methods, pattern.text)
        try:
            route, displaced = self.state.app.add(
                pattern.text,
                compiled.endpoints,
                owner=owner,
                only=only,
                body_limit=body_limit,
                response_limit=response_limit,
                console=console,
            )
        except (RouteConflictError, SignatureError) as exc:
            raise UsageError(f"%%route {pattern.text}: {exc}") from None
        route.label = label
        console.route = route
        self.state.registered_now.add(owner)
        console.show()
        for other in displaced:
            print(
                f"nbroutes: {other.pattern.text} was served by {other.label or other.owner}; "
                f"this cell ({label}) serves {route.pattern.text} now",
                file=sys.stderr,
            )
        if self.state.server is None or not self.state.server.running:
            print("nbroutes: the server is stopped; %nbroutes start serves this route", file=sys.stderr)

    @no_var_expand  # matchers verbatim, as %%route takes its path
    @magic_arguments()
    @argument("matchers", nargs="*", metavar="MATCHER", help="paths it runs for, e.g. /api/admin/:path* (default: all)")
    @cell_magic
    def middleware(self, line: str, cell: str) -> None:
        """Run this cell's middleware(req, call_next) before routing, for the paths MATCHERs match.

        Matchers use Next.js syntax: :p is one segment, :p* zero or more, :p+ one
        or more, (regex) a raw group. Middleware runs in definition order; it may
        return a response to answer by itself, or await call_next(req) and change
        the response. Re-running the cell replaces it in place.
        """
        args = parse_argstring(self.middleware, line)
        cell_id, _ = current_cell(self.shell)
        filename = self.shell.compile.cache(f"%%middleware {line}\n{cell}", self.shell.execution_count)
        try:
            tree = parse_cell(cell, filename, line_offset=1)
        except CellError as exc:
            raise UsageError(f"%%middleware: {exc}") from None
        found = run_and_take(tree, self.shell.user_ns, filename, ["middleware"])
        if "middleware" not in found:
            raise UsageError("%%middleware: the cell must define middleware(req, call_next)")
        owner = cell_id or f"%%middleware {' '.join(args.matchers) or '*'}"
        try:
            register_middleware(self.shell, found["middleware"], tuple(args.matchers), owner=owner)
        except (MatcherError, TypeError) as exc:
            raise UsageError(f"%%middleware: {exc}") from None

    @line_magic
    def routes(self, line: str = "") -> None:
        """List the routes (methods, pattern, the cell that owns it, hits, last status) and the middleware."""
        app = self.state.app
        if not app.router.routes and not app.middleware:
            print("nbroutes: no routes yet; a cell starting with %%route /api/hello makes one")
            return
        if app.router.routes:
            rows = [("METHODS", "PATTERN", "CELL", "HITS", "LAST")]
            for r in app.router.routes:
                rows.append(
                    (",".join(r.methods), r.pattern.text, r.label or r.owner, str(r.hits), str(r.last_status or "-"))
                )
            _print_table(rows)
        if app.middleware:
            print()
            _print_table(
                [("MIDDLEWARE", "MATCHERS", "CELL")]
                + [(m.name, " ".join(m.matchers) or "*", m.label or m.owner) for m in app.middleware]
            )

    @line_magic
    def unroute(self, line: str) -> None:
        """%unroute PATH: stop serving the route with pattern PATH (as %routes lists it)."""
        path = line.strip()
        if not path:
            raise UsageError("%unroute takes the route's pattern, e.g. %unroute /api/users/[id]")
        route = self.state.app.router.find(path)
        if route is None:
            known = ", ".join(r.pattern.text for r in self.state.app.router.routes) or "none"
            raise UsageError(f"%unroute: no route {path} (routes: {known})")
        self.state.app.router.discard(route)
        print(f"nbroutes: removed {route.pattern.text}")

    @magic_arguments()
    @argument("method", nargs="?", default=None, metavar="METHOD", help="GET, POST, ... (default GET)")
    @argument("path", nargs="?", default=None, metavar="PATH", help="e.g. /api/todos (default: the first route)")
    @line_magic
    def request(self, line: str) -> Any:
        """%request [METHOD] [PATH]: a request widget to send requests to this kernel's server and see the answers."""
        args = parse_argstring(self.request, line)
        method, path = args.method, args.path
        if method is not None and path is None and method.startswith("/"):
            method, path = None, method
        method = (method or "GET").upper()
        if method not in METHODS:
            raise UsageError(f"%request: {method} is not an HTTP method; use one of {', '.join(METHODS)}")
        if path is None:
            first = self.state.app.router.routes[:1]
            path = example_path(first[0].pattern.text) if first else "/"
        if not path.startswith("/"):
            raise UsageError(f"%request: the path must start with /, not {path!r}")
        from nbroutes.kernel.request_widget import RequestWidget

        return RequestWidget(method, path, kernel_loop=self.state.loop)

    @magic_arguments()
    @argument("path", nargs="?", default="app.db", metavar="DB", help="the SQLite file (default app.db)")
    @line_magic
    def browse(self, line: str) -> Any:
        """%browse [DB]: browse the tables of a SQLite file: row counts, paged rows, sort, filter, live refresh."""
        args = parse_argstring(self.browse, line)
        from nbroutes.data import sqlite as data
        from nbroutes.kernel.browser import DataBrowser

        try:
            database = data.db(args.path)
        except (OSError, ValueError) as exc:
            raise UsageError(f"%browse: {exc}") from None
        return DataBrowser(database)

    @magic_arguments()
    @argument("action", nargs="?", default="status", choices=["start", "stop", "status", "log"], help="default: status")
    @argument("--host", default=None, help="interface to bind (default 127.0.0.1, or $NBROUTES_HOST)")
    @argument("--port", type=int, default=None, help="port (default 8000, or $NBROUTES_PORT); 0 picks a free one")
    @argument("-n", dest="count", type=int, default=20, metavar="N", help="log: how many requests to show (default 20)")
    @line_magic
    def nbroutes(self, line: str) -> None:
        """Control the server: %nbroutes start [--host H] [--port P] | stop | status | log [-n N]."""
        args = parse_argstring(self.nbroutes, line)
        state = self.state
        if args.action == "log":
            if not state.log:
                print("nbroutes: no requests yet")
            else:
                _print_table(state.log.rows(args.count))
        elif args.action == "start":
            try:
                state.start(args.host, args.port)
            except PortInUseError as exc:
                raise UsageError(f"nbroutes: {exc.strerror}") from None
        elif args.action == "stop":
            state.stop()
        else:
            server = state.server
            if server is not None and server.running:
                print(f"nbroutes: serving on {server.url}")
            else:
                print(f"nbroutes: stopped (would serve on http://{state.host}:{state.port})")
            count = len(state.app.router.routes)
            hits = sum(r.hits for r in state.app.router.routes)
            print(f"nbroutes: {count} route{'s' * (count != 1)}, {hits} request{'s' * (hits != 1)} answered")


_OTHER_PARAMS = re.compile(r"\{([^/{}]*)\}|(?<=/):(\w+)([*+?]?)")


def _refuse_other_frameworks_params(path: str) -> None:
    """Raise UsageError for ``{id}`` (FastAPI, Flask-style) or ``:id`` (Express) segments, naming the ``[id]`` to write.

    Without this, ``{id}`` would be a static segment and ``:id`` a 404 for every real id.
    """
    if _OTHER_PARAMS.search(path) is None:
        return

    def nextjs(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return f"[{match.group(1).strip() or 'id'}]"
        name, modifier = match.group(2), match.group(3)
        if modifier == "+":
            return f"[...{name}]"
        if modifier in ("*", "?"):
            return f"[[...{name}]]"
        return f"[{name}]"

    raise UsageError(
        f"%%route {path}: Next.js writes a dynamic segment in brackets, e.g. %%route {_OTHER_PARAMS.sub(nextjs, path)}"
    )
