"""Responses: the ``Response`` a route produces, and the ``res`` object handlers write to."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import email.utils
import enum
import inspect
import json
import math
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from nbroutes.errors import ResponseSentError

__all__ = ["Response", "ApiResponse", "to_response", "dumps", "check_status", "ResponseSentError"]

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
BINARY_TYPE = "application/octet-stream"


def _jsonable(obj: Any) -> Any:
    # Called by the encoder only for types json does not know.
    if hasattr(obj, "model_dump"):  # pydantic models
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, datetime.timedelta):
        return obj.total_seconds()
    if isinstance(obj, decimal.Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, (uuid.UUID, PurePath)):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_jsonable)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and ±Infinity as None, the way JSON.stringify sends them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    return _finite(_jsonable(obj))


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON, knowing models, dataclasses, dates, UUIDs, Decimals and sets.

    Whatever a handler holds is sent as JSON.stringify would send it: NaN and ±Infinity
    as null, a lone surrogate (a file name decoded with surrogateescape) as its ``\\udcff``
    escape. So a value stored once never makes every later response a 500.

    Raises TypeError for objects JSON cannot represent, ValueError for a circular one.
    """
    try:
        text = _encoder.encode(obj)
    except ValueError as exc:
        if "Out of range float" not in str(exc):  # a circular value: no other answer than the error
            raise
        text = _encoder.encode(_finite(obj))
    try:
        return text.encode()
    except UnicodeEncodeError:
        # Surrogates can only be inside JSON strings, where their escape is valid JSON.
        return _SURROGATE.sub(_escape_surrogate, text).encode()


def check_status(code: Any) -> int:
    """``code`` as an int, if it is a status a handler may answer with: 200 to 599.

    Raises ValueError otherwise. HTTP has no status outside 100-599 (a client reads
    ``HTTP/1.1 -1`` as garbage), and a 1xx is never a final answer: the client waits
    on past it for one that never comes. The server sends its own 1xx (100 Continue).
    """
    if isinstance(code, int) and not isinstance(code, bool) and 200 <= code <= 599:
        return int(code)
    raise ValueError(f"{code!r} is not a status a handler can answer with: use an integer from 200 to 599")


