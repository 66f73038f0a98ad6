"""Exceptions that become HTTP responses."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

__all__ = ["HTTPException", "BodyError"]


class HTTPException(Exception):
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
    """A request body that cannot be read; answered in plain text as Next.js does."""
