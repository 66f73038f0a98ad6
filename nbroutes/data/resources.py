"""A REST resource from a SQLite table and a pydantic model: list, create, read, replace, patch and delete rows.

``crud(app, "/api/todos", db["todos"], Todo)`` adds two routes, registered together:

- ``GET /api/todos``: rows as a JSON array. ``?_page=2&_size=20`` pages (``X-Total-Count``
  and an RFC 8288 ``Link`` header say where the other pages are), ``?done=true`` filters
  by column equality (the value converted by the model's field type), ``?_sort=-created,title``
  sorts (``-`` for descending; the primary key breaks ties, so pages are stable).
- ``POST /api/todos``: a body validated by the model; 201 with ``Location`` and the row.
- ``GET/PUT/PATCH/DELETE /api/todos/[id]``: one row; PUT replaces it (the whole body
  validated), PATCH merges the body into it (the merged row validated), DELETE answers 204.

Identifiers in SQL come only from the table's schema and are quoted; values are
always ``?`` parameters. Every write commits before its response is returned, on the
table's own connection, under ``data.lock`` of its database. The handlers carry real
annotations (a body typed by the model, query parameters, the row model as return
type), so the OpenAPI document describes the resource like any typed route.

An id that does not parse as the primary key's type (``/api/todos/abc`` for an
integer key) is a 422, as for any typed path parameter. SQLite's integers are signed
64-bit: an integer id outside that range is a 404 (no row can have it), an integer
filter or body field outside it a 422.

The ``Link`` header repeats the filters and sort of the request in each of its four
URLs; when they are longer than ``LINK_QUERY_LIMIT`` (1 KB) it is left out, so a
request cannot make a header several times its own size. ``X-Total-Count`` is always
sent, and a client that wrote such a query can write the next page's too.
"""

from __future__ import annotations

import inspect
import json
import keyword
import sqlite3
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode

from pydantic import BaseModel, TypeAdapter, ValidationError, create_model
from sqlite_utils.db import Table, quote_identifier

from nbroutes.core.app import App
from nbroutes.core.handlers import Endpoint
from nbroutes.core.openapi import INTERNAL_PREFIX
from nbroutes.core.output import Console
from nbroutes.core.paths import compile_pattern
from nbroutes.core.requests import Request
from nbroutes.core.responses import ApiResponse
from nbroutes.core.routing import Route
from nbroutes.core.validation import Query, validation_errors
from nbroutes.data import sqlite as data
from nbroutes.data.schema import (
    check_table,
    create_table,
    filter_type,
    is_json,
    model_from_table,
    optional,
    to_sql,
    unwrap,
)
from nbroutes.errors import CrudError, HTTPException, PatternError, RequestValidationError

__all__ = ["crud", "CrudError", "LINK_QUERY_LIMIT"]

#: The query keys that page and sort; every other key filters a column.
PAGE, SIZE, SORT = "_page", "_size", "_sort"
_PARAM = {"page_": PAGE, "size_": SIZE, "sort_": SORT}  # Python names (pydantic forbids a leading "_")
_RESERVED = {"req", "res", "body", *_PARAM}
#: The longest filter-and-sort query the ``Link`` header repeats; past it the header is left out.
LINK_QUERY_LIMIT = 1024
#: The integers SQLite stores (signed 64-bit); the sqlite3 module raises OverflowError for any other.
SQLITE_INT_MIN, SQLITE_INT_MAX = -(2**63), 2**63 - 1


