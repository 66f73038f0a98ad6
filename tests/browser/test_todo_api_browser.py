"""todo-api.ipynb in a real JupyterLab in real Chromium, driven as a user would: Run All, a mouse click on the
request widget's Send, the data browser refreshing by itself, the route card's hit count, "Try it", sorting by a
column and filtering. Widget clicks go through ipywidgets' comms (on subshell threads with ipykernel 7)."""

from __future__ import annotations

import json
import re
from typing import Any

from .conftest import UI_TIMEOUT, http_get

MS = UI_TIMEOUT * 1000
#: The data browser refreshes 0.3 s after the writes stop; the card's stats at most every 0.25 s.
REFRESH_MS = 10_000
READ = (1, "Read the quick start", 1)
BUILD = (2, "Build a todo API", 0)
WRITE = (3, "Write the docs", 0)


def expect_rows(browse: Any, rows: list[tuple[int, str, int]], timeout: float = REFRESH_MS) -> None:
    """Wait until the data browser's grid shows exactly ``rows`` (id, title, done), in that order: its cells follow
    its header buttons row by row (SQLite keeps a bool as 0 or 1)."""
    from playwright.sync_api import expect

    headers = browse.locator(".nbroutes-browse-header")
    expect(headers).to_have_text([re.compile(rf"^{name}\b") for name in ("id", "title", "done")], timeout=timeout)
    cells = [str(value) for row in rows for value in row]
    expect(browse.locator(".nbroutes-browse-cell")).to_have_text(cells, timeout=timeout)


def test_todo_api_in_jupyterlab(nb, lab, page, screenshot) -> None:
    # Imported here: without Playwright the fixtures have already skipped (or failed, under CI=true).
    from playwright.sync_api import expect

    # The notebook seeds an empty database: start from none, whatever ran before in this lab.
    for name in ("todo.db", "todo.db-wal", "todo.db-shm"):
        (lab.root_dir / name).unlink(missing_ok=True)

    # 1. Run All, no errors.
    nb.open_notebook("todo-api.ipynb")
    nb.run_all()
    assert nb.errors() == []

    # 2. The crud cell's route card, and the data browser with the seeded rows.
    card = nb.cell(nb.cell_index('nbroutes.crud("/api/todos"')).locator(".nbroutes-card")
    url = f"http://127.0.0.1:{lab.nbroutes_port}/api/todos"
    expect(card.locator(".nbroutes-card-header")).to_contain_text("/api/todos", timeout=MS)
    expect(card.locator(f'.nbroutes-card-header a[href="{url}"]')).to_have_text(url)
    stats = card.locator(".nbroutes-card-stats")
    expect(stats).to_have_text("0 hits · last —")

    browse = nb.cell(nb.cell_index("nbroutes.browse(db")).locator(".nbroutes-browse")
    position = browse.locator(".nbroutes-browse-position")
    expect(position).to_have_text("rows 1–2 of 2", timeout=MS)
    expect_rows(browse, [READ, BUILD])
    card.scroll_into_view_if_needed()
    screenshot("ran-all")

    # 3. A real click on Send: POST the new todo, 201 with the row.
    request = nb.cell(nb.cell_index("nbroutes.RequestWidget(")).locator(".nbroutes-request")
    expect(request.locator(".nbroutes-status")).to_have_text("Not sent yet", timeout=MS)
    request.locator(".nbroutes-send").scroll_into_view_if_needed()
    request.locator(".nbroutes-send").click()
    expect(request.locator(".nbroutes-status .nbroutes-status-2xx")).to_have_text(re.compile(r"^201\b"), timeout=MS)
    created = json.loads(request.locator(".nbroutes-body").inner_text())
    assert created == {"id": 3, "title": WRITE[1], "done": False}
    expect(request.locator(".nbroutes-time")).to_have_text(re.compile(r"^\d+ ms$"))
    expect(request.locator(".nbroutes-size")).to_have_text(re.compile(r"\d+\s*B"))
    screenshot("sent-post")

    # 4. The data browser refreshed by itself.
    expect(position).to_have_text("rows 1–3 of 3", timeout=REFRESH_MS)
    expect_rows(browse, [READ, BUILD, WRITE])
    expect(browse.locator(".nbroutes-browse-table select")).to_contain_text("todos (3 rows)")
    browse.scroll_into_view_if_needed()
    screenshot("browser-refreshed")

    # 5. The card counted the request.
    expect(stats).to_have_text("1 hit · last 201", timeout=REFRESH_MS)
    card.scroll_into_view_if_needed()
    screenshot("card-1-hit")

    # 6. "Try it" opens a request widget under the card, for GET /api/todos; Send lists the three todos.
    card.locator(".nbroutes-try").click()
    tried = card.locator(".nbroutes-request")
    expect(tried).to_have_count(1, timeout=MS)
    expect(tried.locator(".nbroutes-method select")).to_have_value("GET")
    expect(tried.locator(".nbroutes-path input")).to_have_value("/api/todos")
    tried.locator(".nbroutes-send").click()
    expect(tried.locator(".nbroutes-status .nbroutes-status-2xx")).to_have_text(re.compile(r"^200\b"), timeout=MS)
    listed = json.loads(tried.locator(".nbroutes-body").inner_text())
    assert [todo["title"] for todo in listed] == [READ[1], BUILD[1], WRITE[1]]
    expect(stats).to_have_text("2 hits · last 200", timeout=REFRESH_MS)
    card.scroll_into_view_if_needed()
    screenshot("tried-get")

    # 7. Sort by title (ascending), then filter.
    title = browse.locator(".nbroutes-browse-header", has_text=re.compile(r"^title"))
    title.click()
    expect(title).to_have_text("title ▲", timeout=MS)
    expect_rows(browse, [BUILD, READ, WRITE], timeout=MS)
    browse.scroll_into_view_if_needed()
    screenshot("sorted-by-title")

    box = browse.locator(".nbroutes-browse-filter input")
    box.fill("the")
    box.press("Enter")
    expect(position).to_have_text("rows 1–2 of 2", timeout=MS)
    expect_rows(browse, [READ, WRITE], timeout=MS)
    screenshot("filtered")

    # 8. The same kernel serves this process.
    status, body = http_get(lab.nbroutes_port, "/api/todos/stats")
    assert (status, json.loads(body)) == (200, {"total": 3, "done": 1, "open": 2})
    # Nothing failed in the page on the way (a widget that cannot render or sync says so in the console).
    assert page.console_errors == []
