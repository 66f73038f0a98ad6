"""The request widget without a kernel: curl commands, body rendering, the form, and real requests to a Server."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from nbroutes import App, Response
from nbroutes.kernel.request_widget import (
    PreparedRequest,
    RequestResult,
    RequestWidget,
    curl_command,
    render_body,
)
from nbroutes.kernel.threads import KernelLoop
from nbroutes.servers.tornado import Server

BASE = "http://127.0.0.1:8000"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005"
    "0001ff8e6f0c0b0000000049454e44ae426082"
)

app = App()


@app.route("/api/echo")
def echo(req):
    return {"method": req.method, "query": req.query, "token": req.headers.get("x-token"), "body": req.body}


@app.route("/api/slow")
async def slow(req):
    await asyncio.sleep(1)
    return {"slow": True}


@app.route("/api/page")
def page(req):
    return Response.html("<h1>Hi</h1>")


@app.route("/api/pixel")
def pixel(req):
    return Response(PNG, headers={"Content-Type": "image/png"})


# -- curl ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (PreparedRequest("GET", "/api/x"), f"curl {BASE}/api/x"),
        (PreparedRequest("HEAD", "/api/x"), f"curl --head {BASE}/api/x"),
        (PreparedRequest("DELETE", "/api/x"), f"curl -X DELETE {BASE}/api/x"),
        (
            PreparedRequest("GET", "/api/x", query=(("q", "a b"), ("n", "1"))),
            f"curl '{BASE}/api/x?q=a+b&n=1'",
        ),
        (
            PreparedRequest("POST", "/api/x", headers=(("X-Token", "it's"),), body='{"a": "b c"}'),
            f"curl -X POST {BASE}/api/x -H 'X-Token: it'\"'\"'s' -H 'Content-Type: application/json' "
            '--data-raw \'{"a": "b c"}\'',
        ),
        (
            PreparedRequest("PUT", "/api/x", headers=(("content-type", "text/plain"),), body="hi"),
            f"curl -X PUT {BASE}/api/x -H 'content-type: text/plain' --data-raw hi",
        ),
    ],
)
def test_curl_command(request_: PreparedRequest, expected: str) -> None:
    assert curl_command(request_, BASE) == expected


def test_curl_command_survives_the_shell() -> None:
    body = '{"quote": "it\'s $HOME `x` \\\\"}'
    words = shlex.split(curl_command(PreparedRequest("PATCH", "/api/x", body=body), BASE))
    assert words[-2:] == ["--data-raw", body]
    assert words[:3] == ["curl", "-X", "PATCH"]


# -- the request --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "target"),
    [
        ("/api/x", (), "/api/x"),
        ("api/x", (), "/api/x"),
        ("", (), "/"),
        ("/api/a b", (), "/api/a%20b"),
        ("/api/x?a=1", (("b", "2"),), "/api/x?a=1&b=2"),
        ("/api/x", (("name", "Ada L"), ("tag", "a&b")), "/api/x?name=Ada+L&tag=a%26b"),
    ],
)
def test_target(path: str, query: tuple[tuple[str, str], ...], target: str) -> None:
    assert PreparedRequest("GET", path, query=query).target == target


def test_a_json_body_that_is_not_json_is_a_problem_unless_a_content_type_row_says_otherwise() -> None:
    problem = PreparedRequest("POST", "/api/x", body="{oops").problem()
    assert problem is not None and "not valid JSON (line 1, column 2" in problem
    assert PreparedRequest("POST", "/api/x", headers=(("Content-Type", "text/plain"),), body="{oops").problem() is None
    assert PreparedRequest("POST", "/api/x", body='{"ok": true}').problem() is None
    assert PreparedRequest("POST", "/api/x").problem() is None


def test_wire_headers_add_json_content_type_only_for_a_body_without_one() -> None:
    assert PreparedRequest("POST", "/", body="{}").wire_headers() == [("Content-Type", "application/json")]
    assert PreparedRequest("POST", "/").wire_headers() == []
    assert PreparedRequest("POST", "/", headers=(("content-type", "text/csv"),), body="a").wire_headers() == [
        ("content-type", "text/csv")
    ]


# -- showing a response -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "kind", "contains"),
    [
        ("application/json", b'{"a":[1,"<b>"]}', "json", "{\n  &quot;a&quot;: [\n    1,\n    &quot;&lt;b&gt;&quot;"),
        ("application/problem+json", b'{"a":1}', "json", "&quot;a&quot;: 1"),
        ("application/json", b"{not json", "text", "{not json"),
        ("text/plain; charset=utf-8", "héllo <b>".encode(), "text", "héllo &lt;b&gt;"),
        ("text/plain; charset=latin-1", "héllo".encode("latin-1"), "text", "héllo"),
        ("", b"plain", "text", "plain"),
        ("text/html", b'<p class="x">Hi</p>', "html", 'srcdoc="&lt;p class=&quot;x&quot;&gt;Hi&lt;/p&gt;"'),
        ("image/png", PNG, "image", ""),
        ("application/octet-stream", b"\x00\x01", "binary", "2 bytes of application/octet-stream"),
        ("", b"\xff\xfe\x00", "binary", "3 bytes"),
        ("application/json", b"", "empty", "(empty body)"),
    ],
)
def test_render_body(content_type: str, body: bytes, kind: str, contains: str) -> None:
    got_kind, shown = render_body(content_type, body)
    assert got_kind == kind
    assert contains in shown


def test_html_is_shown_in_a_sandboxed_iframe_with_scripts_escaped() -> None:
    _, shown = render_body("text/html", b"<script>alert(1)</script>")
    assert shown.startswith("<iframe sandbox srcdoc=")
    assert "<script>" not in shown


def test_result_helpers() -> None:
    result = RequestResult(BASE, 200, "OK", [("Content-Type", "application/json")], b'{"a": 1}')
    assert result.ok and result.header("content-type") == "application/json"
    assert result.json() == {"a": 1} and result.text == '{"a": 1}'
    assert not RequestResult(BASE, error="refused").ok


# -- the form -----------------------------------------------------------------------------


def test_the_form_is_prefilled_and_describes_the_request() -> None:
    w = RequestWidget(
        "post", "/api/echo", query={"page": 2}, headers={"X-Token": "t"}, body={"name": "Ada"}, base_url=BASE
    )
    assert w.method_input.value == "POST"
    assert w.body_input.value == '{\n  "name": "Ada"\n}'
    assert w.request() == PreparedRequest(
        "POST", "/api/echo", (("page", "2"),), (("X-Token", "t"),), '{\n  "name": "Ada"\n}'
    )
    assert w.curl().startswith(f"curl -X POST '{BASE}/api/echo?page=2' -H 'X-Token: t' -H 'Content-Type: ")
    for name in ("send", "status", "body", "history", "replay", "curl", "curl-text", "path", "method"):
        assert any(f"nbroutes-{name}" in c._dom_classes for c in _descendants(w)), name


def test_rows_are_added_edited_and_removed() -> None:
    w = RequestWidget(query=[("a", "1"), ("a", "2")], base_url=BASE)
    row = w.query_rows.add()
    row.key.value, row.value.value = "b", "x y"
    assert w.request().target == "/?a=1&a=2&b=x+y"
    w.query_rows.rows[0].remove.click()
    assert w.query_rows.items() == [("a", "2"), ("b", "x y")]
    assert w.query_rows.children[-1] is w.query_rows.add_button
    w.query_rows.add_button.click()
    assert len(w.query_rows.rows) == 3 and w.query_rows.items() == [("a", "2"), ("b", "x y")]


def test_curl_text_is_shown_on_click_and_stays_read_only() -> None:
    w = RequestWidget("GET", "/api/x", base_url=BASE)
    assert w.curl_text.layout.display == "none"
    w.curl_button.click()
    assert w.curl_text.layout.display != "none"
    assert w.curl_text.value == f"curl {BASE}/api/x"
    w.curl_text.value = "rm -rf /"
    assert w.curl_text.value == f"curl {BASE}/api/x"


def test_body_given_as_a_string_is_kept_as_typed() -> None:
    assert RequestWidget(body='{"a":1}', base_url=BASE).body_input.value == '{"a":1}'


# -- real requests ------------------------------------------------------------------------


def _descendants(widget: Any) -> list[Any]:
    found = [widget]
    for child in getattr(widget, "children", ()):
        found += _descendants(child)
    return found


def serving(test: Callable[[Server], Awaitable[None]]) -> None:
    """Run ``test(server)`` on a fresh loop with the module's app served on a free port."""

    async def main() -> None:
        server = Server(app, "127.0.0.1", 0)
        server.start(search=False)
        try:
            await test(server)
        finally:
            server.stop()
            await asyncio.sleep(0)

    asyncio.run(main())


