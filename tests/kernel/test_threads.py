"""KernelLoop: work handed to the kernel's loop from any thread, never waited on, errors logged."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from nbroutes.kernel.threads import KernelLoop, current_kernel_loop
from tests.support import on_loop


def test_current_outside_a_running_loop_says_so():
    with pytest.raises(RuntimeError):
        KernelLoop.current()
    assert current_kernel_loop() is None


def test_current_is_the_running_loop():
    async def main() -> tuple[bool, bool]:
        kernel_loop = KernelLoop.current()
        found = current_kernel_loop()
        return kernel_loop.loop is asyncio.get_running_loop(), found is not None and found.loop is kernel_loop.loop

    assert asyncio.run(main()) == (True, True)


def test_call_from_another_thread_runs_on_the_loop_thread(loop):
    kernel_loop = on_loop(loop, KernelLoop.current)
    ran_on: list[int] = []
    done = threading.Event()
    assert not kernel_loop.on_loop_thread()  # the test's thread is not the loop's

    def work(tag: str) -> None:
        ran_on.append(threading.get_ident())
        assert kernel_loop.on_loop_thread()
        done.set()

    kernel_loop.call(work, "x")
    assert done.wait(5)
    assert ran_on == [on_loop(loop, threading.get_ident)]


def test_call_on_the_loop_thread_does_not_run_now_but_soon(loop):
    order: list[str] = []

    async def from_a_callback() -> None:
        kernel_loop = KernelLoop.current()
        kernel_loop.call(order.append, "later")
        order.append("now")  # call() never runs the work inline, so a callback never re-enters itself
        await asyncio.sleep(0)

    on_loop(loop, from_a_callback)
    assert order == ["now", "later"]


def test_spawn_runs_a_coroutine_on_the_loop(loop):
    kernel_loop = on_loop(loop, KernelLoop.current)
    result: asyncio.Future[str] = on_loop(loop, loop.create_future)

    async def work() -> None:
        await asyncio.sleep(0)
        result.set_result("done")

    kernel_loop.spawn(work)
    assert on_loop(loop, lambda: asyncio.wait_for(result, 5)) == "done"


def test_a_spawned_failure_is_logged_with_what_it_was(loop, caplog):
    kernel_loop = on_loop(loop, KernelLoop.current)
    finished = threading.Event()

    async def fails() -> None:
        try:
            raise ValueError("no such row")
        finally:
            loop.call_soon(finished.set)  # after the task's done callback has logged

    with caplog.at_level(logging.ERROR, "nbroutes.application"):
        kernel_loop.spawn(fails, what="the Send button")
        assert finished.wait(5)
        on_loop(loop, asyncio.sleep, 0)
    [record] = caplog.records
    assert record.getMessage() == "nbroutes: the Send button failed"
    assert isinstance(record.exc_info[1], ValueError)
