"""The README documents every magic and option, and documents nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nbroutes.kernel.magics import RouteMagics

README = (Path(__file__).parent.parent / "README.md").read_text()

MAGICS = {
    "%%route": RouteMagics.route,
    "%routes": RouteMagics.routes,
    "%unroute": RouteMagics.unroute,
    "%nbroutes": RouteMagics.nbroutes,
    "%%middleware": RouteMagics.middleware,
    "%request": RouteMagics.request,
    "%browse": RouteMagics.browse,
}


@pytest.mark.parametrize("name", sorted(MAGICS))
def test_each_magic_is_in_the_readme_and_has_help(name: str) -> None:
    assert re.search(rf"`{re.escape(name)}[ `]", README), f"{name} is not in the README"
    assert (MAGICS[name].__doc__ or "").strip(), f"{name} has no help text"


def _options(name: str) -> set[str]:
    parser = getattr(MAGICS[name], "parser", None)
    return set(re.findall(r"(--[a-z][a-z-]+)", parser.format_help())) - {"--help"} if parser else set()


@pytest.mark.parametrize("name", sorted(n for n in MAGICS if _options(n)))
def test_each_option_is_documented_in_the_readme(name: str) -> None:
    for option in _options(name):
        assert option in README, f"{name} {option} is not in the README"


def test_the_magics_with_options_are_the_expected_ones() -> None:
    assert {n for n in MAGICS if _options(n)} == {"%%route", "%nbroutes"}


def test_readme_mentions_no_magic_that_does_not_exist() -> None:
    mentioned = set(re.findall(r"`(%%?[a-z_]+)", README))
    known = set(MAGICS) | {"%load_ext", "%unload_ext", "%reload_ext"}
    assert mentioned <= known, mentioned - known


def test_readme_quick_start_is_the_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick and "make test" in quick


def test_readme_shows_every_cli_command() -> None:
    from nbroutes.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    for command in commands:
        assert f"nbroutes {command} " in README, f"nbroutes {command} is not in the README"


def test_the_app_docstring_documents_every_keyword() -> None:
    import inspect

    from nbroutes import App

    doc = App.__doc__ or ""
    for name in inspect.signature(App).parameters:
        assert f"``{name}``" in doc, f"App({name}=) is not in App's docstring"
