"""Next.js API Routes semantics, end to end through the in-process TestClient."""

import asyncio
import sys

import pytest

from nbroutes import App, HTTPException
from nbroutes.core.output import Console, route_stdio, unroute_stdio
from nbroutes.kernel.cells import compile_cell
from nbroutes.testing import TestClient
from tests.kernel.test_cells import BODY_CELL, METHOD_CELL, PAGES_CELL  # one copy of the three cell forms

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


class RecordingConsole(Console):
    """A route console that remembers what it was given."""

    def __init__(self, name=""):
        super().__init__(name)
        self.writes = []
        self.warnings = []
        self.errors = []

    def write(self, text, stream="stdout"):
        self.writes.append((text, stream))

    def warn(self, message):
        self.warnings.append(message)

    def error(self, summary, exc):
        self.errors.append((summary, exc))

    def text(self, stream="stdout"):
        return "".join(text for text, s in self.writes if s == stream)


def add_cell(app, pattern, source, namespace=None, **options):
    """Register a route cell as the notebook does: compile it, then add its endpoints."""
    compiled = compile_cell(source, {} if namespace is None else namespace)
    app.add(pattern, compiled.endpoints, **options)
    return compiled


@pytest.fixture
def client():
    with TestClient(app) as c:
        yield c


# -- the module's app: cells and decorated functions ---------------------------------

app = App()


BODY_CELL_NS = {"calls": []}

add_cell(app, "/api/pages", PAGES_CELL)
add_cell(app, "/api/pages-only", PAGES_CELL, only=frozenset({"GET", "POST"}))
add_cell(app, "/api/items", METHOD_CELL)
add_cell(app, "/api/body/[id]", BODY_CELL, BODY_CELL_NS)


@app.route("/api/hello")
def hello(req, res):
    return {"hello": "world"}


@app.route("/api/users/[id]")
def user(req):
    if req.query["id"] == "0":
        raise HTTPException(404, "User not found")
    return {"id": req.query["id"]}


@app.route("/api/private")
def private():
    raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"})


@app.route("/api/query/[id]")
def query(req):
    return req.query


@app.route("/api/files/[...path]")
def files(req):
    return {"path": req.query["path"]}


@app.route("/api/docs/[[...slug]]")
def docs(req):
    return {"has_slug": "slug" in req.query, "slug": req.query.get("slug")}


@app.route("/api/echo")
def echo(req):
    return {"body": req.body}


@app.route("/api/upload", methods=["POST"])
def upload(req):
    doc = req.files["doc"]
    return {"title": req.body["title"], "filename": doc.filename, "type": doc.content_type, "content": doc.text()}


@app.route("/api/limited", methods="POST", body_limit="10kb")
def limited(req):
    return {"size": len(req.raw_body)}


@app.route("/api/limited-fraction", methods="POST", body_limit="1.5mb")
def limited_fraction(req):
    return {"size": len(req.raw_body)}


@app.route("/api/raw", methods="POST", body_limit=None)
async def raw(req):
    raw = await req.read()  # streamed: read whole only because the handler asks
    return {"raw": raw[:20].decode(), "size": len(raw), "body": req.body}


@app.route("/api/boom")
def boom(req):
    raise ValueError("boom")


@app.route("/api/no-content")
def no_content(req, res):
    res.status(204).json({"ignored": True})


@app.route("/api/not-modified")
def not_modified(req):
    return "stale", 304


@app.route("/api/nothing")
def nothing(req):
    return None


@app.route("/api/cookies")
def cookies(req, res):
    res.set_cookie("sid", "abc123", httponly=True)
    return {"cookies": req.cookies}


@app.route("/api/logout")
def logout(req, res):
    res.clear_cookie("sid")
    return {"bye": True}


@app.route("/api/created")
def created(req, res):
    res.status(201)
    return {"created": True}


@app.route("/api/async")
async def async_route(req):
    await asyncio.sleep(0)
    return {"async": True}


# -- basics ------------------------------------------------------------------------------


def test_decorated_route(client):
    response = client.get("/api/hello")
    assert response.status_code == 200
    assert response.json() == {"hello": "world"}
    assert response.headers["content-type"] == JSON
    assert response.headers["content-length"] == str(len(response.content))


