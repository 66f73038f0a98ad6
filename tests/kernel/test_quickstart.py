"""The notebook `make run` opens runs top to bottom in a real kernel, and its routes answer as it says."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import free_port

pytestmark = pytest.mark.kernel  # nbclient starts the kernel

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "quickstart.ipynb"


def test_quickstart_runs_top_to_bottom(monkeypatch) -> None:
    port = free_port()
    monkeypatch.setenv("NBROUTES_PORT", str(port))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute(env={**os.environ, "NBROUTES_PORT": str(port)})
    text = "\n".join(
        o.get("text", "") or o.get("data", {}).get("text/plain", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    )
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert f"nbroutes: serving on http://127.0.0.1:{port}" in text
    assert '200 /api/users/42 {"id":"42","name":"Ada"}' in text
    assert '200 /api/docs/intro/setup {"slug":["intro","setup"]}' in text
    assert '200 /api/shop {"path":[]}' in text
    assert '201 {"added":{"title":"Write docs"},"count":1}' in text
    assert '500 {"error":"Internal Server Error","detail":"ZeroDivisionError: division by zero"}' in text
