"""Serve an ``App``, or a notebook's routes, from uvicorn, gunicorn, Mangum or any ASGI server.

``app(target)`` wraps an ``App`` or a notebook path. A notebook is run in-process
(``nbroutes.headless.runner``) at lifespan startup, or on the first request
when the server sends no lifespan events; the adapter itself is
``nbroutes.servers.asgi.ASGIApp``.

Run a notebook with several worker processes (each loads it once)::

    NBROUTES_NOTEBOOK=todo-api.ipynb uvicorn nbroutes.asgi:from_env --factory --workers 2

A 500 carries no exception text unless ``NBROUTES_DEBUG=1``; its traceback goes to the
``nbroutes.application`` logger, which prints to stderr when nothing else configured logging.
``NBROUTES_DOCS=0`` turns the OpenAPI document and docs page (``/_nbroutes/``) off.
Names the app is reached by, besides localhost and IP addresses, come from ``NBROUTES_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from nbroutes.core.app import App
from nbroutes.core.security import debug_from_env, docs_from_env
from nbroutes.servers.asgi import ASGIApp

__all__ = ["ASGIApp", "app", "from_env", "NOTEBOOK_ENV"]

#: The environment variable ``from_env`` reads the notebook's path from.
NOTEBOOK_ENV = "NBROUTES_NOTEBOOK"


def app(target: App | str | os.PathLike[str], *, debug: bool | None = None, docs: bool | None = None) -> ASGIApp:
    """The ASGI application serving ``target``: an ``nbroutes.App``, or the path of a notebook to run at startup.

    ``debug`` puts exception text in 500 bodies; None leaves an App's own setting, and a notebook's off,
    unless ``NBROUTES_DEBUG=1``. ``docs`` serves the OpenAPI document and docs page or not; None leaves the
    App's own setting (on for a notebook) unless ``NBROUTES_DOCS`` says.

    Raises TypeError for a target that is neither, ValueError for a path that is not an ``.ipynb``.
    """
    _log_to_stderr()
    if debug is None and debug_from_env():
        debug = True
    if docs is None:
        docs = docs_from_env()
    if isinstance(target, App):
        if debug is not None:
            target.debug = debug
        if docs is not None:
            target.docs = docs
        return ASGIApp(target)
    if not isinstance(target, (str, os.PathLike)):
        raise TypeError(f"serve an nbroutes.App or a notebook path, not {type(target).__name__}")
    path = Path(target)
    if path.suffix != ".ipynb":
        raise ValueError(f"{str(path)!r} is not a notebook: give the path of an .ipynb file, or an App")
    # Absolute now: a worker that changes directory before startup still finds it.
    path = path.absolute()

    async def load() -> App:
        # Imported here: it needs nbformat and IPython, which serving an App does not. The async form, because
        # the server's loop is running (and the notebook's connections and tasks belong on it).
        from nbroutes.headless.runner import run_notebook_async

        served = (await run_notebook_async(path)).app
        served.debug = bool(debug)  # the kernel's App has it on: a deployed one tells clients nothing
        if docs is not None:
            served.docs = docs
        return served

    return ASGIApp(load, source=path)


def from_env() -> ASGIApp:
    """The ASGI app of the notebook in ``$NBROUTES_NOTEBOOK``, for ``uvicorn nbroutes.asgi:from_env --factory``.

    Raises LookupError if the variable is not set, ValueError if it does not name an ``.ipynb``.
    """
    notebook = os.environ.get(NOTEBOOK_ENV, "").strip()
    if not notebook:
        raise LookupError(
            f"set {NOTEBOOK_ENV} to the notebook to serve, e.g. "
            f"{NOTEBOOK_ENV}=todo-api.ipynb uvicorn nbroutes.asgi:from_env --factory"
        )
    return app(notebook)


class _LastResortHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Prints nbroutes' warnings and errors (a handler's traceback) to stderr while no root handler would.

    The package's NullHandler keeps Python's own last-resort output quiet, and uvicorn or gunicorn configure
    their own loggers only, so without this a 500's traceback would be printed nowhere. Once the deployer
    configures logging, their handlers take it and this one stays quiet.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            self.stream = sys.stderr  # the one in place now, not at import (a test runner swaps it)
            super().emit(record)


def _log_to_stderr() -> None:
    logger = logging.getLogger("nbroutes")
    if not any(isinstance(handler, _LastResortHandler) for handler in logger.handlers):
        handler = _LastResortHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
