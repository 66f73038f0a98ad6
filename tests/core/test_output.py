"""Route consoles and stdout routing: a handler's print() goes to its own route's console, per task."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import traceback

from nbroutes.core.output import Console, RoutedStream, current_console, route_stdio, unroute_stdio


class Recording(Console):
    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.writes: list[tuple[str, str]] = []

    def write(self, text: str, stream: str = "stdout") -> None:
        self.writes.append((text, stream))


def test_without_a_console_a_routed_stream_writes_to_the_stream_it_replaced():
    target = io.StringIO()
    stream = RoutedStream(target, "stdout")
    assert stream.write("hello\n") == 6
    assert target.getvalue() == "hello\n"


def test_with_a_console_writes_go_to_it_with_the_stream_name():
    target, console = io.StringIO(), Recording("/api/x")
    stream = RoutedStream(target, "stderr")
    token = current_console.set(console)
    try:
        assert stream.write("oops") == 4
        stream.writelines(["a", "b"])
    finally:
        current_console.reset(token)
    assert console.writes == [("oops", "stderr"), ("a", "stderr"), ("b", "stderr")]
    assert target.getvalue() == ""


def test_everything_but_write_is_the_replaced_streams():
    target = io.StringIO()
    target.custom = "ipykernel's own attribute"  # type: ignore[attr-defined]
    stream = RoutedStream(target, "stdout")
    assert stream.custom == "ipykernel's own attribute"
    assert stream.getvalue() == ""
    assert stream.closed is False


def test_concurrent_tasks_keep_their_own_console():
    one, two = Recording("one"), Recording("two")
    stream = RoutedStream(io.StringIO(), "stdout")

    async def handler(console: Console, text: str) -> None:
        current_console.set(console)  # a task's context is its own copy
        for i in range(3):
            stream.write(f"{text}{i}")
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(handler(one, "a"), handler(two, "b"))

    asyncio.run(main())
    assert [t for t, _ in one.writes] == ["a0", "a1", "a2"]
    assert [t for t, _ in two.writes] == ["b0", "b1", "b2"]
    assert current_console.get() is None


def test_route_stdio_installs_once_and_unroute_puts_the_streams_back(monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    route_stdio()
    route_stdio()  # a second load_ext must not wrap the wrapper
    assert isinstance(sys.stdout, RoutedStream) and sys.stdout._target is out
    assert isinstance(sys.stderr, RoutedStream) and sys.stderr._target is err
    unroute_stdio()
    assert sys.stdout is out and sys.stderr is err
    unroute_stdio()  # and a second unload leaves them alone
    assert sys.stdout is out


def test_the_default_console_writes_to_the_process_streams(capfd):
    Console("/api/x").write("to stdout\n")
    Console("/api/x").write("to stderr\n", "stderr")
    captured = capfd.readouterr()
    assert captured.out == "to stdout\n"
    assert captured.err == "to stderr\n"


def test_the_default_console_logs_errors_and_warnings(caplog):
    with caplog.at_level(logging.WARNING, "nbroutes.application"):
        try:
            raise ValueError("boom")
        except ValueError as exc:
            Console("/api/x").error("GET /api/x failed", exc)
        Console("/api/x").warn("the response is over the limit")
    error, warning = caplog.records
    assert (error.levelname, error.getMessage()) == ("ERROR", "GET /api/x failed")
    assert error.exc_info is not None and error.exc_info[1].args == ("boom",)
    assert (warning.levelname, warning.getMessage()) == ("WARNING", "/api/x: the response is over the limit")


def test_a_traceback_starts_at_the_handlers_own_code():
    from nbroutes.core.handlers import Endpoint
    from nbroutes.core.requests import Request
    from nbroutes.core.responses import ApiResponse

    def GET(req):
        raise KeyError("missing")

    endpoint = Endpoint(GET)
    endpoint.prepare([])
    try:
        endpoint.call(Request("GET", "/api/boom"), ApiResponse())
    except KeyError as exc:
        # As the server's frame sees it: nbroutes' own frames (Endpoint.call) above the handler's.
        error = exc.with_traceback(exc.__traceback__.tb_next)
    assert "handlers.py" in "".join(traceback.format_tb(error.__traceback__))
    lines = Console.format_traceback(error).splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1].startswith(f'  File "{__file__}"') and lines[1].endswith("in GET")
    assert "handlers.py" not in "\n".join(lines)
    assert lines[-1] == "KeyError: 'missing'"
