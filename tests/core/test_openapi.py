"""The OpenAPI 3.1 document of the live routes, and the Swagger UI docs page."""

import ast
from pathlib import Path
from typing import Annotated

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

import nbroutes
from nbroutes.core.middlewares import cors, require_token
from nbroutes.core.openapi import build_openapi
from nbroutes.errors import PatternError
from nbroutes.testing import TestClient


class NewPost(BaseModel):
    title: str
    views: int = 0


class Post(BaseModel):
    id: int
    title: str


def make_app():
    app = nbroutes.App()

    @app.route("/api/users/[id]", "GET")
    def GET(req, id: int, verbose: bool = False):
        """Fetch one user.

        Returns the user with this id.
        """
        return {"id": id}

    @app.route("/api/search", "GET")
    def search(req, q: str, page: Annotated[int, nbroutes.Query(ge=1, le=50, description="Page number")] = 1):
        return {"q": q, "page": page}

    @app.route("/api/posts", "POST")
    def create(req, body: NewPost) -> Post:
        """Create a post."""
        return {"id": 1, "title": body.title}

    @app.route("/api/files/[...path]", "GET")
    def files(req):
        return {"path": req.query}

    @app.route("/api/docs/[[...slug]]", "GET")
    def docs(req):
        return {}

    @app.route("/api/plain")
    def plain(req, res):
        res.json({})

    return app


@pytest.fixture
def spec():
    return build_openapi(make_app())


def test_document_is_valid_openapi_31(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.1")


def test_paths_use_braces_and_optional_catch_all_gives_two(spec):
    paths = set(spec["paths"])
    assert {
        "/api/users/{id}",
        "/api/search",
        "/api/posts",
        "/api/files/{path}",
        "/api/docs",
        "/api/docs/{slug}",
        "/api/plain",
    } <= paths
    assert not any("[" in p for p in paths)


def test_operation_ids_are_unique(spec):
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_summary_and_description_from_docstring(spec):
    op = spec["paths"]["/api/users/{id}"]["get"]
    assert op["summary"] == "Fetch one user."
    assert op["description"] == "Returns the user with this id."
    assert "description" not in spec["paths"]["/api/posts"]["post"]
    assert spec["paths"]["/api/posts"]["post"]["summary"] == "Create a post."


def test_path_param_schema_is_typed(spec):
    params = spec["paths"]["/api/users/{id}"]["get"]["parameters"]
    by_name = {p["name"]: p for p in params}
    assert by_name["id"]["in"] == "path"
    assert by_name["id"]["required"] is True
    assert by_name["id"]["schema"]["type"] == "integer"
    assert by_name["verbose"]["in"] == "query"
    assert by_name["verbose"]["required"] is False


def test_query_params_with_constraints(spec):
    params = {p["name"]: p for p in spec["paths"]["/api/search"]["get"]["parameters"]}
    assert params["q"]["in"] == "query"
    assert params["q"]["required"] is True
    page = params["page"]
    assert page["required"] is False
    assert page["schema"]["type"] == "integer"
    assert page["schema"]["minimum"] == 1
    assert page["schema"]["maximum"] == 50
    assert page["schema"]["default"] == 1
    assert page["description"] == "Page number"


def test_request_body_refers_to_model(spec):
    op = spec["paths"]["/api/posts"]["post"]
    body = op["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NewPost"}
    schema = spec["components"]["schemas"]["NewPost"]
    assert schema["required"] == ["title"]
    assert set(schema["properties"]) == {"title", "views"}
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Post"}


def test_422_response_refers_to_validation_error(spec):
    for path, method in [("/api/users/{id}", "get"), ("/api/search", "get"), ("/api/posts", "post")]:
        response = spec["paths"][path][method]["responses"]["422"]
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ValidationError"}
    assert "ValidationError" in spec["components"]["schemas"]
    assert "422" not in spec["paths"]["/api/plain"]["get"]["responses"]


def test_every_ref_resolves(spec):
    refs = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    refs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"]


# -- served under /_nbroutes/ -------------------------------------------------------------


def test_openapi_json_is_always_current():
    app = make_app()
    with TestClient(app) as client:
        r = client.get("/_nbroutes/openapi.json")
        assert r.status_code == 200
        assert r.headers.get("content-type").startswith("application/json")
        first = r.json()
        validate(first)
        assert "/api/new" not in first["paths"]

        @app.route("/api/new")
        def new(req):
            return {}

        second = client.get("/_nbroutes/openapi.json").json()
        assert "/api/new" in second["paths"]
        assert not any(p.startswith("/_nbroutes") for p in second["paths"])


def test_docs_page_and_asset():
    with TestClient(make_app()) as client:
        page = client.get("/_nbroutes/docs")
        assert page.status_code == 200
        assert page.headers.get("content-type").startswith("text/html")
        assert "swagger-ui-bundle.js" in page.text
        asset = client.get("/_nbroutes/docs/swagger-ui-bundle.js")
        assert asset.status_code == 200
        assert "javascript" in asset.headers.get("content-type")
        assert len(asset.content) > 1000


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/_nbroutes/docs/../../etc/passwd", 400),  # '..' segments are refused before routing
        ("/_nbroutes/docs/..%2F..%2Fetc%2Fpasswd", 404),  # one segment, no such asset
        ("/_nbroutes/docs/%2e%2e/%2e%2e/etc/passwd", 400),
        ("/_nbroutes/docs/.hidden", 404),
        ("/_nbroutes/docs/no-such-file.js", 404),
        ("/_nbroutes/nothing", 404),
    ],
)
def test_bad_internal_names_never_reach_a_file(url, status):
    with TestClient(make_app()) as client:
        r = client.get(url)
    assert r.status_code == status
    assert b"root:" not in r.content


