"""nbroutes: Next.js API Routes inside a Jupyter notebook.

``%load_ext nbroutes`` starts a server on the kernel's own event loop; a cell
that starts with ``%%route /api/users/[id]`` becomes a live HTTP endpoint.

This module is the public facade, above every layer: it imports the core, and the
kernel side (IPython, Tornado, widgets) and ``nbroutes.data`` (sqlite-utils) only when
a name that needs them is first used, so ``import nbroutes`` stays light.
"""

from __future__ import annotations

import logging
from typing import Any

from nbroutes.core.app import App
from nbroutes.core.datastructures import Headers, UploadedFile
from nbroutes.core.middlewares import cors, require_token
from nbroutes.core.requests import Request
from nbroutes.core.responses import ApiResponse, Response
from nbroutes.core.streaming import sse
from nbroutes.core.validation import Body, Cookie, Header, Path, Query
from nbroutes.errors import HTTPException, NbroutesError, RequestValidationError

__all__ = [
    "ApiResponse",
    "App",
    "Body",
    "Cookie",
    "DataBrowser",
    "RequestWidget",
    "browse",
    "crud",
    "db",
    "HTTPException",
    "NbroutesError",
    "RequestValidationError",
    "Header",
    "Headers",
    "Path",
    "Query",
    "Request",
    "Response",
    "UploadedFile",
    "cors",
    "middleware",
    "require_token",
    "sse",
    "load_ipython_extension",
    "unload_ipython_extension",
    "url",
]

__version__ = "0.1.0"

# A library logs; the application decides where logs go. Without this, Python's
# last-resort handler would print nbroutes' errors to stderr, which in the
# kernel is routed into the very route output that already shows them.
logging.getLogger("nbroutes").addHandler(logging.NullHandler())


def url(path: str = "", *, public: bool = False) -> str:
    """The URL of ``path`` on this kernel's server, e.g. ``nbroutes.url("/api/hello")``.

    That is the local address, for requests from the kernel (``AsyncHTTPClient``);
    ``public=True`` gives the one for a browser, through jupyter-server-proxy
    under JupyterHub and Binder.

    Raises RuntimeError before ``%load_ext nbroutes``.
    """
    from nbroutes.kernel.extension import url as kernel_url

    return kernel_url(path, public=public)


def middleware(fn: Any = None, *, matcher: str | list[str] | None = None) -> Any:
    """Run ``fn(req, call_next)`` before routing in this kernel's server.

    ``@nbroutes.middleware`` or ``@nbroutes.middleware(matcher="/api/admin/:path*")``
    in any cell, or ``nbroutes.middleware(nbroutes.cors(...))``. Re-running the
    cell replaces it. Outside a notebook use ``App.use``.

    Raises RuntimeError before ``%load_ext nbroutes``; MatcherError for a bad matcher.
    """
    if fn is None:
        return lambda f: middleware(f, matcher=matcher)
    from IPython import get_ipython

    from nbroutes.kernel.extension import register_middleware

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("nbroutes.middleware needs a notebook; outside one, use App.use(fn, matcher)")
    matchers = (matcher,) if isinstance(matcher, str) else tuple(matcher or ())
    register_middleware(shell, fn, matchers)
    return fn


def crud(prefix: str, table: Any, model: Any = None, *, app: App | None = None, **options: Any) -> Any:
    """Serve a REST resource for a SQLite table: ``GET/POST prefix``, ``GET/PUT/PATCH/DELETE prefix/[id]``.

    ``nbroutes.crud("/api/todos", db["todos"], model=Todo)`` in a notebook cell
    adds the routes to this kernel's server, owned by the cell (re-running it
    replaces them) and shows a card. With ``app=`` it adds them to that App
    and returns the routes. Options: ``pk``, ``page_size``, ``max_page_size``.

    Raises RuntimeError outside a notebook without ``app=``; UsageError in a notebook for
    a bad prefix, model or table (CrudError with ``app=``).
    """
    if app is not None:
        from nbroutes.data.resources import crud as build

        return build(app, prefix, table, model, **options)
    from IPython import get_ipython

    from nbroutes.kernel.extension import register_crud

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("nbroutes.crud needs a notebook; outside one, pass app=App()")
    register_crud(shell, prefix, table, model, **options)
    return None


def __getattr__(name: str) -> Any:
    # The widgets import ipywidgets, and db() sqlite-utils: load them when first used.
    if name == "db":
        from nbroutes.data.sqlite import db

        return db
    if name in ("browse", "DataBrowser"):
        from nbroutes.kernel import browser

        return getattr(browser, name)
    if name == "RequestWidget":
        from nbroutes.kernel.request_widget import RequestWidget

        return RequestWidget
    raise AttributeError(f"module 'nbroutes' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbroutes``: start the server and register the magics."""
    from nbroutes.kernel.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbroutes``: stop the server and free its port (routes are kept for a reload)."""
    from nbroutes.kernel.extension import unload

    unload(ipython)
