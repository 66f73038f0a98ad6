"""Real JupyterLab in real headless Chromium: a ``lab`` server per module, a Playwright ``page`` per test.

``lab`` runs ``jupyter lab`` from this venv on a free port, with a random token, on a tmp copy of
``notebooks/*.ipynb``, with its own config, runtime, settings and IPython dirs, so nothing of the user's own
setup can interfere; its kernels inherit ``NBROUTES_PORT=lab.nbroutes_port``. ``page`` is Debian's
``/usr/bin/chromium`` driven by Playwright's sync API (never a downloaded browser); on teardown it saves
``test-output/<test>/final.png``. ``LabPage`` (the ``nb`` fixture) wraps the few things a test does in
JupyterLab: open a notebook, run all cells, wait for the kernel, read a cell's output.

Without Chromium or Playwright the tests skip, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import JupyterServer, http_request, jupyter_server, unavailable

ROOT = Path(__file__).parents[2]
NOTEBOOKS = ROOT / "notebooks"
OUTPUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = "apt-get install -y chromium chromium-driver && .venv/bin/pip install -e '.[test]'"
# Timeouts, in seconds: every wait is bounded, and generous for a slow CI machine.
LAB_START_TIMEOUT = 60  # until jupyter lab answers /api/status
KERNEL_START_TIMEOUT = 60  # until a notebook is on the page and its (first) kernel idle
EXECUTE_TIMEOUT = 60  # until a run is over
UI_TIMEOUT = 30  # Playwright's default, and until a text or an output shows

# JupyterLab user settings: no news/update prompt, no toasts over the page, every cell in the DOM
# (windowingMode "none": no virtualisation, so off-screen cells have their outputs), the kernel of the
# notebook's metadata started without a "Select Kernel" dialog, no autosave, no restart confirmation.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/apputils-extension/sessionDialogs.jupyterlab-settings": {"skipKernelRestartDialog": True},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


#: The JupyterLab this module's tests run in (tests/support.py starts and stops it).
Lab = JupyterServer


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    """GET ``http://127.0.0.1:{port}{path}`` from this process: (status, body)."""
    reply = http_request(port, "GET", path, timeout=timeout)
    return reply.status, reply.body


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` from this venv, up and answering ``/api/status``; stopped (kernels and all) afterwards."""
    # No news feed, no update check (the closed network would only time out), and window.jupyterapp for helpers.
    server_config = {
        "LabApp": {
            "news_url": None,
            "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            "expose_app_in_browser": True,
        }
    }
    with jupyter_server(
        tmp_path_factory.mktemp("lab"),
        lab=True,
        config=server_config,
        lab_settings=LAB_SETTINGS,
        files=sorted(NOTEBOOKS.glob("*.ipynb")),
        timeout=LAB_START_TIMEOUT,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright's sync API (a fresh temp profile)."""
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} not found", INSTALL)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed", INSTALL)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _test_dir(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    path = OUTPUT / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new page (own context, 1400x1000); saves ``test-output/<test>/final.png`` when the test ends.

    Browser console errors and page errors are kept in ``page.console_errors`` and shown with a failure.
    """
    out = _test_dir(request)
    for old in out.glob("*.png"):
        old.unlink()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT * 1000)
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda error: page.console_errors.append(f"pageerror: {error}"))
    request.node.browser_page = page
    try:
        yield page
    finally:
        try:
            page.screenshot(path=str(out / "final.png"))
        except Exception as error:  # a crashed page must not hide the test's own failure
            print(f"no final screenshot: {error}", file=sys.stderr)
        finally:
            context.close()


@pytest.fixture
def screenshot(page: Any, request: pytest.FixtureRequest):
    """``screenshot(name)`` saves the page as ``test-output/<test>/<name>.png`` and returns the path."""
    out = _test_dir(request)

    def take(name: str, full_page: bool = False) -> Path:
        path = out / (re.sub(r"[^\w.-]+", "_", name) + ".png")
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Add the jupyter lab log and the browser's console errors to the report of a failed test."""
    report = yield
    if report.failed and call.when in ("setup", "call"):
        lab = getattr(item, "funcargs", {}).get("lab")
        if isinstance(lab, Lab) and lab.log_tail():
            report.sections.append(("jupyter lab log (tail)", lab.log_tail()))
        page = getattr(item, "browser_page", None)
        if page is not None and page.console_errors:
            report.sections.append(("browser console errors", "\n".join(page.console_errors[-40:])))
    return report


class LabPage:
    """The JupyterLab UI in ``page``, as a test uses it, always on the notebook of the current tab.

    Cell indexes count every cell (markdown too), as in the ``.ipynb``. Every wait is bounded and raises a
    ``TimeoutError`` (Playwright's or the builtin) saying what it waited for. State is read from the DOM where a
    user sees it (prompts, the toolbar's execution indicator, outputs) and from ``window.jupyterapp`` (exposed by
    the ``lab`` fixture) for what the DOM does not say reliably (which tab is current, its kernel, its model).
    """

    # The current tab's notebook is idle: its kernel is idle, the toolbar's execution indicator is idle, and no
    # prompt reads [*] (a cell queued or running).
    _IDLE_JS = """() => {
        const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        if (!widget || !widget.sessionContext || !widget.content || !widget.content.model) return false;
        const kernel = widget.sessionContext.session && widget.sessionContext.session.kernel;
        if (!kernel || kernel.status !== 'idle') return false;
        const indicator = widget.node.querySelector('.jp-Notebook-ExecutionIndicator');
        if (!indicator || indicator.dataset.status !== 'idle') return false;
        return !Array.from(widget.node.querySelectorAll('.jp-Notebook .jp-InputPrompt'))
            .some(prompt => prompt.textContent.includes('*'));
    }"""
    _PROMPTS_JS = """() => Array.from(window.jupyterapp.shell.currentWidget.node
        .querySelectorAll('.jp-Notebook .jp-InputPrompt')).map(prompt => prompt.textContent)"""

    def __init__(self, page: Any, lab: Lab) -> None:
        self.page = page
        self.lab = lab

    @property
    def panel(self) -> Any:
        """The ``.jp-NotebookPanel`` of the current tab (found by its widget id, as other tabs stay in the DOM)."""
        widget_id = self.page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
        return self.page.locator(f'[id="{widget_id}"]')

    @property
    def cells(self) -> Any:
        """Every ``.jp-Cell`` of the notebook (all are in the DOM: the lab's windowingMode is "none")."""
        return self.panel.locator(".jp-Notebook .jp-Cell")

    def cell(self, index: int) -> Any:
        """The ``.jp-Cell`` at ``index``."""
        return self.cells.nth(index)

    def open_notebook(self, name: str, timeout: float = KERNEL_START_TIMEOUT) -> None:
        """Load ``/lab/tree/{name}`` (with ``reset``: no tabs restored from an earlier test), then wait until it is
        the current tab, its cells are on the page and its kernel is started and idle, accepting a "Select Kernel"
        dialog should one appear."""
        self.page.goto(f"{self.lab.url}/lab/tree/{name}?reset&token={self.lab.token}")
        ready = """(name) => {
            const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            return !!(widget && widget.context && widget.context.path === name
                      && widget.node.querySelector('.jp-Notebook .jp-Cell'));
        }"""
        self.page.wait_for_function(ready, arg=name, timeout=timeout * 1000, polling=100)
        deadline = time.monotonic() + timeout
        while not self.page.evaluate(self._IDLE_JS):
            dialog = self.page.locator(".jp-Dialog")
            if dialog.count() and "Select Kernel" in (dialog.first.text_content() or ""):
                dialog.first.locator(".jp-Dialog-button.jp-mod-accept").click()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel of {name} was not started and idle within {timeout}s")
            time.sleep(0.2)

    def _wait_started(self, before: list[str], what: str) -> None:
        """Wait until an execution visibly began: a prompt reads ``[*]`` or the prompts changed (fast cells may
        finish between two polls). Without this, ``wait_idle`` right after a click could see the idle state of
        before the click."""
        started = f"""(before) => {{
            const prompts = ({self._PROMPTS_JS})();
            return prompts.some(p => p.includes('*')) || JSON.stringify(prompts) !== JSON.stringify(before);
        }}"""
        try:
            self.page.wait_for_function(started, arg=before, timeout=10_000, polling=100)
        except Exception as error:  # Playwright's TimeoutError says only the timeout
            raise TimeoutError(f"{what}: no cell started running within 10s") from error

    def run_all(self, wait: bool = True, timeout: float = EXECUTE_TIMEOUT) -> None:
        """Run → Run All Cells from the menu bar; wait until execution began and, with ``wait``, until idle again.
        As in JupyterLab, Run All stops at the first cell that raises: check ``errors()``."""
        before = self.page.evaluate(self._PROMPTS_JS)
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        label = self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))
        self.page.locator(".lm-Menu-item", has=label).click()
        self._wait_started(before, "Run All Cells")
        if wait:
            self.wait_idle(timeout)

    def run_cell(self, index: int, wait: bool = True, timeout: float = EXECUTE_TIMEOUT) -> None:
        """Select cell ``index`` (a click on its input prompt) and run it with Ctrl+Enter (it stays selected);
        wait until it began and, with ``wait``, until idle again."""
        before = self.page.evaluate(self._PROMPTS_JS)
        self.cell(index).locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Control+Enter")
        self._wait_started(before, f"cell {index}")
        if wait:
            self.wait_idle(timeout)

    def wait_idle(self, timeout: float = EXECUTE_TIMEOUT) -> None:
        """Wait until the kernel is idle and no cell's prompt reads ``[*]`` (queued or running)."""
        try:
            self.page.wait_for_function(self._IDLE_JS, timeout=timeout * 1000, polling=200)
        except Exception as error:
            raise TimeoutError(f"the notebook was not idle within {timeout}s") from error

    def cell_index(self, source: str) -> int:
        """The index of the first cell whose source contains ``source`` (read from the notebook's model)."""
        index = self.page.evaluate(
            """(source) => {
                const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
                for (let i = 0; i < cells.length; i++) {
                    if (cells.get(i).sharedModel.getSource().includes(source)) return i;
                }
                return -1;
            }""",
            source,
        )
        if index < 0:
            raise LookupError(f"no cell contains {source!r}")
        return index

    def cell_output(self, index: int) -> str:
        """The text of every output of cell ``index`` (streams, results, errors, rendered widgets) as the page
        shows it (``innerText``: a widget's children on their own lines), outputs joined by newlines.
        Does not wait: see ``wait_for_output``."""
        outputs = self.cell(index).locator(".jp-OutputArea-output")
        return "\n".join(outputs.all_inner_texts())

    def wait_for_output(self, index: int, text: str, timeout: float = UI_TIMEOUT) -> str:
        """Wait until cell ``index``'s outputs contain ``text`` (a widget renders some time after its output
        arrives); returns the whole output text."""
        deadline = time.monotonic() + timeout
        while True:
            output = self.cell_output(index)
            if text in output:
                return output
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell {index} did not show {text!r} within {timeout}s; it shows:\n{output}")
            time.sleep(0.2)

    def wait_for_text(self, text: str, timeout: float = UI_TIMEOUT) -> Any:
        """Wait until ``text`` is visible somewhere in the notebook; returns a locator of the first element showing
        it (Playwright's ``get_by_text``: substring, case-insensitive, whitespace normalised)."""
        found = self.panel.get_by_text(text).first
        found.wait_for(state="visible", timeout=timeout * 1000)
        return found

    def errors(self) -> list[str]:
        """``"<cell index>: <ename>: <evalue>"`` for each error output in the notebook's model."""
        return self.page.evaluate("""() => {
            const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
            const found = [];
            for (let i = 0; i < cells.length; i++) {
                const outputs = cells.get(i).outputs;
                for (let j = 0; outputs && j < outputs.length; j++) {
                    const out = outputs.get(j).toJSON();
                    if (out.output_type === 'error') found.push(`${i}: ${out.ename}: ${out.evalue}`);
                }
            }
            return found;
        }""")


@pytest.fixture
def nb(page: Any, lab: Lab) -> LabPage:
    """A ``LabPage`` on the test's page and the module's lab, after shutting down the kernels (and sessions) of
    earlier tests, so each test starts its notebook's kernel afresh and ``lab.nbroutes_port`` is free."""
    lab.shutdown_kernels()
    return LabPage(page, lab)
