"""Serve an ``App``, or a notebook's routes, from uvicorn, gunicorn, Mangum or any ASGI server.

``app(target)`` wraps an ``App`` or a notebook path. A notebook is run in-process
(``nbroutes.headless.runner``) at lifespan startup, or on the first request
when the server sends no lifespan events; the adapter itself is
``nbroutes.servers.asgi.ASGIApp``.

Run a notebook with several worker processes (each loads it once)::

    NBROUTES_NOTEBOOK=todo-api.ipynb uvicorn nbroutes.asgi:from_env --factory --workers 2
"""

from __future__ import annotations

import os
from pathlib import Path

from nbroutes.core.app import App
from nbroutes.servers.asgi import ASGIApp

__all__ = ["ASGIApp", "app", "from_env", "NOTEBOOK_ENV"]

#: The environment variable ``from_env`` reads the notebook's path from.
NOTEBOOK_ENV = "NBROUTES_NOTEBOOK"


def app(target: App | str | os.PathLike[str]) -> ASGIApp:
    """The ASGI application serving ``target``: an ``nbroutes.App``, or the path of a notebook to run at startup.

    Raises TypeError for a target that is neither, ValueError for a path that is not an ``.ipynb``.
    """
    if isinstance(target, App):
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

        return (await run_notebook_async(path)).app

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
