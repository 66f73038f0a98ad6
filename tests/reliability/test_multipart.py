"""Hostile forms: a body of many tiny parts or pairs is refused at once, and no form freezes the loop.

The server runs on the kernel's event loop: while a body is parsed, no other request is answered and
no cell runs. A 1 MB multipart body of 19,000 one-byte parts used to hold the loop for seconds (the
email parser, about 250 µs a part). Now the parser is one pass of ``bytes.find`` over the boundary,
and a form with more fields or files than the route allows (1000 of each by default, as Starlette's
``max_fields``/``max_files``) is answered 413 as soon as the parser counts one too many.
"""

from __future__ import annotations

import threading
import time

import pytest

from nbroutes import App
from nbroutes.core.datastructures import UploadedFile
from nbroutes.core.handlers import Endpoint
from nbroutes.core.requests import DEFAULT_MAX_FIELDS, DEFAULT_MAX_FILES, Request, parse_body
from nbroutes.errors import BodyError
from nbroutes.testing import TestClient
from tests.support import raw_request

from .servers import add

BOUNDARY = "XyZ"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
URLENCODED = "application/x-www-form-urlencoded"
FILES_1 = "Form exceeded 1 files limit (max_files)"
MB = 1024 * 1024
#: How long a GET may wait while another connection's form is parsed. Measured on the 2-core machine:
#: a few ms with the linear parser; 3.4 s and more with the email parser, for 1 MB of tiny parts.
PROMPT = 1.0


def field(name: str, value: str) -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()


