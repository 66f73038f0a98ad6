"""One exception hierarchy: every exception nbroutes defines derives from NbroutesError, and from the builtin it is."""

import inspect

import pytest

import nbroutes
from nbroutes import errors

CLASSES = [obj for _, obj in inspect.getmembers(errors, inspect.isclass) if obj.__module__ == errors.__name__]


def test_every_exception_is_defined_in_errors_and_listed() -> None:
    assert sorted(c.__name__ for c in CLASSES) == sorted(errors.__all__)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_exception_derives_from_nbroutes_error(cls: type) -> None:
    assert issubclass(cls, nbroutes.NbroutesError)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.PatternError, ValueError),
        (errors.MalformedPathError, ValueError),
        (errors.RouteConflictError, ValueError),
        (errors.MatcherError, ValueError),
        (errors.SignatureError, TypeError),
        (errors.ResponseSentError, RuntimeError),
        (errors.StreamError, RuntimeError),
        (errors.BodyStreamedError, RuntimeError),
        (errors.CellError, ValueError),
        (errors.CrudError, ValueError),
        (errors.DatabasePathError, FileNotFoundError),
        (errors.HeaderError, ValueError),
        (errors.PortInUseError, OSError),
        (errors.RunningLoopError, RuntimeError),
        (errors.RunningLoopError, RuntimeError),
        (errors.KernelGatewayNotebookError, ValueError),
        (errors.StartupCellError, RuntimeError),
    ],
)
def test_code_that_caught_the_builtin_still_does(cls: type, builtin: type) -> None:
    assert issubclass(cls, builtin)


def test_no_other_module_defines_a_public_exception() -> None:
    # Private ones (a leading underscore) are signals inside one module, never raised to a user.
    import pkgutil

    defined = []
    for info in pkgutil.walk_packages(nbroutes.__path__, "nbroutes."):
        if info.name == "nbroutes.__main__":
            continue  # importing it runs the CLI
        module = __import__(info.name, fromlist=["_"])
        for _, obj in inspect.getmembers(module, inspect.isclass):
            public = not obj.__name__.startswith("_")
            ours = obj.__module__ == info.name != "nbroutes.errors"
            if public and ours and issubclass(obj, BaseException):
                defined.append(f"{info.name}.{obj.__name__}")
    assert defined == []


def test_http_exception_detail_defaults_to_the_reason_phrase() -> None:
    assert nbroutes.HTTPException(404).detail == "Not Found"
    assert nbroutes.HTTPException(599).detail == "Error"
