"""The validation-and-middleware notebook runs top to bottom, and the API it serves keeps the promises its OpenAPI
document makes: schemathesis generates requests from the served document and checks the responses of a real kernel."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from nbclient import NotebookClient
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from .conftest import HOST, Kernel, free_port, http_request

pytestmark = pytest.mark.kernel  # nbclient and Kernel start their own kernels

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "validation-and-middleware.ipynb"
MAX_EXAMPLES = 25
#: The notebook's auth middleware lets through only requests with this header.
ADMIN = {"X-User": "admin"}


def test_notebook_runs_top_to_bottom() -> None:
    port = free_port()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute(env={**os.environ, "NBROUTES_PORT": str(port)})
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)
    assert f"nbroutes: serving on http://127.0.0.1:{port}" in text
    assert '201 POST /api/posts {"title":"Hello nbroutes","body":"First post","tags":["intro"],"id":1}' in text
    assert '200 GET /api/posts/1 {"title":"Hello nbroutes","body":"First post","tags":["intro"],"id":1}' in text
    assert '404 GET /api/posts/99 {"error":"Post not found"}' in text
    assert '422 POST /api/posts {"error":"Validation failed"' in text
    assert "['body', 'title'] String should have at least 3 characters" in text
    assert "['body', 'body'] Field required" in text
    assert '"loc":["query","limit"]' in text and '"loc":["path","id"]' in text
    assert '401 GET /api/admin/stats {"error":"Unauthorized"}' in text
    assert '200 GET /api/admin/stats {"posts":2,"tags":1}' in text and "X-Checked: yes" in text
    assert "204 preflight" in text and "Access-Control-Allow-Origin: http://localhost:3000" in text
    assert f"docs: http://127.0.0.1:{port}/_nbroutes/docs" in text
    assert "GET     /api/posts/{id}        Fetch one post." in text


@pytest.fixture(scope="module")
def notebook_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """A real kernel that ran every code cell of the notebook, in order, as Jupyter would send them."""
    k = Kernel(tmp_path_factory.mktemp("kernel") / "kernel.log")
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                result = k.execute(cell.source, {"cellId": cell.id})
                assert result.status == "ok", f"cell failed: {cell.source!r}\n{result.error_text}"
                served = re.search(r"nbroutes: serving on http://127\.0\.0\.1:(\d+)", result.stdout)
                if served:
                    k.port = int(served.group(1))  # the port it took, should NBROUTES_PORT have been taken meanwhile
        yield k
    finally:
        k.shutdown()


def test_served_openapi_document_is_valid(notebook_kernel: Kernel) -> None:
    response = http_request(notebook_kernel.port, "GET", "/_nbroutes/openapi.json")
    assert response.status == 200
    document = response.json()
    validate(document)
    assert set(document["paths"]) == {"/api/posts", "/api/posts/{id}", "/api/admin/stats"}


def test_schemathesis_against_the_notebook_routes(notebook_kernel: Kernel) -> None:
    base_url = f"http://{HOST}:{notebook_kernel.port}"
    schema = schemathesis.openapi.from_url(f"{base_url}/_nbroutes/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = sorted(op.label for op in operations)
    assert len(operations) > 3, labels
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    calls: dict[str, int] = {}
    statuses: dict[str, set[int]] = {}

    for operation in operations:
        headers = ADMIN if operation.path.startswith("/api/admin") else None
        _explore(operation, GenerationMode.POSITIVE, base_url, headers, checks, calls, statuses)
        if operation.definition.raw.get("parameters") or operation.definition.raw.get("requestBody"):
            # Invalid input: the 422 must match the documented ValidationError schema, and never be a 5xx.
            _explore(operation, GenerationMode.NEGATIVE, base_url, headers, checks, calls, statuses)

    called = {label.rsplit(" ", 1)[0] for label in calls}
    assert sorted(called) == labels, f"operations never called: {set(labels) - called}"
    assert all(n >= 1 for n in calls.values()), calls
    # The admin route was really reached through the middleware, not stopped with a 401.
    assert statuses["GET /api/admin/stats positive"] == {200}, statuses
    # Generated bodies that the model accepts create posts; invalid ones are refused with a 422.
    assert 201 in statuses["POST /api/posts positive"], statuses
    assert 422 in statuses["POST /api/posts negative"], statuses
    assert 422 in statuses["GET /api/posts negative"], statuses


def _explore(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str] | None,
    checks: list[Any],
    calls: dict[str, int],
    statuses: dict[str, set[int]],
) -> None:
    """Send ``MAX_EXAMPLES`` generated requests to ``operation`` and run ``checks`` on each response."""
    label = f"{operation.label} {mode.value}"

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate(base_url=base_url, headers=headers, checks=checks)
        calls[label] = calls.get(label, 0) + 1
        statuses.setdefault(label, set()).add(response.status_code)

    run()
