"""``%routes`` and ``%unroute`` in a real kernel."""

from __future__ import annotations

from .conftest import Kernel


def _table(stdout: str) -> list[dict[str, str]]:
    """Parse %routes' route table by its header's column positions (up to the first blank line)."""
    lines = stdout.split("\n\n", 1)[0].splitlines()
    header = lines[0]
    names = header.split()
    starts = [header.index(name) for name in names]
    rows = []
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


def test_routes_lists_methods_pattern_cell_and_hits(kernel: Kernel) -> None:
    cell = kernel.ok(
        "%%route /api/listed/[id]\ndef GET(req):\n    return {'id': req.query['id']}\ndef POST(req):\n    return 1",
        {"cellId": "listed"},
    )
    assert kernel.get("/api/listed/1").status == 200
    assert kernel.get("/api/listed/2").status == 200

    listing = kernel.ok("%routes")
    table = _table(listing.stdout)
    header = listing.stdout.splitlines()[0]
    for column in ("METHODS", "PATTERN", "CELL", "HITS"):
        assert column in header, listing.stdout
    [row] = [r for r in table if r["PATTERN"] == "/api/listed/[id]"]
    assert {"GET", "POST"} <= set(row["METHODS"].split(","))
    assert row["CELL"] == cell.label
    assert row["HITS"] == "2"


def test_unroute_removes_a_route(kernel: Kernel) -> None:
    kernel.ok("%%route /api/to-remove\ndef GET(req):\n    return {'here': True}", {"cellId": "to-remove"})
    kernel.ok("%%route /api/to-stay\ndef GET(req):\n    return {'here': True}", {"cellId": "to-stay"})
    assert kernel.get("/api/to-remove").status == 200

    removed = kernel.ok("%unroute /api/to-remove")
    assert "/api/to-remove" in removed.stdout
    r = kernel.get("/api/to-remove")
    assert r.status == 404
    assert r.json()["error"] == "Not Found"
    assert kernel.get("/api/to-stay").status == 200
    assert "/api/to-remove" not in kernel.ok("%routes").stdout


def test_unroute_of_an_unknown_path_is_a_usage_error(kernel: Kernel) -> None:
    result = kernel.execute("%unroute /nope")
    assert result.status == "error"
    assert result.error is not None and result.error["ename"] == "UsageError"
    assert "/nope" in result.error_text
    assert "Traceback" not in result.error_text


def test_the_route_line_is_taken_verbatim_and_other_frameworks_params_are_explained(kernel: Kernel) -> None:
    # IPython expands {name} in a magic's line: %%route /api/users/{user_id} once registered /api/users/5.
    kernel.ok("user_id = 5")
    cases = {
        "/api/verbatim/{user_id}": "%%route /api/verbatim/[user_id]",
        "/api/verbatim/{id}/posts": "%%route /api/verbatim/[id]/posts",
        "/api/verbatim/:id": "%%route /api/verbatim/[id]",
        "/api/verbatim/:path*": "%%route /api/verbatim/[[...path]]",
    }
    for path, suggestion in cases.items():
        result = kernel.execute(f"%%route {path}\ndef GET(req):\n    return {{'ok': True}}")
        assert result.error is not None and result.error["ename"] == "UsageError", path
        assert "Next.js writes a dynamic segment in brackets" in result.error["evalue"], result.error
        assert suggestion in result.error["evalue"], result.error
    assert kernel.get("/api/verbatim/5").status == 404  # nothing registered under the expanded value
    kernel.ok("%%route /api/verbatim/[user_id]\ndef GET(req):\n    return {'id': req.query['user_id']}")
    assert kernel.get("/api/verbatim/5").status == 200


def test_a_cell_that_defines_get_in_lower_case_is_refused_with_the_name_to_use(kernel: Kernel) -> None:
    result = kernel.execute("%%route /api/lowercase\ndef get(req, res):\n    return {'ok': True}")
    assert result.error is not None and result.error["ename"] == "UsageError"
    assert "name it GET" in result.error["evalue"], result.error
    assert kernel.get("/api/lowercase").status == 404
