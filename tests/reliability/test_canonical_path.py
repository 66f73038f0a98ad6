"""The canonical path: one spelling per request that routing and middleware matchers both read.

Property tests over arbitrary paths: whatever bytes a client sends, the matcher's string and the
router's segments are the same path, or both refuse it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbroutes import App
from nbroutes.core.middlewares import compile_matcher
from nbroutes.core.paths import MalformedPathError, canonical_path, collapse_slashes, split_path
from nbroutes.core.requests import Request
from nbroutes.testing import TestClient

# Pieces that make the interesting paths: escapes of letters, of '/', '.', '%', bad escapes, dots and slashes.
PIECES = ["a", "b", "api", "admin", "/", "//", ".", "..", "%2F", "%2f", "%61", "%2e", "%2E", "%25", "%", "%zz", "é"]
paths = st.lists(st.sampled_from(PIECES), max_size=8).map(lambda parts: "/" + "".join(parts))


@given(paths)
@settings(max_examples=400, deadline=None)
def test_the_canonical_path_splits_into_the_routers_segments(path: str) -> None:
    try:
        segments = split_path(path)
    except MalformedPathError:
        with pytest.raises(MalformedPathError):
            canonical_path(path)
        return
    canonical = canonical_path(path)
    assert split_path(canonical) == segments
    assert canonical_path(canonical) == canonical  # already canonical: a second pass changes nothing


@given(paths)
@settings(max_examples=400, deadline=None)
def test_a_one_segment_matcher_agrees_with_a_one_segment_route(path: str) -> None:
    # "/api/:name" must match exactly the paths that route "/api/[name]" takes, %2F or not.
    try:
        segments = split_path(path)
    except MalformedPathError:
        return
    routed = len(segments) == 2 and segments[0] == "api" and segments[1] != ""
    assert (compile_matcher("/api/:name").match(canonical_path(path)) is not None) == routed or (
        routed is False and len(segments) == 3 and segments[2] == ""  # "/api/x/": a matcher's optional '/'
    )


def test_route_path_follows_a_rewritten_path() -> None:
    request = Request("GET", "/%61pi/x")
    assert request.route_path == "/api/x"
    request.path = "/api/%79"
    assert request.route_path == "/api/y"


def test_collapse_slashes_stays_on_site() -> None:
    assert collapse_slashes("//evil.example/") == "/evil.example"
    assert collapse_slashes("/\\evil.example") == "/evil.example"
    assert collapse_slashes("/api//a///b/") == "/api/a/b"
    assert collapse_slashes("/") == "/"


def test_a_middleware_that_rewrites_the_path_is_followed_by_matchers_of_the_new_path() -> None:
    app = App()
    seen: list[str] = []

    def rewrite(req, call_next):
        req.path = "/api/%61dmin/x"

    def guard(req, call_next):
        seen.append(req.route_path)
        return {"error": "no"}, 401

    app.use(rewrite)
    app.use(guard, "/api/admin/:path*")

    @app.route("/api/admin/x")
    def x(req):
        return "secret"

    @app.route("/public")
    def public(req):
        return "open"

    with TestClient(app) as client:
        response = client.get("/public")
    assert response.status_code == 401 and seen == ["/api/admin/x"]


def test_an_undecodable_path_runs_scoped_middleware_fail_closed() -> None:
    app = App()
    app.use(lambda req, call_next: ({"error": "no"}, 401), "/api/admin/:path*")
    with TestClient(app) as client:
        assert client.get("/api/admin/%zz").status_code == 401
        assert client.get("/public/%zz").status_code == 401  # it cannot tell, so it runs
    with TestClient(App()) as client:
        assert client.get("/public/%zz").status_code == 400
