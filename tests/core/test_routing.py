"""The route table: precedence whatever the order routes were added, ownership and conflicts."""

import itertools

import pytest

from nbroutes.core.handlers import Endpoint
from nbroutes.core.paths import compile_pattern
from nbroutes.core.routing import Route, Router
from nbroutes.errors import MalformedPathError, RouteConflictError


def endpoint(req, res):
    return None


def make_route(text):
    return Route(compile_pattern(text), {"*": Endpoint(endpoint)})


def router_with(*texts):
    """A router where each pattern is its own owner, added in the order given."""
    router = Router()
    for text in texts:
        router.set(text, [make_route(text)])
    return router


def matched(router, path):
    found = router.match(path)
    if found is None:
        return None
    route, params = found
    return route.pattern.text, params


API_ROUTES = [
    "/api/users/me",
    "/api/users/[id]",
    "/api/users/[id]/posts",
    "/api/[...rest]",
    "/[[...all]]",
]


@pytest.mark.parametrize(
    "path, pattern, params",
    [
        ("/api/users/me", "/api/users/me", {}),
        ("/api/users/42", "/api/users/[id]", {"id": "42"}),
        ("/api/users/42/posts", "/api/users/[id]/posts", {"id": "42"}),
        ("/api/users/42/likes", "/api/[...rest]", {"rest": ["users", "42", "likes"]}),
        ("/api/users", "/api/[...rest]", {"rest": ["users"]}),
        ("/api/users/me/posts", "/api/users/[id]/posts", {"id": "me"}),
        ("/api", "/[[...all]]", {"all": ["api"]}),
        ("/", "/[[...all]]", {}),
        ("/x/y", "/[[...all]]", {"all": ["x", "y"]}),
    ],
)
def test_precedence_whatever_the_order_routes_were_added(path, pattern, params):
    for order in itertools.permutations(API_ROUTES):
        assert matched(router_with(*order), path) == (pattern, params), order


@pytest.mark.parametrize(
    "path, pattern, params",
    [
        ("/docs/static", "/docs/[page]", {"page": "static"}),  # static first segment wins
        ("/blog/static", "/[section]/static", {"section": "blog"}),
        ("/blog/other", "/[section]/[...rest]", {"section": "blog", "rest": ["other"]}),
        ("/docs/a/b", "/[section]/[...rest]", {"section": "docs", "rest": ["a", "b"]}),
        ("/docs", None, None),
    ],
)
def test_precedence_segment_by_segment(path, pattern, params):
    routes = ["/docs/[page]", "/[section]/static", "/[section]/[...rest]"]
    for order in itertools.permutations(routes):
        expected = None if pattern is None else (pattern, params)
        assert matched(router_with(*order), path) == expected, order


def test_precedence_with_one_owner_holding_every_route():
    for order in itertools.permutations(API_ROUTES):
        router = Router()
        router.set("notebook", [make_route(text) for text in order])
        assert matched(router, "/api/users/me") == ("/api/users/me", {})
        assert matched(router, "/api/users/7") == ("/api/users/[id]", {"id": "7"})
        assert matched(router, "/api/x") == ("/api/[...rest]", {"rest": ["x"]})


def test_routes_are_listed_in_precedence_order():
    for order in itertools.permutations(API_ROUTES):
        router = router_with(*order)
        assert [r.pattern.text for r in router.routes] == [
            "/api/users/me",
            "/api/users/[id]",
            "/api/users/[id]/posts",
            "/api/[...rest]",
            "/[[...all]]",
        ]


def test_catch_all_gives_a_list_and_needs_one_segment():
    router = router_with("/files/[...path]")
    assert matched(router, "/files/a") == ("/files/[...path]", {"path": ["a"]})
    assert matched(router, "/files/a/b/c") == ("/files/[...path]", {"path": ["a", "b", "c"]})
    assert matched(router, "/files") is None


def test_optional_catch_all_with_zero_segments_leaves_the_key_absent():
    router = router_with("/docs/[[...slug]]")
    route, params = router.match("/docs")
    assert route.pattern.text == "/docs/[[...slug]]"
    assert "slug" not in params
    assert params == {}
    assert matched(router, "/docs/a/b") == ("/docs/[[...slug]]", {"slug": ["a", "b"]})


def test_catch_all_decodes_each_segment_and_keeps_escaped_slashes():
    router = router_with("/files/[...path]")
    assert matched(router, "/files/a%2Fb/c%20d") == ("/files/[...path]", {"path": ["a/b", "c d"]})


def test_malformed_path_raises():
    router = router_with("/files/[...path]")
    with pytest.raises(MalformedPathError):
        router.match("/files/%zz")


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/api/Users", ("/api/Users", {})),
        ("/api/users", None),
        ("/API/Users", None),
        ("/api/Users/AbC", ("/api/Users/[id]", {"id": "AbC"})),
    ],
)
def test_matching_is_case_sensitive(path, expected):
    router = router_with("/api/Users", "/api/Users/[id]")
    assert matched(router, path) == expected


def test_no_route():
    router = router_with("/api/hello")
    assert router.match("/api/hello/there") is None
    assert router.match("/api") is None
    assert Router().match("/") is None


