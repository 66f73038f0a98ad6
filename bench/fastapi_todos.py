"""The FastAPI side of bench/startup.py: notebooks/todo-api.ipynb's API written for FastAPI, on SQLite.

The same resource as the notebook's ``nbroutes.crud("/api/todos", db["todos"], model=Todo)`` plus its
``/api/todos/stats`` cell: a pydantic model, a table created if missing and seeded with two rows, list
(``?done=``, ``_page``, ``_size``), create, read, update and delete. The database is ``$TODO_DB``
(default ``todo.db`` in the working directory).

.venv/bin/python -m uvicorn --app-dir bench fastapi_todos:app --loop uvloop --http httptools --workers 1 \
    --log-level warning --no-access-log
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from fastapi import FastAPI, HTTPException, Response
from pydantic import BaseModel, Field


class Todo(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    done: bool = False


db = sqlite3.connect(os.environ.get("TODO_DB", "todo.db"), check_same_thread=False, isolation_level=None)
db.row_factory = sqlite3.Row
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL)")
if db.execute("SELECT count(*) FROM todos").fetchone()[0] == 0:
    db.executemany(
        "INSERT INTO todos (title, done) VALUES (?, ?)", [("Read the quick start", True), ("Build a todo API", False)]
    )

app = FastAPI(title="todo-api")


def _todo(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "title": row["title"], "done": bool(row["done"])}


def _get(todo_id: int) -> dict[str, Any]:
    row = db.execute("SELECT * FROM todos WHERE id = ?", [todo_id]).fetchone()
    if row is None:
        raise HTTPException(404, f"no todo {todo_id}")
    return _todo(row)


@app.get("/api/todos")
def list_todos(response: Response, done: bool | None = None, _page: int = 1, _size: int = 20) -> list[dict[str, Any]]:
    where, params = ("WHERE done = ?", [done]) if done is not None else ("", [])
    total = db.execute(f"SELECT count(*) FROM todos {where}", params).fetchone()[0]
    rows = db.execute(
        f"SELECT * FROM todos {where} ORDER BY id LIMIT ? OFFSET ?", [*params, _size, (_page - 1) * _size]
    )
    response.headers["X-Total-Count"] = str(total)
    return [_todo(row) for row in rows]


@app.post("/api/todos", status_code=201)
def create_todo(todo: Todo) -> dict[str, Any]:
    cursor = db.execute("INSERT INTO todos (title, done) VALUES (?, ?)", [todo.title, todo.done])
    return _get(int(cursor.lastrowid or 0))


@app.get("/api/todos/stats")
def stats() -> dict[str, int]:
    total = db.execute("SELECT count(*) FROM todos").fetchone()[0]
    done = db.execute("SELECT count(*) FROM todos WHERE done = ?", [True]).fetchone()[0]
    return {"total": total, "done": done, "open": total - done}


@app.get("/api/todos/{todo_id}")
def read_todo(todo_id: int) -> dict[str, Any]:
    return _get(todo_id)


@app.put("/api/todos/{todo_id}")
def replace_todo(todo_id: int, todo: Todo) -> dict[str, Any]:
    _get(todo_id)
    db.execute("UPDATE todos SET title = ?, done = ? WHERE id = ?", [todo.title, todo.done, todo_id])
    return _get(todo_id)


@app.delete("/api/todos/{todo_id}", status_code=204)
def delete_todo(todo_id: int) -> Response:
    _get(todo_id)
    db.execute("DELETE FROM todos WHERE id = ?", [todo_id])
    return Response(status_code=204)
