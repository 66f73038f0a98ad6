"""The request a handler sees as ``req``: method, path, query, headers, cookies, body."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import AsyncIterator, Mapping
from functools import cached_property
from http.cookies import _unquote
from itertools import islice
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus

from nbroutes.core.datastructures import Headers, UploadedFile
from nbroutes.core.paths import canonical_split
from nbroutes.errors import BodyError, BodyStreamedError

__all__ = [
    "Request",
    "parse_body",
    "parse_content_type",
    "parse_size",
    "format_size",
    "DEFAULT_MAX_FIELDS",
    "DEFAULT_MAX_FILES",
]

#: How many fields (form values that are not files) a form may hold unless its route says otherwise, as Starlette.
DEFAULT_MAX_FIELDS = 1000
#: How many files a multipart form may hold unless its route says otherwise, as Starlette.
DEFAULT_MAX_FILES = 1000

_NOT_PARSED: Any = object()


class Request:
    """An HTTP request, independent of the server that received it.

    ``query`` merges the query string with the path parameters (path wins), as
    Next.js does; ``params`` holds the path parameters alone. ``body`` is parsed
    by content type when the route runs; ``raw_body`` is the bytes as sent.

    On a route with ``--body-limit false`` the server does not read the body: it hands the request
    ``stream``, the body's chunks as they arrive, which the handler reads with
    ``async for chunk in req.stream()`` (or leaves unread). ``body``, ``raw_body`` and ``json()``
    then raise ``BodyStreamedError``, saying so.
    """

    def __init__(
        self,
        method: str,
        url: str,
        headers: Headers | Mapping[str, str] | list[tuple[str, str]] = (),  # type: ignore[assignment]
        body: bytes = b"",
        *,
        client: tuple[str, int] | None = None,
        scheme: str = "http",
        body_exceeded: bool = False,
        stream: AsyncIterator[bytes] | None = None,
    ) -> None:
        self.method = method.upper()
        self.url = url
        path, _, self.query_string = url.partition("?")
        self.path = path or "/"
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self._raw_body = body
        #: The body's chunks as they arrive, when the server streams it (None: it was read into ``raw_body``).
        self._source = stream
        self._streamed = False
        self.client = client
        self.scheme = scheme
        #: True when the server stopped reading a body larger than the route's limit.
        self.body_exceeded = body_exceeded
        self.params: dict[str, str | list[str]] = {}
        self._body: Any = _NOT_PARSED
        self.state: dict[str, Any] = {}  # for middleware to pass data to handlers
        #: The route the request went to, once routed.
        self.route: Any = None
        self._canonical: tuple[str, str, list[str]] | None = None  # (path, its canonical spelling, its segments)

    @property
    def route_path(self) -> str:
        """The path as routing and middleware matchers see it: each segment percent-decoded, ``%2F`` kept.

        Worked out once per value of ``path`` (middleware may rewrite ``path``), so the
        router and every matcher see one spelling and can never disagree.

        Raises MalformedPathError (a 400) for a bad escape, invalid UTF-8 or a '.'/'..' segment.
        """
        return self._route_spelling()[1]

    @property
    def route_segments(self) -> list[str]:
        """``route_path``'s decoded segments, as the router walks them (split once with it).

        Raises MalformedPathError as ``route_path`` does.
        """
        return self._route_spelling()[2]

    def _route_spelling(self) -> tuple[str, str, list[str]]:
        cached = self._canonical
        if cached is None or cached[0] is not self.path:
            cached = self._canonical = (self.path, *canonical_split(self.path))
        return cached

    @cached_property
    def query_params(self) -> dict[str, str | list[str]]:
        """The query string's values alone; repeated keys become lists."""
        return _multidict(parse_qsl(self.query_string, keep_blank_values=True)) if self.query_string else {}

    @cached_property
    def query(self) -> dict[str, str | list[str]]:
        """Query string values (repeated keys become lists) merged with path params, as Next.js does."""
        merged = dict(self.query_params)
        merged.update(self.params)
        return merged

    @cached_property
    def cookies(self) -> dict[str, str]:
        """Cookies sent in the ``Cookie`` header."""
        header = self.headers.get("cookie")
        return parse_cookie_header(header) if header else {}

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-cased, without parameters."""
        return parse_content_type(self.headers.get("content-type", ""))[0]

    @property
    def streamed(self) -> bool:
        """True when the body comes as a stream (``--body-limit false``), read with ``req.stream()``."""
        return self._source is not None

    @property
    def raw_body(self) -> bytes:
        """The body's bytes as sent.

        Raises BodyStreamedError on a route whose body is streamed (``--body-limit false``).
        """
        if self._source is not None:
            raise self._streamed_error("req.raw_body")
        return self._raw_body

    @raw_body.setter
    def raw_body(self, value: bytes) -> None:
        self._raw_body = value

    def stream(self) -> AsyncIterator[bytes]:
        """The body's chunks, for ``async for chunk in req.stream()``: as they arrive on a streamed route,
        else the body read already, in one chunk. It can be read once.

        Raises BodyStreamedError when the stream was read already.
        """
        if self._streamed:
            raise BodyStreamedError(
                f"{self.method} {self.path}: the body was already read from req.stream(); it can be read once"
            )
        self._streamed = True
        if self._source is not None:
            return self._source
        return _one_chunk(self._raw_body)

    async def read(self) -> bytes:
        """Read a streamed body whole (buffering it, as the route's limit would have); then ``raw_body``, ``body``
        and ``json()`` work as on any route. On a route that reads bodies, the body read already.

        Raises BodyStreamedError when ``stream()`` was read already.
        """
        if self._source is not None:
            self._raw_body = b"".join([chunk async for chunk in self.stream()])
            self._source = None
        return self._raw_body

    def _streamed_error(self, what: str) -> BodyStreamedError:
        return BodyStreamedError(
            f"{what} is not available on {self.path}: its route has --body-limit false, so the body is streamed, "
            "not read for you. Read it with `async for chunk in req.stream()`, or give the route a limit "
            "(--body-limit 10mb) to have req.body parsed"
        )

    @property
    def body(self) -> Any:
        """The body parsed by content type (see ``parse_body``), within the route's ``max_fields`` and ``max_files``.

        Raises BodyError: 400 if it cannot be parsed, 413 if a form holds more fields or files than allowed;
        BodyStreamedError on a route whose body is streamed.
        """
        if self._body is _NOT_PARSED:
            if self._source is not None:
                raise self._streamed_error("req.body")
            route = self.route  # None before routing (a middleware reading the body): the defaults apply
            self._body = parse_body(
                self.headers.get("content-type", ""),
                self._raw_body,
                max_fields=DEFAULT_MAX_FIELDS if route is None else route.max_fields,
                max_files=DEFAULT_MAX_FILES if route is None else route.max_files,
            )
        return self._body

    @body.setter
    def body(self, value: Any) -> None:
        self._body = value

    @property
    def files(self) -> dict[str, UploadedFile | list[UploadedFile]]:
        """The uploaded files of a multipart body, by field name."""
        body = self.body
        if not isinstance(body, dict):
            return {}
        return {
            k: v
            for k, v in body.items()
            if isinstance(v, UploadedFile) or (isinstance(v, list) and v and isinstance(v[0], UploadedFile))
        }

    def json(self) -> Any:
        """The body parsed as JSON whatever its content type.

        Raises BodyError (400) if it is not valid JSON, BodyStreamedError on a route whose body is streamed.
        """
        if self._source is not None:
            raise self._streamed_error("req.json()")
        return _parse_json(self._raw_body)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


async def _one_chunk(body: bytes) -> AsyncIterator[bytes]:
    """A body read already, as a stream of one chunk (none for an empty body)."""
    if body:
        yield body


def _multidict(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            prev = out[key]
            if isinstance(prev, list):
                prev.append(value)
            else:
                out[key] = [prev, value]
        else:
            out[key] = value
    return out


def parse_cookie_header(header: str) -> dict[str, str]:
    """Parse a ``Cookie`` header the way browsers send it (and Node's ``cookie`` reads it)."""
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        key, sep, value = chunk.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if not key or key in cookies:  # the first of duplicate names wins, as in Node
            continue
        value = _unquote(value)
        if "%" in value:
            value = unquote(value)
        cookies[key] = value
    return cookies


def parse_content_type(header: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type header into its lower-cased media type and parameters."""
    mime, _, rest = header.partition(";")
    params: dict[str, str] = {}
    if rest:
        for item in rest.split(";"):
            key, sep, value = item.partition("=")
            if sep:
                params[key.strip().lower()] = value.strip().strip('"')
    return mime.strip().lower(), params


class _Unsendable(ValueError):
    """JSON that parses but that could not be sent back as it came: its message says why."""


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN, Infinity and -Infinity; they are not JSON, and JSON.parse refuses them.
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        # JSON.parse makes 1e999 Infinity, which JSON.stringify sends back as null: the number would be
        # lost without a word, in every later response that holds it. Refused now, the client learns it.
        shown = text if len(text) <= 24 else text[:20] + "..."
        raise _Unsendable(f"{shown} is out of range for a number (at most about 1.8e308)")
    return value


_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    """True if a string in the parsed value holds half of a surrogate pair (json.loads joins whole pairs)."""
    stack = [value]  # a loop, not recursion: the value may be nested as deep as the parser allows
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _parse_json(raw: bytes) -> Any:
    """Parse a JSON body, refusing what could not be stored and sent back as it came.

    Raises BodyError (400) for malformed JSON, NaN and Infinity (not JSON), a number
    that overflows to infinity (1e999), and a lone surrogate ("\\ud800": not text, which
    I-JSON, RFC 7493, forbids, and which neither UTF-8 nor SQLite can hold).
    """
    if not raw.strip():
        return {}
    try:
        # Decoded strictly: json.loads(bytes) lets surrogates encoded in the bytes through ("surrogatepass").
        text = raw.decode(json.detect_encoding(raw))
        value = _decoder.decode(text)
    except _Unsendable as exc:
        raise BodyError(400, f"Invalid JSON: {exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: "[[[[...]]]]" nested deeper than the parser recurses is hostile, not a crash.
        raise BodyError(400, "Invalid JSON") from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise BodyError(400, "Invalid JSON: a string holds a lone surrogate (\\ud800 to \\udfff), which is not text")
    return value


def _decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:
        raise BodyError(400, f"Unsupported charset {charset!r}") from None


def parse_body(
    content_type: str, raw: bytes, *, max_fields: int = DEFAULT_MAX_FIELDS, max_files: int = DEFAULT_MAX_FILES
) -> Any:
    """Parse a request body by its Content-Type, as Next.js's body parser does.

    JSON (``application/json`` and ``+json``) is parsed, an empty body giving
    ``{}``; ``application/x-www-form-urlencoded`` gives a dict of strings (lists
    for repeated keys); ``multipart/form-data`` gives fields and ``UploadedFile``s;
    anything else is text decoded by its charset. A form may hold ``max_fields``
    fields and ``max_files`` files.

    Raises BodyError: 400 if the body does not parse as its type says, 413 as
    soon as a form holds one field or file more than allowed.
    """
    mime, params = parse_content_type(content_type)
    if mime == "application/json" or mime.endswith("+json"):
        return _parse_json(raw)
    if mime == "application/x-www-form-urlencoded":
        return _parse_urlencoded(raw, params.get("charset"), max_fields)
    if mime == "multipart/form-data":
        return _parse_multipart(params, raw, max_fields, max_files)
    return _decode(raw, params.get("charset"))


def _too_many(limit: int, what: str) -> BodyError:
    # 413, as a body over its size limit: the form is too large for the route, which may allow more.
    return BodyError(413, f"Form exceeded {limit} {what} limit (max_{what})")


_PAIR = re.compile("[^&]+")


def _parse_urlencoded(raw: bytes, charset: str | None, max_fields: int) -> dict[str, Any]:
    text = _decode(raw, charset)
    # Counted before any is decoded, and only as far as one over the limit: "a=1&" * 250_000 costs nothing.
    pieces = [m.group() for m in islice(_PAIR.finditer(text), max_fields + 1)]
    if len(pieces) > max_fields:
        raise _too_many(max_fields, "fields")
    encoding = charset or "utf-8"
    pairs: list[tuple[str, str]] = []
    for piece in pieces:  # as parse_qsl(keep_blank_values=True), but %-escapes in the form's own charset
        name, _, value = piece.partition("=")
        pairs.append((unquote_plus(name, encoding, "replace"), unquote_plus(value, encoding, "replace")))
    return _multidict(pairs)


_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_ESCAPE = re.compile(r"\\([\\\"])")


def _parse_multipart(params: dict[str, str], raw: bytes, max_fields: int, max_files: int) -> dict[str, Any]:
    """A multipart/form-data body (RFC 7578) in one pass over its boundary lines: time linear in its size."""
    boundary = params.get("boundary")
    if not boundary:
        raise BodyError(400, "Malformed multipart body: the Content-Type has no boundary")
    try:
        # A boundary line: CRLF, "--", the boundary, then "--" (the last) or transport padding and CRLF
        # (RFC 2046 5.1.1). Text that starts like one and goes on ("--XyZZ" for XyZ) is content. The
        # regex engine scans for the literal in C, so even a body full of such near-boundaries is one pass.
        delimiter = re.compile(b"\r\n--" + re.escape(boundary.encode("ascii")) + rb"(?:(--)|[ \t]*\r\n)")
    except UnicodeEncodeError:
        raise BodyError(400, "Malformed multipart body: the boundary is not ASCII") from None
    data = b"\r\n" + raw  # the first boundary line then looks like every other one
    found = delimiter.search(data)
    if found is None:
        raise BodyError(400, f"Malformed multipart body: no --{boundary} boundary line")
    pairs: list[tuple[str, Any]] = []
    fields = files = 0
    while found.group(1) is None:
        start = found.end()
        found = delimiter.search(data, start)
        if found is None:
            raise BodyError(400, f"Malformed multipart body: it ends before the closing --{boundary}--")
        name, filename, content_type, payload = _part(data, start, found.start())
        if filename is None:
            fields += 1
            if fields > max_fields:
                raise _too_many(max_fields, "fields")
            charset = parse_content_type(content_type)[1].get("charset")
            pairs.append((name, _decode(payload, charset)))
        else:
            files += 1
            if files > max_files:
                raise _too_many(max_files, "files")
            pairs.append((name, UploadedFile(filename, parse_content_type(content_type)[0] or "text/plain", payload)))
    return _multidict(pairs)


def _part(data: bytes, start: int, end: int) -> tuple[str, str | None, str, bytes]:
    """The name, file name (None for a field), Content-Type and content of the part in ``data[start:end]``."""
    if data.startswith(b"\r\n", start):
        head, body = "", start + 2  # a part with no headers: it has no name either, refused below
    else:
        blank = data.find(b"\r\n\r\n", start, end)
        if blank < 0:
            raise BodyError(400, "Malformed multipart body: a part has no blank line after its headers")
        # Browsers send non-ASCII names and file names as raw UTF-8 (the HTML standard), not RFC 2047 words.
        head, body = data[start:blank].decode("utf-8", "replace"), blank + 4
    headers: dict[str, str] = {}
    for line in head.split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    disposition = _disposition(headers.get("content-disposition", ""))
    name = disposition.get("name")
    if not name:
        raise BodyError(400, "Malformed multipart body: a part has no name")
    payload = data[body:end]
    encoding = headers.get("content-transfer-encoding", "").lower()
    if encoding == "base64":  # RFC 7578 forbids both encodings; old clients send them, and email read them
        try:
            payload = base64.b64decode(re.sub(rb"\s+", b"", payload), validate=True)
        except binascii.Error:
            raise BodyError(400, "Malformed multipart body: a part's base64 does not decode") from None
    elif encoding == "quoted-printable":
        payload = binascii.a2b_qp(payload)
    return name, disposition.get("filename"), headers.get("content-type", ""), payload


def _disposition(header: str) -> dict[str, str]:
    """The parameters of a Content-Disposition header: quoted strings unescaped, ``name*=UTF-8''...`` decoded."""
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    for match in _PARAM.finditer(header):
        key, value = match.group(1).lower(), match.group(2).strip()
        if value.startswith('"') and value.endswith('"') and len(value) > 1:
            value = _ESCAPE.sub(r"\1", value[1:-1])
        if key.endswith("*"):  # RFC 5987: charset'language'percent-encoded, preferred to the plain one
            charset, _, rest = value.partition("'")
            try:
                extended[key[:-1]] = unquote(rest.partition("'")[2], charset or "utf-8", "replace")
            except LookupError:
                raise BodyError(400, f"Unsupported charset {charset!r}") from None
        else:
            params.setdefault(key, value)
    params.update(extended)
    return params


_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_size(text: str | int) -> int:
    """Parse a size such as ``1mb``, ``500kb`` or ``2048`` into bytes.

    Raises ValueError, saying what is accepted, if it is not a size.
    """
    if isinstance(text, int):
        return text
    value = text.strip().lower()
    for unit in ("kb", "mb", "gb", "b"):
        if value.endswith(unit):
            number = value[: -len(unit)].strip()
            break
    else:
        unit, number = "b", value
    try:
        size = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a size: write e.g. 1mb, 500kb, 2048 or false") from None
    if size < 0:
        raise ValueError(f"{text!r} is not a size: it must not be negative")
    return int(size * _UNITS[unit])


def format_size(size: int) -> str:
    """Write a byte count the way Next.js limits are written (``1mb``, ``500kb``)."""
    for unit in ("gb", "mb", "kb"):
        if size >= _UNITS[unit] and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return f"{size}b"
