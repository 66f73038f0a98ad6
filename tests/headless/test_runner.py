"""load_notebook / run_notebook: a notebook's cells run in-process into a fresh App, as a kernel would run them."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython import get_ipython
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nbroutes.errors import NotebookError
from nbroutes.headless.runner import load_notebook, run_notebook, run_notebook_async
from nbroutes.testing import AsyncTestClient


def write(path: Path, *cells: Any) -> Path:
    """A notebook of ``cells``: strings are code cells ("# ..." ones markdown), (source, tags) pairs code cells."""
    made = []
    for cell in cells:
        if isinstance(cell, tuple):
            made.append(new_code_cell(cell[0], metadata={"tags": list(cell[1])}))
        elif cell.startswith("# "):
            made.append(new_markdown_cell(cell))
        else:
            made.append(new_code_cell(cell))
    nbformat.write(new_notebook(cells=made), path)
    return path


def get(app: Any, path: str) -> Any:
    async def call() -> Any:
        return await AsyncTestClient(app).get(path)

    return asyncio.run(call())


def test_route_cells_magic_and_tag(tmp_path: Path) -> None:
    nb = write(
        tmp_path / "api.ipynb",
        "%load_ext nbroutes",
        "%%route /api/users/[id]\ndef GET(req):\n    return {'id': req.query['id']}",
        ("def GET(req):\n    return {'tagged': True}", ["route:/api/tagged"]),
        ("{'body': req.method}", ["route:POST:/api/only-post"]),
    )
    app = load_notebook(nb)
    assert sorted(r.pattern.text for r in app.router.routes) == ["/api/only-post", "/api/tagged", "/api/users/[id]"]
    assert get(app, "/api/users/42").json() == {"id": "42"}
    assert get(app, "/api/tagged").json() == {"tagged": True}
    assert get(app, "/api/only-post").status_code == 405


def test_routes_belong_to_their_cells(tmp_path: Path) -> None:
    nb = write(
        tmp_path / "api.ipynb",
        "# Title",
        "%load_ext nbroutes",
        "%%route /api/a\n'a'",
        "import nbroutes\nnbroutes.middleware(nbroutes.cors(['http://localhost:3000']))",
    )
    run = run_notebook(nb)
    (route,) = run.app.router.routes
    cell = run.cell_of(route)
    assert cell is not None and (cell.number, cell.index, cell.first_line) == (2, 2, "%%route /api/a")
    assert len(run.app.middleware) == 1
    assert get(run.app, "/api/a").text == "a"


def test_skip_tag_is_not_run(tmp_path: Path) -> None:
    nb = write(
        tmp_path / "api.ipynb",
        "%load_ext nbroutes",
        ("raise RuntimeError('a skipped cell ran')", ["nbroutes:skip"]),
        ("%%route /api/skipped\n'no'", ["nbroutes:skip", "other"]),
        "%%route /api/kept\n'yes'",
    )
    run = run_notebook(nb)
    assert [r.pattern.text for r in run.app.router.routes] == ["/api/kept"]
    assert [c.skipped for c in run.cells] == [False, True, True, False]
    write(nb, "%load_ext nbroutes", ("%%route /api/other\n'no'", ["other"]), "%%route /api/kept\n'yes'")
    assert [r.pattern.text for r in load_notebook(nb, skip_tag="other").router.routes] == ["/api/kept"]


def test_a_failing_cell_names_itself(tmp_path: Path) -> None:
    nb = write(
        tmp_path / "broken.ipynb",
        "# Intro",
        "%load_ext nbroutes",
        "# More words",
        "\ntotal = 1\ntotal / 0  # boom",
        "%%route /api/never\n'never'",
    )
    with pytest.raises(NotebookError) as caught:
        load_notebook(nb)
    error = caught.value
    assert (error.number, error.index) == (2, 3)
    assert error.cell is not None and error.cell.first_line == "total = 1"
    assert "ZeroDivisionError" in error.traceback and "total / 0  # boom" in error.traceback
    assert "code cell 2 (notebook cell 4) failed: total = 1" in str(error)


def test_a_usage_error_in_a_route_cell_is_a_failure(tmp_path: Path) -> None:
    nb = write(tmp_path / "bad.ipynb", "%load_ext nbroutes", "%%route /api/[id\n'x'")
    with pytest.raises(NotebookError) as caught:
        load_notebook(nb)
    assert caught.value.number == 2 and caught.value.traceback.startswith("UsageError: %%route")


def test_not_a_notebook(tmp_path: Path) -> None:
    path = tmp_path / "x.ipynb"
    path.write_text("{not json")
    with pytest.raises(NotebookError, match="cannot read the notebook") as caught:
        load_notebook(path)
    assert caught.value.cell is None


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "it is not JSON (Expecting property name enclosed in double quotes: line 1 column 2"),
        ("[]", "it has no nbformat version, so it is not a Jupyter notebook"),
        ('{"cells": []}', "it has no nbformat version, so it is not a Jupyter notebook"),
        ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "its 'cells' is not a list of cells"),
        ('{"nbformat": 4, "nbformat_minor": 5, "cells": [3], "metadata": {}}', "its 'cells' is not a list of cells"),
        ('{"nbformat": 5, "nbformat_minor": 0, "cells": [], "metadata": {}}', "Unsupported nbformat version 5"),
    ],
)
def test_a_file_that_is_not_a_notebook_says_why(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "x.ipynb"
    path.write_text(content)
    with pytest.raises(NotebookError) as caught:
        load_notebook(path)
    assert str(caught.value).startswith(f"{path}: cannot read the notebook: ")
    assert says in str(caught.value) and caught.value.cell is None


def test_sources_kept_as_lines_and_notebooks_without_cell_ids(tmp_path: Path) -> None:
    # As Jupyter writes them: each source a list of lines; before nbformat 4.5, no cell ids.
    cells = [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": source}
        for source in (["%load_ext nbroutes"], ["%%route /api/lines\n", "def GET(req):\n", "    return 'joined'"])
    ]
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": cells}))
    run = run_notebook(path)
    assert [cell.cell_id for cell in run.cells] == ["cell-0", "cell-1"]
    assert run.cells[1].source == "%%route /api/lines\ndef GET(req):\n    return 'joined'"
    assert get(run.app, "/api/lines").text == "joined"
    assert run.app.router.find("/api/lines").owner == "cell-1"


def test_notebooks_older_than_version_4_are_converted(tmp_path: Path) -> None:
    cell = {"cell_type": "code", "language": "python", "outputs": [], "metadata": {},
            "input": "%%route /api/v3\n'converted'"}  # fmt: skip
    load = {"cell_type": "code", "language": "python", "outputs": [], "metadata": {}, "input": "%load_ext nbroutes"}
    path = tmp_path / "v3.ipynb"
    path.write_text(
        json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [load, cell]}]})
    )
    assert get(load_notebook(path), "/api/v3").text == "converted"


def test_each_load_has_a_fresh_namespace_and_fresh_routes(tmp_path: Path) -> None:
    nb = write(
        tmp_path / "api.ipynb",
        "%load_ext nbroutes",
        "runs = globals().get('runs', 0) + 1",
        "%%route /api/runs\nruns",
    )
    first = run_notebook(nb)
    second = run_notebook(nb)
    assert first.namespace["runs"] == second.namespace["runs"] == 1
    assert first.namespace is not second.namespace
    write(tmp_path / "api.ipynb", "%load_ext nbroutes", "%%route /api/new\n'new'")
    third = load_notebook(nb)
    assert [r.pattern.text for r in third.router.routes] == ["/api/new"]
    assert get(first.app, "/api/runs").json() == 1  # the old App keeps working on its own namespace


def test_runs_in_the_notebooks_directory_and_puts_the_shell_back(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    nb = write(
        folder / "api.ipynb",
        "%load_ext nbroutes",
        "import os, nbroutes\nhere = os.getcwd()\ndb = nbroutes.db('here.db')\ndb['t'].insert({'a': 1})",
    )
    before = os.getcwd()
    run = run_notebook(nb)
    assert run.namespace["here"] == str(folder.resolve())
    assert (folder / "here.db").exists()
    assert os.getcwd() == before
    assert get_ipython() is None


def test_displays_widgets_and_prints_make_no_noise(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    nb = write(
        tmp_path / "api.ipynb",
        "%load_ext nbroutes",
        "import ipywidgets\nfrom IPython.display import display, Markdown\ndisplay(Markdown('*hi*'))\n"
        "ipywidgets.IntSlider(3)",
        "print('printed by a cell')\n%routes",
        "%%route /api/a\n'a'",
        "import nbroutes\nnbroutes.RequestWidget('GET', '/api/a')",
    )
    run = run_notebook(nb)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert "printed by a cell" in run.output


def test_cells_can_call_their_own_routes(tmp_path: Path) -> None:
    nb = write(
        tmp_path / "api.ipynb",
        "%load_ext nbroutes",
        "%%route /api/a\n{'a': 1}",
        "from tornado.httpclient import AsyncHTTPClient\nimport nbroutes\n"
        "response = await AsyncHTTPClient().fetch(nbroutes.url('/api/a'))\nbody = response.body",
    )
    run = run_notebook(nb)
    assert run.namespace["body"] == b'{"a":1}'
    assert ":8000" not in run.output  # the private server never takes the serve port


def test_what_routes_print_while_the_cells_run_is_the_runs_output(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    nb = write(
        tmp_path / "api.ipynb",
        "%load_ext nbroutes",
        "%%route /api/a\nprint('printed by the handler')\n'a'",
        "%%route /api/boom\n1 / 0",
        "from tornado.httpclient import AsyncHTTPClient\nimport nbroutes\n"
        "await AsyncHTTPClient().fetch(nbroutes.url('/api/a'))\n"
        "boom = await AsyncHTTPClient().fetch(nbroutes.url('/api/boom'), raise_error=False)",
    )
    run = run_notebook(nb)
    assert run.namespace["boom"].code == 500
    assert "printed by the handler" in run.output
    assert "ZeroDivisionError" in run.output  # the cell's own 500 is its output, not a log line
    assert capfd.readouterr() == ("", "") and not caplog.records
    # Served after the run, the routes write to the terminal: the consoles are plain ones, no card.
    assert {type(r.console).__name__ for r in run.app.router.routes} == {"Console"}


def test_run_notebook_inside_a_loop_asks_for_the_async_one(tmp_path: Path) -> None:
    nb = write(tmp_path / "api.ipynb", "%load_ext nbroutes", "%%route /api/a\n'a'")

    async def inside() -> int:
        with pytest.raises(RuntimeError, match="run_notebook_async"):
            run_notebook(nb)
        return len((await run_notebook_async(nb)).app.router.routes)

    assert asyncio.run(inside()) == 1


def test_kernel_gateway_notebooks_are_served_by_their_adapter(tmp_path: Path) -> None:
    nb = write(
        tmp_path / "gateway.ipynb",
        "import json\ngreeting = 'hello'",
        ("# GET /hello/:name\nrequest = json.loads(REQUEST)\nprint(greeting, request['path']['name'])", []),
    )
    run = run_notebook(nb)
    assert run.kind == "kernel gateway"
    assert get(run.app, "/hello/ada").text == "hello ada\n"
    write(nb, "1 / 0", ("# GET /hello\nprint('hi')", []))
    with pytest.raises(NotebookError, match="ZeroDivisionError") as caught:
        run_notebook(nb)
    assert "ZeroDivisionError" in caught.value.traceback


def test_the_work_of_a_route_cell_does_not_grow_with_the_routes_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbroutes.core import routing

    # Counted, not timed: route-table nodes made or copied, and listings of the whole table.
    work = {"nodes": 0, "walks": 0}
    init, listing = routing._Node.__init__, routing._Table.routes.fget

    def counting_init(node: Any) -> None:
        work["nodes"] += 1
        init(node)

    def counting_listing(table: Any) -> Any:
        work["walks"] += table._routes is None
        return listing(table)

    monkeypatch.setattr(routing._Node, "__init__", counting_init)
    monkeypatch.setattr(routing._Table, "routes", property(counting_listing))

    def work_to_run(count: int) -> tuple[int, int]:
        cells = ["%load_ext nbroutes"]
        for i in range(count):
            cells += [f"%%route /api/r{i}/[id]\nreq.query['id']", f"n = {i}"]
        work.update(nodes=0, walks=0)
        run = run_notebook(write(tmp_path / f"n{count}.ipynb", *cells))
        assert len(run.app.router.routes) == count
        return work["nodes"], work["walks"]

    nodes_10, walks_10 = work_to_run(10)
    nodes_60, walks_60 = work_to_run(60)
    assert nodes_60 - nodes_10 == 50 * 4  # each route cell: the root, /api, /api/r<i> and [id]
    assert walks_60 == walks_10
