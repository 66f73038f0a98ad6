"""The request log: newest first, bounded, sizes for people."""

from __future__ import annotations

import pytest

from nbroutes.core.requests import Request
from nbroutes.core.responses import Response
from nbroutes.kernel.accesslog import AccessLog, human_size


def _answer(log: AccessLog, path: str, status: int = 200, size: int = 2) -> None:
    log.add(Request("GET", path, [], b""), Response(b"", status), 0.0015, size)


def test_newest_first_with_the_fields_of_each_request() -> None:
    log = AccessLog()
    _answer(log, "/a")
    _answer(log, "/b?x=1", 404, 2048)
    newest = log.newest(5)
    assert [(e.method, e.path, e.status, e.size) for e in newest] == [
        ("GET", "/b?x=1", 404, 2048),
        ("GET", "/a", 200, 2),
    ]
    assert newest[0].ms == pytest.approx(1.5)
    assert log.rows(1) == [
        ("TIME", "METHOD", "PATH", "STATUS", "MS", "SIZE"),
        (log.rows(1)[1][0], "GET", "/b?x=1", "404", "1.5", "2.0 KB"),
    ]


def test_the_buffer_is_bounded_so_a_long_running_kernel_does_not_grow() -> None:
    log = AccessLog(maxlen=100)
    for i in range(1000):
        _answer(log, f"/n/{i}")
    assert len(log) == 100
    assert log.newest(1)[0].path == "/n/999"
    assert log.newest(1000)[-1].path == "/n/900"
    assert log.newest(0) == []


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (5 * 1024**2, "5.0 MB"),
        (3 * 1024**3, "3.0 GB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text
