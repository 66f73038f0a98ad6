"""Small containers shared by requests and responses: headers and uploaded files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar, overload

__all__ = ["Headers", "UploadedFile"]

_T = TypeVar("_T")


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued HTTP headers.

    ``headers["accept"]`` gives the values of all lines of that name joined with
    ", " (as Node's ``req.headers`` does); ``getlist`` gives them one by one.
    """

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        if isinstance(items, Mapping):
            items = items.items()
        self._items: list[tuple[str, str]] = list(items)
        self._index: dict[str, list[str]] | None = None

    def _lookup(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._items:
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return index

    def __getitem__(self, name: str) -> str:
        values = self._lookup()[name.lower()]
        return values[0] if len(values) == 1 else ", ".join(values)

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    @overload
    def get(self, name: str, default: _T) -> str | _T: ...

    def get(self, name: str, default: object = None) -> object:
        """The value of ``name`` as ``headers[name]`` gives it, or ``default`` when none was sent."""
        values = self._lookup().get(name.lower())
        if values is None:
            return default
        return values[0] if len(values) == 1 else ", ".join(values)

    def getlist(self, name: str) -> list[str]:
        """Every value sent under ``name``, in order."""
        return list(self._lookup().get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[str]:
        return iter(self._lookup())

    def __len__(self) -> int:
        return len(self._lookup())

    def raw(self) -> list[tuple[str, str]]:
        """The header lines as sent, names in their original case."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file sent in a ``multipart/form-data`` body."""

    filename: str
    content_type: str
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)

    def text(self, encoding: str = "utf-8") -> str:
        """The content decoded as text."""
        return self.content.decode(encoding)

    def __repr__(self) -> str:
        return f"UploadedFile(filename={self.filename!r}, content_type={self.content_type!r}, size={self.size})"