@pytest.mark.parametrize("pattern", ["/_nbroutes", "/_nbroutes/docs", "/_nbroutes/[x]", "/_nbroutes/openapi.json"])
def test_user_routes_under_nbroutes_prefix_raise(pattern):
    app = nbroutes.App()
    with pytest.raises(PatternError):

        @app.route(pattern)
        def handler(req):
            return {}

    assert len(app.router.routes) == 0


def test_title_and_version_are_the_apps():
    app = nbroutes.App(title="Shop", version="2.1.0")
    assert build_openapi(app)["info"] == {"title": "Shop", "version": "2.1.0"}
    assert app.openapi()["info"] == {"title": "Shop", "version": "2.1.0"}
    assert nbroutes.App().openapi()["info"] == {"title": "nbroutes", "version": "0.1.0"}


def test_served_document_and_docs_page_have_the_apps_title():
    app = make_app()
    app.title, app.version = "Shop <admin>", "3.0"
    with TestClient(app) as client:
        assert client.get("/_nbroutes/openapi.json").json() == app.openapi()
        page = client.get("/_nbroutes/docs").text
    assert "<title>Shop &lt;admin&gt;: API docs</title>" in page


def test_the_document_is_cached_until_routes_middleware_or_title_change():
    app = make_app()
    with TestClient(app) as client:
        first = client.get("/_nbroutes/openapi.json").content
        built = app.openapi_cache.body
        assert client.get("/_nbroutes/openapi.json").content == first
        assert app.openapi_cache.body is built  # served again, not rebuilt

        @app.route("/api/later")
        def later(req):
            return {}

        assert "/api/later" in client.get("/_nbroutes/openapi.json").json()["paths"]
        app.use(require_token(), "/api/later")
        assert "security" in client.get("/_nbroutes/openapi.json").json()["paths"]["/api/later"]["get"]
        app.title = "Renamed"
        assert client.get("/_nbroutes/openapi.json").json()["info"]["title"] == "Renamed"
    assert app.openapi_cache.body is not built


