"""A 201 from ``crud()`` means the row is on disk: SIGKILL the server right after it and the row is still there."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.subprocess, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")]

ROOT = Path(__file__).resolve().parents[2]

SERVER = """
import asyncio
import sys

from pydantic import BaseModel

import nbroutes
from nbroutes.data import sqlite as data
from nbroutes.data.resources import crud
from nbroutes.servers.tornado import Server


class Todo(BaseModel):
    title: str
    done: bool = False


async def main() -> None:
    app = nbroutes.App()
    crud(app, "/api/todos", data.db(sys.argv[1])["todos"], Todo)
    server = Server(app, "127.0.0.1", 0)
    print(server.start(search=False), flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
"""


def start_server(tmp_path: Path, db_file: Path) -> tuple[subprocess.Popen[str], int]:
    script = tmp_path / "serve_todos.py"
    script.write_text(SERVER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db_file)], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        proc.wait()
        proc.stdout.close()
        pytest.fail(f"the server did not start: {line!r}")
    return proc, int(line)


def post(conn: http.client.HTTPConnection, title: str) -> tuple[int, dict[str, object], str | None]:
    conn.request("POST", "/api/todos", json.dumps({"title": title}), {"Content-Type": "application/json"})
    response = conn.getresponse()
    body = json.loads(response.read())
    return response.status, body, response.getheader("Location")


def test_every_acknowledged_row_survives_sigkill(tmp_path: Path) -> None:
    db_file = tmp_path / "durable.db"
    proc, port = start_server(tmp_path, db_file)
    acknowledged: list[tuple[int, str]] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for i in range(25):
            status, row, location = post(conn, f"t{i}")
            assert status == 201, row
            assert location == f"/api/todos/{row['id']}"
            acknowledged.append((int(row["id"]), str(row["title"])))  # type: ignore[call-overload]
        proc.send_signal(signal.SIGKILL)  # right after the last 201: no atexit, no close, no checkpoint
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        conn.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    conn2 = sqlite3.connect(db_file)
    try:
        rows = conn2.execute("SELECT id, title FROM todos ORDER BY id").fetchall()
        assert conn2.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn2.close()
    assert rows == acknowledged


def test_a_row_acknowledged_just_before_the_kill_is_there(tmp_path: Path) -> None:
    db_file = tmp_path / "one.db"
    proc, port = start_server(tmp_path, db_file)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        status, row, _ = post(conn, "only")
        proc.kill()
        proc.wait(timeout=10)
    finally:
        conn.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert status == 201
    assert (db_file.parent / "one.db-wal").exists()  # the row may be only in the WAL: reading must recover it
    conn2 = sqlite3.connect(db_file)
    try:
        assert conn2.execute("SELECT id, title, done FROM todos").fetchall() == [(row["id"], "only", 0)]
    finally:
        conn2.close()