def upload(name: str, filename: str, content: bytes, ctype: str = "text/plain") -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
    return (head + f"Content-Type: {ctype}\r\n\r\n").encode() + content + b"\r\n"


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def tiny_parts(size: int = MB - 64) -> bytes:
    """A multipart body of ``size`` bytes at most, all in one-byte fields: about 19,000 in 1 MB."""
    one = field("a", "1")
    return form(*[one] * ((size - len(BOUNDARY) - 6) // len(one)))


def count_fields(req, res):  # untyped: the handler reads req.body as parsed
    body = req.body
    res.json({"fields": sum(len(v) if isinstance(v, list) else 1 for v in body.values()), "files": len(req.files)})


def form_app(**limits: int) -> App:
    app = App()
    app.add("/api/form", {"*": Endpoint(count_fields)}, **limits)
    add(app, "/api/ping", lambda req, res: res.send("pong"))
    return app


def post(port: int, body: bytes, content_type: str) -> tuple[int, bytes]:
    # A long timeout: a parse that holds the loop must fail on the latency assertion, which says why.
    answer = raw_request(port, "POST", "/api/form", body, {"Content-Type": content_type}, timeout=120)
    return answer.status, answer.body


def while_posting(port: int, body: bytes, content_type: str) -> tuple[int, bytes, float]:
    """POST ``body`` on one connection while GETs go on others; returns its answer and the slowest GET."""
    answer: list[tuple[int, bytes]] = []
    poster = threading.Thread(target=lambda: answer.append(post(port, body, content_type)), daemon=True)
    slowest = 0.0
    poster.start()
    deadline = time.monotonic() + 60
    while poster.is_alive() and time.monotonic() < deadline:
        start = time.perf_counter()
        ping = raw_request(port, "GET", "/api/ping", timeout=60)
        assert (ping.status, ping.body) == (200, b"pong")
        slowest = max(slowest, time.perf_counter() - start)
    poster.join(60)
    assert answer, "the POST got no answer within a minute"
    return answer[0][0], answer[0][1], slowest


# -- over a real socket: the loop stays free ----------------------------------------------------


def test_a_1mb_form_of_19000_parts_is_refused_without_stalling_other_requests(serve):
    port = serve(form_app()).port
    body = tiny_parts()
    assert len(body) <= MB and body.count(b"\r\n--XyZ") > 19_000
    status, text, slowest = while_posting(port, body, MULTIPART)
    assert slowest < PROMPT, f"a GET waited {slowest:.2f} s while the form was parsed"
    assert (status, text) == (413, b"Form exceeded 1000 fields limit (max_fields)")


def test_100000_urlencoded_pairs_are_refused_without_stalling_other_requests(serve):
    port = serve(form_app()).port
    status, text, slowest = while_posting(port, b"a=1&" * 100_000, URLENCODED)
    assert slowest < PROMPT, f"a GET waited {slowest:.2f} s while the form was parsed"
    assert (status, text) == (413, b"Form exceeded 1000 fields limit (max_fields)")


def test_a_route_that_allows_19000_parts_parses_them_in_linear_time(serve):
    port = serve(form_app(max_fields=20_000)).port
    body = tiny_parts()
    status, text, slowest = while_posting(port, body, MULTIPART)
    assert slowest < PROMPT, f"a GET waited {slowest:.2f} s while the form was parsed"
    assert (status, text) == (200, b'{"fields":%d,"files":0}' % body.count(b"\r\n--XyZ"))


def test_a_1mb_form_at_the_limits_is_parsed_without_stalling_other_requests(serve):
    port = serve(form_app()).port
    value = "v" * 350
    files = [upload("f", f"{i}.txt", b"x" * 350) for i in range(DEFAULT_MAX_FILES)]
    body = form(*[field(f"k{i}", value) for i in range(DEFAULT_MAX_FIELDS)], *files)
    assert len(body) <= MB
    status, text, slowest = while_posting(port, body, MULTIPART)
    assert slowest < PROMPT, f"a GET waited {slowest:.2f} s while the form was parsed"
    assert (status, text) == (200, b'{"fields":2000,"files":1}')  # 1000 fields and one name holding 1000 files


def test_too_many_files_are_refused_naming_the_limit(serve):
    port = serve(form_app()).port
    body = form(*[upload("f", "a.txt", b"x")] * (DEFAULT_MAX_FILES + 1))
    answer = raw_request(port, "POST", "/api/form", body, {"Content-Type": MULTIPART})
    assert (answer.status, answer.body) == (413, b"Form exceeded 1000 files limit (max_files)")


# -- the limits, per route ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "limits, body, content_type, answer",
    [
        ({}, form(*[field("a", "1")] * 1000), MULTIPART, (200, {"fields": 1000, "files": 0})),
        ({}, form(*[field("a", "1")] * 1001), MULTIPART, (413, "Form exceeded 1000 fields limit (max_fields)")),
        ({}, b"&".join([b"a=1"] * 1000), URLENCODED, (200, {"fields": 1000, "files": 0})),
        ({}, b"&".join([b"a=1"] * 1001), URLENCODED, (413, "Form exceeded 1000 fields limit (max_fields)")),
        ({}, b"&&".join([b"a=1"] * 1000) + b"&&&", URLENCODED, (200, {"fields": 1000, "files": 0})),  # empty pairs
        ({"max_fields": 2}, b"a=1&b=2", URLENCODED, (200, {"fields": 2, "files": 0})),
        ({"max_fields": 2}, b"a=1&b=2&c", URLENCODED, (413, "Form exceeded 2 fields limit (max_fields)")),
        ({"max_fields": 1}, form(field("a", "1"), upload("f", "a", b"")), MULTIPART, (200, {"fields": 2, "files": 1})),
        ({"max_files": 1}, form(upload("f", "a", b""), upload("f", "b", b"")), MULTIPART, (413, FILES_1)),
        ({"max_files": 0}, form(field("a", "1")), MULTIPART, (200, {"fields": 1, "files": 0})),
        ({"max_files": 0}, form(upload("f", "a", b"")), MULTIPART, (413, "Form exceeded 0 files limit (max_files)")),
    ],
)
def test_limits_per_route(limits, body, content_type, answer):
    app = App()
    app.route("/api/form", **limits)(count_fields)
    with TestClient(app) as client:
        response = client.post("/api/form", content=body, headers={"Content-Type": content_type})
    status, expected = answer
    assert response.status_code == status
    assert (response.json() if status == 200 else response.text) == expected


def test_limits_apply_to_typed_handlers_too():
    app = App()

    @app.route("/api/form", max_fields=3)
    def typed(body: dict[str, str]) -> dict[str, int]:
        return {"n": len(body)}

    with TestClient(app) as client:
        assert client.post("/api/form", data={"a": "1", "b": "2", "c": "3"}).json() == {"n": 3}
        response = client.post("/api/form", data={"a": "1", "b": "2", "c": "3", "d": "4"})
    assert (response.status_code, response.text) == (413, "Form exceeded 3 fields limit (max_fields)")


@pytest.mark.parametrize("limits", [{"max_fields": -1}, {"max_files": -5}, {"max_fields": "10"}, {"max_files": 1.5}])
def test_a_limit_that_is_not_a_count_is_refused_when_the_route_is_added(limits):
    with pytest.raises(ValueError, match="max_f"):
        App().add("/api/form", {"*": Endpoint(count_fields)}, **limits)


# -- the parser itself -------------------------------------------------------------------------

CRLF_CONTENT = b"line one\r\nline two\r\n\r\n--XyZ is not a boundary here\r\n--XyZZ neither\r\n"


@pytest.mark.parametrize(
    "raw, expected",
    [
        (form(field("a", "1"), field("b", "")), {"a": "1", "b": ""}),
        (form(field("a", "1"), field("a", "2"), field("a", "3")), {"a": ["1", "2", "3"]}),
        (form(upload("f", "x.bin", CRLF_CONTENT)), {"f": UploadedFile("x.bin", "text/plain", CRLF_CONTENT)}),
        (form(upload("f", "", b"")), {"f": UploadedFile("", "text/plain", b"")}),  # an empty file input
        (b"preamble\r\n" + form(field("a", "1")) + b"epilogue", {"a": "1"}),
        (form(field("a", "1")).rstrip(b"\r\n"), {"a": "1"}),  # no CRLF after the close delimiter
        (b"--XyZ \t\r\n" + form(field("a", "1"))[7:], {"a": "1"}),  # transport padding after the boundary
        (form(field("a", "\r\n")), {"a": "\r\n"}),
        (form(field("a;b", "1")), {"a;b": "1"}),
        (form(field("café", "thé")), {"café": "thé"}),
        (
            b'--XyZ\r\ncontent-disposition: FORM-DATA; name="a"\r\ncontent-type: text/plain; charset=latin-1\r\n'
            b"\r\ncaf\xe9\r\n--XyZ--",
            {"a": "café"},
        ),
        (
            b"--XyZ\r\nContent-Disposition: form-data; name=a; filename=r\xc3\xa9sum\xc3\xa9.pdf\r\n"
            b"Content-Type: Application/PDF; x=y\r\n\r\n%PDF\r\n--XyZ--",
            {"a": UploadedFile("résumé.pdf", "application/pdf", b"%PDF")},
        ),
        (
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename*=UTF-8''na%C3%AFve.txt\r\n\r\nx\r\n--XyZ--",
            {"a": UploadedFile("naïve.txt", "text/plain", b"x")},
        ),
        (
            b'--XyZ\r\nContent-Disposition: form-data; name="a"; filename="a \\"q\\".txt"\r\n\r\nx\r\n--XyZ--',
            {"a": UploadedFile('a "q".txt', "text/plain", b"x")},
        ),
        (
            b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\nContent-Transfer-Encoding: base64\r\n'
            b"\r\naGVsbG8=\r\n--XyZ--",
            {"a": "hello"},
        ),
        (
            b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\nContent-Transfer-Encoding: quoted-printable\r\n'
            b"\r\ncaf=C3=A9\r\n--XyZ--",
            {"a": "café"},
        ),
    ],
)
def test_multipart_parses(raw, expected):
    assert parse_body(MULTIPART, raw) == expected


HEAD_A = b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n'


@pytest.mark.parametrize(
    "raw, detail",
    [
        (b"", "no --XyZ boundary line"),
        (b"no boundary at all", "no --XyZ boundary line"),
        (form(field("a", "1"))[:-9], "it ends before the closing --XyZ--"),
        (field("a", "1"), "it ends before the closing --XyZ--"),
        (HEAD_A + b"\r\nx\r\n--XyZjunk", "it ends before the closing --XyZ--"),
        (b"--XyZ\r\n\r\nx\r\n--XyZ--", "a part has no name"),
        (b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--", "a part has no name"),
        (b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--", "a part has no name"),
        (HEAD_A + b"x\r\n--XyZ--", "a part has no blank line after its headers"),
        (HEAD_A + b"Content-Transfer-Encoding: base64\r\n\r\n!!\r\n--XyZ--", "a part's base64 does not decode"),
    ],
)
def test_malformed_multipart_is_400(raw, detail):
    with pytest.raises(BodyError) as info:
        parse_body(MULTIPART, raw)
    assert (info.value.status_code, info.value.detail) == (400, f"Malformed multipart body: {detail}")


def test_boundary_is_read_from_a_quoted_parameter():
    raw = form(field("a", "1")).replace(b"XyZ", b"a b")
    assert parse_body('multipart/form-data; boundary="a b"', raw) == {"a": "1"}


def test_parse_body_takes_the_limits():
    with pytest.raises(BodyError, match=r"Form exceeded 1 fields limit \(max_fields\)") as info:
        parse_body(MULTIPART, form(field("a", "1"), field("b", "2")), max_fields=1)
    assert info.value.status_code == 413
    assert parse_body(URLENCODED, b"a=1&b=2", max_fields=2) == {"a": "1", "b": "2"}


def test_a_request_not_yet_routed_parses_with_the_default_limits():
    request = Request("POST", "/x", {"Content-Type": URLENCODED}, b"&".join([b"a=1"] * (DEFAULT_MAX_FIELDS + 1)))
    with pytest.raises(BodyError, match="max_fields"):
        request.body  # noqa: B018


def test_parsing_costs_microseconds_a_part_not_hundreds():
    """19,000 parts: about 5 µs each with the one-pass parser, about 280 µs each with the email parser."""
    raw = tiny_parts()
    parts = raw.count(b"\r\n--XyZ")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        parse_body(MULTIPART, raw, max_fields=parts)
        best = min(best, time.perf_counter() - start)
    assert best < parts * 25e-6, f"{parts} parts took {best * 1000:.0f} ms"


# -- served: nbroutes serve, uvicorn and a kernel, on raw sockets (the ``hostile`` fixture) -----------------------


def test_served_a_1mb_form_of_19000_parts_is_refused_without_stalling_other_requests(hostile):
    body = tiny_parts()
    status, text, slowest = while_posting(hostile.port, body, MULTIPART)
    assert slowest < PROMPT, f"a GET waited {slowest:.2f} s while the form was parsed"
    assert (status, text) == (413, b"Form exceeded 1000 fields limit (max_fields)")


def test_served_a_form_within_the_limits_is_parsed(hostile):
    body = form(*[field(f"k{i}", "v") for i in range(DEFAULT_MAX_FIELDS)])
    answer = raw_request(hostile.port, "POST", "/api/form", body, {"Content-Type": MULTIPART})
    assert (answer.status, answer.json()) == (200, {"fields": DEFAULT_MAX_FIELDS})
