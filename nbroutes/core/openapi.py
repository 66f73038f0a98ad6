"""The OpenAPI 3.1 document of an App's routes, and the routes that serve it with its Swagger UI page.

They are ordinary routes under ``/_nbroutes/`` (a prefix user routes cannot take),
owned by nbroutes and left out of listings; the App mounts them and keeps the
document's JSON in a ``DocumentCache`` until its routes or middleware change.
This module knows nothing of ``App``: it builds from anything ``Documented``.
"""

from __future__ import annotations

import html
import importlib.util
import inspect
import mimetypes
import os
import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, TypeAdapter

from nbroutes.core.handlers import Endpoint
from nbroutes.core.middlewares import Middleware, MiddlewareStack, TokenAuth
from nbroutes.core.output import Console
from nbroutes.core.paths import Kind, Pattern, compile_pattern
from nbroutes.core.requests import Request
from nbroutes.core.responses import Response, dumps
from nbroutes.core.routing import DEFAULT_RESPONSE_LIMIT, Route, Router
from nbroutes.core.statuses import Answered, statuses_in_source

__all__ = ["Documented", "DocumentCache", "INTERNAL_OWNER", "INTERNAL_PREFIX", "build_openapi", "internal_routes"]

#: The owner of nbroutes' own routes in an App's router.
INTERNAL_OWNER = "nbroutes:internal"
INTERNAL_PREFIX = "/_nbroutes/"
_REF = "#/components/schemas/{model}"
_ANY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {}},
    "required": ["error"],
}
_VALIDATION_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "const": "Validation failed"},
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                },
                "required": ["type", "loc", "msg"],
            },
        },
    },
    "required": ["error", "detail"],
}


class _Schemas:
    """Collects the component schemas that operations refer to."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": _ERROR, "ValidationError": _VALIDATION_ERROR}

    def of(self, annotation: Any, mode: str = "validation") -> dict[str, Any]:
        schema = self._hoist(TypeAdapter(annotation).json_schema(ref_template=_REF, mode=mode))  # type: ignore[arg-type]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            # A model is a named component, so clients and the docs page show its name.
            self.components.setdefault(annotation.__name__, schema)
            return {"$ref": _REF.format(model=annotation.__name__)}
        return schema

    def _hoist(self, schema: dict[str, Any]) -> dict[str, Any]:
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        return schema


def _openapi_path(pattern: Pattern) -> list[tuple[str, list[tuple[str, str]]]]:
    """The OpenAPI path(s) of a pattern, with the path parameters' names and kinds.

    An optional catch-all is two paths: without the segments, and with them.
    """
    parts: list[str] = []
    params: list[tuple[str, str]] = []
    out = []
    for seg in pattern.segments:
        if seg.kind is Kind.STATIC:
            parts.append(seg.value)
            continue
        if seg.kind is Kind.OPTIONAL_CATCH_ALL:
            out.append(("/" + "/".join(parts), list(params)))
        parts.append("{" + seg.value + "}")
        params.append((seg.value, seg.kind.name))
    out.append(("/" + "/".join(parts), params))
    return out


_PATH_PARAM_DOC = {
    "PARAM": None,
    "CATCH_ALL": "one or more path segments, separated by '/'",
    "OPTIONAL_CATCH_ALL": "zero or more path segments, separated by '/'",
}


def _operation(
    route: Route,
    method: str,
    endpoint: Endpoint,
    path_params: list[tuple[str, str]],
    schemas: _Schemas,
    from_middleware: Mapping[int, Answered],
) -> dict[str, Any]:
    signature = endpoint.signature
    doc = endpoint.doc
    summary, _, description = doc.partition("\n")
    slug = re.sub(r"[^A-Za-z0-9]+", "_", route.pattern.text).strip("_") or "root"
    op: dict[str, Any] = {"operationId": f"{method.lower()}_{slug}"}
    if summary:
        op["summary"] = summary.strip()
    if description.strip():
        op["description"] = description.strip()
    parameters: list[dict[str, Any]] = []
    typed = {p.name: p for p in signature.parameters} if signature is not None else {}
    for name, kind in path_params:
        param: dict[str, Any] = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        if name in typed and kind == "PARAM":
            param["schema"] = schemas.of(typed[name].annotation)
        if _PATH_PARAM_DOC[kind]:
            param["description"] = _PATH_PARAM_DOC[kind]
        parameters.append(param)
    if signature is not None:
        for location, model in signature.models.items():
            if location == "path":
                continue
            schema = schemas._hoist(model.model_json_schema(ref_template=_REF))
            required = set(schema.get("required", ()))
            for p in signature.parameters:
                if p.location != location:
                    continue
                entry: dict[str, Any] = {
                    "name": p.key,
                    "in": location,
                    "required": p.name in required,
                    "schema": schema["properties"][p.name],
                }
                if p.description:
                    entry["description"] = p.description
                parameters.append(entry)
    if parameters:
        op["parameters"] = parameters
    if signature is not None and signature.body is not None:
        body_schema = schemas.of(signature.body.annotation)
        op["requestBody"] = {
            "required": signature.body.required,
            "content": {
                "application/json": {"schema": body_schema},
                "application/x-www-form-urlencoded": {"schema": body_schema},
            },
        }
    ok: dict[str, Any] = {"description": "Successful response"}
    status = endpoint.status_code
    # A handler that writes through res answers what res holds when it returns None; others answer 204.
    writes = signature is None or any(p.location == "response" for p in signature.all_parameters)
    if status == 200 and not writes and _returns_nothing(endpoint):
        status = 204  # `-> None`
    if status != 204 and signature is not None and signature.return_annotation is not None:
        ok["content"] = {"application/json": {"schema": schemas.of(signature.return_annotation, "serialization")}}
    responses: dict[str, Any] = {str(status): ok}
    if signature is not None and signature.typed:
        responses["422"] = {
            "description": "Validation failed",
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="ValidationError")}}},
        }
    answered = statuses_in_source(endpoint.fn)
    if writes:
        answered.pop(204, None)  # `return` after res.json(...)
    answered.update({code: Answered(text, error=True) for code, text in endpoint.responses.items()})
    answered.update(from_middleware)
    _declare(responses, answered, ok)
    op["responses"] = responses
    return op


def _returns_nothing(endpoint: Endpoint) -> bool:
    """Whether the handler is annotated ``-> None``."""
    try:
        returns = inspect.signature(endpoint.fn).return_annotation
    except (TypeError, ValueError):
        return False
    return returns is None or returns is type(None) or returns == "None"


def _declare(responses: dict[str, Any], answered: Mapping[int, Answered], ok: dict[str, Any]) -> None:
    """Add the statuses a handler's code (or a middleware's) answers besides its success, each once."""
    for code in sorted(answered):
        if str(code) in responses:
            continue
        answer = answered[code]
        entry: dict[str, Any] = {"description": answer.description}
        if answer.error:  # an HTTPException's {"error": detail}
            entry["content"] = {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}
        elif 200 <= code < 300 and code != 204 and "content" in ok:
            entry["content"] = ok["content"]  # `return post, 201`: the body is the one a 200 would carry
        responses[str(code)] = entry


class Documented(Protocol):
    """What the document describes: an App's routes, its middleware, its title and version."""

    router: Router
    middleware: MiddlewareStack
    title: str
    version: str


