"""What each entry point leaves unimported, each checked in a fresh interpreter (as Tornado's import_test.py does).

import-linter (``make test``) checks the import graph; these check what a process really loads, lazy imports
included: a headless server (``nbroutes serve``, ``nbroutes.asgi``, ``load_notebook``) never imports ipywidgets
nor builds a route card, and serving an App needs neither IPython nor sqlite-utils.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess  # a fresh interpreter per check

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

#: The notebook-UI modules: the headless path must load none of them.
WIDGETS = ("ipywidgets", "nbroutes.kernel.cards", "nbroutes.kernel.request_widget", "nbroutes.kernel.browser")


def loaded_after(code: str, watched: tuple[str, ...], cwd: Path = ROOT) -> list[str]:
    """Run ``code`` in a new interpreter; which of ``watched`` are in its sys.modules afterwards."""
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        print("LOADED=" + json.dumps([name for name in {list(watched)!r} if name in sys.modules]))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("LOADED="))
    return list(json.loads(line.removeprefix("LOADED=")))


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        # The facade: the kernel side (IPython, Tornado, widgets) and sqlite-utils load when first used.
        ("import nbroutes", ("IPython", "tornado", "sqlite_utils", *WIDGETS)),
        # Serving an App from uvicorn needs the core and the ASGI adapter only.
        ("import nbroutes.asgi", ("IPython", "tornado", "sqlite_utils", *WIDGETS)),
        ("import nbroutes.testing", ("IPython", "tornado", "sqlite_utils", *WIDGETS)),
        # The CLI imports what a command needs when it runs it.
        ("import nbroutes.cli", ("IPython", "tornado", "sqlite_utils", *WIDGETS)),
        ("import nbroutes.core.app, nbroutes.core.openapi", ("IPython", "ipykernel", "tornado", "sqlite_utils")),
        ("import nbroutes.servers.tornado, nbroutes.servers.asgi", ("IPython", "sqlite_utils", *WIDGETS)),
        # The notebook runner and the kernel extension run cells, but make no widget of their own.
        ("import nbroutes.notebook, nbroutes.kernel.extension, nbroutes.kernel.magics", ("sqlite_utils", *WIDGETS)),
    ],
)
def test_importing_loads_only_its_layer(code: str, absent: tuple[str, ...]) -> None:
    assert loaded_after(code, absent) == []


def test_loading_a_notebook_headless_builds_no_widget(tmp_path: Path) -> None:
    # todo-api has %%route, nbroutes.crud and a database; its widget cells are tagged nbroutes:skip.
    notebook = Path(shutil.copy(NOTEBOOKS / "todo-api.ipynb", tmp_path))
    code = f"""
        from nbroutes.notebook import load_notebook
        app = load_notebook({str(notebook)!r})
        assert any(r.pattern.text == "/api/todos" for r in app.router.routes), app.router.routes
        assert all(type(r.console).__name__ == "Console" for r in app.router.routes)
    """
    assert loaded_after(code, WIDGETS) == []


def test_reading_a_notebook_loads_no_schema_validator(tmp_path: Path) -> None:
    # nbformat validates against its JSON schema with jsonschema, whose format checkers took about 1 s to
    # import (rfc3987_syntax): most of `nbroutes serve`'s start, for a check that running cells does not need.
    notebook = Path(shutil.copy(NOTEBOOKS / "todo-api.ipynb", tmp_path))
    code = f"from nbroutes.notebook import load_notebook\nload_notebook({str(notebook)!r})"
    assert loaded_after(code, ("nbformat", "jsonschema", "rfc3987_syntax")) == []


def test_a_notebook_without_a_database_loads_no_sqlite_utils(tmp_path: Path) -> None:
    notebook = Path(shutil.copy(NOTEBOOKS / "validation-and-middleware.ipynb", tmp_path))
    code = f"from nbroutes.notebook import load_notebook\nload_notebook({str(notebook)!r})"
    assert loaded_after(code, ("sqlite_utils", "nbroutes.data", *WIDGETS)) == []


def test_serving_a_notebook_over_asgi_builds_no_widget(tmp_path: Path) -> None:
    notebook = Path(shutil.copy(NOTEBOOKS / "todo-api.ipynb", tmp_path))
    code = f"""
        import asyncio
        import nbroutes.asgi

        async def get(path):
            app = nbroutes.asgi.app({str(notebook)!r})
            sent = []
            request = {{"type": "http.request", "body": b"", "more_body": False}}

            async def receive():
                return request

            async def send(message):
                sent.append(message)

            scope = {{"type": "http", "asgi": {{"version": "3.0"}}, "http_version": "1.1", "method": "GET",
                      "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
                      "query_string": b"", "headers": [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}}
            await app(scope, receive, send)
            return sent[0]["status"]

        assert asyncio.run(get("/api/todos/stats")) == 200
    """
    assert loaded_after(code, WIDGETS) == []


def test_the_cli_listing_a_notebooks_routes_builds_no_widget(tmp_path: Path) -> None:
    notebook = Path(shutil.copy(NOTEBOOKS / "todo-api.ipynb", tmp_path))
    code = f"""
        from nbroutes.cli import main
        assert main(["routes", {str(notebook)!r}]) == 0
    """
    assert loaded_after(code, WIDGETS) == []


def test_the_checks_see_a_widget_import() -> None:
    # The helper itself can fail: importing the cards does load ipywidgets.
    assert loaded_after("import nbroutes.kernel.cards", WIDGETS[:2]) == list(WIDGETS[:2])
