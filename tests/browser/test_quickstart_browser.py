"""quickstart.ipynb in a real JupyterLab in real Chromium: Run All works, the page shows what the README says,
and the kernel JupyterLab started serves the routes to this process."""

from __future__ import annotations

import json

from .conftest import http_get


def test_quickstart_runs_in_jupyterlab(nb, lab, screenshot) -> None:
    nb.open_notebook("quickstart.ipynb")
    screenshot("opened")
    nb.run_all()
    screenshot("ran-all")
    assert nb.errors() == []

    load = nb.cell_index("%load_ext nbroutes")
    assert f"serving on http://127.0.0.1:{lab.nbroutes_port}" in nb.wait_for_output(load, "serving on")
    # The route cell's output (plain text or a route card) names its pattern.
    nb.wait_for_output(nb.cell_index("%%route /api/users/[id]"), "/api/users/[id]")
    nb.wait_for_output(nb.cell_index("%%route /api/items"), "/api/items")
    # The cell that calls the routes from the notebook printed their answers.
    calls = nb.cell_index("for path in [")
    nb.wait_for_output(calls, '200 /api/users/42 {"id":"42","name":"Ada"}')
    nb.wait_for_text('200 /api/users/42 {"id":"42","name":"Ada"}')

    status, body = http_get(lab.nbroutes_port, "/api/users/42")
    assert (status, json.loads(body)) == (200, {"id": "42", "name": "Ada"})
    status, body = http_get(lab.nbroutes_port, "/api/greet?name=Chromium")
    assert (status, json.loads(body)) == (200, {"message": "Hello, Chromium!"})