def crud(
    app: App,
    prefix: str,
    table: Table,
    model: type[BaseModel] | None = None,
    *,
    pk: str = "id",
    owner: str | None = None,
    console: Console | None = None,
    page_size: int = 20,
    max_page_size: int = 100,
) -> list[Route]:
    """Serve ``table`` as a REST resource at ``prefix`` (see the module); returns the list and item routes.

    The table is created from ``model`` when it does not exist (``pk INTEGER PRIMARY KEY``
    unless the model declares the key); an existing table is never altered. Without a
    model, one is made from the table's columns (every field optional). Registering the
    same owner again (by default the prefix) replaces its routes.

    Raises CrudError for a prefix, table, model or option it cannot serve, RouteConflictError
    if the routes clash with others, changing nothing.
    """
    try:
        compiled = compile_pattern(prefix)
    except PatternError as exc:
        raise CrudError(str(exc)) from None
    if not compiled.is_static:
        raise CrudError(f"{compiled.text}: the prefix must be a static path such as /api/todos")
    if compiled.text.startswith(INTERNAL_PREFIX.rstrip("/")):
        raise CrudError(f"{compiled.text}: paths under {INTERNAL_PREFIX} are nbroutes' own (docs, OpenAPI)")
    if not isinstance(table, Table):
        raise CrudError(f"{table!r} is not a table (a view cannot be written): pass db['name']")
    if not 1 <= page_size <= max_page_size:
        raise CrudError(f"page_size must be between 1 and max_page_size ({max_page_size}), not {page_size}")
    with data.lock(table.db):
        if model is None:
            model = model_from_table(table, pk)
        elif not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise CrudError(f"model must be a pydantic BaseModel class, not {model!r}")
        if table.exists():
            check_table(table, model, pk)
        else:
            create_table(table, model, pk)
        resource = _Resource(compiled.text, table, model, pk, page_size, max_page_size)
    base = compiled.text.rstrip("/")
    console = console or Console(compiled.text)
    owner = owner or compiled.text
    list_route = Route(compiled, resource.list_endpoints(), owner=owner, console=console)
    item_pattern = compile_pattern(f"{base}/[{resource.path_name}]")
    item_route = Route(item_pattern, resource.item_endpoints(), owner=owner, console=console)
    app.router.set(owner, [list_route, item_route])
    return [list_route, item_route]


def _body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors with ``body`` in front of each ``loc``, as nbroutes' own 422s have them."""
    return validation_errors(exc, ("body",))


def _fits(value: Any) -> bool:
    """False for an integer SQLite cannot store."""
    return not isinstance(value, int) or SQLITE_INT_MIN <= value <= SQLITE_INT_MAX


def _out_of_range(loc: list[str], value: int) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "int_range",
                "loc": loc,
                "msg": f"Input should be an integer from {SQLITE_INT_MIN} to {SQLITE_INT_MAX}, the range SQLite stores",
                "input": value,
            }
        ]
    )


class _Endpoint(Endpoint):
    """An endpoint whose 422s name query keys as sent (``_page``), not the Python parameter names."""

    __slots__ = ()

    def call(self, req: Request, res: ApiResponse) -> Any:
        try:
            return super().call(req, res)
        except RequestValidationError as exc:
            for error in exc.errors:
                loc = error.get("loc") or []
                if len(loc) > 1 and loc[0] == "query" and loc[1] in _PARAM:
                    loc[1] = _PARAM[loc[1]]
            raise


#: What a write answers besides its success (``_Resource._write``).
_WRITE_ERRORS = {
    409: "The row breaks a constraint of the table (a unique column, a foreign key)",
    503: "The database is busy, or has a transaction of someone else's open; try again",
}


def _handler(
    fn: Callable[..., Any],
    name: str,
    doc: str,
    params: list[inspect.Parameter],
    returns: Any,
    status: int = 200,
    responses: dict[int, str] | None = None,
) -> _Endpoint:
    """``fn`` with a signature that nbroutes binds (and OpenAPI documents) like a typed handler's.

    ``responses`` are the other statuses it answers (its HTTPExceptions), for the OpenAPI document.
    """
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    fn.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    return _Endpoint(fn, status_code=status, responses=responses)


