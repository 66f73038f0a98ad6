"""Middleware: Next.js matchers, definition order, short-circuits, cors() and require_token()."""

import pytest

import nbroutes
from nbroutes.core.middlewares import compile_matcher
from nbroutes.core.responses import Response
from nbroutes.errors import MatcherError
from nbroutes.testing import TestClient


def make_app():
    app = nbroutes.App()

    @app.route("/api/hello")
    def hello(req):
        return {"hello": "world"}

    @app.route("/api/admin/[...rest]")
    def admin(req):
        return {"admin": True}

    return app


def get(app, url, **kwargs):
    with TestClient(app) as client:
        return client.get(url, **kwargs)


# -- matchers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "matcher, path, matches",
    [
        ("/api/admin/:path*", "/api/admin", True),
        ("/api/admin/:path*", "/api/admin/", True),
        ("/api/admin/:path*", "/api/admin/a", True),
        ("/api/admin/:path*", "/api/admin/a/b", True),
        ("/api/admin/:path*", "/api/adminx", False),
        ("/api/admin/:path*", "/api/other", False),
        ("/api/:id", "/api/1", True),
        ("/api/:id", "/api/1/2", False),
        ("/api/:id", "/api", False),
        ("/api/:p+", "/api/a", True),
        ("/api/:p+", "/api/a/b/c", True),
        ("/api/:p+", "/api", False),
        ("/api/:p?", "/api", True),
        ("/api/:p?", "/api/a", True),
        ("/api/:p?", "/api/a/b", False),
        ("/(.*)", "/", True),
        ("/(.*)", "/anything/at/all", True),
        ("/about", "/about", True),
        ("/about", "/about/x", False),
        ("/a.b", "/aXb", False),
    ],
)
def test_compile_matcher(matcher, path, matches):
    assert (compile_matcher(matcher).match(path) is not None) is matches


@pytest.mark.parametrize("matcher", ["api/:path*", "", ":id", "/api/(", "/api/(a", "/api/:"])
def test_malformed_matcher_raises(matcher):
    with pytest.raises(MatcherError):
        compile_matcher(matcher)


def test_app_use_with_bad_matcher_raises():
    app = make_app()
    with pytest.raises(MatcherError):
        app.use(lambda req, call_next: None, "no-slash")
    assert len(app.middleware) == 0


# -- the chain -------------------------------------------------------------------------------


def test_middleware_runs_in_definition_order():
    app = make_app()
    calls = []

    def first(req, call_next):
        calls.append("first")

    async def second(req, call_next):
        calls.append("second")
        response = await call_next(req)
        calls.append("second after")
        return response

    def third(req, call_next):
        calls.append("third")

    app.use(first)
    app.use(second)
    app.use(third)
    r = get(app, "/api/hello")
    assert r.status_code == 200
    assert r.json() == {"hello": "world"}
    assert calls == ["first", "second", "third", "second after"]


@pytest.mark.parametrize(
    "answer, status, body",
    [
        ({"blocked": True}, 200, {"blocked": True}),
        (({"blocked": True}, 418), 418, {"blocked": True}),
        (Response.json({"blocked": "response"}, 403), 403, {"blocked": "response"}),
    ],
)
def test_middleware_short_circuits(answer, status, body):
    app = make_app()
    reached = []

    @app.route("/api/counted")
    def counted(req):
        reached.append(1)
        return {"reached": True}

    app.use(lambda req, call_next: answer)
    r = get(app, "/api/counted")
    assert r.status_code == status
    assert r.json() == body
    assert reached == []


def test_middleware_changes_response_after_call_next():
    app = make_app()

    async def stamp(req, call_next):
        response = await call_next(req)
        response.set_header("X-Stamp", "yes")
        response.status = 202
        return response

    app.use(stamp)
    r = get(app, "/api/hello")
    assert r.status_code == 202
    assert r.headers.get("X-Stamp") == "yes"
    assert r.json() == {"hello": "world"}


def test_sync_middleware_returning_call_next():
    app = make_app()
    app.use(lambda req, call_next: call_next(req))
    r = get(app, "/api/hello")
    assert r.status_code == 200
    assert r.json() == {"hello": "world"}


def test_middleware_returning_none_continues():
    app = make_app()
    seen = []

    def watch(req, call_next):
        seen.append(req.path)
        return None

    app.use(watch)
    r = get(app, "/api/hello")
    assert r.json() == {"hello": "world"}
    assert seen == ["/api/hello"]


def test_same_owner_replaces_in_place():
    app = make_app()
    calls = []

    def mark(name):
        def middleware(req, call_next):
            calls.append(name)

        return middleware

    app.use(mark("a"), owner="a")
    app.use(mark("x1"), owner="x")
    app.use(mark("b"), owner="b")
    app.use(mark("x2"), owner="x")
    assert len(app.middleware) == 3
    assert [m.owner for m in app.middleware] == ["a", "x", "b"]
    get(app, "/api/hello")
    assert calls == ["a", "x2", "b"]


def test_middleware_raising_is_500_json():
    app = make_app()

    def broken(req, call_next):
        raise RuntimeError("boom")

    app.use(broken)
    r = get(app, "/api/hello")
    assert r.status_code == 500
    assert r.headers.get("content-type").startswith("application/json")
    assert r.json()["error"] == "Internal Server Error"


def test_middleware_raising_http_exception_uses_its_status():
    app = make_app()

    async def forbid(req, call_next):
        raise nbroutes.HTTPException(403, "No", headers={"X-Why": "policy"})

    app.use(forbid)
    r = get(app, "/api/hello")
    assert r.status_code == 403
    assert r.json() == {"error": "No"}
    assert r.headers.get("X-Why") == "policy"


