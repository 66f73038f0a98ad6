"""Running a notebook's code cells in-process, as a kernel would, to get the App its routes make (``nbroutes serve``).

Each run gets a fresh IPython shell: a new namespace and new nbroutes state, so a
reload never keeps a route the notebook no longer defines. The cells run in order
in the notebook's directory, with ``%load_ext nbroutes``, ``%%route``, the
``route:`` cell tag, ``nbroutes.crud`` and ``nbroutes.middleware`` working as in
Jupyter. Displays and widgets do nothing (there is no frontend), and route cells
get plain consoles, not route cards: no widget is built that nothing would show.
What cells print, and what their routes print while the cells run, is kept in
``NotebookRun.output``, not shown.

While the cells run, the routes are served on a private port of 127.0.0.1 (a free
one, never the serve port), as the kernel's own server would be: notebooks that
call their own API (``await http.fetch(nbroutes.url(...))``) work unchanged. That
server is closed before the run returns; serving the App is the caller's job.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import traceback
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from nbroutes.core.app import App
from nbroutes.core.middlewares import Middleware
from nbroutes.core.output import Console
from nbroutes.core.routing import Route
from nbroutes.errors import NotebookError
from nbroutes.kernel import extension as kernel
from nbroutes.kernel.consoles import ConsoleFactory, RouteConsole

__all__ = [
    "NotebookCell",
    "NotebookError",
    "NotebookRun",
    "SKIP_TAG",
    "describe",
    "load_notebook",
    "read_cells",
    "read_notebook",
    "run_notebook",
    "run_notebook_async",
]

SKIP_TAG = "nbroutes:skip"


@dataclass(frozen=True)
class NotebookCell:
    """A code cell: where it is in the notebook, its id, source and tags."""

    #: 1-based among the code cells, as Jupyter numbers them after "Run All".
    number: int
    #: 0-based position in the notebook, counting markdown and raw cells.
    index: int
    cell_id: str
    source: str
    tags: tuple[str, ...] = ()
    skipped: bool = False

    @property
    def first_line(self) -> str:
        """The first line that is not blank, to name the cell in messages."""
        return next((line.strip() for line in self.source.splitlines() if line.strip()), "")

    @property
    def name(self) -> str:
        """How messages name the cell: ``code cell 3 (notebook cell 7)``."""
        return f"code cell {self.number} (notebook cell {self.index + 1})"


@dataclass
class NotebookRun:
    """What running a notebook made: its App, its cells, its namespace and what its cells printed."""

    path: Path
    app: App
    cells: list[NotebookCell]
    namespace: dict[str, Any] = field(default_factory=dict)
    output: str = ""
    #: "nbroutes" for %%route notebooks, "kernel gateway" for ``# GET /path`` ones.
    kind: str = "nbroutes"

    def cell_of(self, made: Route | Middleware) -> NotebookCell | None:
        """The cell that made a route or middleware (owners are cell ids, or ``<cell id>:crud /api/x`` and such)."""
        for cell in self.cells:
            if made.owner == cell.cell_id or made.owner.startswith(f"{cell.cell_id}:"):
                return cell
        return None


class _QuietDisplayHook(DisplayHook):
    """Keeps ``_`` and ``Out`` up to date but shows nothing: there is no frontend.

    The output steps are overridden one by one, not ``__call__``, so that code replacing
    ``write_format_data`` on the hook (the Kernel Gateway adapter keeps a cell's result so) still gets it.
    """

    def start_displayhook(self) -> None:
        return None

    def write_output_prompt(self) -> None:
        return None

    def write_format_data(self, format_dict: Any, md_dict: Any = None) -> None:
        return None

    def finish_displayhook(self) -> None:
        return None


class _SilentPublisher(DisplayPublisher):
    """``display()``, ``update_display`` and ``clear_output`` do nothing: there is no frontend."""

    def publish(self, data: Any, metadata: Any = None, source: Any = None, **kwargs: Any) -> None:
        return None

    def clear_output(self, wait: bool = False) -> None:
        return None


class _RunConsole(RouteConsole):
    """A route's console while the notebook runs: what its handlers print, and their errors, are the output of
    the cells that sent those requests, so they go to ``NotebookRun.output`` (the notebook's own 500 demo is
    no log line)."""

    def __init__(self, name: str, output: io.StringIO) -> None:
        super().__init__(name)
        self._output = output

    def write(self, text: str, stream: str = "stdout") -> None:
        self._output.write(text)

    def error(self, summary: str, exc: BaseException) -> None:
        self._output.write(f"{summary}\n{self.format_traceback(exc)}")

    def warn(self, message: str) -> None:
        self._output.write(f"warning: {self.name}: {message}\n")


def _run_consoles(output: io.StringIO) -> ConsoleFactory:
    """The console factory of a run: plain consoles writing to ``output``, never widgets."""

    def make(
        state: kernel.KernelState, kind: str, pattern: str, note: str = "", *, tryable: bool = True
    ) -> RouteConsole:
        return _RunConsole(pattern, output)

    return make


class _NotebookShell(InteractiveShell):
    """An IPython shell that keeps the last error's traceback as text instead of printing it."""

    last_traceback = ""

    def _showtraceback(self, etype: Any, evalue: Any, stb: list[str]) -> None:
        self.last_traceback = self.InteractiveTB.stb2text(stb)

    def show_usage_error(self, exc: BaseException) -> None:
        self.last_traceback = f"UsageError: {exc}"


def _new_shell() -> _NotebookShell:
    config = Config()
    config.HistoryManager.enabled = False  # no history.sqlite, and no thread writing it
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.warn_venv = False
    # InteractiveShell.__init__ has no annotations.
    shell: _NotebookShell = _NotebookShell(  # type: ignore[no-untyped-call]
        config=config, displayhook_class=_QuietDisplayHook, display_pub_class=_SilentPublisher
    )
    return shell


def read_notebook(path: Path) -> dict[str, Any]:
    """The notebook at ``path`` as nbformat 4 JSON, its cells' sources joined into strings.

    An nbformat 4 file is read as plain JSON, without nbformat: importing it loads
    jsonschema and its format checkers (about 1 s, most of ``nbroutes serve``'s start),
    to check a schema that running the cells does not need. Older versions go through
    nbformat, which converts them.

    Raises NotebookError if the file cannot be read or is not a notebook.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookError(f"{path}: cannot read the notebook: {exc}", path) from None
    try:
        nb = json.loads(text)
    except ValueError as exc:
        raise NotebookError(f"{path}: cannot read the notebook: it is not JSON ({exc})", path) from None
    version = nb.get("nbformat") if isinstance(nb, dict) else None
    if not isinstance(version, int):
        raise NotebookError(
            f"{path}: cannot read the notebook: it has no nbformat version, so it is not a Jupyter notebook", path
        )
    if version != 4:
        nb = _converted(path, text)
    cells = nb.get("cells")
    if not isinstance(cells, list) or not all(isinstance(cell, dict) for cell in cells):
        raise NotebookError(f"{path}: cannot read the notebook: its 'cells' is not a list of cells", path)
    for cell in cells:
        source = cell.get("source", "")
        if isinstance(source, list):  # the file keeps a cell's source as a list of lines
            cell["source"] = "".join(str(line) for line in source)
    return nb  # type: ignore[no-any-return]  # checked above: a dict with a list of cells


def _converted(path: Path, text: str) -> dict[str, Any]:
    import nbformat  # only for notebooks older than nbformat 4 (or newer, which it refuses)

    try:
        nb = nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]  # nbformat: no annotations
    except (ValueError, KeyError, nbformat.ValidationError) as exc:
        raise NotebookError(f"{path}: cannot read the notebook: {exc}", path) from None
    return nb  # type: ignore[no-any-return]


def read_cells(path: Path, skip_tag: str = SKIP_TAG) -> tuple[dict[str, Any], list[NotebookCell]]:
    """The notebook at ``path`` and its code cells (those tagged ``skip_tag`` marked skipped).

    Raises NotebookError if the file cannot be read or is not a notebook.
    """
    nb = read_notebook(path)
    cells: list[NotebookCell] = []
    for index, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        tags = tuple(t for t in (cell.get("metadata", {}).get("tags") or []) if isinstance(t, str))
        cells.append(
            NotebookCell(
                number=len(cells) + 1,
                index=index,
                # Notebooks older than nbformat 4.5 have no ids; routes still need one owner per cell.
                cell_id=str(cell.get("id") or f"cell-{index}"),
                source=cell.get("source", ""),
                tags=tags,
                skipped=skip_tag in tags,
            )
        )
    return nb, cells


def load_notebook(path: str | os.PathLike[str], *, skip_tag: str = SKIP_TAG) -> App:
    """Run the notebook's code cells in a fresh shell and return the App holding its routes (no server started).

    Raises NotebookError if the notebook cannot be read or a cell fails; RuntimeError
    inside a running event loop (await ``run_notebook_async`` there).
    """
    return run_notebook(path, skip_tag=skip_tag).app


def run_notebook(path: str | os.PathLike[str], *, skip_tag: str = SKIP_TAG) -> NotebookRun:
    """``run_notebook_async`` on an event loop of its own.

    Raises NotebookError if the notebook cannot be read or a cell fails; RuntimeError
    inside a running event loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # none running: good (and asyncio.run outside this block, or cells' errors would chain to this one)
    else:
        raise RuntimeError("run_notebook cannot run inside an event loop; use await run_notebook_async(path)")
    return asyncio.run(run_notebook_async(path, skip_tag=skip_tag))


async def run_notebook_async(path: str | os.PathLike[str], *, skip_tag: str = SKIP_TAG) -> NotebookRun:
    """Run the notebook's code cells in order, in a fresh shell, in the notebook's directory; cells tagged
    ``skip_tag`` are not run. Returns the App and what the run made; no server is left running.

    Raises NotebookError if the notebook cannot be read or a cell fails (naming the cell, with its traceback).
    """
    notebook = Path(path).resolve()
    nb, cells = read_cells(notebook, skip_tag)
    shell = _new_shell()
    previous = InteractiveShell._instance
    # nbroutes.crud, nbroutes.middleware and get_ipython() find the shell as the process's IPython.
    InteractiveShell._instance = shell  # type: ignore[assignment]  # traitlets declares _instance as None
    cwd = os.getcwd()
    output = io.StringIO()
    kernel_state = kernel.state(shell, consoles=_run_consoles(output))
    kernel_state.host, kernel_state.port = "127.0.0.1", 0  # %load_ext serves on a private port, never the serve port
    try:
        os.chdir(notebook.parent)
        with redirect_stdout(output), redirect_stderr(output):
            builder = _kernel_gateway_builder(nb)
            if builder is not None:
                app = _build_kernel_gateway(builder, nb, shell, notebook)
                kind = "kernel gateway"
            else:
                for cell in cells:
                    if not cell.skipped:
                        await _run_cell(shell, kernel_state, cell, notebook)
                app, kind = kernel_state.app, "nbroutes"
    finally:
        kernel_state.stop(quiet=True)
        kernel_state.cell_metadata = None
        os.chdir(cwd)
        InteractiveShell._instance = previous
    _plain_consoles(app)
    app.title = notebook.stem  # the served document is titled as `nbroutes openapi` prints it
    return NotebookRun(notebook, app, cells, shell.user_ns, output.getvalue(), kind)


async def _run_cell(shell: _NotebookShell, kernel_state: kernel.KernelState, cell: NotebookCell, path: Path) -> None:
    # What the kernel's execute request would carry: the route-tag transformer and the
    # cell-owned routes read it through kernel._parent_metadata.
    kernel_state.cell_metadata = {"cellId": cell.cell_id, "tags": list(cell.tags)}
    shell.last_traceback = ""
    transformed: str = cell.source
    failed: Any = None
    try:
        transformed = shell.transform_cell(cell.source)  # type: ignore[no-untyped-call]  # IPython: no annotations
    except Exception:  # noqa: BLE001 - IPython shows a transformer's error as the cell's error
        failed = sys.exc_info()
    result = await shell.run_cell_async(
        cell.source,
        store_history=True,
        transformed_cell=transformed,
        preprocessing_exc_tuple=failed,
        cell_id=cell.cell_id,
    )
    if not result.success:
        error = result.error_before_exec or result.error_in_exec
        text = shell.last_traceback or "".join(traceback.format_exception_only(type(error), error)).rstrip()
        raise NotebookError(f"{path.name}: {cell.name} failed: {cell.first_line}", path, cell, text)


def _kernel_gateway_builder(nb: Any) -> Any:
    """The Kernel Gateway adapter's module when ``nb`` is a ``# GET /path`` notebook, else None."""
    from nbroutes.headless import kernelgateway

    return kernelgateway if kernelgateway.is_kernel_gateway_notebook(nb) else None


def _build_kernel_gateway(builder: Any, nb: Any, shell: InteractiveShell, path: Path) -> App:
    try:
        app: App = builder.build_app(nb, shell, directory=path.parent, filename=path.name)
    except NotebookError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure while running the notebook is the notebook's error
        cause = exc.__cause__ or exc  # a startup cell's own error, when the adapter wrapped it
        raise NotebookError(f"{path.name}: {exc}", path, None, "".join(traceback.format_exception(cause))) from exc
    return app


def _plain_consoles(app: App) -> None:
    """Route output to the terminal once the run is over: what routes print while serving is the server's output."""
    for route in app.router.routes:
        route.console = Console(route.pattern.text)
    for middleware in app.middleware:
        middleware.console = Console(middleware.name)


def describe(cells: Sequence[NotebookCell]) -> str:
    """``12 code cells, 2 skipped``: a summary for messages."""
    skipped = sum(c.skipped for c in cells)
    text = f"{len(cells)} code cell{'s' * (len(cells) != 1)}"
    return f"{text}, {skipped} skipped" if skipped else text