def test_the_docs_routes_are_not_listed_and_not_in_the_document():
    app = make_app()
    assert not any(r.pattern.text.startswith("/_nbroutes") for r in app.router.routes)
    assert app.router.find("/_nbroutes/openapi.json") is None
    assert not any(p.startswith("/_nbroutes") for p in app.openapi()["paths"])
    assert app.router.match("/_nbroutes/openapi.json") is not None  # still answered


def test_openapi_does_not_import_the_app():
    """The document is built from what an App holds, so ``openapi`` and ``app`` import no cycle (not even for types)."""
    import nbroutes.core.openapi as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "nbroutes.core.routing" in imported  # the walk sees the module's imports
    assert not {name for name in imported if name and name.startswith("nbroutes.core.app")}


# -- require_token as a security scheme --------------------------------------------------


def guarded_app(*middleware):
    app = nbroutes.App()
    for pattern in ["/api/admin", "/api/admin/users", "/api/admin/users/[id]", "/api/public", "/api/administrator"]:
        app.route(pattern, "GET, POST")(lambda req: {})
    for number, (fn, matcher) in enumerate(middleware):
        app.use(fn, matcher, owner=f"cell {number}")
    return app


def secured(spec):
    return {
        (path, method): op.get("security")
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if "security" in op
    }


def test_require_token_is_a_bearer_scheme_on_the_paths_it_covers():
    spec = build_openapi(guarded_app((cors(), None), (require_token(), "/api/admin/:path*")))
    validate(spec)
    assert spec["components"]["securitySchemes"] == {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    covered = {"/api/admin", "/api/admin/users", "/api/admin/users/{id}"}
    assert secured(spec) == {(p, m): [{"bearerAuth": []}] for p in covered for m in ("get", "post")}
    for path in covered:
        unauthorized = spec["paths"][path]["get"]["responses"]["401"]
        assert unauthorized["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    for path in ("/api/public", "/api/administrator"):
        assert "401" not in spec["paths"][path]["get"]["responses"]


def test_without_require_token_there_is_no_security():
    spec = build_openapi(guarded_app((cors(), None)))
    assert "securitySchemes" not in spec["components"]
    assert secured(spec) == {}


def test_require_token_without_a_matcher_covers_every_operation():
    spec = build_openapi(guarded_app((require_token(), None)))
    validate(spec)
    assert len(secured(spec)) == 10


def test_an_api_key_header_is_an_api_key_scheme():
    spec = build_openapi(guarded_app((require_token("KEY", header="X-API-Key", scheme=None), "/api/public")))
    validate(spec)
    assert spec["components"]["securitySchemes"] == {
        "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    }
    assert set(secured(spec)) == {("/api/public", "get"), ("/api/public", "post")}


def test_two_tokens_on_one_path_are_both_required():
    spec = build_openapi(
        guarded_app(
            (require_token(), "/api/admin/:path*"),
            (require_token("KEY", header="X-API-Key", scheme=None), "/api/admin/users/:id"),
        )
    )
    validate(spec)
    assert spec["paths"]["/api/admin/users/{id}"]["get"]["security"] == [{"bearerAuth": [], "apiKeyAuth": []}]
    assert spec["paths"]["/api/admin/users"]["get"]["security"] == [{"bearerAuth": []}]


def test_the_served_document_describes_what_the_server_enforces(monkeypatch):
    monkeypatch.setenv("NBROUTES_TOKEN", "s3cret")
    app = guarded_app((require_token(), "/api/admin/:path*"))
    with TestClient(app) as client:
        spec = client.get("/_nbroutes/openapi.json").json()
        for path, item in spec["paths"].items():
            url = path.replace("{id}", "7")
            expected = 401 if "security" in item["get"] else 200
            assert client.get(url).status_code == expected, path
            assert client.get(url, headers={"Authorization": "Bearer s3cret"}).status_code == 200, path
