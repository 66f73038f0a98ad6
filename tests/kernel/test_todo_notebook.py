"""notebooks/todo-api.ipynb runs top to bottom under nbclient, with its SQLite file next to it."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import free_port

pytestmark = pytest.mark.kernel  # nbclient starts the kernel

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "todo-api.ipynb"


def test_todo_api_notebook_runs_and_serves_the_resource(tmp_path: Path) -> None:
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    port = free_port()
    nb = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute(
        env={**os.environ, "NBROUTES_PORT": str(port)}
    )
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)
    assert f"nbroutes: serving on http://127.0.0.1:{port}" in text
    assert f"CRUD /api/todos (table todos)  http://127.0.0.1:{port}/api/todos" in text
    assert "/api/todos/stats" in text
    assert "nbroutes: no requests yet" in text  # %nbroutes log, before anyone sent one
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) >= 4  # the resource's card, the route's card, the request widget, the data browser

    with sqlite3.connect(tmp_path / "todo.db") as conn:
        assert conn.execute("SELECT title, done FROM todos ORDER BY id").fetchall() == [
            ("Read the quick start", 1),
            ("Build a todo API", 0),
        ]
