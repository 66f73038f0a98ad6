"""Markers for every test by what it starts, and the guard that keeps ``make test-fast`` honest.

A test is marked by its folder (``tests/browser``, ``tests/reliability``) and by the fixtures it uses (the
ones that start kernels, servers and other processes); a module that starts processes in its own helper
functions says so with ``pytestmark`` or a mark on the test. ``make test-fast`` deselects every marked test
and sets ``NBROUTES_FAST_GUARD=1``: then starting a process or a kernel fails the test that did it, and the
run, so a test missing its mark cannot hide in the fast run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Before tests.support is imported anywhere, so that its asserts explain themselves as a test's do.
pytest.register_assert_rewrite("tests.support")

TESTS = Path(__file__).parent

#: Folders whose every test carries the marker.
FOLDER_MARKS = {"browser": "browser", "reliability": "reliability"}

#: Fixtures that start something, and what: a test using one (directly or through another fixture) is marked.
FIXTURE_MARKS = {
    # tests/kernel/conftest.py: an ipykernel through jupyter_client.
    "kernel": ("kernel",),
    "new_kernel": ("kernel",),
    # tests/kernel/test_validation_notebook.py: a kernel that ran the notebook.
    "notebook_kernel": ("kernel",),
    # tests/test_proxy.py: a jupyter server that starts a kernel.
    "hub": ("subprocess", "kernel"),
    # tests/headless/test_kernelgateway.py: jupyter kernelgateway (and its kernel) beside nbroutes.
    "gateway_pair": ("subprocess", "kernel"),
    # tests/servers/test_asgi.py: uvicorn and a Tornado server, each in a process of its own.
    "servers": ("subprocess",),
    # tests/browser/conftest.py: jupyter lab, and Chromium.
    "lab": ("browser",),
    "browser": ("browser",),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path))
        try:
            top = path.relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if top in FOLDER_MARKS:
            item.add_marker(FOLDER_MARKS[top])
        for fixture in getattr(item, "fixturenames", ()):
            for mark in FIXTURE_MARKS.get(fixture, ()):
                item.add_marker(mark)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop running in a background thread, as the kernel's loop runs beside the test."""
    from tests.support import background_loop

    with background_loop() as running:
        yield running


# -- the fast-run guard ------------------------------------------------------------------------

FAST_GUARD = os.environ.get("NBROUTES_FAST_GUARD") == "1"
_current: list[str] = [""]  # the node id of the test running now
_violations: list[str] = []


class UnmarkedProcessError(RuntimeError):
    """A test started a process or a kernel under NBROUTES_FAST_GUARD without the marker that says so."""


def _refuse(what: str) -> None:
    message = (
        f"{_current[0] or 'a fixture'} started {what} under NBROUTES_FAST_GUARD=1: mark it "
        "(kernel, subprocess, browser) in tests/conftest.py's tables or with pytest.mark, "
        "so that make test-fast deselects it"
    )
    _violations.append(message)
    raise UnmarkedProcessError(message)


def _install_guard() -> None:
    popen_init = subprocess.Popen.__init__

    def guarded_popen(self: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
        _refuse(f"a process ({args!r:.120})")
        popen_init(self, args, *rest, **options)  # pragma: no cover - _refuse raises

    subprocess.Popen.__init__ = guarded_popen  # type: ignore[method-assign]

    def guarded_fork() -> int:
        _refuse("a process (os.fork)")
        return -1  # pragma: no cover - _refuse raises

    os.fork = guarded_fork
    try:
        from jupyter_client.manager import KernelManager
    except ImportError:  # without jupyter_client no test can start a kernel this way
        return

    def guarded_start_kernel(self: Any, **kwargs: Any) -> None:
        _refuse("a Jupyter kernel")

    KernelManager.start_kernel = guarded_start_kernel  # type: ignore[method-assign]


if FAST_GUARD:
    _install_guard()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    _current[0] = item.nodeid
    yield
    _current[0] = ""


def pytest_sessionfinish(session: pytest.Session) -> None:
    # A test may catch the guard's error (a test of error handling would): the run fails all the same.
    if _violations:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _violations:
        terminalreporter.section("NBROUTES_FAST_GUARD: unmarked tests that start processes", red=True)
        for message in dict.fromkeys(_violations):
            terminalreporter.write_line(message)
