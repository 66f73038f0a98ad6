"""The kernel's SQLite databases: one shared connection per file, and change notifications for the data browser.

``db("todo.db")`` opens the file once for the life of the process, so re-running a
cell gives back the same ``sqlite_utils.Database`` (and routes made from it keep
working). Every connection is set up for a web app that must not lose what it
acknowledged: WAL journal, ``synchronous=FULL``, foreign keys on, a busy timeout.

``check_changes()`` is called by the kernel after every HTTP response and every
cell; it compares each shared connection's ``total_changes`` counter with the
value it saw last and calls the database's watchers when it moved, so the data
browser refreshes without polling. Only writes made through the shared
connection are seen (another process writing to the file is not).

This module imports neither IPython nor Tornado.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlite_utils import Database

from nbroutes.errors import DatabasePathError

__all__ = ["db", "close_all", "reopen_all", "open_databases", "watch", "check_changes", "lock", "DatabasePathError"]

app_log = logging.getLogger("nbroutes.application")

#: How long a statement waits for another connection's lock before "database is locked", in milliseconds.
BUSY_TIMEOUT_MS = 5000
MEMORY = ":memory:"

Watcher = Callable[[Database], None]


@dataclass(eq=False)
class _Entry:
    """A shared database, the change counter seen last, and who wants to hear about changes."""

    database: Database
    key: str
    seen: int = 0
    watchers: list[Watcher] = field(default_factory=list)
    #: False for a database the user opened and passed to watch(): close_all() leaves it open.
    shared: bool = True


_registry_lock = threading.Lock()
_by_key: dict[str, _Entry] = {}
#: Every entry by ``id(database)``: the shared ones, and databases of the user's own that are watched.
_by_id: dict[int, _Entry] = {}
#: Shared databases close_all() closed, by key: db() and reopen_all() reconnect these same objects, so the
#: user's ``db`` variable and the routes made from it work again after ``%reload_ext nbroutes``.
_closed: dict[str, Database] = {}


def _key(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    if text == MEMORY:
        return MEMORY
    return os.path.realpath(os.path.abspath(os.path.expanduser(text)))


def db(path: str | os.PathLike[str] = "app.db") -> Database:
    """The shared ``Database`` for the SQLite file at ``path``, opened on first use and kept for the process's life.

    The key is the resolved absolute path, so ``db("app.db")`` and ``db("./app.db")``
    are one connection. ``":memory:"`` is one shared in-memory database too (same rule:
    re-running a cell must not silently start an empty database); for a private one use
    ``sqlite_utils.Database(memory=True)``.

    The connection uses WAL with ``synchronous=FULL``: once a write has committed (and
    every nbroutes write commits before its response is sent) it is on disk, even across
    a power cut, not only across a crash of the process. It may be used from other
    threads (widget callbacks); hold ``lock(database)`` for a multi-statement change there.

    Raises DatabasePathError if the file's directory does not exist, sqlite3.Error if the
    file is not a SQLite database.
    """
    key = _key(path)
    with _registry_lock:
        entry = _by_key.get(key)
        if entry is not None and _is_open(entry.database):
            return entry.database
        if entry is not None:  # closed behind our back (database.close()): open it again
            _forget(entry)
        return _register(key, _closed.pop(key, None))


def _register(key: str, database: Database | None) -> Database:
    """Open ``key`` (into ``database`` when given, so the user's object works again) and share it."""
    if database is None:
        database = Database(_connect(key))
    else:
        database.conn = _connect(key)
    entry = _Entry(database, key, seen=database.conn.total_changes)
    _by_key[key] = entry
    _by_id[id(database)] = entry
    return database


def reopen_all() -> None:
    """Reconnect the shared databases close_all() closed, in place (the extension is loading again)."""
    with _registry_lock:
        for key in list(_closed):
            database = _closed.pop(key)
            try:
                _register(key, database)
            except (OSError, sqlite3.Error):
                app_log.exception("nbroutes: reopening %s failed", key)


def _connect(key: str) -> sqlite3.Connection:
    if key != MEMORY:
        directory = os.path.dirname(key)
        if not os.path.isdir(directory):
            raise DatabasePathError(f"cannot open {key}: the directory {directory} does not exist (create it first)")
    conn = sqlite3.connect(key, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # journal_mode cannot change inside a transaction; none is open on a new connection.
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn
    except BaseException:
        conn.close()
        raise


def _is_open(database: Database) -> bool:
    try:
        database.conn.total_changes  # noqa: B018 - raises ProgrammingError once closed
    except sqlite3.ProgrammingError:
        return False
    return True


def _forget(entry: _Entry) -> None:
    if _by_key.get(entry.key) is entry:
        del _by_key[entry.key]
    if _by_id.get(id(entry.database)) is entry:
        del _by_id[id(entry.database)]


def open_databases() -> list[Database]:
    """The shared databases that are open now, in the order they were opened."""
    with _registry_lock:
        return [entry.database for entry in _by_key.values() if _is_open(entry.database)]


def close_all() -> None:
    """Close every shared connection and forget every watcher (the extension is unloading).

    The Database objects are remembered: ``db()`` or ``reopen_all()`` reconnects them in place.
    """
    with _registry_lock:
        entries = list(_by_key.values())
        _by_key.clear()
        _by_id.clear()
        _closed.update({entry.key: entry.database for entry in entries if entry.key != MEMORY})
    for entry in entries:
        with lock(entry.database):
            try:
                entry.database.close()
            except sqlite3.Error:
                app_log.exception("nbroutes: closing %s failed", entry.key)


def watch(database: Database, callback: Watcher) -> Callable[[], None]:
    """Call ``callback(database)`` after a request or cell changed ``database``; returns the function that stops it.

    A database not opened with ``db()`` is watched too, until its last watcher stops.
    """
    with _registry_lock:
        entry = _by_id.get(id(database))
        if entry is None or entry.database is not database:
            entry = _Entry(database, f"<{database!r}>", seen=database.conn.total_changes, shared=False)
            _by_id[id(database)] = entry
        entry.watchers.append(callback)

    def unwatch() -> None:
        with _registry_lock:
            if callback in entry.watchers:
                entry.watchers.remove(callback)
            if not entry.shared and not entry.watchers and _by_id.get(id(database)) is entry:
                del _by_id[id(database)]

    return unwatch


def check_changes() -> None:
    """Call the watchers of every shared database whose change counter moved since the last check."""
    changed: list[tuple[_Entry, list[Watcher]]] = []
    with _registry_lock:
        for entry in list(_by_id.values()):
            try:
                total = entry.database.conn.total_changes
            except sqlite3.ProgrammingError:
                _forget(entry)  # closed by its user
                continue
            if total != entry.seen:
                entry.seen = total
                if entry.watchers:
                    changed.append((entry, list(entry.watchers)))
    # Outside the registry lock: a watcher may open a database or unwatch itself.
    for entry, watchers in changed:
        for callback in watchers:
            try:
                callback(entry.database)
            except Exception:  # noqa: BLE001 - one broken watcher must not starve the others
                app_log.exception("nbroutes: a watcher of %s raised", entry.key)


def lock(database: Database) -> threading.RLock:
    """The lock nbroutes holds around a request's statements on ``database``: hold it for writes from other threads."""
    # Kept on the object itself, so any Database has one and it goes when the Database goes.
    with _registry_lock:
        found: threading.RLock = database.__dict__.setdefault("_nbroutes_lock", threading.RLock())
        return found
