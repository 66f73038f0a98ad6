"""Schemathesis against the three example notebooks, each served for real by ``nbroutes serve``.

Schemathesis reads the OpenAPI document a notebook serves at ``/_nbroutes/openapi.json`` and sends what it
generates from it: examples, the boundaries of every schema (coverage), random data valid and invalid
(fuzzing), and sequences that follow the links it infers, such as a POST's id into GET, PATCH and DELETE
(stateful). Every answer must be no server error and must be what the document says: a documented status,
content type, body schema and headers. So the document has to tell the truth too.

The run is the ``schemathesis run`` command on its own process, with a fixed seed, one worker and a bounded
number of examples per operation, so it sends the same couple of thousand requests each time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import nbroutes_serve, raw_request

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
#: Every check that a response is what the document says, and that it is not a server error.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]
#: Operations a notebook makes fail on purpose: the quick start's /api/divide shows what a raising handler answers.
RAISES_ON_PURPOSE = {"quickstart": ["/api/divide"]}
MAX_EXAMPLES = 60
SEED = 20261130


def run_schemathesis(port: int, folder: Path, excluded: list[str]) -> dict[str, Any]:
    """``schemathesis run`` against the server on ``port``; its JSON report."""
    report = folder / "schemathesis.json"
    args = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"http://127.0.0.1:{port}/_nbroutes/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "10",  # a request that hangs is an error in the report, not a stuck test
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    for path in excluded:
        args += ["--exclude-path", path]
    # In the temporary folder: schemathesis and hypothesis keep their caches in the working directory.
    done = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=600)
    assert report.exists(), f"schemathesis wrote no report ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(report.read_text())
    result["output"] = done.stdout + done.stderr
    return result


@pytest.mark.parametrize("name", ["quickstart", "todo-api", "validation-and-middleware"])
def test_schemathesis_finds_no_server_error_and_nothing_the_document_does_not_say(name: str, tmp_path: Path) -> None:
    copy = tmp_path / f"{name}.ipynb"
    shutil.copy(NOTEBOOKS / copy.name, copy)
    with nbroutes_serve(copy) as server:
        report = run_schemathesis(server.port, tmp_path, RAISES_ON_PURPOSE.get(name, []))
        output = report["output"]
        assert report["failures"] == [], output
        assert report["errors"] == [], output
        assert report["exit_code"] == 0, output
        assert report["stop_reason"] == "completed", output
        operations = report["operations"]
        assert operations["tested"] == operations["selected"] > 0, output
        assert report["phases"]["stateful"]["status"] == "success", output  # links were found and followed
        cases = report["test_cases"]["generated"]
        assert cases >= 100, f"only {cases} requests:\n{output}"
        print(f"\n{name}: {cases} generated requests, {operations['tested']} operations, 0 failures")
        for path in RAISES_ON_PURPOSE.get(name, []):
            # What was left out answers as the notebook shows: a 500 that says no more, and the server carries on.
            answer = raw_request(server.port, "GET", f"{path}?a=1&b=0")
            assert (answer.status, answer.json()) == (500, {"error": "Internal Server Error"})
        assert raw_request(server.port, "GET", "/_nbroutes/openapi.json").status == 200
