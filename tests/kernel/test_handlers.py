"""Handlers at run time in a real kernel: crashes, output under the route's cell, async handlers, body limits,
and the test clients from a cell.

One kernel serves the module; every test uses its own paths and cell ids.
"""

from __future__ import annotations

import threading
import time

from .conftest import HTTPResult, Kernel

# -- 7. crashes and output ----------------------------------------------------------------


def test_a_handler_crash_is_a_500_and_the_kernel_and_server_keep_going(kernel: Kernel) -> None:
    cell = kernel.ok("%%route /api/crash\ndef GET(req):\n    return 1 / 0", {"cellId": "crash"})
    kernel.ok("%%route /api/healthy\ndef GET(req):\n    return {'ok': True}", {"cellId": "healthy"})

    r = kernel.get("/api/crash")
    assert r.status == 500
    assert r.json() == {"error": "Internal Server Error", "detail": "ZeroDivisionError: division by zero"}
    assert r.header("content-type", "").startswith("application/json")

    # the traceback lands under the route's cell, pointing at the cell's line (1 is the %%route line)
    text = kernel.wait_for_card(cell.card, "ZeroDivisionError")
    assert "Traceback (most recent call last)" in text
    assert "line 3, in GET" in text
    assert "return 1 / 0" in text

    # the kernel runs the next cell, and the server answers again
    assert kernel.ok("print('still alive')").stdout == "still alive\n"
    assert kernel.get("/api/healthy").json() == {"ok": True}
    assert kernel.get("/api/crash").status == 500


def test_print_in_a_handler_updates_the_route_display_and_not_a_later_cell(kernel: Kernel) -> None:
    marker = "printed-by-the-handler-7c1e"
    cell = kernel.ok(
        f"%%route /api/printer\n"
        f"def GET(req):\n"
        f"    print('{marker}', req.query.get('n'))\n"
        f"    return {{'printed': True}}",
        {"cellId": "printer"},
    )
    assert marker not in cell.stdout  # registering does not call the handler

    assert kernel.get("/api/printer?n=1").json() == {"printed": True}
    text = kernel.wait_for_card(cell.card, f"{marker} 1")
    assert text.startswith("<b>GET</b> <code>/api/printer</code>")  # the summary stays on top

    later = kernel.ok("print('a later cell')")
    assert later.stdout == "a later cell\n"
    kernel.drain()
    streams = [m for m in kernel.iopub if m["msg_type"] == "stream" and marker in m["content"]["text"]]
    assert streams == []


def test_print_in_a_handler_served_while_a_cell_awaits_stays_out_of_that_cell(kernel: Kernel) -> None:
    marker = "printed-during-a-cell-41d0"
    kernel.ok("import asyncio\nserved = asyncio.Event()")
    cell = kernel.ok(
        f"%%route /api/printer-busy\ndef GET(req):\n    print('{marker}')\n    served.set()\n    return 1",
        {"cellId": "printer-busy"},
    )

    def request_soon() -> None:
        time.sleep(0.3)  # while the cell below awaits (sent earlier, the test only gets weaker)
        kernel.get("/api/printer-busy")

    sender = threading.Thread(target=request_soon)
    sender.start()
    try:
        # top-level await lets the kernel's loop answer the request in the middle of this cell
        running = kernel.ok("await asyncio.wait_for(served.wait(), 10)\nprint('cell done')")
    finally:
        sender.join(15)
    assert running.stdout == "cell done\n"
    kernel.wait_for_card(cell.card, marker)
    kernel.drain()
    assert [m for m in kernel.iopub if m["msg_type"] == "stream" and marker in m["content"]["text"]] == []


def test_print_in_a_handler_reaches_only_its_own_route_display(kernel: Kernel) -> None:
    one = kernel.ok("%%route /api/out-one\ndef GET(req):\n    print('from-one')\n    return 1", {"cellId": "o1"})
    two = kernel.ok("%%route /api/out-two\ndef GET(req):\n    print('from-two')\n    return 2", {"cellId": "o2"})
    kernel.get("/api/out-two")
    kernel.get("/api/out-one")
    assert "from-two" not in kernel.wait_for_card(one.card, "from-one")
    assert "from-one" not in kernel.wait_for_card(two.card, "from-two")


