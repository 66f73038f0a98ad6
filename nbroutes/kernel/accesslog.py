"""The notebook's request log: the last requests the kernel's server answered, for ``%nbroutes log``.

It is a bounded buffer: a kernel that serves for days keeps the newest
``maxlen`` entries and nothing more.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from nbroutes.core.requests import Request
from nbroutes.core.responses import Response

__all__ = ["AccessLog", "LogEntry", "human_size"]


def human_size(size: int) -> str:
    """A byte count for people: ``512 B``, ``1.5 KB``, ``2.0 MB``."""
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One answered request."""

    at: float
    method: str
    path: str
    status: int
    ms: float
    size: int


class AccessLog:
    """The last ``maxlen`` requests, oldest first."""

    def __init__(self, maxlen: int = 1000) -> None:
        self.entries: deque[LogEntry] = deque(maxlen=maxlen)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, request: Request, response: Response, seconds: float, size: int) -> None:
        """Record an answered request (a server observer: see ``Server(observer=)``)."""
        self.entries.append(LogEntry(time.time(), request.method, request.url, response.status, seconds * 1000, size))

    def newest(self, count: int) -> list[LogEntry]:
        """Up to ``count`` entries, newest first."""
        if count <= 0:
            return []
        return [self.entries[-i] for i in range(1, min(count, len(self.entries)) + 1)]

    def clear(self) -> None:
        self.entries.clear()

    def rows(self, count: int = 20) -> list[tuple[str, ...]]:
        """The newest ``count`` entries as rows of text under a header row, newest first."""
        rows: list[tuple[str, ...]] = [("TIME", "METHOD", "PATH", "STATUS", "MS", "SIZE")]
        for e in self.newest(count):
            clock = time.strftime("%H:%M:%S", time.localtime(e.at))
            rows.append((clock, e.method, e.path, str(e.status), f"{e.ms:.1f}", human_size(e.size)))
        return rows
