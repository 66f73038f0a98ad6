"""``DataBrowser`` (``%browse``) without a browser: its widgets' state after what a user does."""

from pathlib import Path

from sqlite_utils import Database

from nbroutes.kernel.browser import DataBrowser


def test_picking_a_table_shows_its_columns_and_rows(tmp_path: Path) -> None:
    database = Database(tmp_path / "x.db")
    database["a"].insert_all([{"x": i} for i in range(3)])
    database["b"].insert_all([{"y": i} for i in range(5)])
    browser = DataBrowser(database)
    assert (browser.tables.value, browser.columns, browser.total) == ("a", ["x"], 3)
    browser.tables.value = "b"
    assert (browser.tables.value, browser.columns, browser.total) == ("b", ["y"], 5)
    browser.close()
