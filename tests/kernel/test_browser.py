"""The data browser without a kernel: tables and counts, pages, the filter, sorting, and refresh on change.

Outside a running loop the browser does its widget callbacks' work at once, so a click here is the whole
action; tests/kernel/test_workbench.py and the browser tests drive it in a real kernel and page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from nbroutes.data import sqlite as data
from nbroutes.kernel.browser import DataBrowser, browse


@pytest.fixture(autouse=True)
def _fresh_databases() -> Iterator[None]:
    data.close_all()
    yield
    data.close_all()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    database = data.db(tmp_path / "shop.db")
    database["items"].insert_all([{"id": i, "name": f"item {i:02}", "price": 100 - i} for i in range(1, 6)], pk="id")
    database["notes"].insert({"text": "<b>bold</b>", "blob": b"\x00\x01", "empty": None})
    return tmp_path / "shop.db"


def cells(browser: DataBrowser) -> list[list[str]]:
    """The grid's cells as shown, a list per row."""
    width = len(browser.columns)
    values = [c.value for c in browser.grid.children[width:]]
    return [values[i : i + width] for i in range(0, len(values), width)]


def test_tables_are_listed_with_their_row_counts(db_path: Path) -> None:
    browser = browse(str(db_path), page_size=2)
    assert browser.tables.options == (("items (5 rows)", "items"), ("notes (1 rows)", "notes"))
    assert browser.tables.value == "items"
    assert browser.summary() == "DataBrowser: shop.db, table items"
    assert [h.description for h in browser.grid.children[:3]] == ["id", "name", "price"]


def test_pages_turn_and_stop_at_both_ends(db_path: Path) -> None:
    browser = browse(str(db_path), "items", page_size=2)
    assert cells(browser) == [["1", "item 01", "99"], ["2", "item 02", "98"]]
    assert browser.position.value == "rows 1–2 of 5"
    assert browser.prev_button.disabled and not browser.next_button.disabled
    browser.next_button.click()
    browser.next_button.click()
    assert cells(browser) == [["5", "item 05", "95"]]
    assert browser.position.value == "rows 5–5 of 5"
    assert browser.next_button.disabled
    browser.next_button.click()  # past the end stays on the last page
    assert browser.page == 2
    browser.prev_button.click()
    assert browser.position.value == "rows 3–4 of 5"


def test_a_header_click_sorts_and_a_second_reverses(db_path: Path) -> None:
    browser = browse(str(db_path), "items", page_size=2)
    price = browser.grid.children[2]
    price.click()
    assert [row[2] for row in cells(browser)] == ["95", "96"]
    assert price.description == "price ▲"
    price.click()
    assert [row[2] for row in cells(browser)] == ["99", "98"]
    assert price.description == "price ▼"


def test_the_filter_matches_any_column_and_takes_like_characters_literally(db_path: Path) -> None:
    browser = browse(str(db_path), "items", page_size=10)
    browser.filter.value = "04"
    assert cells(browser) == [["4", "item 04", "96"]]
    browser.filter.value = "%"
    assert cells(browser) == []
    assert browser.position.value == "rows 0–0 of 0"


def test_values_are_escaped_and_blobs_and_nulls_are_labelled(db_path: Path) -> None:
    browser = browse(str(db_path), "notes")
    [[text, blob, empty]] = cells(browser)
    assert text == "&lt;b&gt;bold&lt;/b&gt;"
    assert "&lt;2 bytes&gt;" in blob
    assert "null" in empty


def test_a_change_to_the_database_refreshes_rows_and_counts(db_path: Path) -> None:
    browser = browse(str(db_path), "items", page_size=10)
    data.db(db_path)["items"].insert({"id": 6, "name": "item 06", "price": 94})
    data.check_changes()  # what nbroutes runs after each request and cell
    assert browser.tables.options[0] == ("items (6 rows)", "items")
    assert cells(browser)[-1] == ["6", "item 06", "94"]


def test_after_close_changes_are_no_longer_watched(db_path: Path) -> None:
    browser = browse(str(db_path), "items", page_size=10)
    browser.close()
    data.db(db_path)["items"].insert({"id": 6, "name": "item 06", "price": 94})
    data.check_changes()
    assert browser.tables.options[0] == ("items (5 rows)", "items")


def test_a_database_error_is_a_message_not_a_traceback(db_path: Path) -> None:
    browser = browse(str(db_path), "items")
    data.db(db_path)["items"].drop()
    browser.refresh_button.click()
    assert browser.tables.options == (("notes (1 rows)", "notes"),)
    browser.tables.value = "notes"
    browser.database.conn.close()
    browser.refresh_button.click()
    assert "ProgrammingError" in browser.message.value


def test_picking_a_table_shows_its_columns_and_rows(tmp_path: Path) -> None:
    database = Database(tmp_path / "x.db")
    database["a"].insert_all([{"x": i} for i in range(3)])
    database["b"].insert_all([{"y": i} for i in range(5)])
    browser = DataBrowser(database)
    assert (browser.tables.value, browser.columns, browser.total) == ("a", ["x"], 3)
    browser.tables.value = "b"
    assert (browser.tables.value, browser.columns, browser.total) == ("b", ["y"], 5)
    browser.close()
