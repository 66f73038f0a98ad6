"""The ``nbroutes`` command: serve a notebook's routes as a web app, list them, print their OpenAPI document.

A thin layer over ``notebook.run_notebook_async`` (the notebook's cells run
in-process) and ``Server`` (the same Tornado adapter the kernel uses). Exit
status: 0 after a clean shutdown, 1 when the notebook fails or the port is
taken, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import select
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from nbroutes.servers.transport import (
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    WRITE_TIMEOUT,
    listen,
    local_url,
    reserve,
)

__all__ = ["build_parser", "main", "DRAIN_SECONDS"]

#: How long a shutdown waits for the requests in flight before closing their connections.
DRAIN_SECONDS = 10.0


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``serve``, ``routes`` and ``openapi``, each taking a notebook."""
    parser = argparse.ArgumentParser(prog="nbroutes", description="Serve the API routes of a notebook without Jupyter.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    skip = "cells tagged nbroutes:skip are not run"

    serve = commands.add_parser("serve", help="run the notebook and serve its routes", description=skip)
    serve.add_argument("notebook", metavar="NOTEBOOK", help="the .ipynb file")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument(
        "--reload", action="store_true", help="re-run the notebook when it is saved; a failing run keeps the old routes"
    )
    serve.add_argument(
        "--workers", type=int, default=1, metavar="N", help="N processes sharing the port, each running the notebook"
    )
    serve.add_argument("--no-access-log", action="store_true", help="do not print a line per request")
    serve.add_argument(
        "--header-timeout",
        type=_seconds,
        default=HEADER_TIMEOUT,
        metavar="S",
        help=f"seconds a request's head may take once it starts arriving (default {HEADER_TIMEOUT:g})",
    )
    serve.add_argument(
        "--body-timeout",
        type=_seconds,
        default=BODY_TIMEOUT,
        metavar="S",
        help=f"seconds a request body may stop arriving before a 408 (default {BODY_TIMEOUT:g})",
    )
    serve.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=IDLE_TIMEOUT,
        metavar="S",
        help=f"seconds a kept-alive connection waits for its next request (default {IDLE_TIMEOUT:g})",
    )
    serve.add_argument(
        "--write-timeout",
        type=_seconds,
        default=WRITE_TIMEOUT,
        metavar="S",
        help=f"seconds a response may wait on a client that stopped reading (default {WRITE_TIMEOUT:g})",
    )
    serve.add_argument(
        "--max-connections",
        type=_count,
        default=None,
        metavar="N",
        help="connections held at once, 503 beyond (default: the file-descriptor limit less headroom)",
    )
    serve.add_argument(
        "--no-docs", action="store_true", help="do not serve the OpenAPI document and docs page under /_nbroutes/"
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a name the server is reached by, besides localhost and IP addresses (repeatable; .example.com for "
        "it and its subdomains; * for any); also $NBROUTES_ALLOWED_HOSTS",
    )
    serve.add_argument(
        "--debug",
        action="store_true",
        help="put the exception's text in a 500's body (also NBROUTES_DEBUG=1); the traceback is printed either way",
    )

    routes = commands.add_parser("routes", help="list the notebook's routes and the cells that make them")
    routes.add_argument("notebook", metavar="NOTEBOOK", help="the .ipynb file")

    openapi = commands.add_parser("openapi", help="print the OpenAPI 3.1 document of the notebook's routes")
    openapi.add_argument("notebook", metavar="NOTEBOOK", help="the .ipynb file")
    openapi.add_argument(
        "--indent", type=int, nargs="?", const=2, default=None, metavar="N", help="pretty-print (default 2 spaces)"
    )
    return parser


def _seconds(text: str) -> float:
    """A timeout option's value: positive seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a timeout must be more than 0 seconds")
    return value


def _count(text: str) -> int:
    """A positive whole number."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, 1 or more")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits: 0 for --help, 2 for a usage error
        return exc.code if isinstance(exc.code, int) else 2
    path = Path(args.notebook)
    if not path.is_file():
        print(f"nbroutes: {args.notebook}: no such file", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.command == "serve":
        return _serve(args, path.resolve())
    from nbroutes.errors import NotebookError
    from nbroutes.headless.runner import run_notebook

    try:
        run = run_notebook(path)
    except NotebookError as exc:
        _report(exc)
        return 1
    if args.command == "routes":
        _print_routes(run)
    else:
        print(json.dumps(run.app.openapi(), indent=args.indent))
    return 0


def _report(exc: Exception, file: TextIO | None = None) -> None:
    print(f"nbroutes: {exc}", file=file or sys.stderr, flush=True)


def _print_routes(run: Any) -> None:
    rows = [("METHODS", "PATTERN", "CELL")]
    for route in run.app.router.routes:
        cell = run.cell_of(route)
        rows.append((",".join(route.methods), route.pattern.text, cell.name if cell else route.owner))
    for middleware in run.app.middleware:
        cell = run.cell_of(middleware)
        where = f"{middleware.name} in {cell.name}" if cell else middleware.name
        rows.append(("MIDDLEWARE", " ".join(middleware.matchers) or "*", where))
    if len(rows) == 1:
        print(f"nbroutes: {run.path.name} defines no routes")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip())


