"""The route table: precedence whatever the order routes were added, ownership and conflicts."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbroutes.core import routing
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


def test_a_request_in_flight_keeps_the_table_it_started_with():
    router = router_with("/api/a", "/api/[id]", "/f/[...rest]")
    before = router._table  # what a request that matched before the change is holding
    router.set("cell-9", [make_route("/api/b")])
    router.remove("/api/[id]")
    router.set("/f/[...rest]", [make_route("/f/[[...rest]]")])
    assert before.match("/api/x")[0].pattern.text == "/api/[id]"
    assert before.match("/api/b")[0].pattern.text == "/api/[id]"
    assert before.match("/f") is None
    assert [r.pattern.text for r in before.routes] == ["/api/a", "/api/[id]", "/f/[...rest]"]
    assert matched(router, "/api/x") is None
    assert matched(router, "/f") == ("/f/[[...rest]]", {})


def test_one_owner_cannot_hold_one_path_twice():
    router = Router()
    with pytest.raises(RouteConflictError, match="/api/a and /api/a are the same path: keep one"):
        router.set("cell-1", [make_route("/api/a"), make_route("/api/a/")])
    assert router.routes == []


def test_removing_a_route_frees_its_parameter_name():
    router = router_with("/x/[id]", "/x/[id]/y")
    router.remove("/x/[id]")
    with pytest.raises(RouteConflictError):
        router.set("cell-1", [make_route("/x/[uid]")])  # /x/[id]/y still names the segment
    router.remove("/x/[id]/y")
    router.set("cell-1", [make_route("/x/[uid]")])
    assert matched(router, "/x/1") == ("/x/[uid]", {"uid": "1"})


def test_owners_under_a_cell():
    router = Router()
    router.set("cell-1", [make_route("/a")])
    router.set("cell-1:crud /api/x", [make_route("/api/x")])
    router.set("cell-10", [make_route("/b")])
    router.set("a:b", [make_route("/c")])
    router.set("a:b:c", [make_route("/d")])
    assert router.owners_under("cell-1") == {"cell-1", "cell-1:crud /api/x"}
    assert router.owners_under("a:b") == {"a:b", "a:b:c"}
    router.remove("cell-1:crud /api/x")
    router.set("cell-10", [make_route("/a")])  # displaces cell-1's only route
    assert router.owners_under("cell-1") == set()
    assert router.owners_under("cell-10") == {"cell-10"}


# -- what a change costs -------------------------------------------------------------
# Counted, not timed: how many tree nodes a change makes or copies, and how often the
# whole table is walked (every route collected and sorted, for a listing). Neither may grow with the
# number of routes already there. (A copied node's dict of static children is copied
# too, in C: flat paths under one prefix make that dict as large as the routes.)


class Work:
    def __init__(self, monkeypatch):
        self.nodes = 0
        self.walks = 0
        init, listing = routing._Node.__init__, routing._Table.routes.fget

        def counting_init(node):
            self.nodes += 1
            init(node)

        def counting_listing(table):
            self.walks += table._routes is None  # collected and sorted, not read from the cache
            return listing(table)

        monkeypatch.setattr(routing._Node, "__init__", counting_init)
        monkeypatch.setattr(routing._Table, "routes", property(counting_listing))

    def of(self, change, *args, **kwargs):
        self.nodes = self.walks = 0
        change(*args, **kwargs)
        return self.nodes, self.walks


def numbered(i):
    """Routes of a large notebook: flat static paths, and dynamic ones under them."""
    return (f"/api/r{i}", f"/api/r{i}/[id]", f"/api/r{i}/[id]/items/[...rest]")[i % 3]


@pytest.mark.parametrize("count", [10, 1000])
def test_adding_a_route_costs_its_depth_not_the_number_of_routes(monkeypatch, count):
    router = Router()
    for i in range(count - 1):
        router.set(f"cell-{i}", [make_route(numbered(i))])
    work = Work(monkeypatch)
    for i, text in enumerate(["/api/new", "/api/new/[id]", "/api/new/[id]/items/[...rest]"]):
        depth = len(compile_pattern(text).segments)
        nodes, walks = work.of(router.set, f"new-{i}", [make_route(text)])
        assert nodes <= depth + 1 and walks == 0, (text, nodes, walks)  # the root and one node per segment
    # Replacing: the root, /api and /api/new copied to take the old route out, /api/other made.
    assert work.of(router.set, "new-0", [make_route("/api/other")]) == (4, 0)
    assert work.of(router.remove, "new-2") == (5, 0)  # the path copied, then pruned
    assert len(router.routes) == count + 1


def test_adding_routes_through_the_app_costs_the_same_for_the_thousandth(monkeypatch):
    from nbroutes.core.app import App

    app = App()
    app.openapi_json()  # a cached document, to be invalidated by each add
    work = Work(monkeypatch)
    costs = {}
    for i in range(1000):
        cost = work.of(app.add, numbered(i), {"GET": Endpoint(endpoint)}, owner=f"cell-{i}")
        costs.setdefault(i % 3, set()).add(cost)
    assert costs == {0: {(3, 0)}, 1: {(4, 0)}, 2: {(5, 0)}}, costs  # the root, then a node per segment
    assert len(app.router.routes) == 1000
    assert app.openapi()["paths"].keys() >= {"/api/r0", "/api/r1/{id}"}


# -- the incremental table against one built from scratch ----------------------------
# A random sequence of set/remove/discard on a router must leave the table that a build
# of its routes from nothing gives: same matches, same listing, the same conflicts; and
# the table a request held before each change must still answer as it did.

PATTERNS = [
    "/", "/a", "/a/b", "/a/b/c", "/a/[id]", "/a/[key]", "/a/[id]/b", "/a/[key]/c", "/a/[...rest]",
    "/a/[...more]", "/a/[[...rest]]", "/a/b/[[...s]]", "/[x]", "/[y]/a", "/[...all]", "/[[...all]]",
    "/b/[...p]", "/b/[[...q]]", "/b", "/b/[id]",
]  # fmt: skip
PROBES = [
    "/", "/a", "/a/b", "/a/z", "/a/z/b", "/a/z/c", "/a/b/c", "/a/b/c/d", "/b", "/b/x", "/b/x/y", "/z", "/z/a",
    "/q/w/e", "/a/b/b",
]  # fmt: skip
OWNERS = ["cell-1", "cell-2", "cell-3", "cell-1:crud /a"]


def shape(text):
    return tuple((s.kind, s.value if s.kind == 0 else "") for s in compile_pattern(text).segments)


def answers(table):
    """What a table answers for each probe, and its listing: the routes themselves, not copies."""
    found = {}
    for path in PROBES:
        hit = table.match(path)
        found[path] = None if hit is None else (id(hit[0]), hit[1])
    return found, [id(r) for r in table.routes]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from(OWNERS), st.lists(st.sampled_from(PATTERNS), max_size=3)),
        st.tuples(st.just("remove"), st.sampled_from(OWNERS)),
        st.tuples(st.just("discard"), st.integers(0, 50)),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_the_table_matches_one_built_from_scratch(ops):
    router = Router()
    owned = {}  # the model: owner -> its routes
    for op in ops:
        before = router._table
        seen = answers(before)
        if op[0] == "set":
            _, owner, texts = op
            new = [make_route(t) for t in texts]
            shapes = [shape(t) for t in texts]
            model = {o: [r for r in rs if shape(r.pattern.text) not in shapes] for o, rs in owned.items() if o != owner}
            displaced = [r for o, rs in owned.items() if o != owner for r in rs if shape(r.pattern.text) in shapes]
            model = {o: rs for o, rs in model.items() if rs}
            if new:
                model[owner] = new
            try:
                expected = None if len(set(shapes)) < len(shapes) else routing._Table.build(_all(model))
            except RouteConflictError:
                expected = None
            if expected is None:
                with pytest.raises(RouteConflictError):
                    router.set(owner, new)
                assert router._table is before
                continue
            assert sorted(router.set(owner, new), key=id) == sorted(displaced, key=id)
            owned = model
        elif op[0] == "remove":
            assert router.remove(op[1]) == owned.pop(op[1], [])
        else:
            every = _all(owned)
            if not every:
                continue
            route = every[op[1] % len(every)]
            router.discard(route)
            owned[route.owner] = [r for r in owned[route.owner] if r is not route]
            owned = {o: rs for o, rs in owned.items() if rs}
        assert answers(before) == seen  # the old table is untouched
        assert answers(router._table) == answers(routing._Table.build(_all(owned)))
        assert {o: router.owned_by(o) for o in owned} == owned
        for name in ("cell-1", "cell-2", "cell-3"):
            assert router.owners_under(name) == {o for o in owned if o.partition(":")[0] == name}


def _all(owned):
    return [r for rs in owned.values() for r in rs]
