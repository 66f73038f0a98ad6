"""Route cards without a kernel: colours, output entries and stats."""

from __future__ import annotations

import pytest

from nbroutes.kernel.cards import RouteCard, status_colour


@pytest.mark.parametrize(
    ("status", "colour"), [(200, "#1a7f37"), (304, "#0969da"), (422, "#bc4c00"), (503, "#cf222e"), (None, "#57606a")]
)
def test_status_colour_by_class(status: int | None, colour: str) -> None:
    assert status_colour(status) == colour


def test_output_keeps_streams_together_and_tracebacks_apart() -> None:
    card = RouteCard("GET", "/api/x", "http://127.0.0.1:8000/api/x")
    card.write("one ")
    card.write("two\n")
    card.write("oops\n", "stderr")
    try:
        raise ValueError("bad")
    except ValueError as exc:
        card.error("GET /api/x raised ValueError: bad", exc)
    outputs = card.output.outputs
    assert [o["output_type"] for o in outputs] == ["stream", "stream", "error"]
    assert outputs[0] == {"output_type": "stream", "name": "stdout", "text": "one two\n"}
    assert outputs[2]["ename"] == "ValueError"
    assert "ValueError: bad" in card.output_text()


def test_output_is_bounded() -> None:
    card = RouteCard("GET", "/api/x")
    for i in range(200):
        card.warn(f"w{i}")
        card.write(f"line {i}\n")
    assert len(card.output.outputs) == RouteCard.max_entries
    assert "line 199" in card.output_text() and "line 0\n" not in card.output_text()


def test_stats_count_requests_and_show_the_last_status() -> None:
    card = RouteCard("GET", "/api/x")
    assert card.stats.value == "0 hits · last —"
    card.touch(200)
    card.touch(404)  # no loop running: shown at once
    assert card.stats.value.startswith("2 hits · last ")
    assert ">404</span>" in card.stats.value


def test_plain_text_form_for_frontends_without_widgets() -> None:
    card = RouteCard("GET", "/api/x", "http://127.0.0.1:8000/api/x")
    bundle = card.box._repr_mimebundle_()
    assert bundle["text/plain"] == "GET /api/x  http://127.0.0.1:8000/api/x"
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_widgets_have_a_short_text_for_frontends_without_widgets(tmp_path) -> None:
    from sqlite_utils import Database

    from nbroutes.kernel.browser import DataBrowser
    from nbroutes.kernel.request_widget import RequestWidget

    database = Database(tmp_path / "x.db")
    database["todos"].insert({"title": "a"})
    browser = DataBrowser(database)
    assert browser._repr_mimebundle_()["text/plain"] == "DataBrowser: x.db, table todos"
    browser.close()
    assert RequestWidget("POST", "/api/todos")._repr_mimebundle_()["text/plain"] == "RequestWidget: POST /api/todos"
