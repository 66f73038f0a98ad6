"""The two in-process clients: ``TestClient`` returns responses, ``AsyncTestClient``'s are awaited."""

import asyncio
import gc
import warnings
from typing import Any

import pytest

from nbroutes import App
from nbroutes.core.requests import Request
from nbroutes.core.responses import ApiResponse
from nbroutes.errors import RunningLoopError
from nbroutes.testing import AsyncTestClient, TestClient, TestResponse

METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]

app = App()


@app.route("/api/echo")
def echo(req: Request) -> dict[str, Any]:
    return {"method": req.method, "q": req.query.get("q"), "body": req.body}


@app.route("/api/login", methods="POST")
def login(req: Request, res: ApiResponse) -> dict[str, bool]:
    res.set_cookie("session", "s1")
    return {"ok": True}


@app.route("/api/me", methods="GET")
def me(req: Request) -> dict[str, str | None]:
    return {"session": req.cookies.get("session")}


@app.route("/api/boom", methods="GET")
def boom(req: Request) -> None:
    raise ValueError("boom")


def test_the_sync_client_returns_the_response() -> None:
    with TestClient(app) as client:
        r = client.post("/api/echo", params={"q": "x"}, json={"a": 1})
    assert isinstance(r, TestResponse)
    assert r.status_code == 200
    assert r.json() == {"method": "POST", "q": "x", "body": {"a": 1}}


def test_the_async_client_is_awaited_for_the_same_response() -> None:
    async def main() -> TestResponse:
        async with AsyncTestClient(app) as client:
            return await client.post("/api/echo", params={"q": "x"}, json={"a": 1})

    r = asyncio.run(main())
    assert isinstance(r, TestResponse)
    assert r.status_code == 200
    assert r.json() == {"method": "POST", "q": "x", "body": {"a": 1}}


@pytest.mark.parametrize("method", METHODS)
def test_every_verb_gives_the_same_answer_from_both_clients(method: str) -> None:
    async def from_async() -> TestResponse:
        verb = getattr(AsyncTestClient(app), method.lower())
        response: TestResponse = await verb("/api/echo", data="text")
        return response

    with TestClient(app) as client:
        sync = getattr(client, method.lower())("/api/echo", data="text")
    awaited = asyncio.run(from_async())
    assert (sync.status_code, sync.headers.raw(), sync.content) == (
        awaited.status_code,
        awaited.headers.raw(),
        awaited.content,
    )
    if method not in ("HEAD", "OPTIONS"):
        assert sync.json() == {"method": method, "q": None, "body": "text"}


def test_the_async_client_keeps_cookies_as_a_browser_would() -> None:
    async def main() -> tuple[Any, Any]:
        client = AsyncTestClient(app)
        before = (await client.get("/api/me")).json()
        await client.post("/api/login")
        return before, (await client.get("/api/me")).json()

    before, after = asyncio.run(main())
    assert before == {"session": None}
    assert after == {"session": "s1"}


def test_the_async_client_reraises_server_exceptions_when_asked() -> None:
    async def main(raise_server_exceptions: bool) -> TestResponse:
        return await AsyncTestClient(app, raise_server_exceptions=raise_server_exceptions).get("/api/boom")

    assert asyncio.run(main(False)).status_code == 500
    with pytest.raises(ValueError, match="boom"):
        asyncio.run(main(True))


def test_the_sync_client_inside_a_running_loop_says_to_use_the_async_one() -> None:
    client = TestClient(app)

    async def in_a_cell() -> None:
        client.get("/api/echo")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RunningLoopError, match=r"Use AsyncTestClient there: client = AsyncTestClient\(app\)"):
            asyncio.run(in_a_cell())
        gc.collect()
    assert [str(w.message) for w in caught] == []  # no request coroutine was made and left unawaited
    with client:  # outside the loop, the same client works
        assert client.get("/api/echo").status_code == 200
