"""The kernel's SQLite databases: one shared connection per file, its pragmas, threads, and change watchers."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from nbroutes.data import sqlite as data


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    data.close_all()
    yield
    data.close_all()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "app.db"


def test_same_object_per_path_across_calls(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = data.db(db_path)
    assert data.db(str(db_path)) is first
    monkeypatch.chdir(db_path.parent)
    assert data.db("app.db") is first
    (db_path.parent / "sub").mkdir()
    assert data.db("./sub/../app.db") is first
    assert data.open_databases() == [first]


def test_different_files_are_different_databases(tmp_path: Path) -> None:
    a, b = data.db(tmp_path / "a.db"), data.db(tmp_path / "b.db")
    assert a is not b
    assert data.open_databases() == [a, b]


def test_pragmas_wal_synchronous_full_foreign_keys_busy_timeout(db_path: Path) -> None:
    database = data.db(db_path)
    assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert database.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert database.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert database.execute("PRAGMA busy_timeout").fetchone()[0] == data.BUSY_TIMEOUT_MS


def test_foreign_keys_are_enforced(db_path: Path) -> None:
    database = data.db(db_path)
    database["authors"].create({"id": int, "name": str}, pk="id")
    database["books"].create({"id": int, "author_id": int}, pk="id", foreign_keys=[("author_id", "authors", "id")])
    with pytest.raises(sqlite3.IntegrityError):
        database["books"].insert({"id": 1, "author_id": 99})


def test_usable_from_another_thread(db_path: Path) -> None:
    database = data.db(db_path)
    database["t"].insert({"x": 1})
    errors: list[BaseException] = []
    seen: list[int] = []

    def work() -> None:
        try:
            with data.lock(database):
                database["t"].insert({"x": 2})
                seen.append(database["t"].count)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []
    assert seen == [2]
    assert [r["x"] for r in database["t"].rows] == [1, 2]


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "app.db"
    with pytest.raises(data.DatabasePathError, match=str(tmp_path / "no" / "such")) as info:
        data.db(missing)
    assert isinstance(info.value, OSError)
    assert not (tmp_path / "no").exists()
    assert data.open_databases() == []


def test_memory_is_one_shared_database_too() -> None:
    memory = data.db(":memory:")
    memory["t"].insert({"x": 1})
    assert data.db(":memory:") is memory
    assert data.db(":memory:")["t"].count == 1


def test_close_all_closes_and_db_opens_the_same_object_again(db_path: Path) -> None:
    first = data.db(db_path)
    first["t"].insert({"x": 1})
    data.close_all()
    assert data.open_databases() == []
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")
    again = data.db(db_path)
    assert again is first  # the user's variable, and tables made from it, work again
    assert again["t"].count == 1
    assert again.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopen_all_reconnects_what_close_all_closed(db_path: Path) -> None:
    first = data.db(db_path)
    table = first["t"]
    table.insert({"x": 1})
    data.close_all()
    data.reopen_all()
    assert first in data.open_databases()
    table.insert({"x": 2})
    assert table.count == 2


def test_a_database_closed_by_its_user_is_opened_again(db_path: Path) -> None:
    first = data.db(db_path)
    first.close()
    assert data.open_databases() == []
    again = data.db(db_path)
    assert again is not first and again.execute("SELECT 1").fetchone() == (1,)


def test_watchers_fire_only_on_change(db_path: Path) -> None:
    database = data.db(db_path)
    calls: list[Database] = []
    data.watch(database, calls.append)
    data.check_changes()
    assert calls == []
    database["t"].insert({"x": 1})
    data.check_changes()
    assert calls == [database]
    data.check_changes()
    database.execute("SELECT * FROM t").fetchall()  # a read is not a change
    data.check_changes()
    assert calls == [database]
    database["t"].insert({"x": 2})
    data.check_changes()
    assert calls == [database, database]


def test_only_the_changed_databases_watchers_fire(tmp_path: Path) -> None:
    a, b = data.db(tmp_path / "a.db"), data.db(tmp_path / "b.db")
    calls: list[str] = []
    data.watch(a, lambda _: calls.append("a"))
    data.watch(b, lambda _: calls.append("b"))
    b["t"].insert({"x": 1})
    data.check_changes()
    assert calls == ["b"]


def test_unwatch_stops_the_callback(db_path: Path) -> None:
    database = data.db(db_path)
    calls: list[Database] = []
    unwatch = data.watch(database, calls.append)
    unwatch()
    unwatch()  # twice is harmless
    database["t"].insert({"x": 1})
    data.check_changes()
    assert calls == []


def test_a_raising_watcher_does_not_stop_the_others(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = data.db(db_path)
    calls: list[str] = []

    def broken(_: Database) -> None:
        raise RuntimeError("watcher broke")

    data.watch(database, broken)
    data.watch(database, lambda _: calls.append("after"))
    database["t"].insert({"x": 1})
    with caplog.at_level(logging.ERROR, logger="nbroutes.application"):
        data.check_changes()
    assert calls == ["after"]
    assert any("watcher broke" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert all(r.name == "nbroutes.application" for r in caplog.records)


def test_a_database_of_the_users_own_can_be_watched(tmp_path: Path) -> None:
    own = Database(tmp_path / "own.db")
    calls: list[Database] = []
    unwatch = data.watch(own, calls.append)
    own["t"].insert({"x": 1})
    data.check_changes()
    assert calls == [own]
    unwatch()
    data.close_all()
    assert own.execute("SELECT count(*) FROM t").fetchone() == (1,)  # not ours to close
    own.close()


def test_closed_databases_are_skipped_by_check_changes(db_path: Path) -> None:
    database = data.db(db_path)
    data.watch(database, lambda _: None)
    database.close()
    data.check_changes()  # no ProgrammingError
    assert data.open_databases() == []


@pytest.mark.subprocess
def test_core_modules_import_no_ipython_or_tornado() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nbroutes.data.sqlite, nbroutes.data.resources\n"
        "print(sorted(m for m in ('IPython', 'tornado') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
