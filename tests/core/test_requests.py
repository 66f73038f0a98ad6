"""Requests: body parsing by content type, query merging, cookies, headers, sizes."""

import pytest

from nbroutes.core.datastructures import Headers, UploadedFile
from nbroutes.core.requests import Request, format_size, parse_body, parse_content_type, parse_size
from nbroutes.errors import BodyError, HTTPException

BOUNDARY = "XyZ123"


def multipart(*parts):
    """A multipart/form-data body from (name, value) or (name, filename, content_type, content) parts."""
    out = b""
    for part in parts:
        if len(part) == 2:
            name, value = part
            out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            out += value.encode() + b"\r\n"
        else:
            name, filename, ctype, content = part
            out += (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n"
            ).encode()
            out += content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.mark.parametrize(
    "content_type, raw, expected",
    [
        ("application/json", b'{"a": 1, "b": [true, null]}', {"a": 1, "b": [True, None]}),
        ("application/json; charset=utf-8", b'["x"]', ["x"]),
        ("Application/JSON", b'{"a": 1}', {"a": 1}),
        ("application/vnd.api+json", b'{"data": 2}', {"data": 2}),
        ("application/problem+JSON", b"3", 3),
        ("application/json", b"", {}),
        ("application/json", b"  \r\n", {}),
        ("application/json", '{"name": "café"}'.encode(), {"name": "café"}),
        ("application/x-www-form-urlencoded", b"a=1&b=two+words&c=%C3%A9", {"a": "1", "b": "two words", "c": "é"}),
        ("application/x-www-form-urlencoded", b"tag=a&tag=b&tag=c&x=1", {"tag": ["a", "b", "c"], "x": "1"}),
        ("Application/X-WWW-Form-Urlencoded", b"a=", {"a": ""}),
        ("application/x-www-form-urlencoded", b"", {}),
        ("text/plain", b"hello", "hello"),
        ("text/plain; charset=utf-8", "café".encode(), "café"),
        ("text/plain; charset=latin-1", "café".encode("latin-1"), "café"),
        ('text/plain; charset="ISO-8859-1"', b"caf\xe9", "café"),
        ("", b"raw text", "raw text"),
        ("application/xml", b"<a/>", "<a/>"),
    ],
)
def test_parse_body(content_type, raw, expected):
    assert parse_body(content_type, raw) == expected


@pytest.mark.parametrize(
    "content_type, raw, detail",
    [
        ("application/json", b"{not json", "Invalid JSON"),
        ("application/json", b"{'a': 1}", "Invalid JSON"),
        ("application/vnd.api+json", b"[1,", "Invalid JSON"),
        ("application/json", b"\xff\xfe", "Invalid JSON"),
        ("text/plain; charset=klingon", b"x", None),
        ("application/x-www-form-urlencoded; charset=klingon", b"a=1", None),
        ("multipart/form-data", b"--x--", None),  # no boundary
    ],
)
def test_parse_body_errors_are_400(content_type, raw, detail):
    with pytest.raises(BodyError) as info:
        parse_body(content_type, raw)
    assert info.value.status_code == 400
    assert isinstance(info.value, HTTPException)
    if detail is not None:
        assert info.value.detail == detail


def test_multipart_fields_and_files():
    raw = multipart(
        ("title", "Holiday"),
        ("tag", "a"),
        ("tag", "b"),
        ("photo", "beach.png", "image/png", b"\x89PNG\r\n\x00\xff"),
        ("notes", "notes.txt", "text/plain", "café".encode()),
    )
    body = parse_body(MULTIPART_TYPE, raw)
    assert body["title"] == "Holiday"
    assert body["tag"] == ["a", "b"]
    assert body["photo"] == UploadedFile("beach.png", "image/png", b"\x89PNG\r\n\x00\xff")
    assert body["photo"].size == 8
    assert body["notes"].filename == "notes.txt"
    assert body["notes"].text() == "café"


def test_multipart_files_through_request():
    raw = multipart(("title", "x"), ("doc", "a.bin", "application/octet-stream", b"\x00\x01"))
    request = Request("POST", "/upload", {"Content-Type": MULTIPART_TYPE}, raw)
    assert request.body["title"] == "x"
    assert list(request.files) == ["doc"]
    assert request.files["doc"].content == b"\x00\x01"


def test_multipart_several_files_under_one_name():
    raw = multipart(("f", "1.txt", "text/plain", b"one"), ("f", "2.txt", "text/plain", b"two"))
    request = Request("POST", "/upload", {"Content-Type": MULTIPART_TYPE}, raw)
    assert [f.content for f in request.files["f"]] == [b"one", b"two"]


def test_files_of_a_non_multipart_body_is_empty():
    request = Request("POST", "/x", {"Content-Type": "application/json"}, b'{"a": 1}')
    assert request.files == {}


def test_request_body_is_parsed_once_and_can_be_set():
    request = Request("POST", "/x", {"content-type": "application/json"}, b'{"a": 1}')
    assert request.body == {"a": 1}
    assert request.body is request.body
    request.body = "replaced"
    assert request.body == "replaced"
    assert request.raw_body == b'{"a": 1}'


