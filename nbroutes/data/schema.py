"""Between a pydantic model and a SQLite table: the column each field becomes, a table made or checked, values stored.

``crud()`` (``data.resources``) serves a table through a model: it makes the table from the model
when it is missing (types, NOT NULL and defaults from the fields), checks an existing one against
it, or makes a model from the table's columns; and it stores each validated value as SQLite holds
it (bools as 0/1, dates as ISO text, lists and models as JSON).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import types
import typing
import uuid
from typing import Annotated, Any, Literal, Optional, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, create_model
from sqlite_utils.db import Table

from nbroutes.errors import CrudError

__all__ = ["check_table", "create_table", "filter_type", "is_json", "model_from_table", "optional", "to_sql", "unwrap"]

#: Field types a query-string filter converts its value to; any other type filters as text.
_SCALARS = (bool, int, float, str, bytes, datetime.datetime, datetime.date, datetime.time, decimal.Decimal, uuid.UUID)
_ANY: TypeAdapter[Any] = TypeAdapter(Any)


def unwrap(annotation: Any) -> Any:
    """The annotation without ``Annotated`` and ``Optional``: ``Optional[int]`` is ``int``."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    args = [a for a in get_args(annotation) if a is not type(None)]
    if is_union(annotation) and len(args) == 1:
        return unwrap(args[0])
    return annotation


def optional(annotation: Any) -> Any:
    """``Optional[annotation]``, built at runtime (``X | None`` fails for some typing forms)."""
    return Optional[annotation]  # noqa: UP045


def is_union(annotation: Any) -> bool:

    return get_origin(annotation) in (typing.Union, getattr(types, "UnionType", None))


def allows_none(annotation: Any) -> bool:
    return (
        annotation is None or annotation is type(None) or (is_union(annotation) and type(None) in get_args(annotation))
    )


def column_type(annotation: Any) -> type:
    """The Python type sqlite-utils turns into the column's SQL type (bool INTEGER, datetime TEXT)."""
    bare = unwrap(annotation)
    if get_origin(bare) is Literal:
        values = get_args(bare)
        return type(values[0]) if values and isinstance(values[0], (bool, int, float, str)) else str
    if isinstance(bare, type):
        if issubclass(bare, enum.Enum):
            return int if issubclass(bare, int) else float if issubclass(bare, float) else str
        if issubclass(bare, (bool, int, float, bytes)):
            return bare
    return str  # str, dates and times (ISO text), Decimal and UUID (exact text), and JSON for the rest


def is_json(annotation: Any) -> bool:
    """True for fields stored as JSON text: lists, dicts, nested models."""
    bare = unwrap(annotation)
    origin = get_origin(bare)
    if origin in (list, dict, tuple, set, frozenset) or bare in (list, dict, tuple, set, frozenset):
        return True
    return isinstance(bare, type) and issubclass(bare, BaseModel)


def filter_type(annotation: Any) -> Any:
    """The type a query-string filter value is converted with: the field's type if it is a scalar, else str."""
    bare = unwrap(annotation)
    if get_origin(bare) is Literal or (isinstance(bare, type) and issubclass(bare, (*_SCALARS, enum.Enum))):
        return bare
    return str


def model_from_table(table: Table, pk: str) -> type[BaseModel]:
    if not table.exists():
        raise CrudError(f"table {table.name} does not exist: pass a model to create it")
    fields: dict[str, Any] = {}
    for name, kind in table.columns_dict.items():
        if name == pk:
            continue
        if name.startswith("_"):
            raise CrudError(f"{table.name}.{name}: a column starting with _ cannot be a model field; pass a model")
        fields[name] = (optional(kind), None)
    words = "".join(w.capitalize() for w in "".join(c if c.isalnum() else " " for c in table.name).split())
    try:
        made: type[BaseModel] = create_model(words or "Row", **fields)
    except Exception as exc:  # noqa: BLE001 - pydantic's reasons are many; the user's fix is one
        raise CrudError(f"cannot make a model from the columns of {table.name} ({exc}); pass a model") from None
    return made


def create_table(table: Table, model: type[BaseModel], pk: str) -> None:
    fields = model.model_fields
    columns: dict[str, Any] = {} if pk in fields else {pk: int}
    columns.update({name: column_type(f.annotation) for name, f in fields.items()})
    not_null: set[str] = set()
    defaults: dict[str, Any] = {}
    for name, f in fields.items():
        if name == pk or f.default_factory is not None:
            continue  # a factory's value (now(), a new id) is not one constant: the column stays nullable
        value = None if f.is_required() else to_sql(f.default)
        if isinstance(value, (int, float, str)):
            # Rows inserted from a cell (db["todos"].insert(...)) get the model's defaults too.
            defaults[name] = (
                table.db.quote(value) if isinstance(value, str) else int(value) if isinstance(value, bool) else value
            )
        if (f.is_required() or name in defaults) and not allows_none(f.annotation):
            not_null.add(name)
    table.create(columns, pk=pk, not_null=not_null, defaults=defaults)


def check_table(table: Table, model: type[BaseModel], pk: str) -> None:
    columns = [c.name for c in table.columns]
    missing = [name for name in model.model_fields if name not in columns]
    if missing:
        raise CrudError(
            f"table {table.name} has no column {', '.join(missing)} for the fields of {model.__name__} "
            f"(its columns: {', '.join(columns)}); add them (table.add_column(name, type)) or change the model"
        )
    if table.pks != [pk]:
        raise CrudError(f"the primary key of {table.name} is {', '.join(table.pks)}, not {pk}: pass pk=")


def to_sql(value: Any) -> Any:
    """A validated value as SQLite stores it: bools as 0/1, dates as ISO text, lists and models as JSON."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    plain = _ANY.dump_python(value, mode="json")
    return json.dumps(plain, ensure_ascii=False) if isinstance(plain, (dict, list)) else plain
