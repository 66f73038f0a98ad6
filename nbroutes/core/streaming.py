"""Streaming responses: generators, ``res.write()``/``res.end()``, and server-sent events.

A handler that returns a generator or async generator streams a chunked
response, one chunk per item, sent as it is produced. ``sse(events)`` does the
same as ``text/event-stream``. When the client goes away the server cancels the
stream and the generator is closed, so its ``finally`` blocks run.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, cast

from nbroutes.core.responses import TEXT_TYPE, Response, dumps
from nbroutes.errors import StreamError

__all__ = ["stream_response", "sse", "ChunkQueue", "StreamError", "cancels_this_task"]


def cancels_this_task(exc: BaseException) -> bool:
    """True for a CancelledError aimed at the task running now (its client left, the server is stopping).

    A CancelledError that code raised by itself, with no one cancelling the task, is only an error.
    Python 3.10 cannot tell the two apart (``Task.cancelling`` is 3.11's), so there every
    CancelledError is taken as the task's own cancellation: it stops the request.
    """
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    if task is None:
        return False
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


def chunk_bytes(chunk: Any) -> bytes:
    """A chunk as bytes: str as UTF-8, bytes as they are, anything else as a line of JSON."""
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    return dumps(chunk) + b"\n"


async def iterate(source: Iterator[Any] | AsyncIterator[Any], encode: Any = chunk_bytes) -> AsyncIterator[bytes]:
    """Encode the items of a (sync or async) iterator, closing it however the stream ends.

    Raises StreamError in place of a BaseException from the source (sys.exit() in a generator), which
    would otherwise stop the server's event loop; a cancellation of the server's task goes through.
    """
    is_async = inspect.isasyncgen(source) or hasattr(source, "__anext__")
    if not is_async:
        source = iter(source)  # type: ignore[arg-type]
    try:
        while True:
            # Only what the source raises is caught: a GeneratorExit thrown in at our own yield is this
            # stream being closed, and must go on.
            try:
                item = await source.__anext__() if is_async else next(source)  # type: ignore[union-attr,arg-type]
            except (StopIteration, StopAsyncIteration):
                return
            except Exception:
                raise
            except BaseException as exc:
                if cancels_this_task(exc):
                    raise
                raise StreamError(f"the stream raised {type(exc).__name__}: {exc}") from exc
            yield encode(item)
            if not is_async:
                await asyncio.sleep(0)  # let the server flush, and notice a client that left
    finally:
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()
        elif hasattr(source, "close"):
            source.close()


def stream_response(value: Any, status: int = 200, headers: Any = None, content_type: str | None = None) -> Response:
    """A chunked response from a generator or async generator."""
    return Response(b"", status, headers, content_type=content_type or TEXT_TYPE, stream=iterate(value))


def _event(event: Any) -> bytes:
    if isinstance(event, dict) and event.keys() & {"data", "event", "id", "retry", "comment"}:
        lines = []
        if "comment" in event:
            lines += [f": {line}" for line in str(event["comment"]).splitlines() or [""]]
        for key in ("event", "id", "retry"):
            if key in event:
                lines.append(f"{key}: {event[key]}")
        if "data" in event:
            data = event["data"]
            text = data if isinstance(data, str) else dumps(data).decode()
            lines += [f"data: {line}" for line in text.splitlines() or [""]]
        return ("\n".join(lines) + "\n\n").encode()
    text = event if isinstance(event, str) else dumps(event).decode()
    return ("\n".join(f"data: {line}" for line in text.splitlines() or [""]) + "\n\n").encode()


def sse(events: Iterable[Any] | AsyncIterator[Any], *, headers: dict[str, str] | None = None) -> Response:
    """A ``text/event-stream`` response from a (sync or async) generator of events, flushed as produced.

    An event is a str or JSON value (sent as ``data:``), or a dict with any of
    ``data``, ``event``, ``id``, ``retry`` and ``comment``.
    """
    # hasattr, as iterate() tests it; mypy does not narrow to AsyncIterator by hasattr, hence the cast.
    source = cast(AsyncIterator[Any], events) if hasattr(events, "__anext__") else iter(events)
    extra = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})}
    return Response(b"", 200, extra, content_type="text/event-stream; charset=utf-8", stream=iterate(source, _event))


class ChunkQueue:
    """The chunks a handler sends with ``res.write()``, for a response already on its way."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def put(self, chunk: bytes | None) -> None:
        self.queue.put_nowait(chunk)
        if not self.started.done():
            self.started.set_result(None)

    async def drain(self, task: asyncio.Future[Any]) -> AsyncIterator[bytes]:
        try:
            while True:
                chunk = await self.queue.get()
                if chunk is None:
                    return
                yield chunk
        finally:
            if not task.done():
                task.cancel()  # the client left, or the stream ended early
