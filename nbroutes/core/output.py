"""Where a route's ``print()`` output, tracebacks and warnings go.

Each route has a ``Console``. While a handler runs, ``current_console`` names
it, and ``RoutedStream`` (installed over ``sys.stdout``/``sys.stderr`` by the
notebook adapter) sends writes there, so output lands under the route's own
cell rather than whichever cell happens to be running. The context variable
is per task, so concurrent async handlers never mix their output.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import traceback
from collections.abc import Iterable
from typing import Any, TextIO

__all__ = ["Console", "current_console", "RoutedStream", "route_stdio", "unroute_stdio"]

app_log = logging.getLogger("nbroutes.application")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Console:
    """A route's output: the default writes to the ``nbroutes.application`` logger."""

    def __init__(self, name: str = "") -> None:
        self.name = name

    def write(self, text: str, stream: str = "stdout") -> None:
        """Show text the handler printed."""
        target = sys.__stderr__ if stream == "stderr" else sys.__stdout__
        if target is not None:
            target.write(text)

    def error(self, summary: str, exc: BaseException) -> None:
        """Show a handler's exception with its traceback."""
        app_log.error("%s", summary, exc_info=exc)

    def warn(self, message: str) -> None:
        """Show a warning about the route."""
        app_log.warning("%s: %s", self.name, message)

    @staticmethod
    def format_traceback(exc: BaseException) -> str:
        """The traceback from the handler's own code on: nbroutes' frames above it are noise."""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            tb = tb.tb_next
        return "".join(traceback.format_exception(type(exc), exc, tb))


current_console: contextvars.ContextVar[Console | None] = contextvars.ContextVar("nbroutes_console", default=None)


class RoutedStream:
    """A stand-in for sys.stdout/stderr that sends a handler's writes to its route's console.

    Everything but ``write`` goes to the stream it replaced (ipykernel's OutStream has
    attributes of its own, and ``fileno`` must stay the real one's), so it does not
    inherit from ``io.TextIOBase``, whose defaults would shadow them.
    """

    def __init__(self, target: TextIO, name: str) -> None:
        self._target = target
        self._name = name

    def write(self, text: str) -> int:
        console = current_console.get()
        if console is None:
            return self._target.write(text)
        console.write(text, self._name)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def route_stdio() -> None:
    """Install RoutedStream over sys.stdout and sys.stderr (once)."""
    if not isinstance(sys.stdout, RoutedStream):
        sys.stdout = RoutedStream(sys.stdout, "stdout")
    if not isinstance(sys.stderr, RoutedStream):
        sys.stderr = RoutedStream(sys.stderr, "stderr")


def unroute_stdio() -> None:
    """Put back the streams that route_stdio replaced."""
    if isinstance(sys.stdout, RoutedStream):
        sys.stdout = sys.stdout._target
    if isinstance(sys.stderr, RoutedStream):
        sys.stderr = sys.stderr._target
