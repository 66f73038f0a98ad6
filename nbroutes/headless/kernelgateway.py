"""Jupyter Kernel Gateway ``notebook-http`` notebooks served by nbroutes, with Kernel Gateway's answers.

A code cell whose first line is ``# GET /people/:name`` answers that method and path; cells with the same
annotation are joined in order; a ``# ResponseInfo GET /people/:name`` cell runs after its endpoint and prints
JSON with ``status`` and ``headers``; every other code cell runs once at startup. Before each request the
``REQUEST`` global holds the request as a JSON string. The body of the answer is the cell's stdout, else the
JSON of its ``execute_result`` data, as ``text/plain``. The regular expressions, the shape of ``REQUEST``, the
error bodies and the Swagger document are Kernel Gateway 3's own (``kernel_gateway/notebook_http``); the
differences are listed in ``docs/kernel-gateway.md``.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import responses as _REASONS
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from tornado.escape import parse_qs_bytes
from tornado.httputil import HTTPHeaders, HTTPInputError, parse_body_arguments

from nbroutes.core.app import App
from nbroutes.core.handlers import Endpoint
from nbroutes.core.openapi import INTERNAL_PREFIX
from nbroutes.core.output import Console
from nbroutes.core.paths import compile_pattern
from nbroutes.core.requests import Request
from nbroutes.core.responses import Response
from nbroutes.errors import KernelGatewayNotebookError, MalformedPathError, PatternError, StartupCellError

if TYPE_CHECKING:
    from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

    from nbroutes.core.middlewares import CallNext

__all__ = [
    "KernelGatewayNotebookError",
    "StartupCellError",
    "SWAGGER_PATH",
    "build_app",
    "is_kernel_gateway_notebook",
    "request_json",
    "swagger_document",
]

#: Kernel Gateway's own annotations (``APICellParser``), matched at the very start of a cell, as it does.
API_CELL = re.compile(r"#\s+(GET|PUT|POST|DELETE)\s+(\/.*)+")
RESPONSE_CELL = re.compile(r"#\s+ResponseInfo\s+(GET|PUT|POST|DELETE)\s+(\/.*)+")
SWAGGER_PATH = "/_api/spec/swagger.json"
OWNER = "kernel-gateway"

_VERBS = ("GET", "POST", "PUT", "DELETE")
_PLAIN = "text/plain"
_TORNADO_DEFAULT_TYPE = "text/html; charset=UTF-8"  # what Tornado sends when a handler set no Content-Type
_FORM = "application/x-www-form-urlencoded"
_FIELDS = "kernel_gateway.form_fields"  # request.state key: the form fields the middleware parsed
_TORNADO_METHODS = frozenset({"GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"})
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Segment text that means the same as a regular expression and as plain text ('.' aside: read as a dot).
_LITERAL_SEGMENT = re.compile(r"[A-Za-z0-9._~!&',;=@-]+")
_NBROUTES_MAGIC = re.compile(r"^\s*(%load_ext\s+nbroutes\b|%%route\b|import\s+nbroutes\b|from\s+nbroutes\b)", re.M)


def _code_sources(nb: Mapping[str, Any]) -> list[str]:
    return [_source(cell) for cell in nb["cells"] if cell.get("cell_type") == "code"]


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def is_kernel_gateway_notebook(nb: Mapping[str, Any]) -> bool:
    """True when a code cell starts with a Kernel Gateway annotation and no cell uses nbroutes itself."""
    sources = _code_sources(nb)
    if any(_NBROUTES_MAGIC.search(source) for source in sources):
        return False
    return any(API_CELL.match(source) for source in sources)


def _annotated(sources: list[str], pattern: re.Pattern[str]) -> dict[str, dict[str, str]]:
    """path -> verb -> the joined sources of the cells annotated with it, in notebook order (as Kernel Gateway)."""
    found: dict[str, dict[str, str]] = {}
    for source in sources:
        match = pattern.match(source)
        if match is not None:
            verbs = found.setdefault(match.group(2).strip(), {})
            verbs[match.group(1)] = verbs.get(match.group(1), "") + source + "\n"
    return found


def swagger_document(nb: Mapping[str, Any], title: str) -> dict[str, Any]:
    """Kernel Gateway's Swagger 2.0 document: every annotated cell (markdown too, as it reads them all)."""
    paths: dict[str, dict[str, Any]] = {}
    for cell in nb["cells"]:
        match = API_CELL.match(_source(cell))
        if match is not None:
            paths.setdefault(match.group(2).strip(), {})[match.group(1).lower()] = {
                "responses": {"200": {"description": "Success"}}
            }
    return {"swagger": "2.0", "paths": paths, "info": {"version": "0.0.0", "title": title}}


