"""The request widget in a real kernel: clicks over comms, real HTTP to the kernel's own server, state back on iopub.

One kernel serves the module; every test uses its own paths, cell ids and widget variables.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

from .conftest import HOST, Kernel

PNG_HEX = (
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005"
    "0001ff8e6f0c0b0000000049454e44ae426082"
)
NAMES = (
    "method_input",
    "path_input",
    "send_button",
    "query_rows",
    "query_rows.add_button",
    "header_rows",
    "body_input",
    "status_html",
    "time_html",
    "size_html",
    "response_headers",
    "response_headers_html",
    "body_box",
    "body_html",
    "body_image",
    "history_dropdown",
    "replay_button",
    "curl_button",
    "curl_text",
)


def make_widget(kernel: Kernel, var: str, args: str, subshell_id: str | None = None) -> dict[str, str]:
    """Create ``var = RequestWidget(args)`` in a cell (on ``subshell_id`` if given); returns its widgets' model ids."""
    result = kernel.ok(
        "import json, operator\n"
        "from nbroutes.kernel.request_widget import RequestWidget\n"
        f"{var} = RequestWidget({args})\n"
        f"print(json.dumps({{n: operator.attrgetter(n)({var}).model_id for n in {NAMES!r}}}))\n"
        f"{var}",
        subshell_id=subshell_id,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def value_has(text: str) -> Callable[[dict[str, object]], bool]:
    return lambda state: text in str(state.get("value", ""))


def child_ids(kernel: Kernel, model_id: str) -> list[str]:
    return [c.removeprefix("IPY_MODEL_") for c in kernel.widget_state(model_id).get("children", [])]


def test_get_json_shows_200_in_green_with_the_pretty_body_time_size_and_headers(kernel: Kernel) -> None:
    kernel.ok('%%route /api/rw-json\ndef GET(req):\n    return {"a": 1, "b": [1, 2]}', {"cellId": "rw-json"})
    ids = make_widget(kernel, "w_json", '"GET", "/api/rw-json"')
    assert kernel.widget_state(ids["status_html"])["value"] == '<span style="color:#57606a">Not sent yet</span>'
    assert "/api/rw-json" in kernel.widget_state(ids["path_input"])["options"]
    kernel.click(ids["send_button"])
    status = kernel.wait_for_state(ids["status_html"], value_has("200 OK"))
    assert "#1a7f37" in status["value"]
    body = kernel.widget_state(ids["body_html"])["value"]
    assert "<pre" in body and "{\n  &quot;a&quot;: 1,\n  &quot;b&quot;: [\n    1,\n    2\n  ]\n}" in body
    assert re.fullmatch(r"\d+ ms", kernel.widget_state(ids["time_html"])["value"])
    assert kernel.widget_state(ids["size_html"])["value"] == "17 B"
    assert "Content-Type" in kernel.widget_state(ids["response_headers_html"])["value"]
    headers = kernel.widget_state(ids["response_headers"])
    assert headers["selected_index"] is None and headers["titles"][0].startswith("Response headers (")


def test_post_sends_the_json_body_and_header_rows_and_refuses_invalid_json(kernel: Kernel) -> None:
    kernel.ok(
        "%%route /api/rw-echo\n"
        "rw_echo_hits = []\n"
        "def POST(req):\n"
        "    rw_echo_hits.append(req.body)\n"
        '    return {"body": req.body, "token": req.headers.get("x-token"), "type": req.headers.get("content-type")}',
        {"cellId": "rw-echo"},
    )
    ids = make_widget(kernel, "w_post", '"POST", "/api/rw-echo", headers={"X-Token": "t1"}, body={"name": "Ada"}')
    assert kernel.widget_state(ids["body_input"])["value"] == '{\n  "name": "Ada"\n}'
    kernel.click(ids["send_button"])
    kernel.wait_for_state(ids["status_html"], value_has("200"))
    body = kernel.widget_state(ids["body_html"])["value"]
    assert "&quot;name&quot;: &quot;Ada&quot;" in body
    assert "&quot;token&quot;: &quot;t1&quot;" in body
    assert "&quot;type&quot;: &quot;application/json&quot;" in body

    kernel.set_widget(ids["body_input"], {"value": "{oops"})
    kernel.click(ids["send_button"])
    kernel.wait_for_state(ids["status_html"], value_has("not valid JSON"))
    assert kernel.ok("print(len(rw_echo_hits))").stdout == "1\n"


def test_query_rows_reach_req_query_including_a_row_added_in_the_browser(kernel: Kernel) -> None:
    kernel.ok("%%route /api/rw-query\ndef GET(req):\n    return req.query", {"cellId": "rw-query"})
    ids = make_widget(kernel, "w_query", '"GET", "/api/rw-query", query={"a": "1"}')
    kernel.click(ids["query_rows.add_button"])
    kernel.wait_for_state(ids["query_rows"], lambda s: len(s.get("children", [])) == 3, what="a second row")
    new_row = child_ids(kernel, ids["query_rows"])[1]
    key, value, _remove = child_ids(kernel, new_row)
    kernel.set_widget(key, {"value": "b"})
    kernel.set_widget(value, {"value": "two words & more"})
    kernel.click(ids["send_button"])
    kernel.wait_for_state(ids["status_html"], value_has("200"))
    body = kernel.widget_state(ids["body_html"])["value"]
    assert "&quot;a&quot;: &quot;1&quot;" in body
    assert "&quot;b&quot;: &quot;two words &amp; more&quot;" in body


def test_404_is_orange_and_500_is_red(kernel: Kernel) -> None:
    kernel.ok('%%route /api/rw-boom\ndef GET(req):\n    raise ValueError("boom")', {"cellId": "rw-boom"})
    ids = make_widget(kernel, "w_codes", '"GET", "/api/rw-nothing-here"')
    kernel.click(ids["send_button"])
    assert "#bc4c00" in kernel.wait_for_state(ids["status_html"], value_has("404"))["value"]
    kernel.set_widget(ids["path_input"], {"value": "/api/rw-boom"})
    kernel.click(ids["send_button"])
    assert "#cf222e" in kernel.wait_for_state(ids["status_html"], value_has("500"))["value"]


def test_an_image_is_shown_in_an_image_widget(kernel: Kernel) -> None:
    kernel.ok(
        "%%route /api/rw-pixel\n"
        "from nbroutes import Response\n"
        "def GET(req):\n"
        f'    return Response(bytes.fromhex("{PNG_HEX}"), headers={{"Content-Type": "image/png"}})',
        {"cellId": "rw-pixel"},
    )
    ids = make_widget(kernel, "w_pixel", '"GET", "/api/rw-pixel"')
    kernel.click(ids["send_button"])
    kernel.wait_for_state(
        ids["body_box"], lambda s: s.get("children") == [f"IPY_MODEL_{ids['body_image']}"], what="the image"
    )
    assert kernel.widget_state(ids["body_image"])["format"] == "png"
    assert kernel.ok(f"print(w_pixel.body_image.value == bytes.fromhex({PNG_HEX!r}))").stdout == "True\n"


def test_html_is_rendered_in_a_sandboxed_iframe(kernel: Kernel) -> None:
    kernel.ok(
        "%%route /api/rw-page\n"
        "from nbroutes import Response\n"
        "def GET(req):\n"
        '    return Response.html("<h1>Hi</h1><script>parent.alert(1)</script>")',
        {"cellId": "rw-page"},
    )
    ids = make_widget(kernel, "w_page", '"GET", "/api/rw-page"')
    kernel.click(ids["send_button"])
    state = kernel.wait_for_state(ids["body_html"], value_has("<iframe"))
    assert state["value"].startswith('<iframe sandbox srcdoc="&lt;h1&gt;Hi&lt;/h1&gt;&lt;script&gt;')
    assert "<script>" not in state["value"]


def test_history_holds_the_requests_and_replay_resends_the_chosen_one(kernel: Kernel) -> None:
    kernel.ok(
        "%%route /api/rw-count/[name]\n"
        "rw_hits = {}\n"
        "def GET(req):\n"
        '    name = req.query["name"]\n'
        "    rw_hits[name] = rw_hits.get(name, 0) + 1\n"
        '    return {"name": name, "hits": rw_hits[name]}',
        {"cellId": "rw-count"},
    )
    ids = make_widget(kernel, "w_hist", '"GET", "/api/rw-count/a"')
    kernel.click(ids["send_button"])
    kernel.wait_for_state(ids["body_html"], value_has("&quot;name&quot;: &quot;a&quot;"))
    kernel.set_widget(ids["path_input"], {"value": "/api/rw-count/b"})
    kernel.click(ids["send_button"])
    kernel.wait_for_state(ids["body_html"], value_has("&quot;name&quot;: &quot;b&quot;"))
    history = kernel.wait_for_state(ids["history_dropdown"], lambda s: len(s.get("_options_labels", [])) == 2)
    assert [label.split(" (")[0] for label in history["_options_labels"]] == [
        "GET /api/rw-count/b → 200",
        "GET /api/rw-count/a → 200",
    ]
    assert kernel.widget_state(ids["replay_button"])["disabled"] is False

    kernel.set_widget(ids["history_dropdown"], {"index": 1})
    kernel.click(ids["replay_button"])
    kernel.wait_for_state(ids["body_html"], value_has("&quot;hits&quot;: 2"))
    assert "&quot;name&quot;: &quot;a&quot;" in kernel.widget_state(ids["body_html"])["value"]
    assert kernel.widget_state(ids["path_input"])["value"] == "/api/rw-count/a"
    assert len(kernel.wait_for_state(ids["history_dropdown"], lambda s: len(s["_options_labels"]) == 3)) > 0


def test_copy_as_curl_shows_the_equivalent_command(kernel: Kernel) -> None:
    ids = make_widget(
        kernel, "w_curl", '"PUT", "/api/rw-curl", query={"q": "a b"}, headers={"X-Note": "it\'s"}, body={"n": 1}'
    )
    assert kernel.widget_state(ids["curl_text"])["layout"]
    kernel.click(ids["curl_button"])
    state = kernel.wait_for_state(ids["curl_text"], lambda s: s.get("value"))
    assert state["value"] == (
        f"curl -X PUT 'http://{HOST}:{kernel.port}/api/rw-curl?q=a+b' -H 'X-Note: it'\"'\"'s' "
        "-H 'Content-Type: application/json' --data-raw '{\n  \"n\": 1\n}'"
    )
    assert kernel.ok("print(w_curl.curl() == w_curl.curl_text.value)").stdout == "True\n"


def test_await_send_in_a_cell_returns_the_result(kernel: Kernel) -> None:
    kernel.ok('%%route /api/rw-await\ndef GET(req):\n    return {"awaited": True}', {"cellId": "rw-await"})
    ids = make_widget(kernel, "w_await", '"GET", "/api/rw-await"')
    result = kernel.ok("r = await w_await.send_request()\nprint(r.status, r.json(), r.error, r.elapsed_ms > 0)")
    assert result.stdout == "200 {'awaited': True} None True\n"
    kernel.wait_for_state(ids["status_html"], value_has("200"))


def test_a_widget_made_on_a_subshell_sends_from_its_clicks_on_that_subshell(kernel: Kernel) -> None:
    kernel.ok('%%route /api/rw-sub\ndef GET(req):\n    return {"sub": True}', {"cellId": "rw-sub"})
    subshell = kernel.create_subshell()
    ids = make_widget(kernel, "w_sub", '"GET", "/api/rw-sub"', subshell_id=subshell)
    kernel.ok(
        "import threading\n"
        "w_sub_threads = []\n"
        "w_sub.send_button.on_click(lambda _b: w_sub_threads.append(threading.current_thread().name))",
        subshell_id=subshell,
    )
    kernel.click(ids["send_button"], subshell)
    kernel.wait_for_state(ids["status_html"], value_has("200"))
    assert "&quot;sub&quot;: true" in kernel.widget_state(ids["body_html"])["value"]
    threads = kernel.ok("print(w_sub_threads)").stdout
    assert threads.startswith("['subshell-"), threads


def test_a_widget_made_on_a_subshell_with_the_main_loop_sends_from_there(kernel: Kernel) -> None:
    kernel.ok('%%route /api/rw-sub-main\ndef GET(req):\n    return {"main": True}', {"cellId": "rw-sub-main"})
    kernel.ok("from nbroutes.kernel.threads import KernelLoop\nrw_main_loop = KernelLoop.current()")
    subshell = kernel.create_subshell()
    ids = make_widget(kernel, "w_sub_main", '"GET", "/api/rw-sub-main", kernel_loop=rw_main_loop', subshell)
    kernel.click(ids["send_button"], subshell)
    kernel.wait_for_state(ids["status_html"], value_has("200"))
    assert "&quot;main&quot;: true" in kernel.widget_state(ids["body_html"])["value"]


def test_the_kernel_answers_cells_while_a_slow_request_is_in_flight(kernel: Kernel) -> None:
    kernel.ok(
        "%%route /api/rw-slow\nimport asyncio\nasync def GET(req):\n    await asyncio.sleep(1)\n"
        '    return {"slow": True}',
        {"cellId": "rw-slow"},
    )
    ids = make_widget(kernel, "w_slow", '"GET", "/api/rw-slow"')
    kernel.click(ids["send_button"])
    start = time.monotonic()
    assert kernel.ok("print('still here')").stdout == "still here\n"
    assert time.monotonic() - start < 0.9
    assert "200" not in kernel.widget_state(ids["status_html"]).get("value", "")
    kernel.wait_for_state(ids["status_html"], value_has("200"))
    assert int(kernel.widget_state(ids["time_html"])["value"].split()[0]) >= 1000


def test_a_stopped_server_shows_connection_refused_then_start_serves_again(
    new_kernel: Callable[..., Kernel],
) -> None:
    k = new_kernel()
    k.ok("%load_ext nbroutes")
    k.ok('%%route /api/rw-down\ndef GET(req):\n    return {"up": True}', {"cellId": "rw-down"})
    ids = make_widget(k, "w_down", '"GET", "/api/rw-down"')
    k.ok("%nbroutes stop")
    k.click(ids["send_button"])
    state = k.wait_for_state(ids["status_html"], value_has("Connection refused"))
    assert f"Connection refused by http://{HOST}:{k.port}" in state["value"]
    assert "%nbroutes start" in state["value"]
    assert "Traceback" not in k.log_text()
    k.ok("%nbroutes start")
    k.click(ids["send_button"])
    k.wait_for_state(ids["status_html"], value_has("200"))
