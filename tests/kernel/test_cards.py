"""Route cards in a real kernel: summary and link, live hits and last status, output, "Try it", and the log."""

from __future__ import annotations

import re
from collections.abc import Callable

from .conftest import HOST, Kernel


def test_card_shows_methods_pattern_and_a_link_to_the_route(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%route /api/card/[id]\ndef GET(req):\n    return {'id': req.query['id']}\ndef POST(req):\n    ..."
    )
    header = kernel.widget_state(kernel.find_widget(cell.card, "nbroutes-card-header"))["value"]
    url = f"http://{HOST}:{kernel.env_port}/api/card/[id]"
    assert "<b>GET, POST</b>" in header
    assert "<code>/api/card/[id]</code>" in header
    assert f'<a href="{url}" target="_blank"' in header
    assert kernel.widget_state(kernel.find_widget(cell.card, "nbroutes-try"))["description"] == "Try it"
    assert cell.displays[0]["data"]["text/plain"] == f"GET, POST /api/card/[id]  {url}"


def test_hit_count_and_last_status_follow_requests(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%route /api/card-hits/[n]\n"
        "def GET(req, res):\n"
        "    n = int(req.query['n'])\n"
        "    return res.status(n).json({'n': n})"
    )
    stats = kernel.find_widget(cell.card, "nbroutes-card-stats")
    assert kernel.widget_state(stats)["value"].startswith("0 hits")
    for status in (200, 201, 404):
        assert kernel.get(f"/api/card-hits/{status}").status == status
    state = kernel.wait_for_state(stats, lambda s: s.get("value", "").startswith("3 hits"), what="3 hits")
    assert ">404</span>" in state["value"]
    assert "color:#bc4c00" in state["value"]  # 4xx in orange

    assert kernel.get("/api/card-hits/500").status == 500
    state = kernel.wait_for_state(stats, lambda s: s.get("value", "").startswith("4 hits"), what="4 hits")
    assert ">500</span>" in state["value"]
    assert "color:#cf222e" in state["value"]


def test_a_burst_of_requests_sends_few_updates(kernel: Kernel) -> None:
    """The card coalesces: a hundred requests do not send a hundred messages to the browser."""
    cell = kernel.ok("%%route /api/card-burst\ndef GET(req):\n    return 'ok'")
    stats = kernel.find_widget(cell.card, "nbroutes-card-stats")
    for _ in range(100):
        assert kernel.get("/api/card-burst").status == 200
    kernel.wait_for_state(stats, lambda s: s.get("value", "").startswith("100 hits"), what="100 hits")
    updates = [m for m in kernel.iopub if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == stats]
    assert len(updates) < 50, len(updates)


def test_print_and_tracebacks_land_in_the_card_output(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%route /api/card-out\n"
        "def GET(req):\n"
        "    print('handled', req.query.get('q'))\n"
        "    if req.query.get('q') == 'boom':\n"
        "        raise KeyError('boom')\n"
        "    return 'ok'"
    )
    kernel.get("/api/card-out?q=one")
    kernel.get("/api/card-out?q=boom")
    output = kernel.find_widget(cell.card, "nbroutes-card-output")
    state = kernel.wait_for_state(output, lambda s: len(s.get("outputs") or ()) >= 2, what="two outputs")
    kinds = [o["output_type"] for o in state["outputs"]]
    assert kinds[0] == "stream"
    assert "error" in kinds
    text = kernel.widget_text(output)
    assert "handled one" in text and "handled boom" in text
    assert "KeyError: 'boom'" in text
    assert "line 5, in GET" in text


def test_middleware_cell_shows_a_card_without_try_it(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%middleware /api/card-mw/:path*\nasync def middleware(req, call_next):\n    return await call_next(req)",
        {"cellId": "card-mw"},
    )
    assert "<b>middleware</b> <code>middleware</code> on /api/card-mw/:path*" in kernel.widget_text(cell.card)
    try:
        kernel.find_widget(cell.card, "nbroutes-try")
    except LookupError:
        pass
    else:
        raise AssertionError("a middleware card has no route to try")
    kernel.ok("pass", {"cellId": "card-mw"})  # take the middleware away again


