"""Route cards: what a route (or middleware) cell shows, and where its requests' output lands.

A card is an ipywidgets box in the route's cell: the methods, the pattern,
the URL as a link, a live hit count and last status, a "Try it" button that
opens the request widget filled in for the route, and an output area that
collects what handlers ``print()`` and the tracebacks of their crashes.

Requests can arrive thousands of times a second, and every widget change is
a message to the browser, so changes are coalesced: output once per turn of
the loop, the hit count at most every ``STATS_INTERVAL`` seconds.
"""

from __future__ import annotations

import asyncio
import html
from collections import deque
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from nbroutes.kernel.consoles import RouteConsole

__all__ = ["PlainTextSummary", "RouteCard", "status_colour"]

#: Seconds between two updates of a card's hit count.
STATS_INTERVAL = 0.25

_STATUS_COLOURS = {2: "#1a7f37", 3: "#0969da", 4: "#bc4c00", 5: "#cf222e"}


def status_colour(status: int | None) -> str:
    """The colour a status is shown in: green 2xx, blue 3xx, orange 4xx, red 5xx, grey otherwise."""
    return _STATUS_COLOURS.get((status or 0) // 100, "#57606a")


class PlainTextSummary:
    """Mixed into a widget: its text/plain is ``summary()``, for frontends that cannot show widgets (nbconvert,
    GitHub), instead of ipywidgets' long repr."""

    def summary(self) -> str:
        return type(self).__name__

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if bundle is not None:
            bundle["text/plain"] = self.summary()
        return bundle  # type: ignore[no-any-return]


class _CardBox(PlainTextSummary, widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped: its widgets are Any
    """The card's widget."""

    text = ""

    def summary(self) -> str:
        return self.text


class RouteCard(RouteConsole):
    """A route's card: summary, live stats, "Try it", and the output of its requests."""

    #: Output entries kept; older ones scroll off, so a busy route cannot grow the notebook forever.
    max_entries = 50

    def __init__(self, kind: str, pattern: str, url: str | None = None, note: str = "") -> None:
        """``kind`` is the methods ("GET, POST"), "CRUD" or "middleware"; ``note`` follows the pattern."""
        super().__init__(pattern)
        self.kind = kind
        self.pattern = pattern
        self.note = note
        self.summary = " ".join(part for part in (kind, pattern, note) if part)
        self.url = url
        #: Requests the card's routes answered, and the status of the last one.
        self.hits = 0
        self.last_status: int | None = None
        #: Builds the request widget that "Try it" opens; the button shows only when this is set.
        self.try_it: Callable[[], widgets.Widget] | None = None
        self._entries: deque[dict[str, Any]] = deque(maxlen=self.max_entries)
        self._output_pending = False
        self._stats_pending = False
        self._shown_stats: tuple[int, int | None] = (0, None)

        spaced = {"margin": "0 16px 0 0"}
        self.header = widgets.HTML(self._header_html(), layout=spaced, _dom_classes=["nbroutes-card-header"])
        self.stats = widgets.HTML(self._stats_html(0, None), layout=spaced, _dom_classes=["nbroutes-card-stats"])
        self.try_button = widgets.Button(
            description="Try it",
            icon="paper-plane",
            tooltip="Open a request widget for this route",
            layout=widgets.Layout(width="auto"),
            _dom_classes=["nbroutes-try"],
        )
        self.try_button.on_click(self._open_request_widget)
        self.row = widgets.HBox(
            [self.header, self.stats], layout=widgets.Layout(align_items="center", flex_flow="row wrap")
        )
        self.output = widgets.Output(_dom_classes=["nbroutes-card-output"])
        self.box = _CardBox(
            [self.row, self.output],
            _dom_classes=["nbroutes-card"],
            layout=widgets.Layout(border="1px solid #d0d7de", padding="4px 8px", margin="2px 0"),
        )
        self.box.text = self.text()
        #: The request widget "Try it" opened, once it has.
        self.request_widget: widgets.Widget | None = None

    # -- showing -----------------------------------------------------------------------
    def show(self) -> None:
        """Display the card in the running cell."""
        from IPython.display import display

        if self.try_it is not None and self.try_button not in self.row.children:
            self.row.children = (*self.row.children, self.try_button)
        display(self.box)  # type: ignore[no-untyped-call]  # IPython.display.display has no annotations

    def text(self) -> str:
        """The card as plain text: summary and URL."""
        return f"{self.summary}  {self.url}" if self.url else self.summary

    def _header_html(self) -> str:
        parts = [f"<b>{html.escape(self.kind)}</b> <code>{html.escape(self.pattern)}</code>"]
        if self.note:
            parts.append(html.escape(self.note))
        if self.url:
            href = html.escape(self.url, quote=True)
            parts.append(f'<a href="{href}" target="_blank" rel="noopener">{html.escape(self.url)}</a>')
        return " ".join(parts)

    @staticmethod
    def _stats_html(hits: int, status: int | None) -> str:
        last = (
            f'<span style="color:{status_colour(status)};font-weight:600">{status}</span>'
            if status is not None
            else "—"
        )
        return f"{hits} hit{'s' * (hits != 1)} · last {last}"

    def _open_request_widget(self, _button: Any = None) -> None:
        # Widget callbacks may run on a subshell thread: building widgets and
        # setting traits is safe there, it is only messages to the frontend.
        if self.request_widget is None and self.try_it is not None:
            self.request_widget = self.try_it()
            self.box.children = (*self.box.children, self.request_widget)

    # -- live stats --------------------------------------------------------------------
    def touch(self, status: int) -> None:
        """One of the card's routes answered with ``status``: count it, and show it soon (coalesced)."""
        self.hits += 1
        self.last_status = status
        if self._stats_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.refresh_stats()
            return
        self._stats_pending = True
        loop.call_later(STATS_INTERVAL, self.refresh_stats)

    def refresh_stats(self) -> None:
        """Show the current hit count and last status now."""
        self._stats_pending = False
        stats = (self.hits, self.last_status)
        if stats != self._shown_stats:
            self._shown_stats = stats
            self.stats.value = self._stats_html(*stats)

    # -- output ------------------------------------------------------------------------
    def write(self, text: str, stream: str = "stdout") -> None:
        last = self._entries[-1] if self._entries else None
        if last is not None and last["output_type"] == "stream" and last["name"] == stream:
            last["text"] += text
        else:
            self._entries.append({"output_type": "stream", "name": stream, "text": text})
        self._schedule()

    def error(self, summary: str, exc: BaseException) -> None:
        super().error(summary, exc)
        self._entries.append(
            {
                "output_type": "error",
                "ename": type(exc).__name__,
                "evalue": str(exc),
                "traceback": [summary, *self.format_traceback(exc).rstrip("\n").split("\n")],
            }
        )
        self._schedule()

    def warn(self, message: str) -> None:
        self._entries.append({"output_type": "stream", "name": "stderr", "text": f"warning: {message}\n"})
        self._schedule()

    def _schedule(self) -> None:
        # Coalesce the writes of one request (print() writes twice) into one update.
        if self._output_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._output_pending = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send the accumulated output to the card."""
        self._output_pending = False
        self.output.outputs = tuple(dict(entry) for entry in self._entries)

    def output_text(self) -> str:
        """Everything in the output area as text (stream text, and tracebacks)."""
        parts = []
        for entry in self._entries:
            if entry["output_type"] == "stream":
                parts.append(entry["text"])
            else:
                parts.append("\n".join(entry["traceback"]) + "\n")
        return "".join(parts)
