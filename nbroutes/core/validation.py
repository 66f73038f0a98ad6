"""Handler parameters from type hints, validated by pydantic.

``def GET(req, id: int, page: int = 1, tags: list[str] = [])`` takes ``id`` from
the path, ``page`` and ``tags`` from the query string; a parameter annotated with
a pydantic model (or dataclass, or named ``body``) is the validated body::

    >>> sig = bind(lambda req, id, page=1: None, ("id",))
    >>> [(p.name, p.location) for p in sig.parameters]
    [('id', 'path'), ('page', 'query')]

Whatever fails to parse or validate raises ``RequestValidationError``, a 422
whose detail is pydantic's error list with each location (``path``, ``query``,
``header``, ``cookie``, ``body``) in front of the ``loc``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar, get_args, get_origin

import pydantic
from pydantic import TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from nbroutes.core.requests import Request
from nbroutes.core.responses import ApiResponse
from nbroutes.errors import BodyError, RequestValidationError, SignatureError, plain_json

__all__ = [
    "Body",
    "Cookie",
    "Header",
    "Param",
    "Path",
    "Query",
    "RequestValidationError",
    "Signature",
    "bind",
    "validation_errors",
]

LOCATIONS = ("path", "query", "header", "cookie")


class Param:
    """Where a parameter comes from, and its constraints: ``Annotated[int, Query(ge=1)]``."""

    location: ClassVar[str] = "query"

    def __init__(
        self,
        default: Any = PydanticUndefined,
        *,
        alias: str | None = None,
        description: str | None = None,
        **constraints: Any,
    ) -> None:
        self.default = default
        self.alias = alias
        self.description = description
        self.constraints = constraints

    def field(self, default: Any) -> FieldInfo:
        field: FieldInfo = pydantic.Field(default, description=self.description, **self.constraints)
        return field

    def __repr__(self) -> str:
        return f"{type(self).__name__}(default={self.default!r}, alias={self.alias!r}, {self.constraints!r})"


class Query(Param):
    """A query-string parameter."""

    location = "query"


class Path(Param):
    """A path parameter (``[id]`` in the pattern)."""

    location = "path"


class Header(Param):
    """A request header; ``user_agent`` reads ``User-Agent`` unless ``alias`` says otherwise."""

    location = "header"


class Cookie(Param):
    """A cookie."""

    location = "cookie"


class Body(Param):
    """The request body (a pydantic model parameter is the body without this)."""

    location = "body"


@dataclasses.dataclass
class Parameter:
    """One handler parameter nbroutes fills in from the request."""

    name: str
    location: str  # "request", "response", or one of LOCATIONS, or "body"
    annotation: Any = Any
    default: Any = PydanticUndefined
    key: str = ""  # the name in the request: a header's name, a query key
    sequence: bool = False
    marker: Param | None = None

    @property
    def required(self) -> bool:
        return self.default is PydanticUndefined

    @property
    def description(self) -> str | None:
        return self.marker.description if self.marker else None


class Signature:
    """How to call one handler: which arguments come from where, checked once at registration."""

    def __init__(self, fn: Callable[..., Any], parameters: list[Parameter], returns: Any) -> None:
        self.fn = fn
        self.parameters = [p for p in parameters if p.location not in ("request", "response")]
        self.all_parameters = parameters
        self.body = next((p for p in parameters if p.location == "body"), None)
        self.models: dict[str, type[pydantic.BaseModel]] = {}
        for location in LOCATIONS:
            fields = {
                p.name: (p.annotation, p.marker.field(p.default) if p.marker else p.default)
                for p in self.parameters
                if p.location == location
            }
            if fields:
                name = f"{getattr(fn, '__name__', 'handler')}_{location}"
                self.models[location] = create_model(name, **fields)  # type: ignore[call-overload]
        self.body_adapter = TypeAdapter(self.body.annotation) if self.body is not None else None
        #: Fields of a model body typed as lists: a form sends a single value as a plain string.
        self.body_list_fields = _list_fields(self.body.annotation) if self.body is not None else frozenset()
        #: Validates and filters the return value; None when the handler declares none.
        self.returns = TypeAdapter(returns) if returns is not None else None
        self.return_annotation = returns

    @property
    def typed(self) -> bool:
        """True when any argument needs the request parsed and validated."""
        return bool(self.parameters)

    def arguments(self, req: Request, res: ApiResponse) -> dict[str, Any]:
        """The handler's keyword arguments for this request.

        Raises RequestValidationError (422) listing everything that did not validate.
        """
        values: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for location, model in self.models.items():
            raw = _gather(location, [p for p in self.parameters if p.location == location], req)
            try:
                values.update(model.model_validate(raw).__dict__)
            except ValidationError as exc:
                errors.extend(validation_errors(exc, (location,)))
        if self.body is not None:
            try:
                values[self.body.name] = self._body(req)
            except ValidationError as exc:
                errors.extend(validation_errors(exc, ("body",)))
            except RequestValidationError as exc:
                errors.extend(exc.errors)
        if errors:
            raise RequestValidationError(errors)
        for p in self.all_parameters:
            if p.location == "request":
                values[p.name] = req
            elif p.location == "response":
                values[p.name] = res
        return values

    def _body(self, req: Request) -> Any:
        assert self.body is not None and self.body_adapter is not None
        if not req.raw_body.strip():
            if not self.body.required:
                return self.body.default
            raise RequestValidationError([{"type": "missing", "loc": ["body"], "msg": "Field required"}])
        try:
            data = req.body
        except BodyError as exc:
            if exc.status_code != 400:
                raise  # a form over the route's max_fields or max_files: 413, as for the untyped handler
            raise RequestValidationError([{"type": "json_invalid", "loc": ["body"], "msg": exc.detail}]) from None
        if self.body_list_fields and isinstance(data, dict) and req.content_type in _FORM_TYPES:
            data = {k: [v] if k in self.body_list_fields and not isinstance(v, list) else v for k, v in data.items()}
        return self.body_adapter.validate_python(data)

    def serialize(self, value: Any) -> Any:
        """The return value validated against, and filtered by, the declared return type.

        Raises pydantic.ValidationError if the handler returned something else.
        """
        assert self.returns is not None
        return self.returns.dump_python(self.returns.validate_python(value, from_attributes=True), mode="json")


_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _list_fields(annotation: Any) -> frozenset[str]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return frozenset(name for name, f in annotation.model_fields.items() if _is_sequence(f.annotation))
    return frozenset()


def _gather(location: str, params: list[Parameter], req: Request) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if location == "path":
        source: Any = req.params
    elif location == "query":
        source = req.query_params
    elif location == "cookie":
        source = req.cookies
    else:
        for p in params:
            values = req.headers.getlist(p.key)
            if values:
                raw[p.name] = values if p.sequence else values[-1]
        return raw
    for p in params:
        if p.key in source:
            value = source[p.key]
            if p.sequence:
                raw[p.name] = value if isinstance(value, list) else [value]
            else:
                raw[p.name] = value[-1] if isinstance(value, list) and location == "query" else value
    return raw


def validation_errors(exc: ValidationError, prefix: Sequence[str] = ()) -> list[dict[str, Any]]:
    """pydantic's errors as plain JSON values, with ``prefix`` (the location) in front of each ``loc``."""
    try:
        # Through JSON, so ctx values such as exceptions come out as plain strings; an input of NaN as null.
        errors = json.loads(exc.json(include_url=False), parse_constant=lambda _: None)
    except ValueError:  # pydantic cannot encode a lone surrogate in an input or a message; plain_json can
        errors = plain_json(exc.errors(include_url=False))
    for error in errors:
        error["loc"] = [*prefix, *error["loc"]]
    return errors  # type: ignore[no-any-return]


