"""Generated requests against generated route tables and the example notebooks: no 5xx of nbroutes' making, no hang.

Hypothesis builds route tables (static, ``[p]``, ``[...p]`` and ``[[...p]]`` patterns; method-form, pages-form,
typed and streaming handlers that echo what they were given and never raise; ``require_token``, ``cors`` and
middleware that stamps, reads the body or rewrites the path) and requests for them: paths made from the table's
patterns and spelt every way a client can (percent-escapes good and bad, ``%2F``, dots, doubled slashes,
unicode, very long segments) or not made from them at all, odd methods, ``Host``, ``Origin`` and
``Content-Type`` variants, ``Content-Length`` lies, query strings, and JSON, form, multipart and raw bodies,
hostile and malformed ones too. Each goes through ``AsyncTestClient``, the whole pipeline in-process.

The properties: an answer comes within ``TIMEOUT``; its status is under 500, since the handlers never raise
(in a notebook, where handlers may, a 500 must come from the notebook's own code); its headers are what a
server can write; its ``Content-Length`` is its body's length. And a handler or middleware that raises,
whatever it raises, gives exactly a 500, after which the App answers the next request.

``NBROUTES_FUZZ_EXAMPLES`` multiplies the number of examples, for a longer run than the suite's.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

import nbroutes
from nbroutes import App, Header, Query, UploadedFile, cors, require_token
from nbroutes.core.handlers import Endpoint
from nbroutes.core.paths import compile_pattern
from nbroutes.errors import PatternError, RouteConflictError
from nbroutes.notebook import load_notebook
from nbroutes.testing import AsyncTestClient, TestResponse

#: Seconds an answer may take; a hang shows as a TimeoutError naming the request.
TIMEOUT = 10.0
SCALE = float(os.environ.get("NBROUTES_FUZZ_EXAMPLES", "1"))
PACKAGE = Path(nbroutes.__file__).resolve().parent
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TOKEN_ENV, TOKEN = "NBROUTES_FUZZ_TOKEN", "s3cret-fuzz"


def fuzz_settings(examples: int) -> settings:
    # derandomize: the same examples on every run, so CI never fails on a draw it cannot repeat; no database,
    # so nothing is written into the checkout.
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# -- what the handlers send back --------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it: files become their name and size."""
    if isinstance(value, UploadedFile):
        return {"file": value.filename, "type": value.content_type, "size": value.size}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def echo(req: nbroutes.Request) -> dict[str, Any]:
    return {
        "method": req.method,
        "path": req.path,
        "params": plain(req.params),
        "query": plain(req.query),
        "body": plain(req.body),
        "state": plain(req.state),
        "cookies": req.cookies,
        "type": req.content_type,
        "files": sorted(req.files),
    }


def echo_with_res(req: nbroutes.Request, res: nbroutes.ApiResponse) -> None:
    res.status(201).set_header("X-Echo", "res")
    res.json(echo(req))


async def echo_async(req: nbroutes.Request) -> Any:
    await asyncio.sleep(0)
    return echo(req), 202


async def streamed(req: nbroutes.Request, res: nbroutes.ApiResponse) -> None:
    res.set_header("X-Streamed", "1")
    res.write("first\n")
    await asyncio.sleep(0)
    res.write(json.dumps(echo(req)))
    res.end()