@pytest.mark.parametrize(
    "url, blocked",
    [("/api/admin", True), ("/api/admin/users/1", True), ("/api/hello", False)],
)
def test_matcher_filters_paths(url, blocked):
    app = make_app()

    @app.route("/api/admin")
    def admin_root(req):
        return {"admin": "root"}

    app.use(lambda req, call_next: ({"error": "blocked"}, 401), "/api/admin/:path*")
    r = get(app, url)
    assert (r.status_code == 401) is blocked
    if not blocked:
        assert r.status_code == 200


def test_middleware_must_take_two_arguments():
    app = make_app()
    with pytest.raises(TypeError):
        app.use(lambda req: None)


# -- cors() ---------------------------------------------------------------------------------

ORIGIN = "https://app.example"


def cors_app(*args, **kwargs):
    app = make_app()
    app.use(nbroutes.cors(*args, **kwargs))
    return app


def test_cors_preflight():
    app = cors_app([ORIGIN], max_age=123)
    with TestClient(app) as client:
        r = client.options(
            "/api/hello",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "X-Custom, Content-Type",
            },
        )
    assert r.status_code == 204
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert "POST" in r.headers.get("Access-Control-Allow-Methods")
    assert r.headers.get("Access-Control-Max-Age") == "123"
    assert r.headers.get("Access-Control-Allow-Headers") == "X-Custom, Content-Type"
    assert r.content == b""


def test_cors_simple_request_headers():
    app = cors_app([ORIGIN], expose_headers=["X-Total"])
    r = get(app, "/api/hello", headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert r.json() == {"hello": "world"}
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert r.headers.get("Access-Control-Expose-Headers") == "X-Total"
    assert "Origin" in r.headers.getlist("Vary")


def test_cors_any_origin_is_star():
    r = get(cors_app(), "/api/hello", headers={"Origin": "https://anywhere.example"})
    assert r.headers.get("Access-Control-Allow-Origin") == "*"


def test_cors_disallowed_origin_gets_no_allow_origin():
    app = cors_app([ORIGIN])
    r = get(app, "/api/hello", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_disallowed_origin_preflight_is_403():
    app = cors_app([ORIGIN])
    with TestClient(app) as client:
        r = client.options(
            "/api/hello", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
    assert r.status_code == 403
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_credentials_echo_origin():
    app = cors_app([ORIGIN], credentials=True)
    r = get(app, "/api/hello", headers={"Origin": ORIGIN})
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert r.headers.get("Access-Control-Allow-Credentials") == "true"


@pytest.mark.parametrize("origins", ["*", ["*"], [ORIGIN, "*"]])
def test_cors_credentials_with_any_origin_raises(origins):
    with pytest.raises(ValueError):
        nbroutes.cors(origins, credentials=True)


def test_cors_without_origin_header_adds_nothing():
    r = get(cors_app([ORIGIN]), "/api/hello")
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers


# -- require_token() -------------------------------------------------------------------------


def token_app(*args, **kwargs):
    app = make_app()
    app.use(nbroutes.require_token(*args, **kwargs))
    return app


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "s3cret"}, 401),
        ({"Authorization": "Basic s3cret"}, 401),
        ({"Authorization": "Bearer s3cret"}, 200),
        ({"Authorization": "bearer s3cret"}, 200),
    ],
)
def test_require_token_bearer(monkeypatch, headers, status):
    monkeypatch.setenv("TEST_NBROUTES_TOKEN", "s3cret")
    r = get(token_app("TEST_NBROUTES_TOKEN"), "/api/hello", headers=headers)
    assert r.status_code == status
    if status == 401:
        assert r.headers.get("WWW-Authenticate").startswith("Bearer")
        assert "hello" not in r.json()
    else:
        assert r.json() == {"hello": "world"}


def test_require_token_reads_env_each_request(monkeypatch):
    app = token_app("TEST_NBROUTES_TOKEN")
    monkeypatch.setenv("TEST_NBROUTES_TOKEN", "one")
    assert get(app, "/api/hello", headers={"Authorization": "Bearer one"}).status_code == 200
    monkeypatch.setenv("TEST_NBROUTES_TOKEN", "two")
    assert get(app, "/api/hello", headers={"Authorization": "Bearer one"}).status_code == 401


@pytest.mark.parametrize("value", [None, ""])
def test_require_token_fails_closed_when_unset(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("TEST_NBROUTES_TOKEN", raising=False)
    else:
        monkeypatch.setenv("TEST_NBROUTES_TOKEN", value)
    app = token_app("TEST_NBROUTES_TOKEN")
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer anything"}):
        r = get(app, "/api/hello", headers=headers)
        assert r.status_code == 401
        assert r.headers.get("WWW-Authenticate").startswith("Bearer")


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),
        ({"X-API-Key": "wrong"}, 401),
        ({"Authorization": "Bearer k3y"}, 401),
        ({"X-API-Key": "k3y"}, 200),
    ],
)
def test_require_token_api_key(monkeypatch, headers, status):
    monkeypatch.setenv("TEST_NBROUTES_KEY", "k3y")
    r = get(token_app("TEST_NBROUTES_KEY", header="X-API-Key", scheme=None), "/api/hello", headers=headers)
    assert r.status_code == status
    if status == 401:
        assert "WWW-Authenticate" in r.headers


def test_require_token_with_matcher_leaves_other_paths_open(monkeypatch):
    monkeypatch.setenv("TEST_NBROUTES_TOKEN", "s3cret")
    app = make_app()
    app.use(nbroutes.require_token("TEST_NBROUTES_TOKEN"), "/api/admin/:path*")
    assert get(app, "/api/hello").status_code == 200
    assert get(app, "/api/admin/x").status_code == 401
    assert get(app, "/api/admin/x", headers={"Authorization": "Bearer s3cret"}).status_code == 200