# -- 11. async handlers and body limits -----------------------------------------------------


def test_async_handler(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%route /api/async\n"
        "import asyncio\n"
        "async def GET(req):\n"
        "    await asyncio.sleep(0.01)\n"
        "    print('after the await', req.query.get('id'))\n"
        "    return {'async': True, 'id': req.query.get('id')}\n",
        {"cellId": "async"},
    )
    r = kernel.get("/api/async?id=3")
    assert r.status == 200
    assert r.json() == {"async": True, "id": "3"}
    kernel.wait_for_card(cell.card, "after the await 3")


def test_an_awaiting_handler_does_not_block_the_kernel_loop(kernel: Kernel) -> None:
    kernel.ok("import asyncio\ngate = asyncio.Event()")
    kernel.ok(
        "%%route /api/wait\n"
        "async def GET(req):\n"
        "    await asyncio.wait_for(gate.wait(), 8)\n"
        "    return {'waited': True}\n",
        {"cellId": "wait"},
    )
    kernel.ok("%%route /api/open\ndef GET(req):\n    gate.set()\n    return {'opened': True}", {"cellId": "open"})

    results: list[HTTPResult] = []
    waiter = threading.Thread(target=lambda: results.append(kernel.get("/api/wait")))
    waiter.start()
    try:
        assert kernel.get("/api/open").json() == {"opened": True}
    finally:
        waiter.join(15)
    assert not waiter.is_alive()
    [waited] = results
    assert waited.status == 200, waited.body
    assert waited.json() == {"waited": True}


def test_body_limit(kernel: Kernel) -> None:
    kernel.ok(
        "%%route POST /api/up --body-limit 10kb\ndef POST(req):\n    return {'size': len(req.raw_body)}",
        {"cellId": "upload"},
    )
    octets = {"Content-Type": "application/octet-stream"}

    too_big = kernel.request("POST", "/api/up", b"x" * 20 * 1024, octets)
    assert too_big.status == 413
    assert too_big.body == b"Body exceeded 10kb limit"

    fits = kernel.request("POST", "/api/up", b"x" * 5 * 1024, octets)
    assert fits.status == 200
    assert fits.json() == {"size": 5 * 1024}

    chunked = kernel.request("POST", "/api/up", iter([b"x" * 1024] * 20), {**octets, "Transfer-Encoding": "chunked"})
    assert chunked.status == 413
    assert chunked.body == b"Body exceeded 10kb limit"

    # the server is fine after refusing a body
    assert kernel.request("POST", "/api/up", b"abc", octets).json() == {"size": 3}


# -- 12. the test clients from a cell ------------------------------------------------------


def test_async_test_client_from_a_notebook_cell(kernel: Kernel) -> None:
    kernel.ok(
        '%%route /api/users/[id]\ndef GET(req, res):\n    return {"id": req.query["id"], "name": "Ada"}',
        {"cellId": "users"},
    )
    cell = kernel.ok(
        "from nbroutes.testing import AsyncTestClient\n"
        "import nbroutes.kernel.extension as k\n"
        "c = AsyncTestClient(k.state(get_ipython()).app)\n"
        "r = await c.get('/api/users/5')\n"
        "print(r.status_code, r.json())\n"
    )
    assert cell.stdout == "200 {'id': '5', 'name': 'Ada'}\n"
    assert cell.stderr == ""


def test_the_synchronous_test_client_in_a_cell_says_to_use_the_async_one(kernel: Kernel) -> None:
    # A cell runs in the kernel's loop, which TestClient cannot block on to wait for a response.
    kernel.ok("%%route /api/sync-client\ndef GET(req):\n    return {'ok': True}", {"cellId": "sync-client"})
    cell = kernel.execute(
        "from nbroutes.testing import TestClient\n"
        "import nbroutes.kernel.extension as k\n"
        "c = TestClient(k.state(get_ipython()).app)\n"
        "c.get('/api/sync-client')\n"
    )
    assert cell.status == "error"
    assert cell.error is not None and cell.error["ename"] == "RunningLoopError"
    assert "Use AsyncTestClient there: client = AsyncTestClient(app)" in cell.error["evalue"]
    assert kernel.get("/api/sync-client").json() == {"ok": True}  # the route and server are unharmed
