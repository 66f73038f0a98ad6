"""Which requests a browser must not be able to make: another name for this server, and writes from other sites.

The server runs on the user's own machine, and so does their browser, where any page can send it requests:

- **DNS rebinding.** A page on ``rebind.attacker.example`` re-points its name to 127.0.0.1 and reads the API
  as its own origin. Its requests say ``Host: rebind.attacker.example``, so the server answers only the names
  it is reached by: localhost names, IP addresses (a page cannot rebind those), the name it is bound to, the
  names it was told (``App(allowed_hosts=...)``, ``$NBROUTES_ALLOWED_HOSTS``, ``nbroutes serve
  --allowed-host``) and, under JupyterHub, the hub's name on requests jupyter-server-proxy forwarded.
- **Cross-site writes.** A form on another site POSTs ``application/x-www-form-urlencoded`` with no CORS
  preflight, and ``fetch(..., {mode: "no-cors"})`` can too. A POST, PUT, PATCH or DELETE whose ``Origin``
  is not the request's own (the ``Host`` it names), or that ``Sec-Fetch-Site: cross-site`` marks as from
  another site, is refused unless the App's ``cors(...)`` middleware allows that origin for the path.

Reads from other sites pass: the browser keeps their answers from the page unless CORS allows it.
Requests without ``Origin`` (curl, scripts, the kernel's request widget) pass too: they are not a browser
acting for a page. The checks run on every request, so the verdict for each ``Host`` value is kept.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Callable, Iterable

from nbroutes.core.requests import Request
from nbroutes.core.responses import Response

__all__ = [
    "HostPolicy",
    "ALLOWED_HOSTS_ENV",
    "DEBUG_ENV",
    "DOCS_ENV",
    "STATE_CHANGING",
    "debug_from_env",
    "docs_from_env",
    "host_name",
    "hosts_from_env",
]

#: The environment variable of names the server answers to besides localhost and IP addresses (comma-separated).
ALLOWED_HOSTS_ENV = "NBROUTES_ALLOWED_HOSTS"
#: The environment variable that puts exception text in 500 bodies for ``nbroutes serve`` and the ASGI app.
DEBUG_ENV = "NBROUTES_DEBUG"
#: The environment variable that turns the OpenAPI document and docs page off (0) for ``nbroutes serve`` and ASGI.
DOCS_ENV = "NBROUTES_DOCS"
#: Set by JupyterHub (and Binder) in the single-user server and its kernels: ``/user/<name>/``.
_HUB_PREFIX_ENV = "JUPYTERHUB_SERVICE_PREFIX"
#: Methods a browser sends cross-site without asking first (POST) or that no page should send cross-site.
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

app_log = logging.getLogger("nbroutes.application")

_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
#: How many distinct Host values keep their verdict; past that the memo starts again (a flood of names costs CPU only).
_MEMO_SIZE = 256


def hosts_from_env(environ: dict[str, str] | None = None) -> list[str]:
    """The names in ``$NBROUTES_ALLOWED_HOSTS``, e.g. ``api.example.com, .example.org``."""
    env = os.environ if environ is None else environ
    return [name.strip() for name in env.get(ALLOWED_HOSTS_ENV, "").split(",") if name.strip()]


def debug_from_env(environ: dict[str, str] | None = None) -> bool:
    """Whether ``$NBROUTES_DEBUG`` asks for exception text in 500 bodies (1, true, yes, on)."""
    env = os.environ if environ is None else environ
    return env.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def docs_from_env(environ: dict[str, str] | None = None) -> bool | None:
    """What ``$NBROUTES_DOCS`` says of the docs: False for 0, false, no, off; True for 1, true, yes, on; else None."""
    env = os.environ if environ is None else environ
    value = env.get(DOCS_ENV, "").strip().lower()
    return False if value in ("0", "false", "no", "off") else True if value in ("1", "true", "yes", "on") else None


def host_name(host: str) -> str | None:
    """The name or address in a ``Host`` header, lower-cased, without port, brackets or final dot; None if malformed.

    >>> host_name("[::1]:8000"), host_name("LocalHost.:80"), host_name("a@b")
    ('::1', 'localhost', None)
    """
    host = host.strip().lower()
    if host.startswith("["):
        address, bracket, port = host[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and port[1:].isdigit())):
            return None
        return address if _is_ip(address) else None
    name, colon, port = host.partition(":")
    if colon and not port.isdigit():
        return None
    name = name[:-1] if name.endswith(".") else name
    return name if _NAME.fullmatch(name) else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which ``Host`` names an App answers, and the refusals for rebound names and cross-site writes.

    ``allowed`` holds names (``api.example.com``), ``.example.org`` for that name and every name under it,
    or ``*`` to answer any name (writes are still checked against the request's own origin).
    """

    def __init__(self, allowed: Iterable[str] = (), *, hub_prefix: str | None = None) -> None:
        self._given: list[str] = []
        self._names: frozenset[str] = frozenset()
        self._suffixes: tuple[str, ...] = ()
        self._any = False
        #: The verdict for each Host header value seen (True: answered), so the check is a dict lookup.
        self._memo: dict[str, bool] = {}
        prefix = os.environ.get(_HUB_PREFIX_ENV) if hub_prefix is None else hub_prefix
        #: Under JupyterHub, the ``X-Forwarded-Context`` jupyter-server-proxy sets starts with this.
        self._proxy_context = f"/{prefix.strip('/')}/proxy/".replace("//", "/") if prefix else None
        self.allow(*allowed)

    def allow(self, *hosts: str) -> None:
        """Answer requests for these names too (an adapter's bound address; the user's deployed names)."""
        given = list(self._given)
        for host in hosts:
            name = host.strip().lower().rstrip(".")
            if name and name not in given:  # a server restarted on the same App names its host again
                given.append(name)
        names = {h for h in given if not h.startswith(".") and h != "*"}
        names |= {h[1:-1] for h in names if h.startswith("[") and h.endswith("]")}  # "[::1]" as bound
        self._given = given
        self._names = frozenset(names)
        self._suffixes = tuple(h for h in given if h.startswith("."))
        self._any = "*" in given
        self._memo = {}

    @property
    def allowed(self) -> list[str]:
        """The names given so far, lower-cased, in order."""
        return list(self._given)

    def refusal(self, request: Request, cors_allows: Callable[[Request, str], bool]) -> Response | None:
        """The 403 for a request a page on another site may have made, or None to answer it.

        ``cors_allows(request, origin)`` says whether the App's CORS policy for the request's path allows
        ``origin``; it is called only for a cross-site write.
        """
        headers = request.headers
        host = headers.get("host")
        if host:
            verdict = self._memo.get(host)
            if verdict is None:
                verdict = self._judge(host)
            if not verdict and not self._forwarded_by_hub(request):
                return _host_refusal(host)
        if request.method not in STATE_CHANGING:
            return None
        origin = headers.get("origin")
        if origin is None:
            if headers.get("sec-fetch-site") == "cross-site":
                return _origin_refusal(request, "another site (Sec-Fetch-Site: cross-site)")
            return None
        if host and _same_origin(origin, host):
            return None
        if origin != "null" and cors_allows(request, origin):
            return None
        return _origin_refusal(request, origin)

    def _judge(self, host: str) -> bool:
        name = host_name(host)
        verdict = (
            name is not None
            and (
                self._any
                or name == "localhost"
                or name.endswith(".localhost")  # browsers resolve these to loopback themselves (RFC 6761)
                or name in self._names
                or _is_ip(name)  # a page cannot make an address mean another machine
                or any(name == suffix[1:] or name.endswith(suffix) for suffix in self._suffixes)
            )
        )
        if len(self._memo) >= _MEMO_SIZE:
            self._memo = {}
        self._memo[host] = verdict
        if not verdict:
            app_log.warning("refused requests for Host %r: not a name this server answers (see docs/security.md)", host)
        return verdict

    def _forwarded_by_hub(self, request: Request) -> bool:
        """jupyter-server-proxy keeps the browser's Host (the hub's name; JupyterHub authenticated the user) and
        names the path it forwarded from; under JupyterHub, the server is not on the browser's machine."""
        context = self._proxy_context
        return context is not None and (request.headers.get("x-forwarded-context") or "").startswith(context)


