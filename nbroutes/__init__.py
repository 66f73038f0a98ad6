"""nbroutes: Next.js API Routes inside a Jupyter notebook.

``%load_ext nbroutes`` starts a server on the kernel's own event loop; a cell
that starts with ``%%route /api/users/[id]`` becomes a live HTTP endpoint.
"""

from __future__ import annotations

from typing import Any

from .app import App
from .datastructures import Headers, UploadedFile
from .exceptions import HTTPException
from .requests import Request
from .responses import ApiResponse, Response

__all__ = [
    "ApiResponse",
    "App",
    "HTTPException",
    "Headers",
    "Request",
    "Response",
    "UploadedFile",
    "load_ipython_extension",
    "unload_ipython_extension",
]

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbroutes``: start the server and register the magics."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbroutes``: stop the server and free its port (routes are kept for a reload)."""
    from .magics import unload

    unload(ipython)
