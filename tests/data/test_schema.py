"""Between a pydantic model and a SQLite table: column types, tables made and checked, values as SQLite stores them."""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import Annotated, Literal, Optional

import pytest
from pydantic import BaseModel, Field
from sqlite_utils import Database

from nbroutes.data.schema import check_table, create_table, filter_type, is_json, model_from_table, to_sql, unwrap
from nbroutes.errors import CrudError


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    LOW = 1


class Tag(BaseModel):
    name: str


class Todo(BaseModel):
    title: str
    done: bool = False
    stars: int = 0
    due: datetime.date | None = None
    tags: list[str] = Field(default_factory=list)


@pytest.fixture
def db() -> Database:
    return Database(memory=True)


@pytest.mark.parametrize(
    ("annotation", "bare"),
    [(int, int), (Optional[int], int), (int | None, int), (Annotated[str, "x"], str), (Annotated[int | None, 1], int)],  # noqa: UP045
)
def test_unwrap_takes_off_annotated_and_optional(annotation: object, bare: object) -> None:
    assert unwrap(annotation) is bare


@pytest.mark.parametrize(
    ("annotation", "json"),
    [(list[str], True), (dict[str, int], True), (Tag, True), (Optional[Tag], True), (str, False), (int, False)],  # noqa: UP045
)
def test_lists_dicts_and_models_are_stored_as_json(annotation: object, json: bool) -> None:
    assert is_json(annotation) is json


@pytest.mark.parametrize(
    ("annotation", "converts_with"),
    [
        (int, int),
        (bool, bool),
        (datetime.date, datetime.date),
        (uuid.UUID, uuid.UUID),
        (Colour, Colour),
        (list[int], str),
    ],
)
def test_a_filter_converts_with_the_field_type_if_it_is_a_scalar(annotation: object, converts_with: object) -> None:
    assert filter_type(annotation) is converts_with
    assert filter_type(Literal["a", "b"]) == Literal["a", "b"]


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (None, None),
        (True, True),
        (3, 3),
        ("x", "x"),
        (datetime.date(2026, 11, 30), "2026-11-30"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Colour.RED, "red"),
        (["a", "b"], '["a", "b"]'),
        (Tag(name="é"), '{"name": "é"}'),
    ],
)
def test_values_are_stored_as_sqlite_holds_them(value: object, stored: object) -> None:
    assert to_sql(value) == stored


def test_a_table_made_from_a_model_has_its_types_not_null_and_defaults(db: Database) -> None:
    create_table(db["todos"], Todo, "id")
    table = db["todos"]
    assert table.pks == ["id"]
    assert table.columns_dict == {"id": int, "title": str, "done": int, "stars": int, "due": str, "tags": str}
    not_null = {c.name for c in table.columns if c.notnull}
    assert not_null == {"title", "done", "stars"}
    defaults = {c.name: c.default_value for c in table.columns if c.default_value is not None}
    assert defaults == {"done": "0", "stars": "0"}
    table.insert({"title": "from a cell"})  # the model's defaults apply to rows inserted without it
    assert next(table.rows) == {"id": 1, "title": "from a cell", "done": 0, "stars": 0, "due": None, "tags": None}


def test_an_enum_column_takes_the_enum_values_type(db: Database) -> None:
    class Row(BaseModel):
        colour: Colour
        level: Level

    create_table(db["rows"], Row, "id")
    assert db["rows"].columns_dict == {"id": int, "colour": str, "level": int}


def test_checking_a_table_names_the_missing_columns_and_a_wrong_key(db: Database) -> None:
    db["todos"].create({"id": int, "title": str}, pk="id")
    with pytest.raises(CrudError, match=r"no column done, stars, due, tags .*add them"):
        check_table(db["todos"], Todo, "id")

    class Title(BaseModel):
        title: str

    check_table(db["todos"], Title, "id")  # the columns are there: nothing to say
    with pytest.raises(CrudError, match="the primary key of todos is id, not slug: pass pk="):
        check_table(db["todos"], Title, "slug")


def test_a_model_made_from_a_table_has_every_column_but_the_key_optional(db: Database) -> None:
    db["my-notes"].create({"id": int, "text": str, "score": float}, pk="id")
    model = model_from_table(db["my-notes"], "id")
    assert model.__name__ == "MyNotes"
    assert model().model_dump() == {"text": None, "score": None}
    with pytest.raises(CrudError, match="does not exist: pass a model"):
        model_from_table(db["missing"], "id")
    db["odd"].create({"id": int, "_hidden": str}, pk="id")
    with pytest.raises(CrudError, match="starting with _ cannot be a model field"):
        model_from_table(db["odd"], "id")