# -- ownership ---------------------------------------------------------------------


def test_set_replaces_the_owners_routes():
    router = Router()
    router.set("cell-1", [make_route("/api/a")])
    router.set("cell-1", [make_route("/api/b")])
    assert [r.pattern.text for r in router.routes] == ["/api/b"]
    assert router.match("/api/a") is None
    assert matched(router, "/api/b") == ("/api/b", {})


def test_set_with_no_routes_removes_the_owners_routes():
    router = Router()
    router.set("cell-1", [make_route("/api/a")])
    router.set("cell-2", [make_route("/api/c")])
    assert router.set("cell-1", []) == []
    assert [r.pattern.text for r in router.routes] == ["/api/c"]


def test_set_leaves_other_owners_alone():
    router = Router()
    router.set("cell-1", [make_route("/api/a")])
    router.set("cell-2", [make_route("/api/b")])
    router.set("cell-1", [make_route("/api/c")])
    assert sorted(r.pattern.text for r in router.routes) == ["/api/b", "/api/c"]
    assert router.match("/api/b")[0].owner == "cell-2"


@pytest.mark.parametrize(
    "first, second, path, params",
    [
        ("/api/users/[id]", "/api/users/[uid]", "/api/users/1", {"uid": "1"}),
        ("/api/hello", "/api/hello", "/api/hello", {}),
        ("/api/hello", "/api/hello/", "/api/hello", {}),
        ("/f/[...a]", "/f/[...b]", "/f/x/y", {"b": ["x", "y"]}),
    ],
)
def test_another_owner_claiming_the_same_shape_displaces_it(first, second, path, params):
    router = Router()
    old = make_route(first)
    router.set("cell-1", [old, make_route("/keep")])
    new = make_route(second)
    displaced = router.set("cell-2", [new])
    assert displaced == [old]
    found, got = router.match(path)
    assert found is new
    assert found.owner == "cell-2"
    assert got == params
    assert matched(router, "/keep") == ("/keep", {})  # the rest of cell-1 stays


@pytest.mark.parametrize(
    "first, second",
    [
        ("/x/[id]", "/x/[uid]/y"),  # two names for one dynamic segment
        ("/[id]/a", "/[key]/b"),
        ("/x/[...a]", "/x/[[...b]]"),  # required and optional catch-all at one level
        ("/x/[[...b]]", "/x/[...a]"),
        ("/x", "/x/[[...s]]"),  # same specificity
        ("/x/[[...s]]", "/x"),
        ("/", "/[[...s]]"),
        ("/[[...s]]", "/"),
    ],
)
def test_conflicts_raise_and_leave_the_table_unchanged(first, second):
    router = Router()
    router.set("cell-1", [make_route(first)])
    router.set("cell-2", [make_route("/other")])
    before = router.routes
    with pytest.raises(RouteConflictError):
        router.set("cell-2", [make_route(second)])
    assert router.routes == before
    assert router.find(second) is None
    assert router.find("/other") is not None  # cell-2's old route survives the failed set
    assert router.find(first).owner == "cell-1"


@pytest.mark.parametrize(
    "first, second",
    [
        ("/x/[id]", "/x/[uid]/y"),
        ("/x/[id]", "/x/[uid]"),
        ("/x", "/x/[[...s]]"),
        ("/x/[...a]", "/x/[[...b]]"),
        ("/x/[...a]", "/x/[...b]"),  # two names for one catch-all, as for [id] and [uid]
        ("/x/[[...a]]", "/x/[[...b]]"),
    ],
)
def test_conflicts_within_one_set_raise(first, second):
    router = Router()
    with pytest.raises(RouteConflictError):
        router.set("cell-1", [make_route(first), make_route(second)])
    assert router.routes == []


def test_an_owner_may_rename_its_own_param():
    router = Router()
    router.set("cell-1", [make_route("/x/[id]")])
    router.set("cell-1", [make_route("/x/[uid]/y")])
    assert matched(router, "/x/1/y") == ("/x/[uid]/y", {"uid": "1"})
    assert router.match("/x/1") is None


def test_remove():
    router = Router()
    a = make_route("/api/a")
    router.set("cell-1", [a])
    router.set("cell-2", [make_route("/api/b")])
    assert router.remove("cell-1") == [a]
    assert router.match("/api/a") is None
    assert matched(router, "/api/b") == ("/api/b", {})
    assert router.remove("cell-1") == []
    assert router.remove("nobody") == []


def test_find():
    router = Router()
    users = make_route("/api/users/[id]")
    router.set("cell-1", [users, make_route("/api/hello")])
    assert router.find("/api/users/[id]") is users
    assert router.find("/api/users/[id]/") is users  # written the same way once normalised
    assert router.find("/api/users/[uid]") is None  # a different name is a different pattern
    assert router.find("/api/users/1") is None  # find takes a pattern, not a path
    assert router.find("/nope") is None
    assert router.find("not a pattern") is None


def test_set_sets_the_owner_of_each_route():
    router = Router()
    route = make_route("/api/a")
    assert route.owner == "/api/a"  # defaults to the pattern
    router.set("cell-7", [route])
    assert route.owner == "cell-7"
