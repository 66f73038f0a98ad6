"""The route table: routes, their owners, and matching a path to one.

The table is rebuilt whole on every change and swapped in by one assignment,
so requests read it without locks and never see half an update. Static
patterns are a dict lookup; dynamic ones a walk down a tree of segments, so
matching does not slow down as routes are added. Precedence comes from the
patterns (static > ``[p]`` > ``[...p]`` > ``[[...p]]``, segment by segment),
never from the order routes were added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nbroutes.core.handlers import METHODS, Endpoint
from nbroutes.core.output import Console
from nbroutes.core.paths import Kind, Pattern, compile_pattern, split_path
from nbroutes.core.requests import DEFAULT_MAX_FIELDS, DEFAULT_MAX_FILES
from nbroutes.errors import RouteConflictError

__all__ = ["Route", "Router", "RouteConflictError", "DEFAULT_BODY_LIMIT", "DEFAULT_RESPONSE_LIMIT"]

DEFAULT_BODY_LIMIT = 1024 * 1024
DEFAULT_RESPONSE_LIMIT = 4 * 1024 * 1024


@dataclass(eq=False)
class Route:
    """A pattern and the endpoints that answer it, owned by a cell (or by its path)."""

    pattern: Pattern
    #: method -> Endpoint; "*" answers every method not listed.
    endpoints: dict[str, Endpoint]
    owner: str = ""
    #: None leaves the body unread and unlimited (``--body-limit false``).
    body_limit: int | None = DEFAULT_BODY_LIMIT
    body_limit_text: str = "1mb"
    #: How many fields and files a form body may hold: one more is a 413 before the rest is parsed.
    max_fields: int = DEFAULT_MAX_FIELDS
    max_files: int = DEFAULT_MAX_FILES
    response_limit: int = DEFAULT_RESPONSE_LIMIT
    console: Console = field(default_factory=Console)
    #: How people know the owner, e.g. "In [3]"; set by the notebook adapter.
    label: str = ""
    #: Methods named on the magic line; None means every method the endpoints allow.
    only: frozenset[str] | None = None
    #: False for nbroutes' own routes (the docs under /_nbroutes/): they answer, but listings leave them out.
    listed: bool = True
    hits: int = 0
    last_status: int | None = None
    allow: str = field(init=False)
    _lookup: dict[str, Endpoint | None] = field(init=False, repr=False)
    _fallback: Endpoint | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.owner:
            self.owner = self.pattern.text
        self._build()

    def _build(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.prepare(self.pattern.param_names)  # raises SignatureError for an unfillable parameter
        named = {m: ep for m, ep in self.endpoints.items() if m != "*"}
        fallback = self.endpoints.get("*")
        only = self.only
        if only is not None:
            named = {m: ep for m, ep in named.items() if m in only}
            if fallback is not None:
                named.update({m: fallback for m in only if m not in named})
                fallback = None
        if "GET" in named and "HEAD" not in named:
            named["HEAD"] = named["GET"]  # HEAD falls back to GET, without the body
        self._lookup = dict(named)
        self._fallback = fallback
        if fallback is None:
            self.allow = ", ".join(sorted(set(named) | {"OPTIONS"}))
        else:
            self.allow = ", ".join(METHODS)

    @property
    def methods(self) -> list[str]:
        """The methods this route answers, for listings."""
        if self._fallback is not None:
            return ["ANY"]
        return [m for m in METHODS if m in self._lookup] + sorted(set(self._lookup) - set(METHODS))

    def endpoint_for(self, method: str) -> Endpoint | None:
        """The endpoint for ``method``, or None (405, or an automatic OPTIONS)."""
        endpoint = self._lookup.get(method)
        return endpoint if endpoint is not None else self._fallback

    def __repr__(self) -> str:
        return f"<Route {','.join(self.methods)} {self.pattern.text} owner={self.owner!r}>"


class _Node:
    __slots__ = ("static", "param", "param_name", "catch_all", "optional", "route")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.param_name = ""
        self.catch_all: tuple[str, Route] | None = None
        self.optional: tuple[str, Route] | None = None
        self.route: Route | None = None


def _shape(pattern: Pattern) -> tuple[tuple[int, str], ...]:
    """Two patterns with the same shape match the same paths, whatever their names."""
    return tuple((s.kind, s.value if s.kind is Kind.STATIC else "") for s in pattern.segments)


class _Table:
    """An immutable snapshot of the routes, built for matching."""

    __slots__ = ("static", "root", "routes")

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = sorted(routes, key=lambda r: (r.pattern.key, r.pattern.text))
        self.static: dict[str, Route] = {}
        self.root = _Node()
        for route in self.routes:
            self._insert(route)

    def _insert(self, route: Route) -> None:
        pattern = route.pattern
        if pattern.is_static:
            self.static[pattern.text] = route
        node = self.root
        where = ""
        for seg in pattern.segments:
            if seg.kind is Kind.STATIC:
                node = node.static.setdefault(seg.value, _Node())
            elif seg.kind is Kind.PARAM:
                if node.param is None:
                    node.param, node.param_name = _Node(), seg.value
                elif node.param_name != seg.value:
                    raise RouteConflictError(
                        f"{pattern.text} uses [{seg.value}] where another route uses "
                        f"[{node.param_name}] at {where or '/'}: use one name for one dynamic path"
                    )
                node = node.param
            else:
                other = node.optional if seg.kind is Kind.CATCH_ALL else node.catch_all
                if other is not None:
                    raise RouteConflictError(
                        f"{pattern.text} and {other[1].pattern.text} put a required and an optional "
                        "catch-all at the same level: keep one"
                    )
                same = node.catch_all if seg.kind is Kind.CATCH_ALL else node.optional
                if same is not None:
                    raise RouteConflictError(
                        f"{pattern.text} and {same[1].pattern.text} are the same catch-all"
                        + (
                            f" with different names ([...{seg.value}] and [...{same[0]}])"
                            if same[0] != seg.value
                            else ""
                        )
                        + ": keep one"
                    )
                if seg.kind is Kind.CATCH_ALL:
                    node.catch_all = (seg.value, route)
                else:
                    node.optional = (seg.value, route)
                    if node.route is not None:
                        raise RouteConflictError(_same_specificity(node.route, route))
                return
            where += "/" + str(seg)
        if node.optional is not None:
            raise RouteConflictError(_same_specificity(route, node.optional[1]))
        node.route = route

    def match(self, path: str) -> tuple[Route, dict[str, Any]] | None:
        if "%" not in path:
            route = self.static.get(path)
            if route is not None:
                return route, {}
        segments = split_path(path)
        params: dict[str, Any] = {}
        route = _walk(self.root, segments, 0, params)
        return (route, params) if route is not None else None


def _same_specificity(route: Route, optional: Route) -> str:
    return (
        f"{route.pattern.text} has the same specificity as the optional catch-all "
        f"{optional.pattern.text}: remove one (the optional catch-all already matches "
        f"{route.pattern.text})"
    )


def _walk(node: _Node, segments: list[str], i: int, params: dict[str, Any]) -> Route | None:
    if i == len(segments):
        if node.route is not None:
            return node.route
        if node.optional is not None:
            return node.optional[1]  # zero segments: the key stays absent
        return None
    segment = segments[i]
    child = node.static.get(segment)
    if child is not None:
        found = _walk(child, segments, i + 1, params)
        if found is not None:
            return found
    if node.param is not None and segment:
        params[node.param_name] = segment
        found = _walk(node.param, segments, i + 1, params)
        if found is not None:
            return found
        del params[node.param_name]
    for rest in (node.catch_all, node.optional):
        if rest is not None:
            params[rest[0]] = segments[i:]
            return rest[1]
    return None


class Router:
    """Routes by owner; every change rebuilds the table and swaps it in at once."""

    def __init__(self) -> None:
        self._owned: dict[str, list[Route]] = {}
        self._table = _Table(())
        #: Counts changes, so derived views (the OpenAPI document) know when to rebuild.
        self.version = 0

    @property
    def routes(self) -> list[Route]:
        """Every listed route (not nbroutes' own), in precedence order."""
        return [r for r in self._table.routes if r.listed]

    def set(self, owner: str, routes: Iterable[Route]) -> list[Route]:
        """Make ``routes`` the routes of ``owner``, replacing what it had.

        A route of another owner with the same shape of pattern is replaced too;
        those are returned so the caller can say so.

        Raises RouteConflictError, changing nothing, if the new table would
        hold routes Next.js refuses side by side.
        """
        new = list(routes)
        for route in new:
            route.owner = owner
        shapes = {_shape(r.pattern) for r in new}
        owned: dict[str, list[Route]] = {}
        displaced: list[Route] = []
        for other, theirs in self._owned.items():
            if other == owner:
                continue
            kept = [r for r in theirs if _shape(r.pattern) not in shapes]
            displaced.extend(r for r in theirs if _shape(r.pattern) in shapes)
            if kept:
                owned[other] = kept
        if new:
            owned[owner] = new
        self._swap(owned)
        return displaced

    def remove(self, owner: str) -> list[Route]:
        """Remove ``owner``'s routes; returns them."""
        if owner not in self._owned:
            return []
        owned = dict(self._owned)
        removed = owned.pop(owner)
        self._swap(owned)
        return removed

    def discard(self, route: Route) -> None:
        """Remove one route, leaving its owner's others."""
        owned = dict(self._owned)
        kept = [r for r in owned.get(route.owner, []) if r is not route]
        if kept:
            owned[route.owner] = kept
        else:
            owned.pop(route.owner, None)
        self._swap(owned)

    def owned_by(self, owner: str) -> list[Route]:
        """The routes of ``owner``."""
        return list(self._owned.get(owner, ()))

    def find(self, pattern: str) -> Route | None:
        """The route whose pattern is ``pattern`` (written the same way), or None."""
        try:
            text = compile_pattern(pattern).text
        except ValueError:
            return None
        for route in self._table.routes:
            if route.pattern.text == text and route.listed:
                return route
        return None

    def match(self, path: str) -> tuple[Route, dict[str, Any]] | None:
        """The route for ``path`` and its params, or None.

        Raises MalformedPathError for a path with a bad percent-escape.
        """
        return self._table.match(path)

    def _swap(self, owned: Mapping[str, list[Route]]) -> None:
        table = _Table(r for routes in owned.values() for r in routes)  # raises before anything changes
        self._owned = dict(owned)
        self._table = table
        self.version += 1