async def until(check: Callable[[], bool], timeout: float = 5) -> None:
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def test_send_posts_the_form_and_shows_the_pretty_json_answer() -> None:
    async def test(server: Server) -> None:
        w = RequestWidget(
            "POST", "/api/echo", query={"q": "a b"}, headers={"X-Token": "t1"}, body={"n": 1}, base_url=server.url
        )
        result = await w.send_request()
        assert result.status == 200 and result.error is None and result.elapsed_ms > 0
        assert result.json() == {"method": "POST", "query": {"q": "a b"}, "token": "t1", "body": {"n": 1}}
        assert "200 OK" in w.status_html.value and "#1a7f37" in w.status_html.value
        assert w.time_html.value.endswith(" ms") and w.size_html.value.endswith(" B")
        assert "&quot;token&quot;: &quot;t1&quot;" in w.body_html.value
        assert "Content-Type" in w.response_headers_html.value
        assert w.response_headers.selected_index is None

    serving(test)


def test_delete_with_a_body_and_head_without_one() -> None:
    async def test(server: Server) -> None:
        w = RequestWidget("DELETE", "/api/echo", body={"id": 3}, base_url=server.url)
        assert (await w.send_request()).json()["body"] == {"id": 3}
        w.method_input.value, w.body_input.value = "HEAD", ""
        result = await w.send_request()
        assert result.status == 200 and result.body == b"" and "(empty body)" in w.body_html.value

    serving(test)


