"""``TestClient`` and ``AsyncTestClient``: the whole request pipeline in-process, with no socket.

From pytest or a script (no event loop running) the synchronous client returns responses::

    client = TestClient(app)
    assert client.get("/api/hello").json() == {"hello": "world"}

In a notebook cell, where the kernel's loop is already running, the asynchronous one is awaited::

    client = AsyncTestClient(app)
    r = await client.get("/api/hello")
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict
from urllib.parse import urlencode

from nbroutes.core.app import App
from nbroutes.core.datastructures import Headers
from nbroutes.core.requests import Request, parse_cookie_header
from nbroutes.core.responses import Response
from nbroutes.errors import RunningLoopError

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is 3.11+

__all__ = ["AsyncTestClient", "RequestOptions", "TestClient", "TestResponse"]

Params: TypeAlias = Mapping[str, Any] | Sequence[tuple[str, Any]] | None
FileSpec: TypeAlias = bytes | str | tuple[str, bytes | str] | tuple[str, bytes | str, str]


class TestResponse:
    """A response as a client sees it: status, headers, body, cookies."""

    __test__ = False  # not a pytest test class

    def __init__(self, response: Response) -> None:
        self.status_code = response.status
        self.headers = Headers(response.headers)
        self.content = response.body
        self.response = response

    @property
    def status(self) -> int:
        return self.status_code

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies the response sets (name -> value)."""
        out: dict[str, str] = {}
        for line in self.headers.getlist("set-cookie"):
            out.update(parse_cookie_header(line.split(";", 1)[0]))
        return out

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code} {self.headers.get('content-type', '')}>"


class RequestOptions(TypedDict, total=False):
    """What a request takes besides its method and URL: ``params``, ``headers``, ``cookies`` and one body.

    The body is ``json`` (sent as JSON), ``data`` (a mapping is a form; with ``files``, a multipart form),
    or ``content`` (bytes or text as they are).
    """

    params: Params
    headers: Mapping[str, str] | None
    cookies: Mapping[str, str] | None
    json: Any
    data: Mapping[str, Any] | str | bytes | None
    files: Mapping[str, FileSpec] | None
    content: bytes | str | None


class _Client:
    """What both clients share: building requests, the cookie jar, and sending through the App."""

    __test__ = False  # not a pytest test class

    def __init__(
        self, app: App, *, raise_server_exceptions: bool = False, base_headers: Mapping[str, str] | None = None
    ) -> None:
        self.app = app
        self.raise_server_exceptions = raise_server_exceptions
        self.base_headers = dict(base_headers or {})
        self.cookies: dict[str, str] = {}

    def build_request(
        self,
        method: str,
        url: str,
        *,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | str | bytes | None = None,
        files: Mapping[str, FileSpec] | None = None,
        content: bytes | str | None = None,
    ) -> Request:
        """The ``Request`` that ``request`` would send."""
        lines = [(k, str(v)) for k, v in {**self.base_headers, **(headers or {})}.items()]
        given = {k.lower() for k, _ in lines}
        body = b""
        content_type = None
        if files:
            body, content_type = _multipart(data if isinstance(data, Mapping) else {}, files)
        elif json is not None:
            body, content_type = jsonlib.dumps(json).encode(), "application/json"
        elif isinstance(data, Mapping):
            body, content_type = urlencode(list(_pairs(data)), doseq=True).encode(), "application/x-www-form-urlencoded"
        elif data is not None:
            body = data.encode() if isinstance(data, str) else data
        elif content is not None:
            body = content.encode() if isinstance(content, str) else content
        if content_type and "content-type" not in given:
            lines.append(("Content-Type", content_type))
        if body and "content-length" not in given:
            lines.append(("Content-Length", str(len(body))))
        jar = {**self.cookies, **(cookies or {})}
        if jar and "cookie" not in given:
            lines.append(("Cookie", "; ".join(f"{k}={v}" for k, v in jar.items())))
        if params:
            query = urlencode(list(_pairs(params)), doseq=True)
            url += ("&" if "?" in url else "?") + query
        if body and self.app.body_limit_for(url.partition("?")[0]) is None:
            # --body-limit false: the servers stream such a body to the handler, so the test client does too.
            return Request(method, url, lines, b"", client=("testclient", 50000), stream=_chunks(body))
        return Request(method, url, lines, body, client=("testclient", 50000))

    async def _send(self, request: Request) -> TestResponse:
        response = await self.app.dispatch(request)
        if response.stream is not None:
            response.body = b"".join([chunk async for chunk in response.stream])
            response.stream = None
        if self.raise_server_exceptions and response.exception is not None:
            raise response.exception
        result = TestResponse(response)
        for name, value in result.cookies.items():
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return result


