"""The route table: routes, their owners, and matching a path to one.

The table is immutable: a change makes a new one from the old, copying only
the nodes on the changed routes' paths, and swaps it in by one assignment, so
requests read it without locks and never see half an update, and a change
costs the depth of its pattern, not the number of routes. Static patterns are
a dict lookup; dynamic ones a walk down a tree of segments, so
matching does not slow down as routes are added. Precedence comes from the
patterns (static > ``[p]`` > ``[...p]`` > ``[[...p]]``, segment by segment),
never from the order routes were added.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    """One segment of the tree. A published node never changes: an edit copies the nodes it changes."""

    __slots__ = ("static", "param", "param_name", "catch_all", "optional", "route")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.param_name = ""
        self.catch_all: tuple[str, Route] | None = None
        self.optional: tuple[str, Route] | None = None
        self.route: Route | None = None

    def copy(self) -> _Node:
        """A node with the same children, whose own fields an edit may change."""
        node = _Node()
        node.static = dict(self.static)  # the children themselves are shared, not copied
        node.param, node.param_name = self.param, self.param_name
        node.catch_all, node.optional, node.route = self.catch_all, self.optional, self.route
        return node

    @property
    def empty(self) -> bool:
        return not (self.static or self.param or self.catch_all or self.optional or self.route)


class _Table:
    """An immutable snapshot of the routes, built for matching."""

    __slots__ = ("static", "root", "_routes")

    def __init__(self, static: dict[str, Route], root: _Node) -> None:
        self.static = static
        self.root = root
        self._routes: list[Route] | None = None

    @classmethod
    def build(cls, routes: Iterable[Route]) -> _Table:
        """A table of ``routes``, built from nothing (changes go through ``_Edit`` instead).

        Raises RouteConflictError for routes Next.js refuses side by side.
        """
        edit = _Edit(_EMPTY)
        for route in sorted(routes, key=_precedence):
            edit.insert(route)
        return edit.table()

    @property
    def routes(self) -> list[Route]:
        """Every route, in precedence order: collected on first use, as only listings need it."""
        if self._routes is None:
            found: list[Route] = []
            _collect(self.root, found)
            self._routes = sorted(found, key=_precedence)
        return self._routes

    def match(self, path: str, segments: list[str] | None = None) -> tuple[Route, dict[str, Any]] | None:
        if "%" not in path:
            route = self.static.get(path)
            if route is not None:
                return route, {}
        if segments is None:
            segments = split_path(path)
        params: dict[str, Any] = {}
        route = _walk(self.root, segments, 0, params)
        return (route, params) if route is not None else None


_EMPTY = _Table({}, _Node())


def _slot(root: _Node, pattern: Pattern) -> Route | None:
    """The route in the place ``pattern`` takes (one with the same shape, which matches the same paths), or None."""
    node = root
    for seg in pattern.segments:
        if seg.kind is Kind.STATIC:
            child = node.static.get(seg.value)
        elif seg.kind is Kind.PARAM:
            child = node.param
        else:
            held = node.catch_all if seg.kind is Kind.CATCH_ALL else node.optional
            return None if held is None else held[1]
        if child is None:
            return None
        node = child
    return node.route


def _precedence(route: Route) -> tuple[tuple[int, ...], str]:
    return route.pattern.key, route.pattern.text


def _collect(node: _Node, found: list[Route]) -> None:
    if node.route is not None:
        found.append(node.route)
    for held in (node.catch_all, node.optional):
        if held is not None:
            found.append(held[1])
    for child in node.static.values():
        _collect(child, found)
    if node.param is not None:
        _collect(node.param, found)


class _Edit:
    """A new table made from an old one by inserting and removing routes, one at a time.

    Only the nodes on the changed routes' paths are copied (and the dict of static
    paths, once): the old table is left exactly as it was, for the requests still
    reading it, and a change costs the depth of its pattern, not the number of
    routes. Nothing is published until ``table()``; an edit that raised is dropped.
    """

    def __init__(self, base: _Table) -> None:
        self.root = base.root
        self.static = base.static
        self._static_owned = False
        #: The nodes this edit made or copied, by id: only these may be changed in place.
        self._owned: dict[int, _Node] = {}

    def _own(self, node: _Node | None) -> _Node:
        if node is None:
            node = _Node()
        elif id(node) not in self._owned:
            node = node.copy()
        else:
            return node
        self._owned[id(node)] = node
        return node

    def _own_static(self) -> dict[str, Route]:
        if not self._static_owned:
            self.static = dict(self.static)
            self._static_owned = True
        return self.static

    def table(self) -> _Table:
        return _Table(self.static, self.root)

    def insert(self, route: Route) -> None:
        """Add ``route`` where its pattern puts it (its slot must be free).

        Raises RouteConflictError if it cannot stand beside the routes there.
        """
        pattern = route.pattern
        node = self.root = self._own(self.root)
        where = ""
        for seg in pattern.segments:
            if seg.kind is Kind.STATIC:
                child = node.static[seg.value] = self._own(node.static.get(seg.value))
                node = child
            elif seg.kind is Kind.PARAM:
                if node.param is not None and node.param_name != seg.value:
                    raise RouteConflictError(
                        f"{pattern.text} uses [{seg.value}] where another route uses "
                        f"[{node.param_name}] at {where or '/'}: use one name for one dynamic path"
                    )
                node.param, node.param_name = self._own(node.param), seg.value
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
                    if node.route is not None:
                        raise RouteConflictError(_same_specificity(node.route, route))
                    node.optional = (seg.value, route)
                return
            where += "/" + str(seg)
        if node.optional is not None:
            raise RouteConflictError(_same_specificity(route, node.optional[1]))
        if node.route is not None:
            raise RouteConflictError(f"{pattern.text} and {node.route.pattern.text} are the same path: keep one")
        node.route = route
        if pattern.is_static:
            self._own_static()[pattern.text] = route

    def remove(self, route: Route) -> None:
        """Take ``route`` out, and the nodes that then lead to no route; no-op if it is not there."""
        if _slot(self.root, route.pattern) is not route:
            return
        pattern = route.pattern
        if pattern.is_static:
            del self._own_static()[pattern.text]
        path: list[tuple[_Node, str | None]] = []  # each node, and the static key (None: param) leading on
        node = self.root = self._own(self.root)
        for seg in pattern.segments:
            if seg.kind is Kind.STATIC:
                path.append((node, seg.value))
                child = node.static[seg.value] = self._own(node.static[seg.value])
                node = child
            elif seg.kind is Kind.PARAM:
                path.append((node, None))
                child = node.param = self._own(node.param)
                node = child
            else:
                if seg.kind is Kind.CATCH_ALL:
                    node.catch_all = None
                else:
                    node.optional = None
                break
        else:
            node.route = None
        # Prune what now leads nowhere, so a removed route's parameter name binds nobody.
        while path and node.empty:
            parent, key = path.pop()
            if key is None:
                parent.param, parent.param_name = None, ""
            else:
                del parent.static[key]
            node = parent


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
    """Routes by owner; every change makes a new table from the old one and swaps it in at once."""

    def __init__(self) -> None:
        self._owned: dict[str, list[Route]] = {}
        #: Owners by the part of their name before ":", for ``owners_under`` (a cell's "<cell id>:crud /x").
        self._groups: dict[str, set[str]] = {}
        self._table = _EMPTY
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
        hold routes Next.js refuses side by side (two of ``routes`` with the same
        shape of pattern are refused too).
        """
        new = list(routes)
        for route in new:
            route.owner = owner
        edit = _Edit(self._table)
        for route in self._owned.get(owner, ()):
            edit.remove(route)
        displaced: list[Route] = []
        for route in new:
            other = _slot(edit.root, route.pattern)
            if other is not None and other.owner != owner:
                edit.remove(other)
                displaced.append(other)
            edit.insert(route)  # raises before anything changes
        self._table = edit.table()
        for other in displaced:
            kept = [r for r in self._owned[other.owner] if r is not other]
            self._own(other.owner, kept)
        self._own(owner, new)
        self.version += 1
        return displaced

    def remove(self, owner: str) -> list[Route]:
        """Remove ``owner``'s routes; returns them."""
        removed = self._owned.get(owner, [])
        if removed:
            self._change(removed)
            self._own(owner, [])
        return removed

    def discard(self, route: Route) -> None:
        """Remove one route, leaving its owner's others."""
        theirs = self._owned.get(route.owner, [])
        if any(r is route for r in theirs):
            self._change([route])
            self._own(route.owner, [r for r in theirs if r is not route])

    def owned_by(self, owner: str) -> list[Route]:
        """The routes of ``owner``."""
        return list(self._owned.get(owner, ()))

    def owners_under(self, name: str) -> frozenset[str]:
        """The owners called ``name`` or ``name:<anything>`` that hold routes (a cell's, and what it made)."""
        if ":" in name:
            return frozenset(o for o in self._owned if o == name or o.startswith(f"{name}:"))
        return frozenset(self._groups.get(name, ()))

    def find(self, pattern: str) -> Route | None:
        """The route whose pattern is ``pattern`` (written the same way), or None."""
        try:
            compiled = compile_pattern(pattern)
        except ValueError:
            return None
        route = _slot(self._table.root, compiled)
        return route if route is not None and route.pattern.text == compiled.text and route.listed else None

    def match(self, path: str, segments: list[str] | None = None) -> tuple[Route, dict[str, Any]] | None:
        """The route for ``path`` and its params, or None; ``segments``, when the caller has split ``path``
        already (``Request.route_segments``), saves splitting it again.

        Raises MalformedPathError for a path with a bad percent-escape.
        """
        return self._table.match(path, segments)

    def _change(self, removed: Iterable[Route]) -> None:
        edit = _Edit(self._table)
        for route in removed:
            edit.remove(route)
        self._table = edit.table()
        self.version += 1

    def _own(self, owner: str, routes: list[Route]) -> None:
        """Record ``owner``'s routes (none: forget the owner), once the table holding them is in place."""
        group = owner.partition(":")[0]
        if routes:
            self._owned[owner] = routes
            self._groups.setdefault(group, set()).add(owner)
        elif self._owned.pop(owner, None) is not None:
            owners = self._groups[group]
            owners.discard(owner)
            if not owners:
                del self._groups[group]