def test_not_found_is_json(client):
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == JSON
    assert response.json()["error"] == "Not Found"


def test_route_param(client):
    assert client.get("/api/users/42").json() == {"id": "42"}


def test_http_exception(client):
    response = client.get("/api/users/0")
    assert response.status_code == 404
    assert response.json() == {"error": "User not found"}
    assert response.headers["content-type"] == JSON


def test_http_exception_default_detail_and_headers(client):
    response = client.get("/api/private")
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_res_status_applies_to_a_returned_body(client):
    response = client.get("/api/created")
    assert response.status_code == 201
    assert response.json() == {"created": True}


def test_returning_none_without_res_is_204(client):
    response = client.get("/api/nothing")
    assert response.status_code == 204
    assert response.content == b""


def test_async_decorated_route(client):
    assert client.get("/api/async").json() == {"async": True}


# -- pages form --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_pages_form_answers_every_method(client, method):
    response = client.request(method, "/api/pages")
    assert response.status_code == 200
    assert response.json() == {"method": method}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_pages_form_with_only_answers_those_methods(client, method):
    response = client.request(method, "/api/pages-only")
    assert response.status_code == 200
    assert response.json() == {"method": method}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_pages_form_with_only_refuses_other_methods(client, method):
    response = client.request(method, "/api/pages-only")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"


def test_pages_form_with_only_answers_options_itself(client):
    response = client.options("/api/pages-only")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert response.content == b""


def test_decorator_methods_restrict_the_route(client):
    response = client.get("/api/upload")
    assert response.status_code == 405
    assert response.headers["allow"] == "OPTIONS, POST"


# -- method form -------------------------------------------------------------------------


def test_method_form_get(client):
    response = client.get("/api/items")
    assert response.status_code == 200
    assert response.json() == {"items": [1, 2, 3]}


def test_method_form_post(client):
    response = client.post("/api/items", json={"name": "x"})
    assert response.status_code == 201
    assert response.json() == {"created": {"name": "x"}}


def test_method_form_handler_without_params(client):
    response = client.delete("/api/items")
    assert response.status_code == 204
    assert response.content == b""


def test_head_falls_back_to_get_without_the_body(client):
    get = client.get("/api/items")
    response = client.head("/api/items")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(get.content))
    assert response.headers["content-type"] == JSON
    assert response.headers["etag"] == get.headers["etag"]


def test_options_is_answered_with_allow(client):
    response = client.options("/api/items")
    assert response.status_code == 204
    assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, POST"
    assert response.content == b""
    assert "content-length" not in response.headers


@pytest.mark.parametrize("method", ["PUT", "PATCH", "PROPFIND"])
def test_other_methods_are_405_with_allow(client, method):
    response = client.request(method, "/api/items")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, POST"
    assert response.headers["content-type"] == JSON
    assert response.json()["error"] == "Method Not Allowed"


def test_get_only_method_cell_allow():
    local = App()
    add_cell(local, "/api/one", "def GET(req):\n    return 'one'\n")
    with TestClient(local) as c:
        response = c.post("/api/one")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"


# -- body form ---------------------------------------------------------------------------


def test_body_form_last_expression_is_the_response(client):
    before = len(BODY_CELL_NS["calls"])
    response = client.post("/api/body/9")
    assert response.status_code == 200
    assert response.json() == {"calls": before + 1, "id": "9"}
    assert BODY_CELL_NS["calls"][-1] == "POST"


def test_body_form_may_write_to_res():
    local = App()
    add_cell(local, "/api/made", "res.status(201).json({'made': True})")
    with TestClient(local) as c:
        response = c.get("/api/made")
    assert response.status_code == 201
    assert response.json() == {"made": True}


def test_body_form_without_a_last_expression_is_204():
    local = App()
    add_cell(local, "/api/quiet", "x = 1")
    with TestClient(local) as c:
        assert c.get("/api/quiet").status_code == 204