def _keyword(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


class _Resource:
    """One table served as a resource: its columns, models and the handlers that read and write it."""

    def __init__(
        self, prefix: str, table: Table, model: type[BaseModel], pk: str, page_size: int, max_page_size: int
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.table = table
        self.model = model
        self.pk = pk
        self.page_size = page_size
        self.max_page_size = max_page_size
        fields = model.model_fields
        if pk in fields:
            self.pk_type: Any = unwrap(fields[pk].annotation)
            self.row_model: type[BaseModel] = model
        else:
            affinity = table.columns_dict.get(pk, int)
            self.pk_type = affinity if affinity in (int, float, str, bytes) else str
            # dict[str, Any]: mypy checks a ** argument against create_model's named options (__base__...) too.
            key_field: dict[str, Any] = {pk: (self.pk_type, ...)}
            self.row_model = create_model(f"{model.__name__}Row", __base__=model, **key_field)
        optional_fields: dict[str, Any] = {n: (optional(f.annotation), None) for n, f in fields.items() if n != pk}
        self.patch_model: type[BaseModel] = create_model(f"{model.__name__}Patch", **optional_fields)
        #: The columns a response shows, in order: the key, then the model's fields.
        self.columns = [pk, *(n for n in fields if n != pk)]
        self.json_columns = {n for n, f in fields.items() if is_json(f.annotation)}
        self.filter_types = {pk: self.pk_type, **{n: filter_type(f.annotation) for n, f in fields.items()}}
        self.adapters = {n: TypeAdapter(t) for n, t in self.filter_types.items()}
        #: Columns that can be keyword parameters (documented and converted by nbroutes); the rest are read raw.
        self.declared = {
            n
            for n in self.columns
            if n.isidentifier() and not keyword.iskeyword(n) and n[0] != "_" and n not in _RESERVED
        }
        self.path_name = pk if pk in self.declared else "id"
        self.quoted_table = quote_identifier(table.name)
        self.select = ", ".join(quote_identifier(c) for c in self.columns)
        self.where_pk = f"{quote_identifier(pk)} = ?"

    # -- reading and writing ---------------------------------------------------------------------------
    def _row(self, values: tuple[Any, ...]) -> dict[str, Any]:
        row = dict(zip(self.columns, values, strict=True))
        for name in self.json_columns:
            if isinstance(row[name], str):
                try:
                    row[name] = json.loads(row[name])
                except ValueError:
                    pass  # not JSON after all: the row model says whether the text will do
        return row

    def _fetch(self, key: Any) -> dict[str, Any]:
        """The row with this key. Raises HTTPException (404) if there is none."""
        sql = f"SELECT {self.select} FROM {self.quoted_table} WHERE {self.where_pk}"
        found = self.table.db.execute(sql, [key]).fetchone()
        if found is None:
            raise self._missing(key)
        return self._row(found)

    def _missing(self, key: Any) -> HTTPException:
        return HTTPException(404, f"no row in {self.table.name} with {self.pk} {key!r}")

    def _check_key(self, key: Any) -> None:
        """Raises HTTPException (404) for an integer key no SQLite row can have (sqlite3 would raise OverflowError)."""
        if not _fits(key):
            raise self._missing(key)

    def _write(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Run one write statement and commit it.

        Raises HTTPException: 409 for a constraint it breaks, 503 while the database is
        busy or has a transaction of someone else's open (committing it would not be ours to do).
        """
        database = self.table.db
        if database.conn.in_transaction:
            raise HTTPException(
                503, f"{self.table.name}: the database has an open transaction; commit or roll it back first"
            )
        try:
            with database.atomic():  # BEGIN ... COMMIT: on disk (synchronous=FULL) before the response
                return database.conn.execute(sql, params).fetchall()
        except sqlite3.IntegrityError as exc:
            raise HTTPException(409, f"{self.table.name}: {exc}") from None
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise HTTPException(503, f"{self.table.name}: {exc}", {"Retry-After": "1"}) from None
            raise

    def _record(self, instance: BaseModel) -> dict[str, Any]:
        """The columns to write for a validated model instance (without the key).

        Raises RequestValidationError (422) for an integer SQLite cannot store.
        """
        values = instance.model_dump()
        record = {name: to_sql(values[name]) for name in self.columns if name != self.pk and name in values}
        for name, value in record.items():
            if not _fits(value):
                raise _out_of_range(["body", name], value)
        return record

    def _update(self, key: Any, record: dict[str, Any]) -> dict[str, Any]:
        if not record:
            return self._fetch(key)
        sets = ", ".join(f"{quote_identifier(name)} = ?" for name in record)
        sql = f"UPDATE {self.quoted_table} SET {sets} WHERE {self.where_pk} RETURNING {self.select}"
        rows = self._write(sql, [*record.values(), key])
        if not rows:
            raise self._missing(key)
        return self._row(rows[0])

    # -- handlers --------------------------------------------------------------------------------------
    def list_rows(
        self, req: Request, res: ApiResponse, page: int, size: int, sort: str | None, filters: dict[str, Any]
    ) -> Any:
        """Rows as a page: filters, sorting, ``X-Total-Count`` and ``Link``.

        Raises HTTPException (400) for a query key that is not a column.
        """
        size = min(size, self.max_page_size)
        where, params = self._where(req, filters)
        order = self._order(sort)
        with data.lock(self.table.db):
            execute = self.table.db.execute
            total = int(execute(f"SELECT count(*) FROM {self.quoted_table}{where}", params).fetchone()[0])
            offset = (page - 1) * size
            rows: list[dict[str, Any]] = []
            if offset < 2**63 - 1:  # beyond SQLite's integers there are no rows anyway
                sql = f"SELECT {self.select} FROM {self.quoted_table}{where} ORDER BY {order} LIMIT ? OFFSET ?"
                rows = [self._row(r) for r in execute(sql, [*params, size, offset])]
        last = max(1, -(-total // size))
        res.set_header("X-Total-Count", total)
        links = self._links(req, page, size, last)
        if links is not None:
            res.set_header("Link", links)
        res.set_header("Access-Control-Expose-Headers", "X-Total-Count, Link")  # readable by a page on another origin
        return rows

    def _unknown(self, what: str, name: str) -> HTTPException:
        valid = ", ".join(self.columns)
        reserved = f", or {PAGE}, {SIZE}, {SORT}" if what == "filter" else ""
        return HTTPException(400, f"unknown column {name!r} in {what}: {self.table.name} has {valid}{reserved}")

    def _where(self, req: Request, filters: dict[str, Any]) -> tuple[str, list[Any]]:
        terms: list[str] = []
        params: list[Any] = []
        for name, value in req.query_params.items():
            if name in (PAGE, SIZE, SORT):
                continue
            if name not in self.filter_types:
                raise self._unknown("filter", name)
            if name in self.declared:
                value = filters[name]
            else:
                raw = value[-1] if isinstance(value, list) else value
                try:
                    value = self.adapters[name].validate_python(raw)
                except ValidationError as exc:
                    raise RequestValidationError(validation_errors(exc, ("query", name))) from None
            value = to_sql(value)
            if not _fits(value):
                raise _out_of_range(["query", name], value)
            terms.append(f"{quote_identifier(name)} = ?")
            params.append(value)
        return (" WHERE " + " AND ".join(terms) if terms else ""), params

    def _order(self, sort: str | None) -> str:
        terms: list[str] = []
        named: set[str] = set()
        for part in (sort or "").split(","):
            part = part.strip()  # "+title" arrives as " title": a plus in a query string is a space
            descending = part.startswith("-")
            name = part[1:].strip() if descending else part
            if not name:
                continue
            if name not in self.filter_types:
                raise self._unknown(SORT, name)
            named.add(name)
            terms.append(f"{quote_identifier(name)} {'DESC' if descending else 'ASC'}")
        if self.pk not in named:
            terms.append(f"{quote_identifier(self.pk)} ASC")  # a total order, so pages neither repeat nor skip
        return ", ".join(terms)

    def _links(self, req: Request, page: int, size: int, last: int) -> str | None:
        """The RFC 8288 ``Link`` header: first, prev, next and last, keeping the filters and sort.

        None when the filters and sort are longer than ``LINK_QUERY_LIMIT``: four copies of
        a long query would make a header several times the request's size.
        """
        pairs = parse_qsl(req.query_string, keep_blank_values=True)
        kept = urlencode([(k, v) for k, v in pairs if k not in (PAGE, SIZE)])
        if len(kept) > LINK_QUERY_LIMIT:
            return None
        prefix = f"{req.path}?{kept}&" if kept else f"{req.path}?"

        def url(n: int) -> str:
            return prefix + urlencode([(PAGE, n), (SIZE, size)])

        rels = [("first", 1)]
        if page > 1:
            rels.append(("prev", min(page - 1, last)))
        if page < last:
            rels.append(("next", page + 1))
        rels.append(("last", last))
        return ", ".join(f'<{url(n)}>; rel="{rel}"' for rel, n in rels)

    def create(self, body: BaseModel) -> Any:
        """Insert a row; answers 201 with its ``Location``."""
        record = self._record(body)
        given = getattr(body, self.pk) if self.pk in self.model.model_fields else None
        if given is not None:
            record = {self.pk: to_sql(given), **record}
            if not _fits(record[self.pk]):
                raise _out_of_range(["body", self.pk], record[self.pk])
        names = ", ".join(quote_identifier(name) for name in record)
        marks = ", ".join("?" for _ in record)
        values = f"({names}) VALUES ({marks})" if record else "DEFAULT VALUES"
        with data.lock(self.table.db):
            rows = self._write(
                f"INSERT INTO {self.quoted_table} {values} RETURNING {self.select}", list(record.values())
            )
        row = self._row(rows[0])
        location = f"{self.prefix}/{quote(str(row[self.pk]), safe='')}"
        return row, 201, {"Location": location}

    def read(self, key: Any) -> Any:
        """The row with this key."""
        self._check_key(key)
        with data.lock(self.table.db):
            return self._fetch(key)

    def replace(self, key: Any, body: BaseModel) -> Any:
        """Replace the row's fields with the body's."""
        self._check_key(key)
        with data.lock(self.table.db):
            return self._update(key, self._record(body))

    def patch(self, key: Any, body: BaseModel) -> Any:
        """Merge the body's fields into the row; the merged row must validate."""
        self._check_key(key)
        with data.lock(self.table.db):
            current = self.row_model.model_validate(self._fetch(key))
            own_key = None if self.pk in self.model.model_fields else {self.pk}  # the model may forbid extras
            merged = {**current.model_dump(exclude=own_key), **body.model_dump(exclude_unset=True)}
            try:
                instance = self.model.model_validate(merged)
            except ValidationError as exc:
                raise RequestValidationError(_body_errors(exc)) from None
            return self._update(key, self._record(instance))

    def delete(self, key: Any) -> None:
        """Delete the row; 204."""
        self._check_key(key)
        with data.lock(self.table.db):
            if not self._write(f"DELETE FROM {self.quoted_table} WHERE {self.where_pk} RETURNING 1", [key]):
                raise self._missing(key)

    # -- endpoints -------------------------------------------------------------------------------------
    def list_endpoints(self) -> dict[str, Endpoint]:
        name = self.table.name
        rows = list[self.row_model]  # type: ignore[name-defined]
        size_doc = f"Rows per page (default {self.page_size}, at most {self.max_page_size})"
        params = [
            _keyword("req", Request),
            _keyword("res", ApiResponse),
            _keyword("page_", Annotated[int, Query(ge=1, alias=PAGE, description="Page number, from 1")], 1),
            _keyword("size_", Annotated[int, Query(ge=1, alias=SIZE, description=size_doc)], self.page_size),
            _keyword(
                "sort_",
                Annotated[optional(str), Query(alias=SORT, description="Columns to sort by, comma-separated; -desc")],
                None,
            ),
        ]
        for column in sorted(self.declared, key=self.columns.index):
            doc = f"Only rows whose {column} equals this"
            params.append(
                _keyword(column, Annotated[optional(self.filter_types[column]), Query(description=doc)], None)
            )

        def list_rows(**kw: Any) -> Any:
            filters = {c: kw[c] for c in self.declared}
            return self.list_rows(kw["req"], kw["res"], kw["page_"], kw["size_"], kw["sort_"], filters)

        def create(**kw: Any) -> Any:
            return self.create(kw["body"])

        body = [_keyword("body", self.model)]
        listed = {400: "A query key that is not a column, or a sort by one"}
        return {
            "GET": _handler(
                list_rows, f"list_{name}", f"List {name}.\n\nPaged, filtered and sorted.", params, rows, 200, listed
            ),
            "POST": _handler(
                create, f"create_{name}", f"Create a row in {name}.", body, self.row_model, 201, _WRITE_ERRORS
            ),
        }

    def item_endpoints(self) -> dict[str, Endpoint]:
        name, key = self.table.name, self.path_name
        path = _keyword(key, self.pk_type)

        def read(**kw: Any) -> Any:
            return self.read(kw[key])

        def replace(**kw: Any) -> Any:
            return self.replace(kw[key], kw["body"])

        def patch(**kw: Any) -> Any:
            return self.patch(kw[key], kw["body"])

        def delete(**kw: Any) -> None:
            self.delete(kw[key])

        row = self.row_model
        missing = {404: f"No row in {name} has this {key}"}
        writes = {**missing, **_WRITE_ERRORS}
        return {
            "GET": _handler(read, f"read_{name}", f"One row of {name}.", [path], row, 200, missing),
            "PUT": _handler(
                replace,
                f"replace_{name}",
                f"Replace a row of {name}.",
                [path, _keyword("body", self.model)],
                row,
                200,
                writes,
            ),
            "PATCH": _handler(
                patch,
                f"patch_{name}",
                f"Change some fields of a row of {name}.",
                [path, _keyword("body", self.patch_model)],
                row,
                200,
                writes,
            ),
            "DELETE": _handler(delete, f"delete_{name}", f"Delete a row of {name}.", [path], None, 204, writes),
        }
