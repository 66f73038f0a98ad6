"""Running widget callbacks' work on the kernel's event loop, whatever thread they arrive on.

With ipykernel 7 and JupyterLab >= 4.4, widget messages are handled on
subshell threads; on older setups, on the main thread inside the running
loop. The server, the handlers and the shared SQLite connections all live on
the kernel's loop, so callbacks hand their work to it instead of touching
those from another thread (and never block on it: the loop may be busy with
a synchronous cell, and a callback on the main thread would deadlock).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["KernelLoop", "current_kernel_loop"]

log = logging.getLogger("nbroutes.application")


class KernelLoop:
    """The event loop that was running when nbroutes loaded (the kernel's own)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    @classmethod
    def current(cls) -> KernelLoop:
        """The running loop; raises RuntimeError when none is running (outside a kernel cell)."""
        return cls(asyncio.get_running_loop())

    def on_loop_thread(self) -> bool:
        return getattr(self.loop, "_thread_id", None) == threading.get_ident()

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon; safe from any thread, never waits."""
        if self.on_loop_thread():
            self.loop.call_soon(fn, *args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def spawn(self, make: Callable[[], Awaitable[Any]], *, what: str = "a widget action") -> None:
        """Start the coroutine ``make()`` on the loop, from any thread; its errors are logged, not lost."""

        def start() -> None:
            task = asyncio.ensure_future(make())
            task.add_done_callback(lambda t: _report(t, what))

        self.call(start)


def _report(task: asyncio.Future[Any], what: str) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("nbroutes: %s failed", what, exc_info=task.exception())


def current_kernel_loop() -> KernelLoop | None:
    """The kernel's loop as nbroutes recorded it when it loaded, else the running loop, else None.

    Widgets made in a cell on a subshell thread must still send their work to
    the main loop, which is why the recorded one comes first.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython is not None else None
    recorded = getattr(getattr(shell, "_nbroutes_state", None), "loop", None)
    if recorded is not None:
        return recorded  # type: ignore[no-any-return]
    try:
        return KernelLoop.current()
    except RuntimeError:
        return None