class Item(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    price: float = Field(ge=0)
    tags: list[str] = []
    count: int = 0


def typed_get(
    id: int,
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    x_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    return {"id": id, "q": q, "limit": limit, "token": x_token}


def typed_put(id: int, item: Item, verbose: bool = False) -> Item:
    return item


def typed_post(body: Item) -> tuple[Item, int]:
    return body, 201


def typed_delete(id: int) -> None:
    return None


# -- route tables -----------------------------------------------------------------------------------------

STATIC = ["api", "users", "items", "a", "b", "x", "secure", "docs"]
#: Routes every generated table has besides its own: typed handlers and a stream.
FIXED: dict[str, dict[str, Endpoint]] = {
    "/typed/items/[id]": {
        "GET": Endpoint(typed_get),
        "PUT": Endpoint(typed_put),
        "DELETE": Endpoint(typed_delete),
    },
    "/typed/items": {"POST": Endpoint(typed_post)},
    "/stream/[n]": {"GET": Endpoint(streamed)},
}


@st.composite
def patterns(draw: st.DrawFn) -> str:
    segments = []
    for i in range(draw(st.integers(0, 3))):
        segments.append(draw(st.sampled_from(STATIC)) if draw(st.booleans()) else f"[p{i}]")
    tail = draw(st.sampled_from(["", "", "[...rest]", "[[...rest]]"]))
    if tail:
        segments.append(tail)
    return "/" + "/".join(segments)


@dataclass
class Table:
    """A generated route table: the patterns served, and how the App was built from them."""

    patterns: list[str]
    forms: list[str]
    middleware: list[str]
    app: App = field(init=False)

    def __post_init__(self) -> None:
        self.app = App(debug=True)
        served = []
        for pattern, form in zip(self.patterns, self.forms, strict=False):
            try:
                self.app.add(pattern, _endpoints(form))
            except RouteConflictError:
                continue  # the same shape as one already there, as a notebook would be told
            served.append(pattern)
        self.patterns = served + list(FIXED)
        for pattern, endpoints in FIXED.items():
            self.app.add(pattern, dict(endpoints))
        for name in self.middleware:
            fn, matcher = MIDDLEWARE[name]()
            self.app.use(fn, matcher, owner=name)


def _endpoints(form: str) -> dict[str, Endpoint]:
    if form == "pages":
        return {"*": Endpoint(echo_with_res)}
    if form == "async":
        return {"GET": Endpoint(echo_async), "POST": Endpoint(echo_async), "PATCH": Endpoint(echo_async)}
    return {"GET": Endpoint(echo), "POST": Endpoint(echo), "PUT": Endpoint(echo), "DELETE": Endpoint(echo)}


async def stamp(req: nbroutes.Request, call_next: Any) -> Any:
    response = await call_next(req)
    response.set_header("X-Stamp", "1")
    return response


async def peek(req: nbroutes.Request, call_next: Any) -> Any:
    req.state["body"] = type(req.body).__name__  # a body that does not parse is the middleware's 400
    return await call_next(req)


async def strip_x(req: nbroutes.Request, call_next: Any) -> Any:
    req.path = req.path[2:] or "/"  # /x/users/1 is served as /users/1
    return await call_next(req)


MIDDLEWARE: dict[str, Callable[[], tuple[Callable[..., Any], str | None]]] = {
    "token": lambda: (require_token(TOKEN_ENV), "/secure/:path*"),
    "cors": lambda: (cors(["http://localhost:3000"], credentials=True, expose_headers=["X-Echo"]), None),
    "cors-any": lambda: (cors("*"), "/api/:path*"),
    "stamp": lambda: (stamp, "/a/:path*"),
    "peek": lambda: (peek, "/b/:path*"),
    "strip-x": lambda: (strip_x, "/x/:path*"),
}

tables = st.builds(
    Table,
    patterns=st.lists(patterns(), min_size=1, max_size=6),
    forms=st.lists(st.sampled_from(["pages", "method", "async"]), min_size=6, max_size=6),
    middleware=st.lists(st.sampled_from(list(MIDDLEWARE)), unique=True, max_size=4),
)

# -- requests ---------------------------------------------------------------------------------------------


def wire(text: str) -> str:
    """Text as a server hands it to the App: its UTF-8 bytes read as latin-1, as Tornado and ASGI servers do."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


#: Characters a request target can carry as they are (no space, control character, '?' or '#').
_TARGET_CHARS = st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zs"], exclude_characters="?#")
_PIECES = [
    "a", "b", "1", "42", "-1", "0", "9223372036854775808", "1e3", "%2F", "%2f", "%2e", ".", "..", "%2e%2e",
    "%", "%z", "%zz", "%C3", "%C3%A9", "%ED%A0%80", "%00", "%0D%0A", "%FF", "+", "%20", "~", ";", ":", "@",
    "\\", "%5C", "é", "%25", "%252F", "_nbroutes", "%3F", "%23",
]  # fmt: skip
#: A value a client means: half the segments, so that most requests reach a handler.
plain_segments = st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True)
segments = st.lists(
    st.one_of(
        plain_segments,
        plain_segments,
        plain_segments,
        st.sampled_from(_PIECES),
        st.text(_TARGET_CHARS, max_size=10).map(wire),
        st.text(max_size=10).map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="")),
        st.integers(1000, 20000).map(lambda n: "a" * n),  # longer than any name, shorter than a server's line cap
    ),
    min_size=1,
    max_size=3,
).map("".join)

GARBAGE_PATHS = [
    "", "*", "/", "//", "///", "/./", "/../", "http://evil.example/api/users", "api/users", "/\\evil.example",
    "//evil.example/", "/%2e%2e/%2e%2e/etc/passwd", "/%2F%2F", "/_nbroutes/openapi.json", "/_nbroutes/docs",
    "/_nbroutes/docs/swagger-ui.css", "/_nbroutes/docs/..%2f..%2fsecret", "/_nbroutes/docs/%2e%2e",
    "/_nbroutes/nothing/here", "/_nbroutes", "/" + "a/" * 3000, "/" + "%" * 100, "/;/;/", "/~",
]  # fmt: skip


@st.composite
def paths(draw: st.DrawFn, patterns: list[str]) -> str:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(GARBAGE_PATHS))
    pattern = draw(st.sampled_from(patterns))
    parts = []
    for seg in pattern.strip("/").split("/") if pattern != "/" else []:
        if seg.startswith("[[..."):
            parts += draw(st.lists(segments, max_size=3))
        elif seg.startswith("[..."):
            parts += draw(st.lists(segments, min_size=1, max_size=3))
        elif seg.startswith("["):
            parts.append(draw(segments))
        else:  # the name as written, escaped, or in capitals (not the same route)
            parts.append(draw(st.sampled_from([seg, seg, "".join(f"%{ord(c):02X}" for c in seg), seg.upper()])))
    sep = draw(st.sampled_from(["/"] * 7 + ["//"]))
    prefix = draw(st.sampled_from(["", "", "", "/x"]))  # strip-x serves /x/... as /...
    return prefix + "/" + sep.join(parts) + draw(st.sampled_from([""] * 9 + ["/", "//", "/."]))


queries = st.one_of(
    st.just(""),
    st.lists(st.tuples(st.sampled_from(["q", "limit", "verbose", "id", "rest", "p0", "x"]), st.text(max_size=8))).map(
        lambda pairs: urlencode(pairs)
    ),
    st.lists(st.sampled_from(["a=1", "a", "=", "&", "%", "%zz", "%C3", "+", "limit=0", "limit=1e9", "q=é", ";"]))
    .map("".join)
    .map(wire),
    st.text(_TARGET_CHARS, max_size=20).map(wire),
)

METHODS = [
    "GET", "GET", "POST", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND",
    "get", "M-SEARCH", "X",
]  # fmt: skip

# Bodies: a content type and the bytes, in pairs that belong together, and some that do not.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
items = st.fixed_dictionaries(
    {"name": st.text(max_size=60), "price": st.one_of(st.floats(), st.integers(), st.text(max_size=5))},
    optional={"tags": st.lists(st.text(max_size=5), max_size=3), "count": st.integers(), "extra": json_values},
)
HOSTILE_JSON = [
    b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"1e999", b"-1e999", b"1" * 5000, b'"\\ud800"', b'{"\\udfff": 1}',
    b'"\\ud83d\\ude00"', b"[" * 100_000 + b"]" * 100_000, b"{" * 50_000, b'{"a":', b"\xff\xfe", b"\xef\xbb\xbf{}",
    b"", b"   ", b"null", b"9" * 10_000, b'{"price": 1e400, "name": "x"}', b'{"name": "\\u0000", "price": 0}',
]  # fmt: skip
json_bodies = st.one_of(
    st.sampled_from(HOSTILE_JSON),
    json_values.map(lambda v: json.dumps(v).encode()),
    items.map(lambda v: json.dumps(v).encode()),
    items.map(lambda v: json.dumps(v).encode("utf-16")),
)
form_bodies = st.one_of(
    st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=5).map(lambda p: urlencode(p).encode()),
    items.map(lambda v: urlencode({k: str(x) for k, x in v.items()}).encode()),
    st.binary(max_size=64),
    st.just(b"a=1&" * 2000),
)


@st.composite
def multipart(draw: st.DrawFn) -> tuple[str, bytes]:
    boundary = draw(st.sampled_from(["B", "----fuzz", "x" * 70, "b o u"]))
    out = b""
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.text(max_size=6)).encode("utf-8", "surrogatepass")
        disposition = draw(
            st.sampled_from(
                [
                    b'form-data; name="%s"' % name,
                    b'form-data; name="%s"; filename="f.txt"' % name,
                    b"form-data; name=%s; filename*=UTF-8''%%C3%%A9.txt" % name,
                    b"form-data",
                    b'attachment; filename="x"',
                    b"",
                ]
            )
        )
        extra = draw(
            st.sampled_from([b"", b"Content-Type: text/plain\r\n", b"no colon here\r\n", b"X: " * 500 + b"\r\n"])
        )
        value = draw(st.binary(max_size=40))
        out += b"--%s\r\nContent-Disposition: %s\r\n%s\r\n%s\r\n" % (boundary.encode(), disposition, extra, value)
    ending = draw(st.sampled_from([b"--%s--\r\n", b"--%s--", b"--%s", b"", b"--%s--\r\nepilogue"]))
    out += ending % boundary.encode() if b"%s" in ending else ending
    cut = draw(st.one_of(st.none(), st.integers(0, len(out))))  # a body that stops part-way
    ctype = draw(
        st.sampled_from([f"multipart/form-data; boundary={boundary}", f'multipart/form-data; boundary="{boundary}"'])
    )
    return ctype, out if cut is None else out[:cut]


JSON_TYPES = ["application/json", "application/vnd.api+json", "application/json; charset=utf-8"]
FORM_TYPES = ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=latin-1"]
OTHER_TYPES = ["text/plain", "text/plain; charset=latin-1", "application/octet-stream", None]
bodies = st.one_of(
    st.just((None, b"")),
    st.tuples(st.sampled_from(JSON_TYPES), st.sampled_from(HOSTILE_JSON)),
    st.tuples(st.sampled_from(JSON_TYPES), json_bodies),
    st.tuples(st.just("application/json; charset=utf-16"), items.map(lambda v: json.dumps(v).encode("utf-16"))),
    st.tuples(st.sampled_from(FORM_TYPES), form_bodies),
    multipart(),
    st.tuples(st.sampled_from(OTHER_TYPES), st.binary(max_size=200)),
)

CONTENT_TYPES = [
    "application/json;", "APPLICATION/JSON", "application/json; charset=nope", "application/json; charset=utf-7",
    "multipart/form-data", "multipart/form-data; boundary=", 'multipart/form-data; boundary="', ";;;", "=",
    "application/x-www-form-urlencoded; charset=bogus", "text/plain; charset=", "*/*", "", "application/+json",
]  # fmt: skip
HOSTS = ["localhost", "127.0.0.1:8000", "[::1]:80", "LOCALHOST.", "evil.example", "", " ", "a@b", "[::1", "x:y"]
ORIGINS = ["http://localhost:3000", "http://localhost:8000", "null", "http://evil.example", "", "localhost", "://"]
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=30)


@st.composite
def header_sets(draw: st.DrawFn) -> dict[str, str]:
    headers: dict[str, str] = {}
    optional = {
        "Host": st.sampled_from(["localhost", "127.0.0.1"] * 5 + HOSTS) | header_values,
        "Origin": st.sampled_from(["http://localhost:3000", "http://localhost"] * 3 + ORIGINS) | header_values,
        "Content-Type": st.sampled_from(CONTENT_TYPES) | header_values,
        "Content-Length": st.sampled_from(["0", "1", "-1", "999999999999", "abc", "1, 2", " 5 "]),
        "Authorization": st.sampled_from([f"Bearer {TOKEN}", f"bearer {TOKEN} ", "Bearer", "Basic eA==", TOKEN]),
        "Cookie": st.sampled_from(["a=1; a=2", 'b="x', "=;;=", "c=%ZZ", "d=%C3%A9"]) | header_values,
        "If-None-Match": st.sampled_from(["*", '"x"', 'W/"1-2", "3"', ""]),
        "Access-Control-Request-Method": st.sampled_from(["POST", "DELETE", ""]),
        "Access-Control-Request-Headers": st.sampled_from(["content-type", "x-token, authorization", ""]),
        "Sec-Fetch-Site": st.sampled_from(["cross-site", "same-origin", "none"]),
        "X-Token": header_values,
        "X-Forwarded-Context": st.sampled_from(["/user/a/proxy/8000", "/nope"]),
    }
    for name in draw(st.lists(st.sampled_from(list(optional)), unique=True, max_size=3)):
        headers[name] = draw(optional[name])
    return headers


@dataclass
class Sent:
    """A generated request, as given to the client."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def __str__(self) -> str:
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        url = self.url if len(self.url) <= 300 else self.url[:300] + "..."
        return f"{self.method} {url!r} headers={self.headers!r} body={body!r}"


@st.composite
def requests(draw: st.DrawFn, patterns: list[str]) -> Sent:
    path = draw(paths(patterns))
    query = draw(queries)
    headers = draw(header_sets())
    ctype, body = draw(bodies)
    if ctype is not None and "Content-Type" not in headers:
        headers["Content-Type"] = ctype
    return Sent(draw(st.sampled_from(METHODS)), path + ("?" + query if query else ""), headers, body)


# -- the properties ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: How many answers of each status the module's tests got (printed at the end, with ``pytest -s``).
STATUSES: Counter[int] = Counter()


async def send(client: AsyncTestClient, sent: Sent) -> TestResponse:
    """The response to ``sent``. Raises AssertionError if it does not come within TIMEOUT."""
    try:
        response = await asyncio.wait_for(
            client.request(sent.method, sent.url, headers=sent.headers, content=sent.body), TIMEOUT
        )
    except asyncio.TimeoutError:
        raise AssertionError(f"no answer in {TIMEOUT}s to {sent}") from None
    STATUSES[response.status_code] += 1
    return response


def check_wire(response: TestResponse, sent: Sent) -> None:
    """The response is one a server can write: a real status, latin-1 headers without line breaks, and a
    Content-Length that is the body's length (none where HTTP allows no body)."""
    status = response.status_code
    assert 100 <= status <= 599, f"status {status} for {sent}"
    for name, value in response.response.headers:
        assert _TOKEN.fullmatch(name), f"header name {name!r} for {sent}"
        value.encode("latin-1")  # raises UnicodeEncodeError for what no server can send
        assert not set(value) & set("\r\n\0"), f"header {name}: {value!r} for {sent}"
    length = response.headers.get("content-length")
    if status in (204, 304) or status < 200:
        assert response.content == b"" and length is None, f"{status} with a body or length for {sent}"
    elif sent.method.upper() == "HEAD":
        assert response.content == b"", f"HEAD answered with a body for {sent}"
    elif response.headers.get("x-streamed") is None:
        assert length is not None and int(length) == len(response.content), f"Content-Length {length} for {sent}"


def raised_by_user_code(exc: BaseException | None) -> bool:
    """Whether ``exc`` was raised in code outside nbroutes (a notebook's cell), not by nbroutes itself."""
    if exc is None:
        return False
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and not Path(last).resolve().is_relative_to(PACKAGE)


@pytest.fixture(scope="module", autouse=True)
def token_env() -> Iterator[None]:
    old = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = TOKEN
    yield
    print(f"\n{sum(STATUSES.values())} generated requests; by status: {dict(sorted(STATUSES.items()))}")
    if old is None:
        del os.environ[TOKEN_ENV]
    else:
        os.environ[TOKEN_ENV] = old


@st.composite
def tables_and_requests(draw: st.DrawFn) -> tuple[Table, list[Sent]]:
    table = draw(tables)
    return table, draw(st.lists(requests(table.patterns), min_size=2, max_size=10))


@given(tables_and_requests())
@fuzz_settings(300)
def test_generated_tables_answer_every_request_under_500_in_time(case: tuple[Table, list[Sent]]) -> None:
    table, sent = case

    async def run() -> None:
        client = AsyncTestClient(table.app)
        for one in sent:
            response = await send(client, one)
            detail = response.json().get("detail") if response.status_code == 500 else None
            assert response.status_code < 500, f"{response.status_code} {detail!r} for {one}"
            check_wire(response, one)

    asyncio.run(run())


MALFORMED_MULTIPART = [
    b"",
    b"--B",
    b"--B\r\n",
    b"--B--",
    b"no boundary at all",
    b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--",
    b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nunterminated',
    b'--B\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\n' + b"\xff" * 100 + b"\r\n--B--\r\n",
    b"--B\r\n" + b"X: y\r\n" * 10_000 + b"\r\n\r\n--B--",
    b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n' * 2000,
]
#: Every hostile body, with the content type that makes nbroutes parse it.
HOSTILE = [("application/json", body) for body in HOSTILE_JSON] + [
    (ctype, body)
    for ctype in ("multipart/form-data; boundary=B", "multipart/form-data")
    for body in MALFORMED_MULTIPART
]
#: Routes that read a body each way: an echo before and after a middleware that reads it, and a typed body.
HOSTILE_TARGETS = ["/api/echo", "/b/echo", "/typed/items"]


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_every_hostile_body_is_answered_under_500_in_time(target: str) -> None:
    # The generated requests reach each of these now and then; this sends every one to every reader, every run.
    table = Table(["/api/echo", "/b/echo"], ["method", "method"], ["peek"])

    async def run() -> None:
        client = AsyncTestClient(table.app)
        for ctype, body in HOSTILE:
            sent = Sent("POST", target, {"Content-Type": ctype}, body)
            response = await send(client, sent)
            assert response.status_code < 500, f"{response.status_code} {response.text[:300]} for {sent}"
            check_wire(response, sent)

    asyncio.run(run())


# -- handlers that raise ----------------------------------------------------------------------------------


class Custom(BaseException):
    """Not an Exception: what a library's own control flow may raise."""


RAISED: list[Callable[[], BaseException]] = [
    lambda: ValueError("bad"),
    lambda: KeyError("missing"),
    lambda: ZeroDivisionError("division by zero"),
    lambda: RecursionError("deep"),
    lambda: SystemExit(3),
    lambda: KeyboardInterrupt(),
    lambda: GeneratorExit(),
    lambda: asyncio.CancelledError(),
    lambda: Custom("custom"),
    lambda: StopIteration(),
    lambda: MemoryError(),
    lambda: UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
]


def raising(where: str, make: Callable[[], BaseException]) -> App:
    """An App whose ``/boom`` raises ``make()`` from ``where``; ``/ok`` answers 200."""
    app = App()

    def sync(req: nbroutes.Request) -> Any:
        raise make()

    async def in_async(req: nbroutes.Request) -> Any:
        await asyncio.sleep(0)
        raise make()

    def typed(id: int) -> Any:
        raise make()

    async def middleware(req: nbroutes.Request, call_next: Any) -> Any:
        if req.path.startswith("/boom"):
            raise make()
        return await call_next(req)

    def gen(req: nbroutes.Request) -> Any:
        raise make()
        yield "never"  # a generator handler: the exception comes when the stream is started

    handler = {"sync": sync, "async": in_async, "typed": typed, "middleware": sync, "generator": gen}[where]
    app.add("/boom/[id]", {"*": Endpoint(handler)})
    app.add("/ok", {"GET": Endpoint(lambda req: {"ok": True})})
    if where == "middleware":
        app.use(middleware, owner="boom")
    return app


@given(
    where=st.sampled_from(["sync", "async", "typed", "middleware"]),
    make=st.sampled_from(RAISED),
    method=st.sampled_from(["GET", "POST", "DELETE", "HEAD"]),
)
@fuzz_settings(80)
def test_a_raising_handler_gives_exactly_500_and_the_app_answers_on(
    where: str, make: Callable[[], BaseException], method: str
) -> None:
    app = raising(where, make)

    async def run() -> None:
        client = AsyncTestClient(app)
        boom = Sent(method, "/boom/7", {}, b"")
        response = await send(client, boom)
        assert response.status_code == 500, f"{response.status_code} for {make()!r} raised in {where}"
        if method != "HEAD":
            assert response.json() == {"error": "Internal Server Error"}
        assert response.response.exception is not None
        check_wire(response, boom)
        after = await send(client, Sent("GET", "/ok", {}, b""))
        assert (after.status_code, after.json()) == (200, {"ok": True})

    asyncio.run(run())


# -- the example notebooks --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def notebook_apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, App]:
    """The App of each example notebook, run headless from a copy in a temporary folder."""
    folder = tmp_path_factory.mktemp("notebooks")
    apps = {}
    for source in sorted(NOTEBOOKS.glob("*.ipynb")):
        copy = folder / source.name
        shutil.copy(source, copy)
        apps[source.stem] = load_notebook(copy)
    assert set(apps) >= {"quickstart", "todo-api", "validation-and-middleware"}
    return apps


def notebook_patterns(app: App) -> list[str]:
    return [route.pattern.text for route in app.router.routes if route.listed]


@pytest.mark.parametrize("name", ["quickstart", "todo-api", "validation-and-middleware"])
def test_example_notebooks_answer_every_request_under_500_in_time(name: str, notebook_apps: dict[str, App]) -> None:
    app = notebook_apps[name]
    patterns = notebook_patterns(app)
    assert patterns, f"{name} serves no routes"

    @given(st.lists(requests(patterns), min_size=2, max_size=10))
    @fuzz_settings(200)
    def fuzz(sent: list[Sent]) -> None:
        async def run() -> None:
            client = AsyncTestClient(app)
            for one in sent:
                response = await send(client, one)
                exc = response.response.exception
                assert response.status_code < 500 or raised_by_user_code(exc), (
                    f"{response.status_code} {exc!r} for {one}"
                )
                check_wire(response, one)

        asyncio.run(run())

    fuzz()


def test_raised_by_user_code_tells_a_cells_exception_from_nbroutes_own() -> None:
    # The notebook property leans on this: a handler's ZeroDivisionError is the cell's, a PatternError is not.
    def cell() -> None:
        1 / 0  # noqa: B018

    with pytest.raises(ZeroDivisionError) as user:
        cell()
    with pytest.raises(PatternError) as ours:
        compile_pattern("/api/[")
    assert raised_by_user_code(user.value)
    assert not raised_by_user_code(ours.value)
    assert not raised_by_user_code(None)
