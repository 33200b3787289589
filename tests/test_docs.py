"""The documentation agrees with the code it describes.

- docs/conformance.md is exactly what docs/gen_conformance.py generates from the
  suites' clause catalogues, and every test it names exists on the contract class;
- the worked example in docs/writing-a-backend.md is the example distribution's code,
  file for file;
- every ``./dev`` command the README mentions is a command of the dev script, the
  README gives exactly two set-up commands, ``./dev demo`` and ``./dev test``, and
  ``.ci/run`` runs exactly the test command;
- every relative link in README.md and docs/ points at a file that exists.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    import types

REPO: Final = Path(__file__).resolve().parents[1]
DOCS: Final = REPO / "docs"
README: Final = REPO / "README.md"
EXAMPLE: Final = REPO / "examples" / "third-party-queue"
REGENERATE: Final = "run `.venv/bin/python docs/gen_conformance.py` and commit docs/conformance.md"


def load_generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("gen_conformance", DOCS / "gen_conformance.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code_blocks(markdown: str) -> list[str]:
    """The contents of every fenced code block."""
    return re.findall(r"^```[a-z]*\n(.*?)^```$", markdown, re.DOTALL | re.MULTILINE)


def dev_commands() -> set[str]:
    """The commands ``./dev help`` lists."""
    result = subprocess.run(
        [REPO / "dev", "help"], capture_output=True, text=True, check=True, timeout=60
    )
    return set(re.findall(r"^  ([a-z]+) ", result.stdout, re.MULTILINE))


def test_conformance_page_is_generated_from_the_catalogues() -> None:
    expected = load_generator().render()

    current = (DOCS / "conformance.md").read_text(encoding="utf-8")

    assert current == expected, f"docs/conformance.md is stale: {REGENERATE}"


def test_conformance_page_names_tests_that_exist() -> None:
    from forerunner_queue_tests.contract import QueueContract
    from forerunner_store_tests.contract import StoreContract

    named = re.findall(
        r"`(QueueContract|StoreContract)\.(test_\w+)`", (DOCS / "conformance.md").read_text()
    )
    classes = {"QueueContract": QueueContract, "StoreContract": StoreContract}

    missing = [f"{cls}.{test}" for cls, test in named if not hasattr(classes[cls], test)]
    assert named
    assert not missing, f"docs/conformance.md names tests that do not exist: {missing}"


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "src/forerunner_example_queue/plugin.py",
        "src/forerunner_example_queue/queue.py",
        "tests/test_example_queue.py",
    ],
)
def test_backend_guide_shows_the_example_code_as_it_is(path: str) -> None:
    source = (EXAMPLE / path).read_text(encoding="utf-8")

    blocks = code_blocks((DOCS / "writing-a-backend.md").read_text(encoding="utf-8"))

    assert source in blocks, (
        f"docs/writing-a-backend.md does not show examples/third-party-queue/{path} "
        "as it is; copy the file into its code block"
    )


def test_readme_dev_commands_are_commands_of_the_dev_script() -> None:
    mentioned = set(re.findall(r"\./dev ([a-z]+)", README.read_text(encoding="utf-8")))

    commands = dev_commands()

    assert "test" in mentioned, "the README must give the test command, ./dev test"
    assert mentioned <= commands, (
        f"README.md mentions ./dev {sorted(mentioned - commands)}, "
        f"but ./dev help lists only {sorted(commands)}"
    )


def test_readme_set_up_is_the_demo_then_the_tests() -> None:
    blocks = code_blocks(README.read_text(encoding="utf-8"))

    dev_lines = [line.strip() for block in blocks for line in block.splitlines()]
    given = [line for line in dev_lines if line.startswith("./dev")]

    assert given == ["./dev demo", "./dev test"], (
        "the README's code blocks must give exactly the two set-up commands, "
        f"./dev demo then ./dev test; they give {given}"
    )


def test_ci_runs_the_readme_test_command() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")

    commands = [line for line in script.splitlines() if line and not line.startswith("#")]

    assert commands[-1] == "exec ./dev test"
    assert "set -euo pipefail" in commands


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda page: page.name)
def test_relative_links_point_at_files_that_exist(page: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8"))

    broken = [link for link in links if "://" not in link and not (page.parent / link).exists()]

    assert not broken, f"{page.relative_to(REPO)} links to missing files: {broken}"
