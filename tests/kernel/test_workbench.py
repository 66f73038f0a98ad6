"""The SQLite workbench in a real kernel: db(), crud() cells, the data browser's live refresh, and durability."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Kernel

TODO = """
from pydantic import BaseModel, Field
import nbroutes

db = nbroutes.db({path!r})

class Todo(BaseModel):
    title: str = Field(min_length=1)
    done: bool = False
"""

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def todo_db(kernel: Kernel, tmp_path: Path) -> Path:
    """A todo model and ``db`` on a fresh SQLite file in the shared kernel."""
    path = tmp_path / "todo.db"
    kernel.ok(TODO.format(path=str(path)))
    return path


def test_db_is_one_connection_per_file_for_the_kernels_life(kernel: Kernel, todo_db: Path) -> None:
    out = kernel.ok(f"again = nbroutes.db({str(todo_db)!r})\nprint(again is db, db.conn is again.conn)").stdout
    assert out == "True True\n"
    assert kernel.ok("print(db.execute('PRAGMA journal_mode').fetchone()[0])").stdout == "wal\n"


def test_crud_cell_serves_the_table_and_shows_a_card(kernel: Kernel, todo_db: Path) -> None:
    cell = kernel.ok('nbroutes.crud("/api/wb-todos", db["todos"], model=Todo)', {"cellId": "wb-crud"})
    header = kernel.widget_state(kernel.find_widget(cell.card, "nbroutes-card-header"))["value"]
    assert "<b>CRUD</b> <code>/api/wb-todos</code> (table todos)" in header
    created = kernel.request(
        "POST", "/api/wb-todos", json.dumps({"title": "milk"}), {"Content-Type": "application/json"}
    )
    assert created.status == 201, created.body
    row = created.json()
    assert row["title"] == "milk" and row["done"] is False
    assert created.header("location") == f"/api/wb-todos/{row['id']}"
    assert kernel.get(f"/api/wb-todos/{row['id']}").json() == row
    assert kernel.get("/api/wb-todos").header("x-total-count") == "1"
    bad = kernel.request("POST", "/api/wb-todos", json.dumps({"title": ""}), JSON)
    assert bad.status == 422
    stats = kernel.find_widget(cell.card, "nbroutes-card-stats")
    kernel.wait_for_state(stats, lambda s: s.get("value", "").startswith("4 hits"), what="4 hits")

    with sqlite3.connect(todo_db) as conn:
        assert conn.execute("SELECT title, done FROM todos").fetchall() == [("milk", 0)]


def test_crud_cell_rerun_replaces_and_a_broken_one_keeps_the_routes(kernel: Kernel, todo_db: Path) -> None:
    meta = {"cellId": "wb-crud-rerun"}
    kernel.ok('nbroutes.crud("/api/wb-rerun", db["todos"], model=Todo)', meta)
    kernel.ok('nbroutes.crud("/api/wb-rerun", db["todos"], model=Todo)', meta)
    assert kernel.ok("%routes").stdout.count("/api/wb-rerun") == 2  # the list and the item route, once each

    broken = kernel.execute('nbroutes.crud("/api/wb-rerun/[oops", db["todos"], model=Todo)', meta)
    assert broken.status == "error"
    assert broken.error["ename"] == "UsageError", broken.error_text
    assert kernel.get("/api/wb-rerun").status == 200

    kernel.ok("x = 1", meta)  # no longer a crud cell: its routes go
    assert kernel.get("/api/wb-rerun").status == 404


def test_browser_refreshes_after_a_request_changes_the_table(kernel: Kernel, todo_db: Path) -> None:
    kernel.ok('nbroutes.crud("/api/wb-browse", db["todos"], model=Todo)', {"cellId": "wb-browse-crud"})
    kernel.ok("for t in ('a', 'b'):\n    db['todos'].insert({'title': t})")
    cell = kernel.ok('b = nbroutes.browse(db, "todos")\nb')
    root = cell.card  # the browser is the cell's one widget
    position = kernel.find_widget(root, "nbroutes-browse-position")
    assert kernel.widget_state(position)["value"] == "rows 1–2 of 2"
    assert "a" in kernel.widget_text(kernel.find_widget(root, "nbroutes-browse-grid"))

    body = json.dumps({"title": "from-http"})
    assert kernel.request("POST", "/api/wb-browse", body, JSON).status == 201
    kernel.wait_for_state(position, lambda s: s.get("value") == "rows 1–3 of 3", what="3 rows")
    grid = kernel.find_widget(root, "nbroutes-browse-grid")
    assert "from-http" in kernel.widget_text(grid)
    tables = kernel.widget_state(kernel.find_widget(root, "nbroutes-browse-table"))
    assert "todos (3 rows)" in tables["_options_labels"]


def test_browser_sorts_by_a_clicked_column_from_a_subshell(kernel: Kernel, todo_db: Path) -> None:
    kernel.ok("db['todos'].insert_all([{'title': t} for t in ('m', 'z', 'a')])")
    subshell = kernel.create_subshell()
    cell = kernel.ok('sb = nbroutes.browse(db, "todos")\nsb', subshell_id=subshell)
    root = cell.card
    grid = kernel.find_widget(root, "nbroutes-browse-grid")
    title_header = next(
        child.removeprefix("IPY_MODEL_")
        for child in kernel.widget_state(grid)["children"]
        if kernel.widget_state(child.removeprefix("IPY_MODEL_")).get("description") == "title"
    )
    kernel.click(title_header, subshell)
    kernel.wait_for_state(title_header, lambda s: s.get("description") == "title ▲", what="sorted ascending")
    assert kernel.ok("print([r[sb.columns.index('title')] for r in sb.rows()])").stdout == "['a', 'm', 'z']\n"
    kernel.click(title_header, subshell)
    kernel.wait_for_state(title_header, lambda s: s.get("description") == "title ▼", what="sorted descending")
    assert kernel.ok("print([r[sb.columns.index('title')] for r in sb.rows()])").stdout == "['z', 'm', 'a']\n"


def test_browser_filter_and_paging(kernel: Kernel, todo_db: Path) -> None:
    kernel.ok("db['todos'].insert_all([{'title': f'item {i:02}'} for i in range(45)])")
    cell = kernel.ok('pb = nbroutes.browse(db, "todos", page_size=20)\npb')
    root = cell.card
    position = kernel.find_widget(root, "nbroutes-browse-position")
    assert kernel.widget_state(position)["value"] == "rows 1–20 of 45"
    kernel.click(kernel.find_widget(root, "nbroutes-browse-next"))
    kernel.wait_for_state(position, lambda s: s.get("value") == "rows 21–40 of 45", what="page 2")
    kernel.set_widget(kernel.find_widget(root, "nbroutes-browse-filter"), {"value": "item 1"})
    kernel.wait_for_state(position, lambda s: s.get("value") == "rows 1–10 of 10", what="filtered")
    kernel.set_widget(kernel.find_widget(root, "nbroutes-browse-filter"), {"value": "%"})
    kernel.wait_for_state(position, lambda s: s.get("value") == "rows 0–0 of 0", what="no rows for a literal %")


def test_browse_magic_opens_a_file_and_rejects_a_missing_directory(kernel: Kernel, todo_db: Path) -> None:
    kernel.ok("db['todos'].insert({'title': 'x'})")
    cell = kernel.ok(f"%browse {todo_db}")
    assert "todos (1 rows)" in json.dumps(kernel.widget_state(kernel.find_widget(cell.card, "nbroutes-browse-table")))
    missing = kernel.execute("%browse /no/such/dir/x.db")
    assert missing.status == "error" and missing.error["ename"] == "UsageError"
    assert "/no/such/dir" in missing.error_text


def test_acknowledged_writes_survive_killing_the_kernel(new_kernel: Callable[..., Kernel], tmp_path: Path) -> None:
    path = tmp_path / "durable.db"
    k = new_kernel()
    k.ok("%load_ext nbroutes")
    k.ok(TODO.format(path=str(path)))
    k.ok('nbroutes.crud("/api/durable", db["todos"], model=Todo)')
    acknowledged = []
    for i in range(20):
        r = k.request("POST", "/api/durable", json.dumps({"title": f"t{i}"}), JSON)
        assert r.status == 201
        acknowledged.append(r.json()["id"])
    k.km.signal_kernel(signal.SIGKILL)  # no atexit, no close, no checkpoint
    with sqlite3.connect(path) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM todos ORDER BY id")]
    assert ids == acknowledged


def test_reload_keeps_the_database_and_the_resource_working(new_kernel: Callable[..., Kernel], tmp_path: Path) -> None:
    k = new_kernel()
    k.ok("%load_ext nbroutes")
    k.ok(TODO.format(path=str(tmp_path / "reload.db")))
    k.ok('nbroutes.crud("/api/reloaded", db["todos"], model=Todo)')
    assert k.request("POST", "/api/reloaded", json.dumps({"title": "before"}), JSON).status == 201
    k.ok("%unload_ext nbroutes")
    closed = "import sqlite3\ntry:\n    db.execute('SELECT 1')\nexcept sqlite3.ProgrammingError:\n    print('closed')"
    assert k.ok(closed).stdout == "closed\n"  # the extension closes its databases
    k.ok("%reload_ext nbroutes")
    assert k.request("POST", "/api/reloaded", json.dumps({"title": "after"}), JSON).status == 201
    assert [t["title"] for t in k.get("/api/reloaded").json()] == ["before", "after"]
    assert k.ok("print(db is nbroutes.db(db.conn.execute('PRAGMA database_list').fetchone()[2]))").stdout == "True\n"
