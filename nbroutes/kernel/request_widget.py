"""A Postman-like request sender in the notebook: build a request, send it to this kernel's server, see the answer.

The widget sends real HTTP over a socket with Tornado's ``AsyncHTTPClient``, on the
kernel's event loop: a blocking request from the kernel's thread to the server on
that same thread would deadlock. A click hands the request to the loop through
``KernelLoop``, so Send works whether ipywidgets calls it on the kernel's main
thread or on a subshell's (ipykernel 7). Widgets change only by setting traits.
"""

from __future__ import annotations

import html
import json
import shlex
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import ipywidgets as widgets

from nbroutes.core.handlers import METHODS
from nbroutes.kernel.accesslog import human_size
from nbroutes.kernel.cards import PlainTextSummary, status_colour
from nbroutes.kernel.threads import KernelLoop, current_kernel_loop

__all__ = ["PreparedRequest", "RequestResult", "RequestWidget", "curl_command", "render_body"]

HISTORY_SIZE = 20
#: Characters of a text body shown; the rest is cut (the full body is in ``send_request()``'s result).
TEXT_LIMIT = 200_000
JSON_TYPE = "application/json"

_GREY = "#57606a"
_PRE = '<pre style="margin:0;white-space:pre-wrap;word-break:break-all">{}</pre>'


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(content_type: str) -> bool:
    media = _media_type(content_type)
    return media == JSON_TYPE or media.endswith("+json")


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def _decode(body: bytes, content_type: str) -> str:
    try:
        return body.decode(_charset(content_type), errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class PreparedRequest:
    """What the form held when Send was clicked: a request, independent of the widgets."""

    method: str = "GET"
    path: str = "/"
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""

    @property
    def target(self) -> str:
        """The path and query string, e.g. ``/api/users?page=2``."""
        path = self.path.strip() or "/"
        if not path.startswith("/"):
            path = "/" + path
        path = quote(path, safe="/?&=%[]@:!$'()*+,;~-._")
        if not self.query:
            return path
        return path + ("&" if "?" in path else "?") + urlencode(self.query)

    def url(self, base: str) -> str:
        """The full URL on the server at ``base``."""
        return base.rstrip("/") + self.target

    def header(self, name: str) -> str | None:
        """The value of the header row ``name`` (any case), or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def sends_body(self) -> bool:
        """True when a body goes out: any text, or an empty one for POST, PUT and PATCH."""
        return bool(self.body) or self.method in ("POST", "PUT", "PATCH")

    @property
    def content_type(self) -> str:
        """The Content-Type row, or JSON when the body is not empty and no row says otherwise."""
        value = self.header("Content-Type")
        return (JSON_TYPE if self.body else "") if value is None else value

    def wire_headers(self) -> list[tuple[str, str]]:
        """The header rows plus the Content-Type the body implies."""
        rows = list(self.headers)
        if self.body and self.header("Content-Type") is None:
            rows.append(("Content-Type", JSON_TYPE))
        return rows

    def problem(self) -> str | None:
        """Why this request must not be sent (a JSON body that is not JSON), or None."""
        if self.body.strip() and _is_json(self.content_type):
            try:
                json.loads(self.body)
            except json.JSONDecodeError as exc:
                return (
                    f"The body is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). Fix it, "
                    "or add a Content-Type header row (e.g. text/plain) to send it as it is."
                )
        return None

    @property
    def label(self) -> str:
        """How the history lists it, e.g. ``GET /api/users?page=2``."""
        return f"{self.method} {self.target}"


def curl_command(request: PreparedRequest, base: str) -> str:
    """The curl command that sends ``request`` to the server at ``base``, every argument shell-quoted."""
    parts = ["curl"]
    if request.method == "HEAD":
        parts.append("--head")
    elif request.method != "GET" or request.body:
        parts += ["-X", request.method]
    parts.append(shlex.quote(request.url(base)))
    for name, value in request.wire_headers():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if request.body:
        parts += ["--data-raw", shlex.quote(request.body)]
    return " ".join(parts)


@dataclass
class RequestResult:
    """What came back: the status, headers, body and time of one request, or why there was no answer."""

    url: str
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    elapsed_ms: float = 0.0
    #: Why no response arrived (connection refused, timeout, invalid body); None when one did.
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx or 3xx answer."""
        return self.error is None and 200 <= self.status < 400

    def header(self, name: str, default: str = "") -> str:
        """The first value of header ``name`` (any case)."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), default)

    @property
    def content_type(self) -> str:
        """The response's Content-Type, or ""."""
        return self.header("Content-Type")

    @property
    def text(self) -> str:
        """The body decoded with the charset the response declared (UTF-8 otherwise)."""
        return _decode(self.body, self.content_type)

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError if it is not JSON."""
        return json.loads(self.body)


def render_body(content_type: str, body: bytes) -> tuple[str, str]:
    """How a response body is shown: its kind (json, text, html, image, binary, empty) and the HTML for it.

    Image bodies get no HTML: they are shown in an ``ipywidgets.Image``.
    """
    if not body:
        return "empty", f'<span style="color:{_GREY}">(empty body)</span>'
    media = _media_type(content_type)
    if media.startswith("image/"):
        return "image", ""
    if _is_json(content_type):
        text = _decode(body, content_type)
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return "text", _PRE.format(html.escape(_cut(text)))
        return "json", _PRE.format(html.escape(_cut(text)))
    if media == "text/html":
        doc = html.escape(_cut(_decode(body, content_type)), quote=True)
        style = "width:100%;height:320px;border:1px solid #d0d7de;background:#fff"
        return "html", f'<iframe sandbox srcdoc="{doc}" style="{style}"></iframe>'
    if media.startswith("text/") or media.endswith(("xml", "javascript", "x-www-form-urlencoded")):
        return "text", _PRE.format(html.escape(_cut(_decode(body, content_type))))
    if not media:  # no Content-Type: text if it decodes as UTF-8
        try:
            return "text", _PRE.format(html.escape(_cut(body.decode("utf-8"))))
        except UnicodeDecodeError:
            pass
    return "binary", f'<span style="color:{_GREY}">{len(body)} bytes of {html.escape(media or "binary data")}</span>'


def _cut(text: str) -> str:
    if len(text) <= TEXT_LIMIT:
        return text
    return text[:TEXT_LIMIT] + f"\n… ({len(text) - TEXT_LIMIT} more characters not shown)"


def _notice(text: str, colour: str = _GREY) -> str:
    return f'<span style="color:{colour}">{html.escape(text)}</span>'


class _Row(widgets.HBox):  # type: ignore[misc]  # ipywidgets is untyped: its widgets are Any
    """One key/value row with its remove button."""

    def __init__(self, kind: str, key: str = "", value: str = "") -> None:
        self.key = widgets.Text(key, placeholder="name", layout=widgets.Layout(width="35%"))
        self.value = widgets.Text(value, placeholder="value", layout=widgets.Layout(flex="1"))
        self.remove = widgets.Button(icon="trash", tooltip=f"remove this {kind}", layout=widgets.Layout(width="40px"))
        self.key.add_class(f"nbroutes-{kind}-key")
        self.value.add_class(f"nbroutes-{kind}-value")
        self.remove.add_class(f"nbroutes-{kind}-remove")
        super().__init__(children=(self.key, self.value, self.remove))

    def close(self) -> None:
        for child in (self.key, self.value, self.remove):
            child.close()
        super().close()


class KeyValueRows(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped: its widgets are Any
    """Editable name/value rows (query parameters or headers) and a button that adds one."""

    def __init__(self, kind: str, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self.kind = kind
        self.rows: list[_Row] = []
        self.add_button = widgets.Button(description=f"add {kind}", icon="plus", layout=widgets.Layout(width="auto"))
        self.add_button.add_class(f"nbroutes-{kind}-add")
        self.add_button.on_click(lambda _button: self.add())
        super().__init__(children=(self.add_button,))
        self.add_class(f"nbroutes-{kind}s")
        self.set_items(pairs)

    def add(self, key: str = "", value: str = "") -> _Row:
        """Add a row (empty unless given) above the add button."""
        row = _Row(self.kind, key, value)
        row.remove.on_click(lambda _button: self.discard(row))
        self.rows = [*self.rows, row]
        self.children = (*self.rows, self.add_button)
        return row

    def discard(self, row: _Row) -> None:
        """Remove ``row``."""
        self.rows = [r for r in self.rows if r is not row]
        self.children = (*self.rows, self.add_button)
        row.close()

    def items(self) -> list[tuple[str, str]]:
        """The rows that have a name, in order."""
        return [(r.key.value.strip(), r.value.value) for r in self.rows if r.key.value.strip()]

    def set_items(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Replace the rows with ``pairs``."""
        old = self.rows
        self.rows = [_Row(self.kind, str(k), str(v)) for k, v in pairs]
        for row in self.rows:
            row.remove.on_click(lambda _button, row=row: self.discard(row))
        self.children = (*self.rows, self.add_button)
        for row in old:
            row.close()


def _pairs(values: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> list[tuple[str, str]]:
    items = values.items() if isinstance(values, Mapping) else values or ()
    return [(str(key), str(value)) for key, value in items]


def _body_text(body: Any) -> str:
    if body is None or isinstance(body, str):
        return body or ""
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return json.dumps(body, indent=2, ensure_ascii=False, default=str)


class RequestWidget(PlainTextSummary, widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped: its widgets are Any
    """A request form for this kernel's server, and the response it got: status, time, size, headers, body.

    ``await widget.send_request()`` sends the form's request from code and returns the RequestResult.
    Raises ValueError for a method other than GET, POST, PUT, PATCH, DELETE, HEAD and OPTIONS.
    """

    #: Seconds to wait for a response before giving up.
    timeout = 30.0

    def __init__(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        query: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        body: Any = None,
        base_url: str | None = None,
        kernel_loop: KernelLoop | None = None,
    ) -> None:
        from IPython import get_ipython

        self._shell = get_ipython()
        self._base_url = base_url
        self._loop = kernel_loop or current_kernel_loop()
        self._curl_command = ""
        #: Sent requests and their results, newest first (at most HISTORY_SIZE).
        self.history: list[tuple[PreparedRequest, RequestResult]] = []

        if method.upper() not in METHODS:
            raise ValueError(f"RequestWidget: {method!r} is not a method it sends; use one of {', '.join(METHODS)}")
        self.method_input = widgets.Dropdown(options=METHODS, value=method.upper(), layout={"width": "110px"})
        self.path_input = widgets.Combobox(
            value=path, options=(), ensure_option=False, placeholder="/api/...", layout={"flex": "1"}
        )
        self.send_button = widgets.Button(description="Send", button_style="primary", icon="paper-plane")
        self.query_rows = KeyValueRows("param", _pairs(query))
        self.header_rows = KeyValueRows("header", _pairs(headers))
        self.body_input = widgets.Textarea(
            _body_text(body), placeholder='{"name": "Ada"}  (JSON unless a Content-Type header row says otherwise)'
        )
        self.body_input.layout = widgets.Layout(width="100%", height="120px")
        self.form_tabs = widgets.Tab(children=(self.query_rows, self.header_rows, self.body_input))
        self.form_tabs.titles = ("Params", "Headers", "Body")
        if body is not None and not query:
            self.form_tabs.selected_index = 2

        self.status_html = widgets.HTML(_notice("Not sent yet"))
        self.time_html = widgets.HTML("", layout={"margin": "0 0 0 1.5em"})
        self.size_html = widgets.HTML("", layout={"margin": "0 0 0 1.5em"})
        self.response_headers_html = widgets.HTML("")
        self.response_headers = widgets.Accordion(children=(self.response_headers_html,), selected_index=None)
        self.response_headers.titles = ("Response headers",)
        self.body_html = widgets.HTML("")
        self.body_image = widgets.Image()
        self.body_box = widgets.Box(children=(self.body_html,), layout={"width": "100%", "overflow": "auto"})

        self.history_dropdown = widgets.Dropdown(
            options=[], description="History", layout={"width": "auto", "flex": "1"}
        )
        self.replay_button = widgets.Button(description="Replay", icon="redo", disabled=True)
        self.curl_button = widgets.Button(description="Copy as curl", icon="terminal")
        self.curl_text = widgets.Textarea("", layout=widgets.Layout(width="100%", height="80px", display="none"))

        # Stable CSS classes, for browser tests and for users' own styles.
        named: tuple[widgets.DOMWidget, ...]
        named = (self.method_input, self.path_input, self.send_button, self.body_input, self.status_html)
        named += (self.time_html, self.size_html, self.response_headers, self.body_box, self.body_html)
        named += (self.body_image, self.history_dropdown, self.replay_button, self.curl_button, self.curl_text)
        names = "method path send request-body status time size response-headers body body-html body-image history"
        for name, widget in zip((names + " replay curl curl-text").split(), named, strict=True):
            widget.add_class(f"nbroutes-{name}")

        self.send_button.on_click(self._on_send)
        self.replay_button.on_click(self._on_replay)
        self.curl_button.on_click(self._on_curl)
        self.curl_text.observe(self._keep_curl, "value")
        super().__init__(
            children=(
                widgets.HBox((self.method_input, self.path_input, self.send_button)),
                self.form_tabs,
                widgets.HBox((self.status_html, self.time_html, self.size_html), layout={"align_items": "center"}),
                self.response_headers,
                self.body_box,
                widgets.HBox((self.history_dropdown, self.replay_button, self.curl_button)),
                self.curl_text,
            )
        )
        self.add_class("nbroutes-request")
        self.refresh_routes()

    # -- the form ---------------------------------------------------------------------
    def request(self) -> PreparedRequest:
        """The request the form describes now."""
        return PreparedRequest(
            method=str(self.method_input.value or "GET"),
            path=str(self.path_input.value or "/"),
            query=tuple(self.query_rows.items()),
            headers=tuple(self.header_rows.items()),
            body=str(self.body_input.value or ""),
        )

    def load(self, request: PreparedRequest) -> None:
        """Fill the form with ``request``."""
        self.method_input.value = request.method
        self.path_input.value = request.path
        self.query_rows.set_items(request.query)
        self.header_rows.set_items(request.headers)
        self.body_input.value = request.body

    def summary(self) -> str:
        """The widget as text: the request its form holds."""
        return f"RequestWidget: {self.method_input.value} {self.path_input.value}"

    def curl(self) -> str:
        """The form's request as a curl command, to paste into a terminal."""
        return curl_command(self.request(), self._base() or "http://127.0.0.1:8000")

    def refresh_routes(self) -> None:
        """Offer the kernel's route patterns as the path's suggestions."""
        kernel_state = self._kernel_state()
        if kernel_state is None:
            return
        patterns = tuple(dict.fromkeys(r.pattern.text for r in kernel_state.app.router.routes))
        if patterns != tuple(self.path_input.options):
            self.path_input.options = patterns

    # -- sending ----------------------------------------------------------------------
    def send_request(self) -> Coroutine[Any, Any, RequestResult]:
        """``await widget.send_request()``: send the form's request, show the response and return it.

        (Not ``send``: that is ipywidgets' custom-message API, which ``focus()`` and ``blur()`` use.)
        """
        return self._perform(self.request())

    def _on_send(self, _button: Any = None) -> None:
        self._dispatch(self.request())

    def _dispatch(self, request: PreparedRequest) -> None:
        # Snapshot the form on the thread that got the click, then send from the kernel's loop,
        # never waiting for it: that loop serves the request.
        loop = self._loop or current_kernel_loop()
        if loop is None:
            self._show_error("No event loop to send from: create this widget in a notebook cell of a running kernel.")
            return
        loop.spawn(lambda: self._perform(request), what="sending a request from the request widget")

    async def _perform(self, request: PreparedRequest) -> RequestResult:
        base = self._base()
        result = RequestResult(url=request.url(base or ""))
        result.error = request.problem()
        if result.error is None and base is None:
            result.error = "nbroutes is not serving in this kernel: run %load_ext nbroutes, or %nbroutes start."
        if result.error is not None:
            self._show_error(result.error)
            return result
        assert base is not None  # else the error above is set
        self.status_html.value = _notice(f"Sending {request.label} …")
        await self._fetch(request, result, base)
        self._remember(request, result)
        self.refresh_routes()
        if self.curl_text.layout.display != "none":
            self._on_curl()
        self._show(result)  # the status goes last: once it shows, so does everything else
        return result

    async def _fetch(self, request: PreparedRequest, result: RequestResult, base: str) -> None:
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

        body = request.body.encode() if request.sends_body else None
        http_request = HTTPRequest(
            result.url,
            method=request.method,
            headers=request.wire_headers(),  # type: ignore[arg-type]
            body=body,
            follow_redirects=False,
            allow_nonstandard_methods=True,
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
            decompress_response=True,
        )
        start = time.perf_counter()
        try:
            response = await AsyncHTTPClient().fetch(http_request, raise_error=False)
        except ConnectionRefusedError:
            result.error = (
                f"Connection refused by {base}: the nbroutes server is not running there. "
                "Run %nbroutes start, then send again."
            )
        except HTTPClientError as exc:  # with raise_error=False only 599s (timeouts, closed streams) come here
            if "timeout" in str(exc.message).lower():
                result.error = f"No response from {base} within {self.timeout:g} s."
            else:
                result.error = f"No response from {base}: {exc.message}."
        except OSError as exc:
            result.error = f"Could not reach {base}: {exc.strerror or exc}."
        except Exception as exc:  # the widget is the user's view of the request: say what failed, not a log line
            result.error = f"Could not send the request: {exc}"
        else:
            result.status, result.reason = response.code, response.reason or ""
            result.headers = list(response.headers.get_all())
            result.body = response.body or b""
        result.elapsed_ms = (time.perf_counter() - start) * 1000

    # -- showing ----------------------------------------------------------------------
    def _show(self, result: RequestResult) -> None:
        if result.error is not None:
            self._show_error(result.error, f"{result.elapsed_ms:.0f} ms")
            return
        self.time_html.value = f"{result.elapsed_ms:.0f} ms"
        self.size_html.value = human_size(len(result.body))
        rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in result.headers)
        self.response_headers_html.value = f'<table style="font-family:monospace">{rows}</table>'
        self.response_headers.titles = (f"Response headers ({len(result.headers)})",)
        kind, shown = render_body(result.content_type, result.body)
        if kind == "image":
            self.body_image.format = _media_type(result.content_type).split("/", 1)[1]
            self.body_image.value = result.body
            self.body_box.children = (self.body_image,)
        else:
            self.body_html.value = shown
            self.body_box.children = (self.body_html,)
        colour = status_colour(result.status)
        self.status_html.value = (
            f'<span class="nbroutes-status-{result.status // 100}xx" style="color:{colour};font-weight:bold">'
            f"{result.status} {html.escape(result.reason)}</span>"
        )

    def _show_error(self, message: str, elapsed: str = "") -> None:
        self.time_html.value = elapsed
        self.size_html.value = ""
        self.body_html.value = ""
        self.body_box.children = (self.body_html,)
        self.status_html.value = (
            f'<span class="nbroutes-error" style="color:{status_colour(500)};font-weight:bold">'
            f"{html.escape(message)}</span>"
        )

    def _remember(self, request: PreparedRequest, result: RequestResult) -> None:
        self.history = [(request, result), *self.history][:HISTORY_SIZE]
        labels = [f"{req.label} → {res.status or 'error'} ({res.elapsed_ms:.0f} ms)" for req, res in self.history]
        self.history_dropdown.options = [(label, i) for i, label in enumerate(labels)]
        self.history_dropdown.value = 0
        self.replay_button.disabled = False

    def _on_replay(self, _button: Any = None) -> None:
        index = self.history_dropdown.value
        if not isinstance(index, int) or not 0 <= index < len(self.history):
            return
        request = self.history[index][0]
        self.load(request)
        self._dispatch(request)

    def _on_curl(self, _button: Any = None) -> None:
        self._curl_command = self.curl()
        self.curl_text.value = self._curl_command
        self.curl_text.layout.display = ""

    def _keep_curl(self, change: dict[str, Any]) -> None:
        # Read-only: an edit in the browser is put back (ipywidgets' Textarea has no readonly trait).
        if change["new"] != self._curl_command:
            self.curl_text.value = self._curl_command

    # -- the kernel -------------------------------------------------------------------
    def _kernel_state(self) -> Any:
        if self._shell is None:
            return None
        from nbroutes.kernel.extension import state

        return state(self._shell)

    def _base(self) -> str | None:
        if self._base_url is not None:
            return self._base_url.rstrip("/")
        server = getattr(self._kernel_state(), "server", None)
        return None if server is None else str(server.url)