# -- the request as Kernel Gateway hands it to the notebook --
def _decoded(arguments: Mapping[str, list[bytes]]) -> dict[str, list[str]]:
    """Kernel Gateway's ``parse_args``: every value decoded as UTF-8 (strictly, as it does)."""
    return {name: [value.decode("utf-8") for value in values] for name, values in arguments.items()}


def _form_fields(request: Request) -> dict[str, list[bytes]]:
    """Tornado's ``body_arguments``: the fields of a form or multipart body (not its files).

    Raises HTTPInputError, which Tornado answers with a 400, for a form body it cannot parse.
    """
    fields: dict[str, list[bytes]] = {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith((_FORM, "multipart/form-data")):
        headers = HTTPHeaders()
        for name, value in request.headers.raw():
            headers.add(name, value)
        parse_body_arguments(content_type, request.raw_body, fields, {}, headers)
    return fields


def _header_name(name: str) -> str:
    return "-".join(word.capitalize() for word in name.split("-"))  # Tornado's Http-Header-Case


def _body(request: Request) -> Any:
    """Kernel Gateway's ``parse_body``: JSON and form bodies parsed, anything else the text as sent."""
    raw = request.raw_body
    text = raw.decode("utf-8") if raw else ""
    content_type = request.headers.get("content-type", _PLAIN)
    if content_type == _FORM or content_type.startswith("multipart/form-data"):
        fields = request.state.get(_FIELDS)
        return _decoded(fields if fields is not None else _form_fields(request))
    if content_type == "application/json":
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return text
    return text


def request_json(request: Request, path_params: Mapping[str, str | list[str]]) -> str:
    """The ``REQUEST`` string Kernel Gateway sets before running an endpoint cell.

    Raises UnicodeDecodeError when the body or a query value is not UTF-8, HTTPInputError for a form body
    Tornado cannot parse.
    """
    headers: dict[str, str | list[str]] = {}
    for name, value in request.headers.raw():
        key = _header_name(name)
        if key not in headers:
            headers[key] = value
        else:
            previous = headers[key]
            headers[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
    bundle = {
        "body": _body(request),
        "args": _decoded(parse_qs_bytes(request.query_string, keep_blank_values=True)),
        "path": dict(path_params),
        "headers": headers,
    }
    return json.dumps(bundle)


# -- running cells --
@dataclass
class CellOutput:
    """What one execution sent back: stdout, the execute_result data, or the error."""

    stdout: str = ""
    result: dict[str, Any] | None = None
    error: BaseException | None = None

    @property
    def error_text(self) -> str:
        """Kernel Gateway's body for a failed cell, trailing space and newline included."""
        exc = self.error
        return f"Error {type(exc).__name__}: {exc} \n"

    @property
    def text(self) -> str:
        """The answer's body: stdout, else the JSON of the result's data, else nothing."""
        if self.stdout:
            return self.stdout
        if self.result:
            return json.dumps(self.result)
        return ""


_HOOK_METHODS = ("start_displayhook", "write_output_prompt", "write_format_data", "finish_displayhook")


class NotebookKernel:
    """The shell the notebook's cells run in, one at a time, as in Kernel Gateway's single kernel."""

    #: Cells of history kept: a server runs a cell per request, and a kernel's history never forgets.
    history_kept = 200

    def __init__(self, shell: InteractiveShell, directory: Path) -> None:
        self.shell = shell
        #: The working directory cells see; a cell's os.chdir() carries over to the next, as in a kernel.
        self.cwd = str(Path(directory).resolve())
        self._forgotten = 1  # execution counts below this have had their history dropped

    def run(self, source: str) -> CellOutput:
        """Run ``source`` as a cell, capturing its stdout, its execute_result data and its error."""
        output = CellOutput()
        with self._kernel_process(), self._captured(output):
            # History is stored as a kernel does: the trailing-semicolon rule and ``_``/``Out`` read it.
            # InteractiveShell.run_cell has no annotations.
            result: ExecutionResult = self.shell.run_cell(source, store_history=True)  # type: ignore[no-untyped-call]
        output.error = result.error_before_exec or result.error_in_exec
        self._forget_old_history()
        return output

    def _forget_old_history(self) -> None:
        """Drop what IPython keeps of cells older than the last ``history_kept`` (In, Out, _iN, _N)."""
        history = self.shell.history_manager
        if history is None:
            return  # a shell that keeps no history has none to forget
        count = len(history.input_hist_parsed)
        oldest_kept = count - self.history_kept
        if oldest_kept - self._forgotten < self.history_kept:
            return  # in batches, so the cost per request stays constant
        ns = self.shell.user_ns
        for n in range(self._forgotten, oldest_kept):
            # Emptied, not deleted: In[n] must stay at index n.
            history.input_hist_parsed[n] = history.input_hist_raw[n] = ""
            for store in (history.output_hist, history.outputs, history.exceptions):
                store.pop(n, None)
            ns.pop(f"_i{n}", None)
            ns.pop(f"_{n}", None)
        self._forgotten = oldest_kept

    @contextmanager
    def _kernel_process(self) -> Iterator[None]:
        """The environment, working directory and IPython instance of Kernel Gateway's kernel, for one run."""
        from IPython.core.interactiveshell import InteractiveShell

        previous_env = os.environ.get("KERNEL_GATEWAY")
        previous_cwd = os.getcwd()
        # display() and friends find the shell as the process's IPython, as they would in the kernel.
        # traitlets declares SingletonConfigurable._instance as None, the value it starts with.
        previous_shell, InteractiveShell._instance = InteractiveShell._instance, self.shell  # type: ignore[assignment]
        os.environ["KERNEL_GATEWAY"] = "1"
        os.chdir(self.cwd)
        try:
            yield
        finally:
            self.cwd = os.getcwd()
            os.chdir(previous_cwd)
            InteractiveShell._instance = previous_shell
            if previous_env is None:
                os.environ.pop("KERNEL_GATEWAY", None)
            else:
                os.environ["KERNEL_GATEWAY"] = previous_env

    @contextmanager
    def _captured(self, output: CellOutput) -> Iterator[None]:
        """Send stdout to ``output`` and keep the displayhook's data instead of printing it.

        The displayhook's output methods are replaced on the shell's own hook, so ``_``, ``Out`` and the
        trailing-semicolon rule behave as in a kernel; display() outputs are dropped, as Kernel Gateway does.
        """
        from IPython.core.displaypub import CapturingDisplayPublisher

        shell = self.shell
        hook = shell.displayhook
        saved = {name: hook.__dict__[name] for name in _HOOK_METHODS if name in hook.__dict__}

        def keep(format_dict: dict[str, Any], md_dict: dict[str, Any] | None = None) -> None:
            output.result = format_dict

        # On the instance, shadowing the methods; the finally block below takes them off again.
        hook.__dict__.update(dict.fromkeys(_HOOK_METHODS, _nothing), write_format_data=keep)
        publisher = CapturingDisplayPublisher()  # type: ignore[no-untyped-call]  # IPython: no annotations
        display_pub, shell.display_pub = shell.display_pub, publisher
        stdout, sys.stdout = sys.stdout, io.StringIO()
        try:
            yield
        finally:
            output.stdout = sys.stdout.getvalue()
            sys.stdout = stdout
            shell.display_pub = display_pub
            for name in _HOOK_METHODS:
                hook.__dict__.pop(name, None)
            hook.__dict__.update(saved)


def _nothing(*args: Any) -> None:
    return None


# -- endpoints --
class CellEndpoint:
    """One path's cells for one verb, with its ResponseInfo cells."""

    def __init__(
        self,
        kernel: NotebookKernel,
        path: str,
        source: str,
        response_source: str | None,
        names: list[tuple[str, str]],
        console: Console,
    ) -> None:
        self.kernel = kernel
        self.path = path
        self.source = source
        self.response_source = response_source
        #: (nbroutes' name, the notebook's name) for each path parameter, in order.
        self.names = names
        self.console = console

    def answer(self, req: Request) -> Response:
        """Run the endpoint's cells for ``req``; the answer Kernel Gateway's handler gives."""
        try:
            self.kernel.shell.user_ns["REQUEST"] = request_json(req, {kg: req.params[ours] for ours, kg in self.names})
        except UnicodeDecodeError:
            # Kernel Gateway's handler has set its 200 and text/plain when decoding fails, and sends just that.
            self.console.warn(f"{req.method} {req.url}: the body or query is not UTF-8, so no cell ran")
            return Response(b"", 200, content_type=_PLAIN)
        output = self.kernel.run(self.source)
        if output.error is not None:
            return self._failed(req, output)
        response = Response(output.text.encode(), 200, content_type=_PLAIN)
        if self.response_source is None:
            return response
        info = self.kernel.run(self.response_source)
        if info.error is not None:
            return self._failed(req, info)
        try:
            meta = json.loads(info.text)
            headers = meta.get("headers", {}) if isinstance(meta, dict) else {}
            status = meta.get("status") if isinstance(meta, dict) else None
            for name, value in headers.items():
                response.set_header(str(name), str(value))
            if status is not None:
                response.status = int(status)
        except (ValueError, TypeError, AttributeError) as exc:
            # Kernel Gateway's handler finishes the response before the exception escapes: a 200, no body.
            self.console.warn(f"ResponseInfo {req.method} {self.path} did not print JSON with status/headers ({exc})")
            response.body = b""
        return response

    def _failed(self, req: Request, output: CellOutput) -> Response:
        exc = output.error
        assert exc is not None
        self.console.error(f"{req.method} {req.url} raised {type(exc).__name__}: {exc}", exc)
        return Response(output.error_text.encode(), 500, content_type=_PLAIN)


def _tornado_error(status: int, message: str = "") -> Response:
    """Kernel Gateway's ``JSONErrorsMixin`` body for an error Tornado raised (400, 404, 405)."""
    body = json.dumps({"reason": _REASONS.get(status, "Unknown HTTP Error"), "message": message})
    return Response(body.encode(), status, content_type="application/json")


def _not_found(path: str) -> Response:
    """The answer of Kernel Gateway's catch-all ``/(.*)``: 404, or 400 when the path's bytes are not UTF-8."""
    rest = unquote_to_bytes(path[1:])
    try:
        rest.decode("utf-8")
    except UnicodeDecodeError:
        return _tornado_error(400, f"Invalid unicode in url: {rest[:40]!r}")
    return _tornado_error(404)


class _KernelGatewayRules:
    """Middleware: the answers Tornado and Kernel Gateway give before a cell runs (404, 405, OPTIONS)."""

    def __init__(self, app: App, cell_routes: dict[str, dict[str, str]]) -> None:
        self.app = app
        #: owner -> {nbroutes' parameter name: the notebook's}, for the routes of endpoint cells.
        self.cell_routes = cell_routes

    async def __call__(self, req: Request, call_next: CallNext) -> Response | None:
        """The answer Kernel Gateway gives before any cell runs, or None to let the request reach its route."""
        # The routes set no body limit, as Kernel Gateway sets none, so the body comes as a stream; REQUEST
        # holds it whole, so read it here.
        await req.read()
        path = req.path
        if path.startswith(INTERNAL_PREFIX):
            return None
        # Tornado's order: an unknown method, then the body, then the path's parameters, then the handler.
        if req.method not in _TORNADO_METHODS:
            return _tornado_error(405)
        try:
            req.state[_FIELDS] = _form_fields(req)
        except HTTPInputError as exc:
            return _tornado_error(400, f"Invalid body: {exc}")
        if len(path) > 1 and path.endswith("/"):
            return _not_found(path)  # Tornado's patterns end in '$': no redirect to the path without '/'
        if _STRAY_PERCENT.search(path):
            path = req.path = _STRAY_PERCENT.sub("%25", path)  # Tornado keeps a '%' that starts no escape
        try:
            found = self.app.router.match(path)
        except MalformedPathError:
            return self._not_utf8(path)
        if found is None:
            return _not_found(path)
        route = found[0]
        method = req.method
        if method in route.endpoints:
            return None
        if method == "OPTIONS":
            return Response(b"", 200, content_type=_TORNADO_DEFAULT_TYPE)
        if method in _VERBS and route.owner in self.cell_routes:
            return Response(b"", 405, content_type=_TORNADO_DEFAULT_TYPE)  # UnsupportedMethodError: no body
        return _tornado_error(405)

    def _not_utf8(self, path: str) -> Response:
        """Tornado's 400 for a path parameter whose bytes are not UTF-8, or its 404 when no route takes the path."""
        segments = path[1:].split("/")
        bad: dict[int, bytes] = {}
        for index, segment in enumerate(segments):
            raw = unquote_to_bytes(segment)
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                bad[index] = raw
                segments[index] = "%00"  # no static segment holds NUL, so only a parameter can take it
        found = self.app.router.match("/" + "/".join(segments)) if bad else None
        if found is None:
            return _not_found(path)
        route = found[0]
        index = min(bad)
        ours = route.pattern.segments[index].value
        name = self.cell_routes.get(route.owner, {}).get(ours, ours)
        return _tornado_error(400, f"Invalid unicode in {name}: {bad[index][:40]!r}")


def _pattern(path: str, names_at: dict[tuple[str, ...], str]) -> tuple[str, list[tuple[str, str]]]:
    """The nbroutes pattern of a Kernel Gateway path, and its parameters' (nbroutes, notebook) names.

    nbroutes wants one name per dynamic position (``/people/:name`` and ``/people/:id/friends`` share one), so
    the first name seen at a position is used for all, and each endpoint maps it back to its own.

    Raises KernelGatewayNotebookError for a path nbroutes cannot match the way Kernel Gateway does.
    """
    segments = path.strip("/").split("/") if path.strip("/") else []
    parts: list[str] = []
    names: list[tuple[str, str]] = []
    shape: list[str] = []
    for segment in segments:
        if segment.startswith(":"):
            name = segment[1:]
            if not name.isidentifier():
                raise KernelGatewayNotebookError(f"{path}: parameter {segment!r} must be ':' and a Python name")
            ours = names_at.get(tuple(shape))
            if ours is None:
                ours = name
                while ours in {n for n, _ in names}:
                    ours += "_"
                names_at[tuple(shape)] = ours
            parts.append(f"[{ours}]")
            names.append((ours, name))
            shape.append(":")
        elif ":" in segment:
            raise KernelGatewayNotebookError(f"{path}: write {segment!r} as a whole segment, e.g. /items/:id")
        elif not _LITERAL_SEGMENT.fullmatch(segment):
            # Kernel Gateway's paths are regular expressions; nbroutes matches plain text, and [x] is a parameter.
            raise KernelGatewayNotebookError(
                f"{path}: segment {segment!r} is a regular expression or has characters a path cannot hold; "
                "write plain text and use :name for the part that varies"
            )
        else:
            parts.append(segment)
            shape.append(segment)
    text = "/" + "/".join(parts)
    try:
        compile_pattern(text)
    except PatternError as exc:
        raise KernelGatewayNotebookError(f"{path}: {exc}") from None
    return text, names


def _language(nb: Mapping[str, Any]) -> str:
    metadata = nb.get("metadata", {})
    name = metadata.get("language_info", {}).get("name") or metadata.get("kernelspec", {}).get("language") or ""
    return str(name).lower()


def build_app(
    nb: Mapping[str, Any],
    shell: InteractiveShell | None = None,
    *,
    directory: Path,
    filename: str | None = None,
) -> App:
    """Run the notebook's startup cells in ``shell`` and return an App that answers as Kernel Gateway does.

    ``directory`` is the working directory of the cells; ``filename`` (the notebook's file name) gives the
    Swagger title, as Kernel Gateway takes it from the seed URI. Without ``shell``, IPython's own instance.

    Raises KernelGatewayNotebookError for a notebook with no endpoints or a path nbroutes cannot serve, and
    StartupCellError when a startup cell raises.
    """
    language = _language(nb)
    if language not in ("", "python"):
        raise KernelGatewayNotebookError(
            f"this notebook's kernel runs {language}, and nbroutes runs cells in Python: serve it with Kernel Gateway"
        )
    sources = _code_sources(nb)
    endpoints = _annotated(sources, API_CELL)
    if not endpoints:
        raise KernelGatewayNotebookError(
            "No endpoints were discovered: start an endpoint cell with a line such as '# GET /hello'"
        )
    infos = _annotated(sources, RESPONSE_CELL)
    names_at: dict[tuple[str, ...], str] = {}
    planned: dict[str, tuple[str, list[tuple[str, str]]]] = {}  # pattern -> (path, names)
    for path in endpoints:
        pattern, names = _pattern(path, names_at)
        if pattern in planned:
            # Tornado tries its patterns in order, so the first of two paths that match alike takes every request.
            Console(path).warn(f"matches the same requests as {planned[pattern][0]}, which answers them")
            continue
        planned[pattern] = (path, names)
    if shell is None:
        from IPython.core.interactiveshell import InteractiveShell

        shell = InteractiveShell.instance()
    app = App()
    kernel = NotebookKernel(shell, directory)
    cell_routes: dict[str, dict[str, str]] = {}
    for pattern, (path, names) in planned.items():
        owner = f"{OWNER} {path}"
        console = Console(path)
        handlers = {
            verb: Endpoint(
                CellEndpoint(kernel, path, source, infos.get(path, {}).get(verb), names, console).answer,
                f"{verb} {path}",
            )
            for verb, source in endpoints[path].items()
        }
        app.add(pattern, handlers, owner=owner, body_limit=None, console=console)
        cell_routes[owner] = dict(names)
    if SWAGGER_PATH not in endpoints:
        title = os.path.basename(filename or "notebook")
        body = json.dumps(swagger_document(nb, title.split(".")[0] if title.find(".") > 0 else title)).encode()

        def swagger(req: Request) -> Response:
            """Kernel Gateway's Swagger 2.0 document of the notebook's endpoints."""
            return Response(body, 200, content_type="application/json")

        app.add(SWAGGER_PATH, {"GET": Endpoint(swagger, "swagger")}, owner=f"{OWNER} swagger")
    app.use(_KernelGatewayRules(app, cell_routes), owner=OWNER)
    for number, source in enumerate(sources, 1):
        if API_CELL.match(source) or RESPONSE_CELL.match(source):
            continue
        output = kernel.run(source)
        if output.stdout:
            sys.stdout.write(output.stdout)
        if output.error is not None:
            raise StartupCellError(
                f"code cell {number} raised {type(output.error).__name__}: {output.error} "
                "(Kernel Gateway would not start either): fix the cell"
            ) from output.error
    return app