def build_openapi(app: Documented, *, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes as they are now; ``server_url`` is where clients reach them.

    nbroutes' own routes (the docs) are not in it. An operation that a ``require_token`` middleware
    covers names its security scheme and the 401 it answers without the token.
    """
    schemas = _Schemas()
    security = _Security(app.middleware)
    # What a middleware's own code answers (`return {"error": ...}, 401`) is answered on every path it covers.
    answering = [(m, found) for m in app.middleware if (found := statuses_in_source(m.fn))]
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes:
        methods = [m for m in route.methods if m != "HEAD" or "HEAD" in route.endpoints]
        if methods == ["ANY"]:
            methods = list(_ANY_METHODS)
        for path, path_params in _openapi_path(route.pattern):
            item = paths.setdefault(path, {})
            required = security.required_for(path)
            from_middleware = {code: a for m, found in answering if _covers(m, path) for code, a in found.items()}
            for method in methods:
                endpoint = route.endpoint_for(method)
                if endpoint is None or method == "OPTIONS" and "OPTIONS" not in route.endpoints:
                    continue
                op = _operation(route, method, endpoint, path_params, schemas, from_middleware)
                if len(_openapi_path(route.pattern)) > 1:
                    op["operationId"] += "_" + str(len(path_params))
                if required:
                    op["security"] = [required]
                    op["responses"]["401"] = {
                        "description": "Unauthorized: the request carries no valid token",
                        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
                    }
                item[method.lower()] = op
    document: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": app.title, "version": app.version}}
    if server_url is not None:
        document["servers"] = [{"url": server_url}]
    components: dict[str, Any] = {"schemas": schemas.components}
    if security.used:
        components["securitySchemes"] = security.used
    return {**document, "paths": paths, "components": components}


class _Security:
    """The ``require_token`` middlewares, as OpenAPI security schemes, and the paths each covers."""

    def __init__(self, middleware: Iterable[Middleware]) -> None:
        self.guards: list[tuple[Middleware, str, dict[str, Any]]] = []
        schemes: dict[str, dict[str, Any]] = {}
        for item in middleware:
            auth = getattr(item.fn, "token_auth", None)
            if isinstance(auth, TokenAuth):
                name, scheme = _security_scheme(auth)
                while schemes.get(name, scheme) != scheme:  # two different API-key headers need two names
                    name += "_"
                schemes[name] = scheme
                self.guards.append((item, name, scheme))
        #: The schemes that some operation requires, for ``components.securitySchemes``.
        self.used: dict[str, dict[str, Any]] = {}

    def required_for(self, path: str) -> dict[str, list[str]]:
        """The security requirement of an OpenAPI path: every scheme whose matcher covers it (all must pass)."""
        required: dict[str, list[str]] = {}
        for middleware, name, scheme in self.guards:
            if _covers(middleware, path):
                required[name] = []
                self.used[name] = scheme
        return required


#: Path parameters are filled with these to ask a matcher whether it covers the path; a matcher that takes
#: either runs for at least some requests to it, and a client had better know what it may answer.
_SAMPLES = ("x", "1")


def _covers(middleware: Middleware, path: str) -> bool:
    """Whether ``middleware`` runs for some requests to the OpenAPI ``path`` (``/api/posts/{id}``)."""
    return any(middleware.matches(re.sub(r"\{[^}/]+\}", sample, path)) for sample in _SAMPLES)


def _security_scheme(auth: TokenAuth) -> tuple[str, dict[str, Any]]:
    """The name and OpenAPI security scheme of a ``require_token``: HTTP bearer by default, else an API key."""
    if auth.scheme and auth.header.lower() == "authorization":
        kind = auth.scheme.lower()
        return f"{kind}Auth", {"type": "http", "scheme": kind}
    scheme: dict[str, Any] = {"type": "apiKey", "in": "header", "name": auth.header}
    if auth.scheme:
        scheme["description"] = f"the token after '{auth.scheme} '"
    return "apiKeyAuth", scheme


def _swagger_dir() -> str | None:
    # Found without importing swagger_ui, whose __init__ pulls in jinja2 and yaml.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "static")


_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}: API docs</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script>
    // Relative URLs, so the page also works behind jupyter-server-proxy on JupyterHub and Binder.
    window.ui = SwaggerUIBundle({{url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true}});
  </script>
</body>
</html>
"""


class DocumentCache:
    """The document as JSON and what it was built from: ``get`` rebuilds it only when that has changed."""

    __slots__ = ("key", "body")

    def __init__(self) -> None:
        self.key: Hashable = None
        self.body = b""

    def get(self, key: Hashable, build: Callable[[], dict[str, Any]]) -> bytes:
        """The JSON of ``build()``, built again only if ``key`` differs from the last one."""
        if self.key != key:
            self.body = dumps(build())
            self.key = key
        return self.body


def internal_routes(document: Callable[[str | None], bytes], title: Callable[[], str], *, docs: bool) -> list[Route]:
    """nbroutes' own routes under ``/_nbroutes/``, unlisted: the docs (when ``docs``), and a 404 for the rest.

    ``document(server_url)`` is the OpenAPI document as JSON; ``title()`` names the docs page. The
    catch-all keeps the whole prefix nbroutes' own, so a user's ``/[...slug]`` never answers under it.
    """
    console = Console("nbroutes")

    def route(
        path: str,
        fn: Callable[[Request], Response],
        *,
        only: frozenset[str] | None = frozenset({"GET"}),
        response_limit: int = DEFAULT_RESPONSE_LIMIT,
    ) -> Route:
        return Route(
            compile_pattern(INTERNAL_PREFIX + path),
            {"*": Endpoint(fn)},
            console=console,
            only=only,
            response_limit=response_limit,
            listed=False,
        )

    routes = [route("[...path]", _reserved, only=None)]
    if docs:

        def openapi_json(req: Request) -> Response:
            return Response(document(_proxied_prefix(req)), 200, content_type="application/json")

        def docs_page(req: Request) -> Response:
            return Response.html(_DOCS_PAGE.format(title=html.escape(title())))

        def docs_asset(req: Request) -> Response:
            return _asset(str(req.params["asset"]))  # one segment: a str

        routes += [
            route("openapi.json", openapi_json),
            route("docs", docs_page),
            # Swagger UI's bundle and source maps are larger than a route's usual response limit.
            route("docs/[asset]", docs_asset, response_limit=64 * 1024 * 1024),
        ]
    return routes


def _reserved(req: Request) -> Response:
    return Response.json({"error": "Not Found", "detail": f"No route matches {req.path}"}, 404)


def _proxied_prefix(request: Request) -> str | None:
    """Under JupyterHub or Binder, where browsers reach this server: ``$JUPYTERHUB_SERVICE_PREFIX/proxy/<port>``.

    Swagger UI's "Try it out" sends requests to the document's server, so without this it would call
    ``/api/...`` on the hub's origin. jupyter-server-proxy says which prefix it serves from in
    ``X-Forwarded-Context``; a request from elsewhere (``curl`` in a terminal) names the port in ``Host``.
    """
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if not prefix:
        return None
    base = prefix.rstrip("/") + "/proxy/"
    context = request.headers.get("X-Forwarded-Context", "")
    if context.startswith(base) and re.fullmatch(r"[A-Za-z0-9.:-]+", context[len(base) :]):
        return context
    port = request.headers.get("Host", "").rpartition(":")[2]
    return base + port if port.isdigit() else None


def _asset(name: str) -> Response:
    directory = _swagger_dir()
    if directory is None:
        return Response.text("The docs page needs Swagger UI: pip install swagger-ui-py", 503)
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name.startswith("."):
        return Response.json({"error": "Not Found"}, 404)
    full = os.path.join(directory, name)
    if not os.path.isfile(full):
        return Response.json({"error": "Not Found"}, 404)
    with open(full, "rb") as f:
        data = f.read()
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(data, 200, [("Cache-Control", "public, max-age=86400")], content_type=content_type)