_SEQUENCES = (list, tuple, set, frozenset, Sequence)


def _is_sequence(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_sequence(get_args(annotation)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_is_sequence(a) for a in get_args(annotation) if a is not type(None))
    return origin in _SEQUENCES or annotation in _SEQUENCES


def _is_body_type(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if not isinstance(annotation, type):
        return False
    if issubclass(annotation, pydantic.BaseModel) or dataclasses.is_dataclass(annotation):
        return True
    return typing.is_typeddict(annotation)


def _marker(annotation: Any) -> Param | None:
    if get_origin(annotation) is Annotated:
        for extra in get_args(annotation)[1:]:
            if isinstance(extra, Param):
                return extra
    return None


def bind(fn: Callable[..., Any], path_params: Sequence[str] = (), response_model: Any = None) -> Signature:
    """Work out where each of ``fn``'s parameters comes from.

    Raises SignatureError for a parameter nbroutes cannot supply.
    """
    try:
        sig = inspect.signature(fn, follow_wrapped=False, eval_str=True)
    except NameError as exc:
        raise SignatureError(f"{_name(fn)}: an annotation names something undefined ({exc})") from None
    except (TypeError, ValueError):
        return Signature(fn, [Parameter("req", "request"), Parameter("res", "response")], response_model)
    from nbroutes.core.requests import Request as RequestType
    from nbroutes.core.responses import ApiResponse as ResponseType

    parameters: list[Parameter] = []
    for index, p in enumerate(sig.parameters.values()):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue  # a decorator's (*args, **kwargs): it gets (req, res) positionally
        annotation = p.annotation if p.annotation is not p.empty else Any
        has_annotation = p.annotation is not p.empty
        default = p.default if p.default is not p.empty else PydanticUndefined
        marker = _marker(annotation)
        if isinstance(p.default, Param):
            marker, default = p.default, p.default.default
        if marker is not None and marker.default is not PydanticUndefined and default is PydanticUndefined:
            default = marker.default
        if annotation is RequestType or p.name in ("req", "request") and not has_annotation:
            parameters.append(Parameter(p.name, "request"))
        elif annotation is ResponseType or p.name in ("res", "response") and not has_annotation:
            parameters.append(Parameter(p.name, "response"))
        elif index == 0 and not has_annotation and marker is None and p.name not in path_params:
            parameters.append(Parameter(p.name, "request"))  # def GET(r): the first parameter is the request
        elif (
            index == 1
            and not has_annotation
            and marker is None
            and default is PydanticUndefined
            and p.name not in path_params
        ):
            parameters.append(Parameter(p.name, "response"))  # def handler(rq, rs)
        else:
            if marker is not None:
                location = marker.location
            elif p.name in path_params:
                location = "path"
            elif p.name == "body" or _is_body_type(annotation):
                location = "body"
            else:
                location = "query"
            if location == "path" and p.name not in path_params:
                raise SignatureError(f"{_name(fn)}: {p.name} is a path parameter but the pattern has no [{p.name}]")
            key = (marker.alias if marker and marker.alias else None) or (
                p.name.replace("_", "-") if location == "header" else p.name
            )
            bare = get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
            parameters.append(Parameter(p.name, location, bare, default, key, _is_sequence(bare), marker))
    bodies = [p.name for p in parameters if p.location == "body"]
    if len(bodies) > 1:
        raise SignatureError(f"{_name(fn)}: only one parameter can be the body, not {', '.join(bodies)}")
    returns = response_model
    if returns is None and sig.return_annotation is not sig.empty:
        returns = _response_type(sig.return_annotation)
    try:
        return Signature(fn, parameters, returns)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise SignatureError(f"{_name(fn)}: {exc}") from None


def _response_type(annotation: Any) -> Any:
    """The return annotation, unless it says nothing about the body (None, Any, a Response, a generator)."""
    from nbroutes.core.responses import Response

    if annotation in (None, type(None), Any) or annotation is inspect.Signature.empty:
        return None
    origin = get_origin(annotation) or annotation
    if isinstance(origin, type):
        if issubclass(origin, Response):
            return None
        from collections.abc import AsyncIterator, Iterator

        if issubclass(origin, (Iterator, AsyncIterator)):
            return None
    if origin in (tuple, typing.Union):
        return None  # (body, status) tuples and unions of shapes are not filtered
    return annotation


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", repr(fn))
