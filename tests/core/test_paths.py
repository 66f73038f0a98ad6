"""Route patterns in Next.js syntax: parsing, validation, precedence keys and path splitting."""

import pytest

from nbroutes.core.paths import Kind, compile_pattern, example_path, split_path
from nbroutes.errors import MalformedPathError, PatternError

S, P, C, OPT = Kind.STATIC, Kind.PARAM, Kind.CATCH_ALL, Kind.OPTIONAL_CATCH_ALL


@pytest.mark.parametrize(
    "text, normalised, segments",
    [
        ("/", "/", []),
        ("/api/hello", "/api/hello", [(S, "api"), (S, "hello")]),
        ("/api/users/[id]", "/api/users/[id]", [(S, "api"), (S, "users"), (P, "id")]),
        ("/api/[...slug]", "/api/[...slug]", [(S, "api"), (C, "slug")]),
        ("/docs/[[...slug]]", "/docs/[[...slug]]", [(S, "docs"), (OPT, "slug")]),
        ("/[[...all]]", "/[[...all]]", [(OPT, "all")]),
        ("/[org]/[repo]/[...path]", "/[org]/[repo]/[...path]", [(P, "org"), (P, "repo"), (C, "path")]),
        ("/api/v1.0/item-list_~x", "/api/v1.0/item-list_~x", [(S, "api"), (S, "v1.0"), (S, "item-list_~x")]),
        ("/api/hello/", "/api/hello", [(S, "api"), (S, "hello")]),
        ("/api/users/[id]/", "/api/users/[id]", [(S, "api"), (S, "users"), (P, "id")]),
    ],
)
def test_valid_pattern(text, normalised, segments):
    pattern = compile_pattern(text)
    assert pattern.text == normalised
    assert str(pattern) == normalised
    assert [(s.kind, s.value) for s in pattern.segments] == segments


@pytest.mark.parametrize(
    "text",
    [
        "api/hello",  # no leading '/'
        "",
        "/api//hello",  # empty segment
        "//api",
        "/api//",
        "//",
        "/api/[[id]]",  # optional without '...'
        "/api/[a-b]",  # not an identifier
        "/api/[]",
        "/api/[1st]",
        "/api/[....x]",
        "/api/x[id]",  # dynamic part of a segment
        "/api/[id]x",
        "/api/[...a]/b",  # catch-all not last
        "/api/[[...a]]/b",
        "/api/[...a]/[b]",
        "/[id]/[id]",  # duplicate names
        "/[id]/x/[...id]",
        "/api?x=1",  # query
        "/api/hello?",
        "/api#top",
        "/api/hello world",  # characters not allowed in a path
        "/api/%20",
    ],
)
def test_invalid_pattern(text):
    with pytest.raises(PatternError):
        compile_pattern(text)


def test_pattern_error_is_a_value_error():
    with pytest.raises(ValueError, match="must start with '/'"):
        compile_pattern("api")


@pytest.mark.parametrize(
    "text, key",
    [
        ("/", ()),
        ("/api/hello", (S, S)),
        ("/api/[id]", (S, P)),
        ("/api/[...rest]", (S, C)),
        ("/api/[[...rest]]", (S, OPT)),
        ("/[a]/b/[...c]", (P, S, C)),
    ],
)
def test_precedence_key(text, key):
    assert compile_pattern(text).key == key


@pytest.mark.parametrize(
    "better, worse",
    [
        ("/api/me", "/api/[id]"),
        ("/api/[id]", "/api/[...rest]"),
        ("/api/[...rest]", "/api/[[...rest]]"),
        ("/api/x/[...rest]", "/api/[id]/y"),  # segment by segment, not by count of dynamic parts
        ("/api/[id]/[...rest]", "/api/[...rest]"),
    ],
)
def test_precedence_key_orders_static_param_catch_all_optional(better, worse):
    assert compile_pattern(better).key < compile_pattern(worse).key


@pytest.mark.parametrize(
    "text, static, names",
    [
        ("/api/hello", True, ()),
        ("/", True, ()),
        ("/api/[id]/[...rest]", False, ("id", "rest")),
        ("/[[...opt]]", False, ("opt",)),
    ],
)
def test_is_static_and_param_names(text, static, names):
    pattern = compile_pattern(text)
    assert pattern.is_static is static
    assert pattern.param_names == names


@pytest.mark.parametrize(
    "path, segments",
    [
        ("/", []),
        ("", []),
        ("/api/hello", ["api", "hello"]),
        ("/api/a%2Fb/c", ["api", "a/b", "c"]),  # %2F stays inside its segment
        ("/api/a%2fb", ["api", "a/b"]),
        ("/api/caf%C3%A9", ["api", "café"]),
        ("/api/a%20b", ["api", "a b"]),
        ("/api/%25", ["api", "%"]),
        ("/api/a+b", ["api", "a+b"]),  # '+' is not a space in a path
        ("/api/x/", ["api", "x", ""]),
    ],
)
def test_split_path(path, segments):
    assert split_path(path) == segments


@pytest.mark.parametrize(
    "path",
    [
        "/api/%zz",
        "/api/%",
        "/api/a%2",
        "/api/%ff",  # not UTF-8
        "/api/%C3",  # truncated UTF-8
        "/ok/%g0/x",
    ],
)
def test_split_path_malformed(path):
    with pytest.raises(MalformedPathError):
        split_path(path)


def test_malformed_path_error_is_a_value_error():
    assert issubclass(MalformedPathError, ValueError)


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("/api/hello", "/api/hello"),
        ("/api/users/[id]", "/api/users/1"),
        ("/api/[org]/repos/[repo]", "/api/1/repos/1"),
        ("/api/docs/[...slug]", "/api/docs/a/b"),
        ("/api/shop/[[...slug]]", "/api/shop"),
        ("/[[...all]]", "/"),
    ],
)
def test_example_path_fills_in_every_kind_of_segment(pattern: str, path: str) -> None:
    assert example_path(pattern) == path
