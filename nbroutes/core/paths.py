"""Route patterns in Next.js syntax: parsing, validation and precedence.

A pattern is a ``/``-separated path whose segments are static text, ``[name]``
(exactly one segment), ``[...name]`` (one or more, a list) or ``[[...name]]``
(zero or more; the key is absent when empty)::

    >>> p = compile_pattern("/api/users/[id]/[...rest]")
    >>> [s.kind for s in p.segments]
    [<Kind.STATIC: 0>, <Kind.STATIC: 0>, <Kind.PARAM: 1>, <Kind.CATCH_ALL: 2>]
    >>> p.key
    (0, 0, 1, 2)

``key`` orders patterns the way Next.js does, segment by segment: static,
then ``[param]``, then ``[...rest]``, then ``[[...opt]]``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from nbroutes.errors import MalformedPathError, PatternError

__all__ = [
    "Kind",
    "MalformedPathError",
    "Pattern",
    "PatternError",
    "Segment",
    "canonical_path",
    "canonical_split",
    "collapse_slashes",
    "compile_pattern",
    "example_path",
    "split_path",
]


class Kind(enum.IntEnum):
    STATIC = 0
    PARAM = 1
    CATCH_ALL = 2
    OPTIONAL_CATCH_ALL = 3


@dataclass(frozen=True, slots=True)
class Segment:
    kind: Kind
    value: str  # the static text, or the parameter's name

    def __str__(self) -> str:
        return {
            Kind.STATIC: "{}",
            Kind.PARAM: "[{}]",
            Kind.CATCH_ALL: "[...{}]",
            Kind.OPTIONAL_CATCH_ALL: "[[...{}]]",
        }[self.kind].format(self.value)


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str
    segments: tuple[Segment, ...]

    @property
    def key(self) -> tuple[int, ...]:
        """The precedence key: smaller sorts first."""
        return tuple(s.kind for s in self.segments)

    @property
    def is_static(self) -> bool:
        return all(s.kind is Kind.STATIC for s in self.segments)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(s.value for s in self.segments if s.kind is not Kind.STATIC)

    def __str__(self) -> str:
        return self.text


_DYNAMIC = re.compile(r"^(\[\[\.\.\.(?P<opt>[^\[\]]*)\]\]|\[\.\.\.(?P<all>[^\[\]]*)\]|\[(?P<one>[^\[\]]*)\])$")
# Characters a static segment may hold: RFC 3986 pchar, without '%' escapes
# (a cell names its path in plain text; requests are decoded before matching).
_STATIC = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$")


def compile_pattern(text: str) -> Pattern:
    """Parse and validate a route pattern such as ``/api/users/[id]``.

    Raises PatternError, with a message that says how to fix it, if the
    pattern is not one Next.js would accept.
    """
    if not isinstance(text, str) or not text.startswith("/"):
        raise PatternError(f"route pattern {text!r} must start with '/', e.g. /api/hello")
    if "?" in text or "#" in text:
        raise PatternError(f"route pattern {text!r} must be a path, without '?' or '#'")
    if text != "/" and text.endswith("/") and not text.endswith("//"):
        # Requests with a trailing slash are redirected to the path without it,
        # so a pattern that ends in '/' could never match: normalise it.
        text = text[:-1]
    body = text[1:]
    raw = body.split("/") if body else []
    segments: list[Segment] = []
    seen: set[str] = set()
    for i, part in enumerate(raw):
        if part == "":
            raise PatternError(f"route pattern {text!r} has an empty segment ('//')")
        m = _DYNAMIC.match(part)
        if m is None:
            if "[" in part or "]" in part:
                raise PatternError(
                    f"segment {part!r} of {text!r} is not a valid dynamic segment: "
                    "use [name], [...name] or [[...name]] as the whole segment"
                )
            if not _STATIC.match(part):
                raise PatternError(f"segment {part!r} of {text!r} has characters that are not allowed in a URL path")
            segments.append(Segment(Kind.STATIC, part))
            continue
        if m["opt"] is not None:
            kind, name = Kind.OPTIONAL_CATCH_ALL, m["opt"]
        elif m["all"] is not None:
            kind, name = Kind.CATCH_ALL, m["all"]
        else:
            kind, name = Kind.PARAM, m["one"]
            if name.startswith("..."):
                raise PatternError(f"segment {part!r} of {text!r}: write a catch-all as [...name]")
        if not name.isidentifier():
            raise PatternError(f"parameter {name!r} in {text!r} must be a Python identifier (letters, digits, '_')")
        if name in seen:
            raise PatternError(f"parameter {name!r} appears twice in {text!r}")
        seen.add(name)
        if kind in (Kind.CATCH_ALL, Kind.OPTIONAL_CATCH_ALL) and i != len(raw) - 1:
            raise PatternError(f"catch-all segment {part!r} must be the last segment of {text!r}")
        segments.append(Segment(kind, name))
    return Pattern(text, tuple(segments))


_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DOTS = frozenset({".", ".."})


def split_path(path: str) -> list[str]:
    """Split a raw request path on '/' and percent-decode each segment.

    Decoding after splitting keeps ``%2F`` inside one segment, as Next.js does.

    Raises MalformedPathError if an escape is malformed or does not decode to
    UTF-8, or if a segment is '.' or '..' (plain or encoded): clients resolve
    those before sending, so one here is probing for a path traversal.
    """
    body = path[1:] if path.startswith("/") else path
    if not body:
        return []
    parts = body.split("/")
    if "%" not in body:
        if "." in body and not _DOTS.isdisjoint(parts):
            raise MalformedPathError(_dots_message(path))
        return parts
    out = []
    for part in parts:
        if "%" in part:
            if _ESCAPE.search(part):
                raise MalformedPathError(f"malformed percent-escape in {part!r}")
            try:
                part = unquote_to_bytes(part).decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedPathError(f"{part!r} does not decode to UTF-8") from None
        out.append(part)
    if not _DOTS.isdisjoint(out):
        raise MalformedPathError(_dots_message(path))
    return out


def example_path(pattern: str) -> str:
    """A path that ``pattern`` matches, for trying it: ``/api/users/[id]`` -> ``/api/users/1``."""
    path = re.sub(r"/\[\[\.\.\.[^\]]+\]\]", "", pattern)
    path = re.sub(r"\[\.\.\.[^\]]+\]", "a/b", path)
    return re.sub(r"\[[^\]]+\]", "1", path) or "/"


def _dots_message(path: str) -> str:
    return f"{path!r} has a '.' or '..' segment: path segments '.' and '..' are not allowed, resolve them first"


def canonical_path(path: str) -> str:
    """The one spelling of ``path`` that routing and middleware matchers both see.

    Each segment is percent-decoded, as routing decodes it, then only '%' and '/'
    are escaped again, so an encoded slash stays inside its segment::

        >>> canonical_path("/%61pi/files/a%2Fb%20c")
        '/api/files/a%2Fb c'

    ``split_path`` of the result gives the same segments as ``split_path`` of
    ``path``, so a matcher can never see a different path from the router's.

    Raises MalformedPathError as ``split_path`` does.
    """
    return canonical_split(path)[0]


def canonical_split(path: str) -> tuple[str, list[str]]:
    """``canonical_path(path)`` and the segments routing walks, from one split of ``path``.

    Raises MalformedPathError as ``split_path`` does.
    """
    segments = split_path(path)
    if "%" not in path:
        return (path if path.startswith("/") else "/" + path), segments
    return "/" + "/".join(s.replace("%", "%25").replace("/", "%2F") for s in segments), segments


_SLASHES = re.compile(r"/{2,}")


def collapse_slashes(path: str) -> str:
    """``path`` without repeated or trailing slashes, the Location of the redirect that makes a path canonical.

    Leading backslashes go too: a browser reads ``/\\host`` as another site, as it reads ``//host``.
    """
    return "/" + _SLASHES.sub("/", path.lstrip("/\\")).rstrip("/")