# -- paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, location",
    [
        ("/api/hello/", "/api/hello"),
        ("/api/hello/?a=1&b=two", "/api/hello?a=1&b=two"),
        ("/api/users/7/", "/api/users/7"),
        ("/api/nope/", "/api/nope"),
        ("/api/hello//", "/api/hello"),
    ],
)
def test_trailing_slash_redirects_308(client, url, location):
    response = client.get(url)
    assert response.status_code == 308
    assert response.headers["location"] == location
    assert response.content == b""


@pytest.mark.parametrize("url", ["//evil.com/", "///evil.com/", "//evil.com/?next=x", "/\\evil.com/"])
def test_trailing_slash_redirect_stays_on_site(client, url):
    response = client.get(url)
    assert response.status_code == 308
    location = response.headers["location"]
    assert location.startswith("/")
    assert location[1:2] not in ("/", "\\")  # '//host' and '/\host' both leave the site in a browser


def test_root_is_not_redirected(client):
    assert client.get("/").status_code == 404


def test_catch_all_gives_a_list(client):
    assert client.get("/api/files/a/b/c.txt").json() == {"path": ["a", "b", "c.txt"]}


def test_escaped_slash_stays_inside_a_catch_all_segment(client):
    assert client.get("/api/files/a%2Fb/c%20d").json() == {"path": ["a/b", "c d"]}


def test_optional_catch_all(client):
    assert client.get("/api/docs").json() == {"has_slug": False, "slug": None}
    assert client.get("/api/docs/a/b").json() == {"has_slug": True, "slug": ["a", "b"]}


@pytest.mark.parametrize("url", ["/api/files/%zz", "/api/files/%", "/api/files/%ff"])
def test_malformed_escape_is_400(client, url):
    response = client.get(url)
    assert response.status_code == 400
    assert response.json()["error"] == "Bad Request"


def test_matching_is_case_sensitive(client):
    assert client.get("/API/hello").status_code == 404


def test_query_and_path_params(client):
    response = client.get("/api/query/7?id=9&tag=a&tag=b&blank=")
    assert response.json() == {"id": "7", "tag": ["a", "b"], "blank": ""}


# -- request bodies ----------------------------------------------------------------------


def test_json_body(client):
    assert client.post("/api/echo", json={"a": [1, 2]}).json() == {"body": {"a": [1, 2]}}


def test_empty_json_body_is_an_empty_object(client):
    response = client.post("/api/echo", headers={"Content-Type": "application/json"})
    assert response.json() == {"body": {}}


def test_no_body_is_an_empty_string(client):
    assert client.get("/api/echo").json() == {"body": ""}


def test_text_body(client):
    assert client.post("/api/echo", content="plain", headers={"Content-Type": "text/plain"}).json() == {"body": "plain"}


