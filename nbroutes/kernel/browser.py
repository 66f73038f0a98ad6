"""The data browser: a SQLite database's tables in the notebook, refreshed when requests change them.

``nbroutes.browse(db)`` or ``%browse app.db`` shows the tables and views with
their row counts, a page of rows, sorting by clicking a column's header, and a
filter box. When a request (or a cell) writes to the database, the view
refreshes itself, once, shortly after the writes stop: the kernel checks the
database's change counter after each response, so nothing polls.

Every query is parameterised. The only identifiers in SQL are the names of the
database's own tables and columns, read from its schema, and quoted.
"""

from __future__ import annotations

import asyncio
import html
import os
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from sqlite_utils import Database

from nbroutes.data import sqlite as data
from nbroutes.kernel.cards import PlainTextSummary
from nbroutes.kernel.threads import current_kernel_loop

__all__ = ["DataBrowser", "browse"]

#: Seconds to wait after a change before refreshing, so a burst of writes refreshes once.
REFRESH_DELAY = 0.3
#: Characters of a cell shown before it is cut with an ellipsis.
CELL_CHARS = 120


def quote(name: str) -> str:
    """An SQL identifier, quoted (``"`` doubled inside)."""
    return '"' + name.replace('"', '""') + '"'


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class DataBrowser(PlainTextSummary, widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped: its widgets are Any
    """Tables with row counts, a page of rows, sort by column, a filter, and refresh on change."""

    def __init__(self, database: Database, table: str | None = None, *, page_size: int = 20) -> None:
        self.database = database
        self.page_size = page_size
        self.page = 0
        self.sort: tuple[str, bool] | None = None  # (column, descending)
        self.columns: list[str] = []
        self.total = 0
        self._loop = current_kernel_loop()
        self._refresh_pending = False

        self.tables = widgets.Dropdown(description="Table", _dom_classes=["nbroutes-browse-table"])
        self.filter = widgets.Text(
            placeholder="filter rows (any column contains)",
            continuous_update=False,
            layout=widgets.Layout(width="260px"),
            _dom_classes=["nbroutes-browse-filter"],
        )
        self.refresh_button = widgets.Button(icon="refresh", tooltip="Refresh", layout=widgets.Layout(width="36px"))
        self.prev_button = widgets.Button(
            description="‹ Prev", layout=widgets.Layout(width="auto"), _dom_classes=["nbroutes-browse-prev"]
        )
        self.next_button = widgets.Button(
            description="Next ›", layout=widgets.Layout(width="auto"), _dom_classes=["nbroutes-browse-next"]
        )
        self.position = widgets.HTML(_dom_classes=["nbroutes-browse-position"])
        self.message = widgets.HTML(_dom_classes=["nbroutes-browse-message"])
        self.grid = widgets.GridBox(_dom_classes=["nbroutes-browse-grid"])
        self._headers: list[widgets.Button] = []
        self._cells: list[widgets.HTML] = []

        self._loading = False  # set while the code, not the user, changes the table dropdown
        self.tables.observe(self._on_table_change, names="value")
        self.filter.observe(lambda change: self._later(self._first_page), names="value")
        self.refresh_button.on_click(lambda _: self._later(self.refresh))
        self.prev_button.on_click(lambda _: self._later(self._turn, -1))
        self.next_button.on_click(lambda _: self._later(self._turn, 1))
        super().__init__(
            [
                widgets.HBox([self.tables, self.filter, self.refresh_button]),
                self.grid,
                widgets.HBox([self.prev_button, self.position, self.next_button], layout={"align_items": "center"}),
                self.message,
            ],
            _dom_classes=["nbroutes-browse"],
        )
        self._unwatch: Callable[[], None] | None = data.watch(database, self._changed)
        self._load_tables(table)

    def summary(self) -> str:
        """The browser as text: the database's file and the table shown."""
        file = os.path.basename(self.database.conn.execute("PRAGMA database_list").fetchone()[2]) or ":memory:"
        return f"DataBrowser: {file}, table {self.tables.value}" if self.tables.value else f"DataBrowser: {file}"

    # -- threads -----------------------------------------------------------------------
    def _on_table_change(self, change: dict[str, Any]) -> None:
        if not self._loading:
            self._later(self._pick_table)

    def _later(self, fn: Callable[..., Any], *args: Any) -> None:
        # Widget callbacks may arrive on a subshell thread; the database belongs to the kernel's loop.
        if self._loop is None:
            fn(*args)
        else:
            self._loop.call(fn, *args)

    def _changed(self, _database: Database) -> None:
        if self._refresh_pending:
            return
        self._refresh_pending = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.refresh()
            return
        loop.call_later(REFRESH_DELAY, self.refresh)

    def close(self) -> None:
        """Stop watching the database and close the widgets."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        for w in [*self._headers, *self._cells]:
            w.close()
        super().close()

    # -- reading -----------------------------------------------------------------------
    def _names(self) -> list[str]:
        return [*self.database.table_names(), *self.database.view_names()]

    def _count(self, name: str) -> int:
        return int(self.database.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0])

    def _load_tables(self, keep: str | None = None) -> None:
        names = self._names()
        keep = keep if keep in names else (self.tables.value if self.tables.value in names else None)
        options = [(f"{name} ({self._count(name):,} rows)", name) for name in names]
        current = keep or (names[0] if names else None)
        self._loading = True
        try:
            self.tables.options = options
            self.tables.value = current
        finally:
            self._loading = False
        self._pick_table()

    def _pick_table(self) -> None:
        name = self.tables.value
        columns = [] if name is None else [c.name for c in self.database[name].columns]
        if columns != self.columns:
            self.columns = columns
            self.sort = None
            self._build_headers()
        self._first_page()

    def _first_page(self) -> None:
        self.page = 0
        self.refresh()

    def _turn(self, step: int) -> None:
        pages = max(1, -(-self.total // self.page_size))
        self.page = min(max(self.page + step, 0), pages - 1)
        self.refresh()

    def _where(self) -> tuple[str, list[str]]:
        term = self.filter.value.strip()
        if not term or not self.columns:
            return "", []
        tests = [f"CAST({quote(c)} AS TEXT) LIKE ? ESCAPE '\\'" for c in self.columns]
        return " WHERE " + " OR ".join(tests), [_like(term)] * len(tests)

    def rows(self) -> list[tuple[Any, ...]]:
        """The rows of the current page, filtered and sorted as the widgets say."""
        name = self.tables.value
        if name is None:
            return []
        where, params = self._where()
        self.total = int(self.database.execute(f"SELECT count(*) FROM {quote(name)}{where}", params).fetchone()[0])
        order = ""
        if self.sort is not None:
            column, descending = self.sort
            order = f" ORDER BY {quote(column)} {'DESC' if descending else 'ASC'}"
        sql = f"SELECT * FROM {quote(name)}{where}{order} LIMIT ? OFFSET ?"
        return list(self.database.execute(sql, [*params, self.page_size, self.page * self.page_size]).fetchall())

    # -- showing -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the current page again, and the row counts, and show them."""
        self._refresh_pending = False
        try:
            if self.tables.value not in self._names() or self._count_changed():
                self._load_tables()
                return
            rows = self.rows()
        except Exception as exc:  # noqa: BLE001 - a locked or closed database shows as a message
            self.message.value = f'<span style="color:#cf222e">{html.escape(f"{type(exc).__name__}: {exc}")}</span>'
            return
        self.message.value = ""
        self._show(rows)

    def _count_changed(self) -> bool:
        # The dropdown's labels carry row counts: relabel when they are stale.
        for label, name in self.tables.options:
            if label != f"{name} ({self._count(name):,} rows)":
                return True
        return False

    def _build_headers(self) -> None:
        for button in self._headers:
            button.close()
        self._headers = []
        for column in self.columns:
            button = widgets.Button(
                description=column,
                tooltip=f"Sort by {column}",
                layout=widgets.Layout(width="auto"),
                _dom_classes=["nbroutes-browse-header"],
            )
            button.on_click(lambda _, column=column: self._later(self._sort_by, column))
            self._headers.append(button)
        self.grid.layout.grid_template_columns = f"repeat({max(len(self.columns), 1)}, auto)"

    def _sort_by(self, column: str) -> None:
        """Sort by ``column``; a second click on it reverses the order."""
        descending = self.sort is not None and self.sort[0] == column and not self.sort[1]
        self.sort = (column, descending)
        for button, name in zip(self._headers, self.columns, strict=True):
            arrow = (" ▼" if descending else " ▲") if name == column else ""
            button.description = name + arrow
        self.page = 0
        self.refresh()

    def _show(self, rows: list[tuple[Any, ...]]) -> None:
        needed = len(rows) * len(self.columns)
        while len(self._cells) < needed:
            self._cells.append(widgets.HTML(_dom_classes=["nbroutes-browse-cell"]))
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                self._cells[i * len(self.columns) + j].value = _cell_html(value)
        self.grid.children = (*self._headers, *self._cells[:needed])
        first = self.page * self.page_size + 1 if rows else 0
        last = self.page * self.page_size + len(rows)
        self.position.value = f"rows {first}–{last} of {self.total:,}"
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = last >= self.total


def _cell_html(value: Any) -> str:
    if value is None:
        return '<span style="color:#8c959f">null</span>'
    if isinstance(value, bytes):
        return f'<span style="color:#8c959f">&lt;{len(value)} bytes&gt;</span>'
    text = str(value)
    if len(text) > CELL_CHARS:
        text = text[: CELL_CHARS - 1] + "…"
    return html.escape(text)


def browse(database: Database | str = "app.db", table: str | None = None, *, page_size: int = 20) -> DataBrowser:
    """A data browser for ``database`` (a Database, or the path of a SQLite file), showing ``table`` first."""
    if isinstance(database, str):
        database = data.db(database)
    return DataBrowser(database, table, page_size=page_size)