def _serve(args: argparse.Namespace, path: Path) -> int:
    if args.workers < 1:
        print("nbroutes: --workers takes a number of processes, 1 or more", file=sys.stderr)
        return 2
    if args.workers > 1 and args.reload:
        print("nbroutes: --reload watches one process; use it without --workers", file=sys.stderr)
        return 2
    if args.workers > 1 and not hasattr(os, "fork"):
        print("nbroutes: --workers needs os.fork (Linux or macOS)", file=sys.stderr)
        return 2
    # Bound before the notebook runs, so a taken port fails at once rather than after its setup cells.
    try:
        sock = listen(args.host, args.port) if args.workers == 1 else reserve(args.host, args.port)
    except (OSError, AttributeError) as exc:  # AttributeError: no socket.SO_REUSEPORT on this system
        print(
            f"nbroutes: cannot listen on {args.host}:{args.port} ({exc}); choose another with --port", file=sys.stderr
        )
        return 1
    # Like a Jupyter kernel: the notebook's directory is the working directory, and its modules import.
    os.chdir(path.parent)
    sys.path.insert(0, str(path.parent))
    if args.workers == 1:
        return asyncio.run(_serve_one(args, path, sock, sys.stdout))
    return _Supervisor(args, path, sock, sys.stdout).run()


def _summary(run: Any) -> str:
    """``3 routes from 10 code cells``."""
    from nbroutes.headless.runner import describe

    count = len(run.app.router.routes)
    return f"{count} route{'s' * (count != 1)} from {describe(run.cells)}"


def _access_logger(out: TextIO, prefix: str = "") -> Any:
    """A Server observer that prints ``time method path status ms`` for each response."""

    def observe(request: Any, response: Any, seconds: float, size: int) -> None:
        clock = time.strftime("%H:%M:%S")
        out.write(f"{prefix}{clock} {request.method} {request.url} {response.status} {seconds * 1000:.1f}ms\n")
        out.flush()

    return observe


async def _serve_one(
    args: argparse.Namespace, path: Path, sock: socket.socket, out: TextIO, *, ready_fd: int | None = None
) -> int:
    """Run the notebook, serve its App on ``sock`` until SIGTERM or SIGINT, then drain; returns the exit status."""
    from nbroutes.errors import NotebookError
    from nbroutes.headless.runner import run_notebook_async
    from nbroutes.servers.tornado import Server

    worker = ready_fd is not None
    prefix = f"[{os.getpid()}] " if worker else ""
    try:
        run = await run_notebook_async(path)
    except NotebookError as exc:
        _report(exc)
        return 1
    _configure(run.app, args)
    observer = None if args.no_access_log else _access_logger(out, prefix)
    server = Server(
        run.app,
        args.host,
        sock.getsockname()[1],
        observer=observer,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        idle_timeout=args.idle_timeout,
        write_timeout=args.write_timeout,
        max_connections=args.max_connections,
    )
    server.start(sockets=[sock])
    summary = _summary(run)
    if worker:
        print(f"{prefix}nbroutes: worker ready ({summary})", file=out, flush=True)
        os.write(ready_fd, b"R")  # type: ignore[arg-type]
    else:
        print(f"nbroutes: serving {path.name} on {server.url} ({summary})", file=out, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if os.name == "posix":  # elsewhere the loop takes no signal handlers: Ctrl-C arrives as KeyboardInterrupt
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop.set)
            except (RuntimeError, ValueError):  # not the main thread: whoever runs us handles signals
                pass
    watcher = asyncio.ensure_future(_reload_on_save(args, path, server, stop, out)) if args.reload else None
    try:
        await stop.wait()
    except asyncio.CancelledError:
        pass
    if server.in_flight:
        print(f"{prefix}nbroutes: stopping; finishing {server.in_flight} request(s)", file=out, flush=True)
    finished = await server.drain(DRAIN_SECONDS)
    if watcher is not None:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    if not finished:
        print(f"{prefix}nbroutes: requests still running after {DRAIN_SECONDS:g}s were cut off", file=out, flush=True)
    print(f"{prefix}nbroutes: stopped", file=out, flush=True)
    return 0


