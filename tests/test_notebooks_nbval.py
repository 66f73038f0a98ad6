"""Every notebook in ``notebooks/`` runs top to bottom under ``pytest --nbval``, compared with its stored outputs.

Each notebook is copied into a tmp dir first (``todo-api.ipynb`` writes ``todo.db`` next to itself, so a run
never sees an earlier run's rows) and checked by nbval in a child pytest with ``tests/nbval_sanitize.cfg``,
which replaces what changes from run to run: ports (the kernel serves on a free port here, not the
``NBROUTES_PORT=8000`` the outputs were stored with), times, sizes that depend on them, dates, ids.

A route card (and every other widget) is stored as its ``text/plain`` alone: its
``application/vnd.jupyter.widget-view+json`` names a model that no longer exists when the notebook is opened,
which JupyterLab shows as "Error displaying widget: model not found" (and logs as an error); nbval never
compares that key (model ids are random) but does compare the text.

To store the outputs again after changing a notebook or what nbroutes prints:

    .venv/bin/python -m tests.test_notebooks_nbval
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support import free_port

pytestmark = [pytest.mark.subprocess, pytest.mark.kernel]  # a child pytest, whose nbval starts kernels

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
WIDGET = "application/vnd.jupyter.widget-view+json"
TIMEOUT = 50  # seconds for one notebook's nbval run, kernel start included


def kernel_env(port: int) -> dict[str, str]:
    """This environment, with nbroutes serving on ``port`` and no JupyterHub (the outputs show local URLs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBROUTES_", "JUPYTERHUB_"))}
    env["NBROUTES_PORT"] = str(port)
    return env


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_matches_its_stored_outputs(notebook: Path, tmp_path: Path) -> None:
    copy = tmp_path / notebook.name
    shutil.copy(notebook, copy)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval",
        "--nbval-current-env",
        f"--nbval-sanitize-with={SANITIZE}",
        f"--rootdir={tmp_path}",
        "-p",
        "no:cacheprovider",
        "-q",
        str(copy),
    ]
    env = kernel_env(free_port())
    env.pop("PYTEST_ADDOPTS", None)
    try:
        run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"nbval on {notebook.name} took over {TIMEOUT}s:\n{error.stdout}\n{error.stderr}", pytrace=False)
    assert run.returncode == 0, f"nbval failed on {notebook.name}:\n{run.stdout}\n{run.stderr}"
    # nbval collects one item per code cell: make sure they ran, not that nothing was collected.
    cells = sum(1 for line in notebook.read_text().splitlines() if '"cell_type": "code"' in line)
    assert f"{cells} passed" in run.stdout, run.stdout


def store_outputs(port: int = 8000) -> None:
    """Run each notebook with nbclient (in a tmp copy, nbroutes on ``port``) and store its outputs in place.

    Code cells are left as they are: the run must see the same sources, or this raises.
    """
    import nbformat
    from nbclient import NotebookClient

    for notebook in NOTEBOOKS:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / notebook.name
            shutil.copy(notebook, copy)
            ran = nbformat.read(copy, as_version=4)
            client = NotebookClient(
                ran,
                timeout=60,
                kernel_name="python3",
                resources={"metadata": {"path": tmp}},
                record_timing=False,
                store_widget_state=False,
            )
            client.execute(env=kernel_env(port))
        stored = nbformat.read(notebook, as_version=4)
        for mine, theirs in zip(stored.cells, ran.cells, strict=True):
            if mine.cell_type != "code":
                continue
            if mine.source != theirs.source:
                raise RuntimeError(f"{notebook.name}: a cell changed while it ran")
            for output in theirs.outputs:
                if WIDGET in output.get("data", {}):
                    del output["data"][WIDGET]
            mine.outputs = theirs.outputs
            mine.execution_count = theirs.execution_count
        nbformat.write(stored, notebook)
        print(f"stored the outputs of {notebook.relative_to(ROOT)}")


if __name__ == "__main__":
    store_outputs()