def test_invalid_json_is_400_text(client):
    response = client.post("/api/echo", content=b"{bad", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.text == "Invalid JSON"
    assert response.headers["content-type"] == TEXT


def test_urlencoded_body(client):
    response = client.post("/api/echo", data={"tag": ["a", "b"], "x": "1"})
    assert response.json() == {"body": {"tag": ["a", "b"], "x": "1"}}


def test_multipart_upload(client):
    response = client.post("/api/upload", data={"title": "Notes"}, files={"doc": ("a.txt", "héllo", "text/plain")})
    assert response.status_code == 200
    assert response.json() == {"title": "Notes", "filename": "a.txt", "type": "text/plain", "content": "héllo"}


def test_cookies_both_ways(client):
    response = client.get("/api/cookies", cookies={"theme": "dark"})
    assert response.json() == {"cookies": {"theme": "dark"}}
    assert response.cookies == {"sid": "abc123"}
    assert "HttpOnly" in response.headers["set-cookie"]
    assert client.get("/api/cookies").json() == {"cookies": {"sid": "abc123"}}  # the client keeps them
    client.get("/api/logout")
    assert client.get("/api/cookies").json() == {"cookies": {}}


# -- body limits -------------------------------------------------------------------------


def test_default_body_limit_is_1mb(client):
    response = client.post("/api/echo", content=b"x" * (1024 * 1024 + 1), headers={"Content-Type": "text/plain"})
    assert response.status_code == 413
    assert response.text == "Body exceeded 1mb limit"
    assert response.headers["content-type"] == TEXT


def test_body_of_exactly_the_limit_is_accepted(client):
    response = client.post("/api/limited", content=b"x" * 10240)
    assert response.status_code == 200
    assert response.json() == {"size": 10240}


def test_custom_body_limit(client):
    response = client.post("/api/limited", content=b"x" * 10241)
    assert response.status_code == 413
    assert response.text == "Body exceeded 10kb limit"


def test_body_limit_message_says_the_limit_as_configured(client):
    response = client.post("/api/limited-fraction", content=b"x" * (1536 * 1024 + 1))
    assert response.status_code == 413
    assert response.text == "Body exceeded 1.5mb limit"


def test_body_limit_none_leaves_the_body_to_the_handler(client):
    # Nothing is parsed before the handler runs: the body is streamed, and parsed only once the handler reads it.
    response = client.post("/api/raw", content=b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"raw": '{"a": 1}', "size": 8, "body": {"a": 1}}


def test_body_limit_none_has_no_limit(client):
    response = client.post("/api/raw", content=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 200
    assert response.json()["size"] == 2 * 1024 * 1024


def test_body_exceeded_flag_from_a_server_is_413():
    local = App()
    local.route("/api/x")(lambda req: "ok")
    request = TestClient(local).build_request("POST", "/api/x", content=b"cut")
    request.body_exceeded = True
    response = asyncio.run(local.dispatch(request))
    assert response.status == 413
    assert response.body == b"Body exceeded 1mb limit"


# -- conditional requests and bodiless statuses -------------------------------------------


def test_etag_and_if_none_match(client):
    first = client.get("/api/hello")
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    response = client.get("/api/hello", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert "content-length" not in response.headers
    assert "content-type" not in response.headers


@pytest.mark.parametrize("header", ['"nope"', "*", "W/{etag}", '"other", {etag}'])
def test_if_none_match_forms(client, header):
    etag = client.get("/api/hello").headers["etag"]
    response = client.get("/api/hello", headers={"If-None-Match": header.format(etag=etag)})
    assert response.status_code == (200 if header == '"nope"' else 304)


def test_etag_depends_on_the_body(client):
    assert client.get("/api/users/1").headers["etag"] != client.get("/api/users/2").headers["etag"]


def test_no_etag_on_other_methods_or_statuses(client):
    assert "etag" not in client.post("/api/items", json={}).headers
    assert "etag" not in client.get("/api/created").headers


@pytest.mark.parametrize("url, status", [("/api/no-content", 204), ("/api/not-modified", 304)])
def test_204_and_304_never_carry_a_body(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    assert response.content == b""
    assert "content-type" not in response.headers
    assert "content-length" not in response.headers


# -- errors ------------------------------------------------------------------------------


def test_handler_exception_is_500_json_with_its_text_only_in_debug(client):
    response = client.get("/api/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == JSON
    assert response.json() == {"error": "Internal Server Error"}
    with TestClient(App(debug=True)) as debug:
        debug.app.router = app.router
        assert debug.get("/api/boom").json() == {"error": "Internal Server Error", "detail": "ValueError: boom"}


def test_handler_exception_goes_to_the_route_console():
    console = RecordingConsole()
    local = App()
    add_cell(local, "/api/x", "def GET(req):\n    raise KeyError('k')\n", console=console)
    with TestClient(local) as c:
        assert c.get("/api/x").status_code == 500
    (summary, exc), *more = console.errors
    assert more == []
    assert isinstance(exc, KeyError)
    assert "GET /api/x" in summary


def test_debug_false_hides_the_detail():
    local = App(debug=False)
    add_cell(local, "/api/x", "def GET(req):\n    raise ValueError('secret')\n", console=RecordingConsole())
    with TestClient(local) as c:
        assert c.get("/api/x").json() == {"error": "Internal Server Error"}


def test_raise_server_exceptions():
    with TestClient(app, raise_server_exceptions=True) as c, pytest.raises(ValueError, match="boom"):
        c.get("/api/boom")


def test_response_over_the_limit_warns_on_the_route_console():
    console = RecordingConsole()
    local = App()
    add_cell(local, "/api/big", "def GET(req):\n    return 'x' * 2048\n", console=console, response_limit="1kb")
    add_cell(local, "/api/small", "def GET(req):\n    return 'x' * 1024\n", console=console, response_limit="1kb")
    with TestClient(local) as c:
        small = c.get("/api/small")
        assert console.warnings == []
        big = c.get("/api/big")
    assert small.status_code == big.status_code == 200
    assert len(big.content) == 2048  # sent all the same
    assert len(console.warnings) == 1
    assert "response limit" in console.warnings[0]


def test_print_goes_to_the_route_console(capsys):
    console = RecordingConsole()
    local = App()
    source = """
import sys

def GET(req):
    print("hello from GET")
    print("oops", file=sys.stderr)
    return "ok"
"""
    add_cell(local, "/api/p", source, console=console)
    route_stdio()
    try:
        with TestClient(local) as c:
            response = c.get("/api/p")
        print("outside a handler")
    finally:
        unroute_stdio()
    assert response.text == "ok"
    assert console.text("stdout") == "hello from GET\n"
    assert console.text("stderr") == "oops\n"
    captured = capsys.readouterr()
    assert captured.out == "outside a handler\n"
    assert "hello from GET" not in captured.out


def test_unroute_stdio_puts_the_streams_back():
    stdout, stderr = sys.stdout, sys.stderr
    route_stdio()
    try:
        assert sys.stdout is not stdout
    finally:
        unroute_stdio()
    assert (sys.stdout, sys.stderr) == (stdout, stderr)


# -- nbroutes' own routes: the OpenAPI document and the docs page ---------------------

DOCS_URLS = ["/_nbroutes/openapi.json", "/_nbroutes/docs", "/_nbroutes/docs/swagger-ui.css"]


def test_app_title_version_and_docs_default():
    made = App()
    assert (made.title, made.version, made.docs) == ("nbroutes", "0.1.0", True)
    named = App(title="Todo API", version="1.2.0", docs=False)
    assert (named.title, named.version, named.docs) == ("Todo API", "1.2.0", False)


@pytest.mark.parametrize("url", DOCS_URLS)
def test_docs_are_served_by_default(url):
    with TestClient(App()) as c:
        assert c.get(url).status_code == 200


@pytest.mark.parametrize("url", DOCS_URLS)
def test_docs_false_answers_404_like_any_unknown_path(url):
    with TestClient(App(docs=False)) as c:
        response = c.get(url)
        unknown = c.get("/api/nothing")
    assert response.status_code == 404
    assert response.headers["content-type"] == unknown.headers["content-type"] == JSON
    assert response.json() == {"error": "Not Found", "detail": f"No route matches {url}"}


def test_docs_can_be_turned_off_and_on_and_user_routes_stay():
    made = App()

    @made.route("/api/x")
    def x(req):
        return {"x": 1}

    with TestClient(made) as c:
        made.docs = False
        assert c.get("/_nbroutes/openapi.json").status_code == 404
        assert c.get("/api/x").json() == {"x": 1}
        made.docs = True
        assert "/api/x" in c.get("/_nbroutes/openapi.json").json()["paths"]
    assert [r.pattern.text for r in made.router.routes] == ["/api/x"]


@pytest.mark.parametrize("docs", [True, False])
def test_a_root_catch_all_never_answers_under_the_nbroutes_prefix(docs):
    made = App(docs=docs)

    @made.route("/[...slug]")
    def everything(req):
        return {"slug": req.params["slug"]}

    with TestClient(made) as c:
        assert c.get("/a/b").json() == {"slug": ["a", "b"]}
        assert c.get("/_nbroutes/docs").status_code == (200 if docs else 404)
        assert c.get("/_nbroutes/anything/else").status_code == 404


def test_docs_routes_answer_get_and_head_only():
    with TestClient(App()) as c:
        refused = c.post("/_nbroutes/openapi.json")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, HEAD, OPTIONS"
        assert c.head("/_nbroutes/openapi.json").status_code == 200
