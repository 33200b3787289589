"""The hook surface is tested and documented, hook by hook (datasette's checks).

A hook added to :mod:`forerunner.hookspecs` without a ``test_hook_<name>...`` test in
forerunner-core/tests, or without a heading in docs/plugins.md that shows its exact
argument names, fails here: plugin authors build against the specs, the tests and
that page together.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from forerunner import hookspecs

if TYPE_CHECKING:
    from collections.abc import Callable

TESTS: Final = Path(__file__).parent
PLUGINS_DOC: Final = TESTS.parents[1] / "docs" / "plugins.md"
#: ``## forerunner_job_event(event, job)``: a hook's heading with its argument names.
HEADING: Final = re.compile(r"^#{2,4} `?(forerunner_\w+)\(([^)]*)\)`?\s*$", re.MULTILINE)


def specs() -> dict[str, Callable[..., object]]:
    """Every hook specification forerunner defines, by name."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {
        name: value
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, marker)
    }


def names_of_tests() -> set[str]:
    """The names of every test function in forerunner-core/tests."""
    names: set[str] = set()
    for path in TESTS.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names.update(
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
        )
    return names


def documented() -> dict[str, list[str]]:
    """Hook name -> the argument names its heading in docs/plugins.md shows."""
    text = PLUGINS_DOC.read_text(encoding="utf-8")
    return {
        name: [arg.strip() for arg in args.split(",") if arg.strip()]
        for name, args in HEADING.findall(text)
    }


def test_hookspecs_are_found() -> None:
    assert set(specs()) >= {
        "forerunner_store_backends",
        "forerunner_queue_backends",
        "forerunner_tasks",
        "forerunner_job_event",
    }


@pytest.mark.parametrize("hook", sorted(specs()))
def test_every_hook_has_a_test(hook: str) -> None:
    tested = [name for name in names_of_tests() if name.startswith(f"test_hook_{hook}")]

    assert tested, f"no test named test_hook_{hook}... in {TESTS}"


@pytest.mark.parametrize("hook", sorted(specs()))
def test_every_hook_is_documented_with_its_argument_names(hook: str) -> None:
    argnames = list(inspect.signature(specs()[hook]).parameters)

    headings = documented()

    assert hook in headings, (
        f"{PLUGINS_DOC} has no heading '## {hook}({', '.join(argnames)})' for the hook"
    )
    assert headings[hook] == argnames, (
        f"{PLUGINS_DOC} shows {hook}({', '.join(headings[hook])}); "
        f"the spec is {hook}({', '.join(argnames)})"
    )


def test_docs_document_no_hook_that_does_not_exist() -> None:
    stale = sorted(set(documented()) - set(specs()))

    assert not stale, f"{PLUGINS_DOC} documents hooks that forerunner.hookspecs lacks: {stale}"