def _configure(app: Any, args: argparse.Namespace) -> None:
    """What serving adds to the notebook's App: the docs or not, no exception text unless asked, its host names."""
    from nbroutes.core.security import debug_from_env, docs_from_env

    app.docs = not args.no_docs and docs_from_env() is not False
    app.debug = args.debug or debug_from_env()
    app.allow_hosts(*args.allowed_host)


async def _reload_on_save(args: argparse.Namespace, path: Path, server: Any, stop: asyncio.Event, out: TextIO) -> None:
    """Re-run the notebook each time it is saved and swap the server's App; a failing run keeps the old one."""
    from watchfiles import awatch

    print(f"nbroutes: watching {path.name}; saving it runs it again", file=out, flush=True)

    from nbroutes.errors import NotebookError
    from nbroutes.headless.runner import run_notebook_async

    target = os.path.realpath(path)
    # The directory, not the file: Jupyter saves by writing a new file and renaming it over the old one.
    async for _ in awatch(
        path.parent, stop_event=stop, watch_filter=lambda _change, name: os.path.realpath(name) == target
    ):
        print(f"nbroutes: {path.name} changed; running it again", file=out, flush=True)
        try:
            run = await run_notebook_async(path)
        except NotebookError as exc:
            _report(exc, out)
            print("nbroutes: the previous version keeps serving", file=out, flush=True)
            continue
        _configure(run.app, args)
        server.swap_app(run.app)
        print(f"nbroutes: reloaded {path.name} ({_summary(run)})", file=out, flush=True)


class _Supervisor:
    """The parent of ``--workers N``: forks the workers, forwards SIGTERM and SIGINT, waits for them to drain."""

    def __init__(self, args: argparse.Namespace, path: Path, sock: socket.socket, out: TextIO) -> None:
        self.args, self.path, self.sock, self.out = args, path, sock, out
        self.children: set[int] = set()
        self.stopping = False
        self.ready_read, self.ready_write = os.pipe()

    def run(self) -> int:
        """Start the workers one after another, then supervise them; returns the exit status."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        # One at a time: the first worker runs the notebook's setup cells (CREATE TABLE, seed rows)
        # before the next starts, so they do not race on the database.
        for _ in range(self.args.workers):
            if self.stopping or not self._start_worker():
                failed = not self.stopping
                self._stop()
                self._wait_all()
                return 1 if failed else 0
        url = local_url(self.args.host, self.sock.getsockname()[1])
        pids = ", ".join(str(p) for p in sorted(self.children))
        print(
            f"nbroutes: serving {self.path.name} on {url} with {self.args.workers} workers ({pids})",
            file=self.out,
            flush=True,
        )
        return self._wait_all()

    def _start_worker(self) -> bool:
        """Fork a worker and wait until it serves; False if it failed (it printed why)."""
        sys.stdout.flush()  # or the worker would print the parent's buffered text again
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(self.ready_read)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                port = self.sock.getsockname()[1]
                self.sock.close()
                own = listen(self.args.host, port, reuse_port=True)
                code = asyncio.run(_serve_one(self.args, self.path, own, self.out, ready_fd=self.ready_write))
            except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children.add(pid)
        while True:
            readable, _, _ = select.select([self.ready_read], [], [], 0.1)
            if readable:
                os.read(self.ready_read, 1)
                return True
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self.children.discard(pid)
                return False

    def _stop(self, signum: int | None = None, frame: Any = None) -> None:
        if not self.stopping:
            self.stopping = True
            self.sock.close()  # once the workers close theirs too, the port is free
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _wait_all(self) -> int:
        """Wait for every worker; a worker that dies while serving is replaced. Returns the exit status."""
        status = 0
        while self.children:
            try:
                pid, raw = os.wait()
            except ChildProcessError:
                break
            self.children.discard(pid)
            code = os.waitstatus_to_exitcode(raw)
            if self.stopping:
                status = status or (1 if code not in (0, -signal.SIGTERM) else 0)
                continue
            print(f"nbroutes: worker {pid} exited ({code}); starting another", file=self.out, flush=True)
            if not self._start_worker():
                print("nbroutes: the new worker failed; stopping", file=self.out, flush=True)
                self._stop()
                status = 1
        return status