class Response:
    """A status, header lines and a body (bytes, or an async iterator of chunks).

    Raises ValueError, when made or when ``status`` is set, for a status ``check_status`` refuses.
    """

    __slots__ = ("_status", "headers", "body", "stream", "exception")

    def __init__(
        self,
        body: bytes = b"",
        status: int = 200,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] | None = None,
        *,
        content_type: str | None = None,
        stream: AsyncIterator[bytes] | None = None,
    ) -> None:
        self.status = status
        if headers is None:
            self.headers: list[tuple[str, str]] = []
        elif isinstance(headers, Mapping):
            self.headers = [(str(k), str(v)) for k, v in headers.items()]
        else:
            self.headers = [(str(k), str(v)) for k, v in headers]
        if content_type is not None and self.get_header("content-type") is None:
            self.headers.append(("Content-Type", content_type))
        self.body = body
        self.stream = stream
        #: The handler's exception, for a 500 (the test client can re-raise it).
        self.exception: BaseException | None = None

    @property
    def status(self) -> int:
        """The status code, always one from 200 to 599."""
        return self._status

    @status.setter
    def status(self, code: int) -> None:
        # Checked on every assignment, so a handler or middleware that sets it afterwards is caught too.
        self._status = check_status(code)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        """A JSON response."""
        return cls(dumps(obj), status, headers, content_type=JSON_TYPE)

    @classmethod
    def text(cls, text: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        """A ``text/plain; charset=utf-8`` response."""
        return cls(text.encode(), status, headers, content_type=TEXT_TYPE)

    @classmethod
    def html(cls, html: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        """A ``text/html; charset=utf-8`` response."""
        return cls(html.encode(), status, headers, content_type="text/html; charset=utf-8")

    @classmethod
    def redirect(cls, url: str, status: int = 307) -> Response:
        """A redirect to ``url`` (307 keeps the method, like Next.js)."""
        return cls(b"", status, [("Location", url)])

    def get_header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        """Replace every line of header ``name`` with one line."""
        self.remove_header(name)
        self.headers.append((name, value))

    def remove_header(self, name: str) -> None:
        lname = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lname]

    @property
    def content_type(self) -> str | None:
        return self.get_header("content-type")

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# RFC 6265 4.1.1: a path is any CHAR but controls and ";" (so it cannot end the attribute); it starts with "/".
_COOKIE_PATH = re.compile(r"^/[\x20-\x3a\x3c-\x7e]*$")
# A host name or IPv4 address (a leading dot is allowed and ignored by browsers): nothing that could start an attribute.
_COOKIE_DOMAIN = re.compile(r"^\.?[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$")
# RFC 9110's IMF-fixdate, the one form of Expires every browser reads.
_HTTP_DATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


def _http_date(name: str, value: Any) -> str:
    """An ``Expires`` value: a datetime (naive means UTC) or a string already in HTTP's date form."""
    if isinstance(value, datetime.datetime):
        moment = value.replace(tzinfo=datetime.timezone.utc) if value.tzinfo is None else value
        return moment.astimezone(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    if isinstance(value, str) and _HTTP_DATE.match(value):
        try:
            email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            pass
        else:
            return value
    raise ValueError(
        f"cookie {name}: expires must be a datetime or a date such as 'Thu, 01 Jan 1970 00:00:00 GMT', not {value!r}"
    )


def format_cookie(name: str, value: str, **attributes: Any) -> str:
    """Serialise a Set-Cookie value: ``max_age``, ``expires``, ``path`` (default "/"),
    ``domain``, ``secure``, ``httponly``, ``samesite``, ``partitioned``.

    The value is percent-encoded, so it can hold anything; the name and attributes are
    checked, so that nothing a request supplied can add an attribute or a header line.

    Raises ValueError for a name that is not a cookie token, a value that is not text
    (a lone surrogate), an unknown attribute or an attribute value that is not of its form.
    """
    if not isinstance(name, str) or not _COOKIE_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid cookie name: use letters, digits and !#$%&'*+-.^_`|~")
    try:
        parts = [f"{name}={quote(str(value), safe='')}"]
    except UnicodeEncodeError:
        raise ValueError(f"cookie {name}: the value {value!r} is not text (it holds a lone surrogate)") from None
    attrs = {k.lower().replace("-", "_"): v for k, v in attributes.items()}
    attrs.setdefault("path", "/")
    for key, val in attrs.items():
        if val is None or val is False:
            continue
        if key == "max_age":
            if isinstance(val, datetime.timedelta):
                val = val.total_seconds()
            try:
                seconds = int(val)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"cookie {name}: max_age must be a number of seconds, not {val!r}") from None
            parts.append(f"Max-Age={seconds}")
        elif key == "expires":
            parts.append(f"Expires={_http_date(name, val)}")
        elif key == "path":
            if not (isinstance(val, str) and _COOKIE_PATH.match(val)):
                raise ValueError(
                    f"cookie {name}: path must start with / and hold no ';', control or non-ASCII character "
                    f"(percent-encode them), not {val!r}"
                )
            parts.append(f"Path={val}")
        elif key == "domain":
            if not (isinstance(val, str) and _COOKIE_DOMAIN.match(val)):
                raise ValueError(f"cookie {name}: domain must be a host name such as example.com, not {val!r}")
            parts.append(f"Domain={val}")
        elif key == "secure":
            parts.append("Secure")
        elif key in ("httponly", "http_only"):
            parts.append("HttpOnly")
        elif key == "partitioned":
            parts.append("Partitioned")
        elif key == "samesite":
            samesite = "Strict" if val is True else _SAMESITE.get(str(val).lower())
            if samesite is None:
                raise ValueError(f"cookie {name}: samesite must be 'strict', 'lax' or 'none', not {val!r}")
            parts.append(f"SameSite={samesite}")
        else:
            raise ValueError(f"cookie {name}: unknown attribute {key!r}")
    return "; ".join(parts)


class ApiResponse:
    """The ``res`` object of a handler, modelled on Next.js's ``NextApiResponse``.

    ``res.status(201).json({...})``; ``res.send(body)``; ``res.end()``;
    ``res.redirect(url)``; ``res.set_header(name, value)``; cookies.
    """

    __slots__ = ("status_code", "_headers", "_body", "_content_type", "finished", "used", "_chunks", "_queue")

    def __init__(self) -> None:
        self.status_code = 200
        self._headers: list[tuple[str, str]] = []
        self._body = b""
        self._content_type: str | None = None
        #: True once the response was sent (json, send, end, redirect).
        self.finished = False
        #: True once anything was set on it: a handler returning None then answers with it.
        self.used = False
        self._chunks: list[bytes] | None = None  # res.write() before the response left
        self._queue: Any = None  # a ChunkQueue once the response is streaming

    # -- status and headers -------------------------------------------------------
    def status(self, code: int) -> ApiResponse:
        """Set the status code; returns ``res`` so calls chain.

        Raises ValueError for a status other than 200 to 599 (see ``check_status``).
        """
        self.status_code = check_status(code)
        self.used = True
        return self

    def set_header(self, name: str, value: Any) -> ApiResponse:
        """Set header ``name``; a list value sends one header line per item."""
        self._check_open()
        self.remove_header(name)
        values = value if isinstance(value, (list, tuple)) else [value]
        self._headers.extend((name, str(v)) for v in values)
        self.used = True
        return self

    setHeader = set_header

    def append_header(self, name: str, value: Any) -> ApiResponse:
        """Add a header line without replacing earlier ones."""
        self._check_open()
        self._headers.append((name, str(value)))
        self.used = True
        return self

    def get_header(self, name: str) -> str | list[str] | None:
        lname = name.lower()
        values = [v for k, v in self._headers if k.lower() == lname]
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    getHeader = get_header

    def remove_header(self, name: str) -> ApiResponse:
        lname = name.lower()
        self._headers = [(k, v) for k, v in self._headers if k.lower() != lname]
        return self

    def set_cookie(self, name: str, value: str, **attributes: Any) -> ApiResponse:
        """Send a cookie; attributes as in ``format_cookie`` (``max_age``, ``httponly``, ...)."""
        return self.append_header("Set-Cookie", format_cookie(name, value, **attributes))

    def clear_cookie(self, name: str, **attributes: Any) -> ApiResponse:
        """Tell the client to delete cookie ``name`` (match its ``path``/``domain``)."""
        attributes.update(max_age=0, expires="Thu, 01 Jan 1970 00:00:00 GMT")
        return self.set_cookie(name, "", **attributes)

    # -- sending ----------------------------------------------------------------
    def json(self, obj: Any) -> None:
        """Send ``obj`` as JSON."""
        self._finish(dumps(obj), JSON_TYPE)

    def send(self, body: Any) -> None:
        """Send a str (text), bytes (binary) or a dict/list/model (JSON)."""
        if isinstance(body, str):
            self._finish(body.encode(), TEXT_TYPE)
        elif isinstance(body, (bytes, bytearray, memoryview)):
            self._finish(bytes(body), BINARY_TYPE)
        elif body is None:
            self._finish(b"", None)
        else:
            self.json(body)

    def write(self, chunk: Any) -> ApiResponse:
        """Send a chunk now: the response streams (chunked) until ``res.end()``."""
        self._check_open()
        from nbroutes.core.streaming import chunk_bytes

        data = chunk_bytes(chunk)
        self.used = True
        if self._queue is not None:
            self._queue.put(data)
        else:
            if self._chunks is None:
                self._chunks = []
            self._chunks.append(data)
        return self

    @property
    def streaming(self) -> bool:
        """True once ``res.write()`` was called (an async handler has a queue waiting, unused until then)."""
        return self._chunks is not None or (self._queue is not None and self._queue.started.done())

    def end(self, body: str | bytes | None = None) -> None:
        """Finish the response, with an optional last body (or last chunk, when streaming)."""
        if self.streaming:
            if body is not None:
                self.write(body)
            self.finished = True
            if self._queue is not None:
                self._queue.put(None)
            return
        if body is None:
            self._finish(b"", None)
        else:
            self.send(body)

    def redirect(self, url: str | int, status: int | str = 307) -> None:
        """Redirect to ``url`` (``res.redirect(url, 308)`` or Next.js's ``res.redirect(308, url)``)."""
        self._check_open()
        if isinstance(url, int):
            url, status = str(status), url
        self.status(int(status))
        self.set_header("Location", url)
        self._finish(b"", None)

    def _check_open(self) -> None:
        if self.finished:
            raise ResponseSentError("the response was already sent; headers can no longer be set")

    def _finish(self, body: bytes, content_type: str | None) -> None:
        if self.finished or self.streaming:
            raise ResponseSentError("the response was already sent (res.json/send/end called twice)")
        self._body = body
        self._content_type = content_type
        self.finished = self.used = True

    def to_response(self) -> Response:
        """What ``res`` holds, as a ``Response``."""
        if self._chunks is not None:
            from nbroutes.core.streaming import stream_response

            return stream_response(iter(self._chunks), self.status_code, self._headers, self._content_type)
        response = Response(self._body, self.status_code, self._headers)
        if self._content_type is not None and response.get_header("content-type") is None:
            response.headers.append(("Content-Type", self._content_type))
        return response


def to_response(value: Any, res: ApiResponse | None = None) -> Response:
    """Turn a handler's return value into a Response.

    dict, list, models and other JSON values → JSON; str → text; bytes →
    octet-stream; ``(body, status)`` or ``(body, status, headers)``; a Response as
    it is; None → what ``res`` holds, or 204 when nothing was sent. Headers and
    cookies set on ``res`` are kept, and ``res.status()`` applies to a returned body.

    Raises TypeError if the value cannot be sent.
    """
    if value is None:
        if res is not None and res.used:
            return res.to_response()
        return Response(b"", 204)
    status: int | None
    if isinstance(value, Response):
        response = value
    elif inspect.isgenerator(value) or inspect.isasyncgen(value):
        from nbroutes.core.streaming import stream_response

        content_type = res.get_header("content-type") if res is not None else None
        status = res.status_code if res is not None else 200
        response = stream_response(value, status, None, content_type if isinstance(content_type, str) else None)
    else:
        status = None
        headers: Any = None
        if isinstance(value, tuple):
            if not 2 <= len(value) <= 3 or not isinstance(value[1], int):
                raise TypeError("a tuple return value must be (body, status) or (body, status, headers)")
            value, status, *rest = value
            headers = rest[0] if rest else None
        if status is None:
            status = res.status_code if res is not None else 200
        if isinstance(value, Response):
            value.status = status
            response = value
        elif isinstance(value, str):
            response = Response(value.encode(), status, headers, content_type=TEXT_TYPE)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            response = Response(bytes(value), status, headers, content_type=BINARY_TYPE)
        elif value is None:
            response = Response(b"", status, headers)
        else:
            response = Response(dumps(value), status, headers, content_type=JSON_TYPE)
    if res is not None and res._headers:
        # Headers and cookies set on res travel with a returned body, unless the body set its own.
        own = {k.lower() for k, _ in response.headers}
        response.headers[:0] = [(k, v) for k, v in res._headers if k.lower() not in own or k.lower() == "set-cookie"]
    return response