class TestClient(_Client):
    """Send requests to an ``App`` in-process, and return the responses: for tests and scripts.

    ``raise_server_exceptions=True`` re-raises a handler's exception instead of
    returning its 500. Cookies the app sets are kept and sent back, as a browser would.
    It runs the App on an event loop of its own, so it cannot be called where one is
    already running, as in a notebook cell: ``AsyncTestClient`` is the client there.
    """

    def __init__(
        self, app: App, *, raise_server_exceptions: bool = False, base_headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(app, raise_server_exceptions=raise_server_exceptions, base_headers=base_headers)
        self._loop: asyncio.AbstractEventLoop | None = None

    def request(self, method: str, url: str, **options: Unpack[RequestOptions]) -> TestResponse:
        """Send a request and return the response.

        Raises RunningLoopError when an event loop is running in this thread (use ``AsyncTestClient``).
        """
        loop = self._own_loop()
        return loop.run_until_complete(self._send(self.build_request(method, url, **options)))

    def _own_loop(self) -> asyncio.AbstractEventLoop:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
            return self._loop
        raise RunningLoopError(
            "TestClient waits for each response, which it cannot do inside a running event loop (a notebook "
            "cell runs in the kernel's). Use AsyncTestClient there: client = AsyncTestClient(app), then "
            "r = await client.get(...)"
        )

    def close(self) -> None:
        """Close the client's own event loop."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> TestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return self.request("OPTIONS", url, **kwargs)

    def post(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return self.request("DELETE", url, **kwargs)


class AsyncTestClient(_Client):
    """Send requests to an ``App`` in-process, on the running event loop: await each one.

    The client for a notebook cell, where the kernel's loop runs, and for async tests.
    ``raise_server_exceptions`` and the cookie jar are as in ``TestClient``.
    """

    async def request(self, method: str, url: str, **options: Unpack[RequestOptions]) -> TestResponse:
        """Send a request and return the response."""
        return await self._send(self.build_request(method, url, **options))

    async def __aenter__(self) -> AsyncTestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def get(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return await self.request("OPTIONS", url, **kwargs)

    async def post(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Unpack[RequestOptions]) -> TestResponse:
        return await self.request("DELETE", url, **kwargs)


async def _chunks(body: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    """``body`` in chunks of ``size``, as a server hands a streamed body over."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _pairs(items: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> Iterator[tuple[str, str]]:
    pairs = items.items() if isinstance(items, Mapping) else items
    for key, value in pairs:
        if isinstance(value, (list, tuple)):
            for v in value:
                yield key, str(v)
        else:
            yield key, str(value)


def _multipart(fields: Mapping[str, Any], files: Mapping[str, FileSpec]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in _pairs(fields):
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for name, spec in files.items():
        if isinstance(spec, tuple):
            filename, data, *rest = spec
            ctype = rest[0] if rest else "application/octet-stream"
        else:
            filename, data, ctype = name, spec, "application/octet-stream"
        raw = data.encode() if isinstance(data, str) else data
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n"
        ).encode()
        out += raw + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
