"""Every exception nbroutes raises, under one base class, ``NbroutesError``, so a user catches one thing.

Each also derives from the builtin that describes it (``ValueError`` for bad input,
``OSError`` for a port, ...), so code that caught that keeps working. ``HTTPException``
and its subclasses are the ones a handler raises to answer with a status; the rest
are mistakes the message explains how to fix. Each is raised by the module named in
its docstring, and re-exported from ``nbroutes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

__all__ = [
    "NbroutesError",
    "HTTPException",
    "BodyError",
    "RequestValidationError",
    "PatternError",
    "MalformedPathError",
    "RouteConflictError",
    "MatcherError",
    "SignatureError",
    "ResponseSentError",
    "StreamError",
    "BodyStreamedError",
    "CellError",
    "CrudError",
    "DatabasePathError",
    "HeaderError",
    "PortInUseError",
    "RunningLoopError",
    "NotebookError",
    "KernelGatewayNotebookError",
    "StartupCellError",
]


class NbroutesError(Exception):
    """The base of every exception nbroutes raises."""


# -- answered as HTTP responses (the core) ----------------------------------------------


class HTTPException(NbroutesError):
    """Raise in a handler to answer with ``status_code`` and ``{"error": detail}``.

    ``detail`` defaults to the standard reason phrase, e.g. "Not Found".
    """

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            try:
                detail = HTTPStatus(status_code).phrase
            except ValueError:
                detail = "Error"
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"


class BodyError(HTTPException):
    """A request body that cannot be read; answered in plain text as Next.js does (``core.requests``)."""


class RequestValidationError(HTTPException):
    """The request's parameters or body did not validate: a 422 with the error list (``core.validation``).

    The list is kept as plain JSON values (anything else as its ``str``), so the 422 always encodes.
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(422, "Validation failed")
        self.errors: list[dict[str, Any]] = plain_json(errors)


def plain_json(value: Any) -> Any:
    """``value`` made of dicts, lists, strings, numbers, booleans and None only: anything else becomes its str."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, dict):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(item) for item in value]
    return str(value)


# -- a route, handler or response that cannot be (the core) ---------------------------------


class PatternError(NbroutesError, ValueError):
    """A route pattern that Next.js would refuse (``core.paths``)."""


class MalformedPathError(NbroutesError, ValueError):
    """A request path that names no resource: a bad percent-escape, invalid UTF-8, or a '.' or '..' segment."""


class RouteConflictError(NbroutesError, ValueError):
    """Routes that Next.js would refuse to have side by side (``core.routing``)."""


class MatcherError(NbroutesError, ValueError):
    """A middleware matcher that is not Next.js matcher syntax (``core.middlewares``)."""


class SignatureError(NbroutesError, TypeError):
    """A handler signature nbroutes cannot fill in; the message says which parameter (``core.validation``)."""


class ResponseSentError(NbroutesError, RuntimeError):
    """The handler wrote to ``res`` after the response was already sent (``core.responses``)."""


class StreamError(NbroutesError, RuntimeError):
    """A stream's generator raised a BaseException (sys.exit(), KeyboardInterrupt, ...) after its response began.

    It is raised in place of that exception, its ``__cause__``, so the server cuts this response and
    goes on rather than stopping with it.
    """


class BodyStreamedError(NbroutesError, RuntimeError):
    """A body that is streamed to the handler (``--body-limit false``) was asked for whole, or streamed twice
    (``core.requests``)."""


# -- the notebook, data and servers ------------------------------------------------------


class CellError(NbroutesError, ValueError):
    """A route cell that cannot become a route; the message says why (``kernel.cells``)."""


class CrudError(NbroutesError, ValueError):
    """A prefix, table or model that ``crud()`` cannot serve; the message says what to change (``data.resources``)."""


class DatabasePathError(NbroutesError, FileNotFoundError):
    """The database file's directory does not exist: ``db()`` creates files, never directories (``data.sqlite``)."""


class HeaderError(NbroutesError, ValueError):
    """A response header that HTTP cannot carry: the adapter answers 500 instead (``servers.transport``)."""


class PortInUseError(NbroutesError, OSError):
    """No free port was found (``servers.tornado``)."""


class RunningLoopError(NbroutesError, RuntimeError):
    """The synchronous ``TestClient`` was called inside a running event loop (``servers.testclient``).

    A notebook cell runs in the kernel's loop: ``AsyncTestClient`` is the client there, and the message says so.
    """


class NotebookError(NbroutesError):
    """The notebook could not be read, or one of its cells failed (``headless.runner``).

    ``cell`` is the failing ``NotebookCell``, or None when no cell is to blame.
    """

    def __init__(self, message: str, path: Path, cell: Any = None, traceback: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.cell = cell
        self.traceback = traceback

    @property
    def number(self) -> int | None:
        """The failing cell's 1-based number among the code cells."""
        return self.cell.number if self.cell is not None else None

    @property
    def index(self) -> int | None:
        """The failing cell's 0-based position in the notebook."""
        return self.cell.index if self.cell is not None else None

    def __str__(self) -> str:
        return f"{self.message}\n{self.traceback}".rstrip() if self.traceback else self.message


class KernelGatewayNotebookError(NbroutesError, ValueError):
    """A Kernel Gateway notebook nbroutes cannot serve as it stands; the message says what to change."""


class StartupCellError(NbroutesError, RuntimeError):
    """A cell without an annotation raised at startup: Kernel Gateway would not start either."""
