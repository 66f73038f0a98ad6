"""The OpenAPI 3.1 document of the live routes, and the Swagger UI page that shows it.

Both are served under ``/_nbroutes/``, a prefix user routes cannot take, and
the document is rebuilt whenever the route table has changed (a cell re-ran).
"""

from __future__ import annotations

import importlib.util
import mimetypes
import os
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter

from nbroutes.core.handlers import Endpoint
from nbroutes.core.paths import Kind, Pattern
from nbroutes.core.requests import Request
from nbroutes.core.responses import Response

if TYPE_CHECKING:
    from nbroutes.core.app import App
    from nbroutes.core.routing import Route

__all__ = ["build_openapi", "serve_internal", "INTERNAL_PREFIX"]

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
    route: Route, method: str, endpoint: Endpoint, path_params: list[tuple[str, str]], schemas: _Schemas
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
    if endpoint.status_code != 204 and signature is not None and signature.return_annotation is not None:
        ok["content"] = {"application/json": {"schema": schemas.of(signature.return_annotation, "serialization")}}
    responses: dict[str, Any] = {str(endpoint.status_code): ok}
    if signature is not None and signature.typed:
        responses["422"] = {
            "description": "Validation failed",
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="ValidationError")}}},
        }
    op["responses"] = responses
    return op


def build_openapi(
    app: App, *, title: str = "nbroutes", version: str = "0.1.0", server_url: str | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes as they are now; ``server_url`` is where clients reach them."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes:
        methods = [m for m in route.methods if m != "HEAD" or "HEAD" in route.endpoints]
        if methods == ["ANY"]:
            methods = list(_ANY_METHODS)
        for path, path_params in _openapi_path(route.pattern):
            item = paths.setdefault(path, {})
            for method in methods:
                endpoint = route.endpoint_for(method)
                if endpoint is None or method == "OPTIONS" and "OPTIONS" not in route.endpoints:
                    continue
                op = _operation(route, method, endpoint, path_params, schemas)
                if len(_openapi_path(route.pattern)) > 1:
                    op["operationId"] += "_" + str(len(path_params))
                item[method.lower()] = op
    document: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": title, "version": version}}
    if server_url is not None:
        document["servers"] = [{"url": server_url}]
    return {
        **document,
        "paths": paths,
        "components": {"schemas": schemas.components},
    }


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


class _OpenAPICache:
    """The document, rebuilt only when the routes have changed."""

    def __init__(self) -> None:
        self.key: Any = None
        self.body = b""


def serve_internal(app: App, request: Request) -> Response:
    """Answer a request under ``/_nbroutes/``: the OpenAPI document, the docs page and its assets."""
    from nbroutes.core.responses import dumps

    path = request.path[len(INTERNAL_PREFIX) :]
    if path == "openapi.json":
        cache: _OpenAPICache = app.__dict__.setdefault("_openapi_cache", _OpenAPICache())
        server_url = _proxied_prefix(request)
        key = (app.router.version, server_url)
        if cache.key != key:
            cache.body, cache.key = dumps(build_openapi(app, server_url=server_url)), key
        return Response(cache.body, 200, content_type="application/json")
    if path in ("docs", "docs/"):
        if path == "docs/":
            return Response.redirect("../docs", 308)
        return Response.html(_DOCS_PAGE.format(title="nbroutes"))
    if path.startswith("docs/"):
        return _asset(path[len("docs/") :])
    return Response.json({"error": "Not Found", "detail": f"No route matches {request.path}"}, 404)


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