def test_request_log_lists_the_newest_requests_first(kernel: Kernel) -> None:
    kernel.ok("%%route /api/card-log/[n]\ndef GET(req):\n    return 'x' * int(req.query['n'])")
    for n in (1, 2048, 3):
        kernel.get(f"/api/card-log/{n}")
    kernel.get("/api/card-log-missing")
    lines = kernel.ok("%nbroutes log -n 4").stdout.splitlines()
    assert lines[0].split() == ["TIME", "METHOD", "PATH", "STATUS", "MS", "SIZE"]
    rows = [line.split() for line in lines[1:]]
    assert [r[2] for r in rows] == ["/api/card-log-missing", "/api/card-log/3", "/api/card-log/2048", "/api/card-log/1"]
    assert [r[3] for r in rows] == ["404", "200", "200", "200"]
    assert rows[2][5:] == ["2.0", "KB"]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", r[0]) and float(r[4]) >= 0 for r in rows)
    assert len(kernel.ok("%nbroutes log -n 2").stdout.splitlines()) == 3


def test_card_link_goes_through_the_hub_proxy(new_kernel: Callable[..., Kernel]) -> None:
    k = new_kernel(env={"JUPYTERHUB_SERVICE_PREFIX": "/user/ada/"})
    k.ok("%load_ext nbroutes")
    cell = k.ok("%%route /api/proxied\ndef GET(req):\n    return 'hi'")
    header = k.widget_state(k.find_widget(cell.card, "nbroutes-card-header"))["value"]
    assert f'href="/user/ada/proxy/{k.port}/api/proxied"' in header
    assert k.get("/api/proxied").status == 200


def test_try_it_opens_a_request_widget_filled_in_for_the_route(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%route /api/card-try/[id]\ndef POST(req):\n    return {'id': req.query['id']}\ndef PUT(req):\n    ..."
    )
    kernel.click(kernel.find_widget(cell.card, "nbroutes-try"))
    request = kernel.wait_for_state(
        cell.card, lambda s: len(s.get("children") or ()) == 3, what="a request widget under the card"
    )["children"][2].removeprefix("IPY_MODEL_")
    assert kernel.widget_state(kernel.find_widget(request, "nbroutes-method"))["index"] is not None
    method = kernel.widget_state(kernel.find_widget(request, "nbroutes-method"))
    assert method["_options_labels"][method["index"]] == "POST"  # the first method it answers, as there is no GET
    assert kernel.widget_state(kernel.find_widget(request, "nbroutes-path"))["value"] == "/api/card-try/1"

    kernel.click(kernel.find_widget(request, "nbroutes-send"))
    status = kernel.find_widget(request, "nbroutes-status")
    kernel.wait_for_state(status, lambda s: "200" in s.get("value", ""), what="200")
    stats = kernel.find_widget(cell.card, "nbroutes-card-stats")
    kernel.wait_for_state(stats, lambda s: s.get("value", "").startswith("1 hit "), what="1 hit")

    kernel.click(kernel.find_widget(cell.card, "nbroutes-try"))  # a second click opens no second widget
    kernel.drain(0.5)
    assert len(kernel.widget_state(cell.card)["children"]) == 3


def test_request_magic_fills_in_method_and_path(kernel: Kernel) -> None:
    kernel.ok("%%route /api/card-magic\ndef GET(req):\n    return 'hi'")
    cell = kernel.ok("%request DELETE /api/card-magic")
    method = kernel.widget_state(kernel.find_widget(cell.card, "nbroutes-method"))
    assert method["_options_labels"][method["index"]] == "DELETE"
    assert kernel.widget_state(kernel.find_widget(cell.card, "nbroutes-path"))["value"] == "/api/card-magic"
    only_path = kernel.ok("%request /api/card-magic")
    method = kernel.widget_state(kernel.find_widget(only_path.card, "nbroutes-method"))
    assert method["_options_labels"][method["index"]] == "GET"

    for line, message in [("FETCH /x", "FETCH is not an HTTP method"), ("GET api", "must start with /")]:
        bad = kernel.execute(f"%request {line}")
        assert bad.status == "error" and bad.error is not None and bad.error["ename"] == "UsageError"
        assert message in bad.error_text