def _same_origin(origin: str, host: str) -> bool:
    """Whether ``Origin`` names the server the ``Host`` header names, scheme aside, as Jupyter Server compares.

    The scheme is left out because behind a TLS proxy the page is ``https://name`` while the request
    reaching nbroutes is plain HTTP for the same ``Host``.
    """
    netloc = origin.partition("://")[2].lower()
    host = host.lower()
    return netloc == host or _without_default_port(netloc) == _without_default_port(host)


def _without_default_port(netloc: str) -> str:
    for port in (":80", ":443"):
        if netloc.endswith(port):
            return netloc[: -len(port)]
    return netloc


def _host_refusal(host: str) -> Response:
    name = host_name(host) or host
    detail = (
        f"Host {host!r} is not a name this server answers to: it answers localhost names and IP addresses "
        f"unless told its other names (this stops DNS rebinding). If {name} is this server's name, allow it: "
        f"nbroutes serve --allowed-host {name}, or {ALLOWED_HOSTS_ENV}={name} in the environment of the ASGI "
        f"app or the kernel, or App(allowed_hosts=[{name!r}])."
    )
    return Response.json({"error": "Forbidden", "detail": detail}, 403)


def _origin_refusal(request: Request, origin: str) -> Response:
    detail = (
        f"{request.method} from {origin} refused: a page on another site may not change data here. "
        f"To let that site's pages write, allow its origin in the CORS policy, e.g. "
        f"app.use(nbroutes.cors([{origin if '://' in origin else 'https://app.example'!r}]))."
    )
    return Response.json({"error": "Forbidden", "detail": detail}, 403, {"Vary": "Origin"})