def test_status_colours_html_and_images() -> None:
    async def test(server: Server) -> None:
        w = RequestWidget("GET", "/api/missing", base_url=server.url)
        assert (await w.send_request()).status == 404 and "#bc4c00" in w.status_html.value
        w.path_input.value = "/api/page"
        await w.send_request()
        assert w.body_html.value.startswith("<iframe sandbox srcdoc=") and w.body_box.children == (w.body_html,)
        w.path_input.value = "/api/pixel"
        await w.send_request()
        assert w.body_box.children == (w.body_image,)
        assert w.body_image.format == "png" and w.body_image.value == PNG

    serving(test)


def test_history_keeps_the_last_twenty_and_replay_resends_the_chosen_one() -> None:
    async def test(server: Server) -> None:
        w = RequestWidget(
            "GET", "/api/echo", query={"n": "first"}, base_url=server.url, kernel_loop=KernelLoop.current()
        )
        await w.send_request()
        w.query_rows.set_items([("n", "second")])
        await w.send_request()
        labels = [label.split(" (")[0] for label, _ in w.history_dropdown.options]
        assert labels == ["GET /api/echo?n=second → 200", "GET /api/echo?n=first → 200"]
        w.history_dropdown.value = 1
        w.replay_button.click()
        await until(lambda: len(w.history) == 3)
        assert w.history[0][1].json()["query"] == {"n": "first"}
        assert w.query_rows.items() == [("n", "first")]
        for i in range(25):
            w.query_rows.set_items([("i", str(i))])
            await w.send_request()
        assert len(w.history) == len(w.history_dropdown.options) == 20

    serving(test)


def test_invalid_json_is_refused_before_sending() -> None:
    async def test(server: Server) -> None:
        w = RequestWidget("POST", "/api/echo", body="{oops", base_url=server.url)
        result = await w.send_request()
        assert result.status == 0 and result.error is not None and "not valid JSON" in w.status_html.value
        assert w.history == []

    serving(test)


def test_connection_refused_and_timeout_are_messages_not_tracebacks() -> None:
    async def test(server: Server) -> None:
        w = RequestWidget("GET", "/api/slow", base_url=server.url)
        w.timeout = 0.2
        result = await w.send_request()
        assert result.error == f"No response from {server.url} within 0.2 s."
        assert "No response" in w.status_html.value
        server.stop()
        await asyncio.sleep(0)
        result = await w.send_request()
        assert result.error is not None and result.error.startswith(f"Connection refused by {server.url}")
        assert "%nbroutes start" in w.status_html.value
        assert w.history[0][1] is result

    serving(test)


def test_a_click_sends_from_the_kernel_loop_given() -> None:
    async def test(server: Server) -> None:
        w = RequestWidget("GET", "/api/echo", base_url=server.url, kernel_loop=KernelLoop.current())
        w.send_button.click()
        await until(lambda: "200" in w.status_html.value)

    serving(test)


def test_a_method_it_cannot_send_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'FETCH' is not a method it sends; use one of GET, POST"):
        RequestWidget("FETCH", base_url=BASE)