def test_request_json_ignores_content_type():
    request = Request("POST", "/x", {"content-type": "text/plain"}, b"[1, 2]")
    assert request.body == "[1, 2]"
    assert request.json() == [1, 2]
    with pytest.raises(BodyError, match="Invalid JSON"):
        Request("POST", "/x", {}, b"nope").json()


@pytest.mark.parametrize(
    "header, mime, params",
    [
        ("application/json", "application/json", {}),
        ("Text/HTML; Charset=UTF-8", "text/html", {"charset": "UTF-8"}),
        ('multipart/form-data; boundary="a b"', "multipart/form-data", {"boundary": "a b"}),
        ("", "", {}),
    ],
)
def test_parse_content_type(header, mime, params):
    assert parse_content_type(header) == (mime, params)


def test_content_type_property():
    assert Request("POST", "/", {"Content-Type": "Application/JSON; charset=utf-8"}).content_type == "application/json"
    assert Request("GET", "/").content_type == ""


# -- URL, query and params ---------------------------------------------------------


def test_method_path_and_query_string():
    request = Request("post", "/api/items?x=1&y=2")
    assert request.method == "POST"
    assert request.path == "/api/items"
    assert request.query_string == "x=1&y=2"
    assert request.url == "/api/items?x=1&y=2"


@pytest.mark.parametrize(
    "url, params, query",
    [
        ("/a", {}, {}),
        ("/a?x=1", {}, {"x": "1"}),
        ("/a?tag=a&tag=b&tag=c", {}, {"tag": ["a", "b", "c"]}),
        ("/a?blank=&flag", {}, {"blank": "", "flag": ""}),
        ("/a?q=two+words&e=%C3%A9", {}, {"q": "two words", "e": "é"}),
        ("/a?id=9&x=1", {"id": "7"}, {"id": "7", "x": "1"}),  # path params win
        ("/a?slug=x&slug=y", {"slug": ["p", "q"]}, {"slug": ["p", "q"]}),
        ("/a", {"id": "7"}, {"id": "7"}),
    ],
)
def test_query_merges_query_string_and_path_params(url, params, query):
    request = Request("GET", url)
    request.params = params
    assert request.query == query


# -- cookies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, cookies",
    [
        ("a=1", {"a": "1"}),
        ("a=1; b=2", {"a": "1", "b": "2"}),
        ("a=1;b=2", {"a": "1", "b": "2"}),
        ("a=1; a=2", {"a": "1"}),  # the first of duplicate names wins
        ("name=hello%20world", {"name": "hello world"}),
        ('q="quoted"', {"q": "quoted"}),
        ("token=abc==", {"token": "abc=="}),
        ("junk; a=1", {"a": "1"}),
        ("", {}),
    ],
)
def test_cookies(header, cookies):
    headers = {"Cookie": header} if header else {}
    assert Request("GET", "/", headers).cookies == cookies


# -- headers -----------------------------------------------------------------------


def test_headers_are_case_insensitive():
    headers = Headers([("Content-Type", "text/plain"), ("X-Thing", "1")])
    assert headers["content-type"] == "text/plain"
    assert headers["CONTENT-TYPE"] == "text/plain"
    assert headers.get("x-thing") == "1"
    assert "x-THING" in headers
    assert "missing" not in headers
    assert headers.get("missing") is None
    assert headers.get("missing", "d") == "d"
    with pytest.raises(KeyError):
        headers["missing"]


def test_headers_getlist_and_joined_values():
    headers = Headers([("Accept", "text/html"), ("accept", "application/json"), ("Set-Cookie", "a=1")])
    assert headers.getlist("ACCEPT") == ["text/html", "application/json"]
    assert headers["accept"] == "text/html, application/json"
    assert headers.get("Accept") == "text/html, application/json"
    assert headers.getlist("missing") == []
    assert len(headers) == 2
    assert sorted(headers) == ["accept", "set-cookie"]
    assert headers.raw() == [("Accept", "text/html"), ("accept", "application/json"), ("Set-Cookie", "a=1")]


def test_headers_from_a_mapping():
    headers = Headers({"X-A": "1"})
    assert headers["x-a"] == "1"
    assert Request("GET", "/", {"X-A": "1"}).headers["X-a"] == "1"
    assert Request("GET", "/", [("X-A", "1"), ("x-a", "2")]).headers.getlist("x-a") == ["1", "2"]


# -- sizes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, size",
    [
        ("1mb", 1024 * 1024),
        ("1MB", 1024 * 1024),
        ("500kb", 500 * 1024),
        ("10kb", 10240),
        ("2048", 2048),
        ("2048b", 2048),
        ("1gb", 1024**3),
        ("1.5kb", 1536),
        (" 4 mb ", 4 * 1024 * 1024),
        ("0", 0),
        (4096, 4096),
    ],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "mb", "lots", "1tb", "-1kb", "1 m b"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    "size, text",
    [
        (1024 * 1024, "1mb"),
        (10240, "10kb"),
        (500 * 1024, "500kb"),
        (4 * 1024 * 1024, "4mb"),
        (1024**3, "1gb"),
        (1536, "1536b"),
        (1000, "1000b"),
        (0, "0b"),
    ],
)
def test_format_size(size, text):
    assert format_size(size) == text


@pytest.mark.parametrize("text", ["1mb", "10kb", "500kb", "3gb", "123b"])
def test_format_size_round_trips(text):
    assert format_size(parse_size(text)) == text
