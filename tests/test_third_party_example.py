"""The third-party example queue passes the queue suite, installed as a stranger would.

``examples/third-party-queue`` is written only from docs/writing-a-backend.md. Here it
is installed from source, not editable, with forerunner-core and the queue suite into a
fresh virtual environment, and certified both ways the guide describes: the packaged
suite against ``example://`` through the entry point, and the example's own subclass of
``QueueContract`` with a factory fixture. ``forerunner plugins`` in that environment
must print what the guide shows.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Venv

REPO: Final = Path(__file__).resolve().parents[1]
EXAMPLE: Final = REPO / "examples" / "third-party-queue"
GUIDE: Final = REPO / "docs" / "writing-a-backend.md"


def summary(output: str) -> str:
    """pytest's last line: ``18 passed, 5 skipped in 2.31s``."""
    return output.strip().splitlines()[-1]


@pytest.mark.slow
def test_example_queue_passes_the_suite_installed_as_a_stranger_would(
    make_venv: Callable[[str], Venv], tmp_path: Path
) -> None:
    # Given a fresh environment with the three distributions installed from source
    venv = make_venv("stranger")
    venv.pip(
        "install",
        "--quiet",
        REPO / "forerunner-core",
        REPO / "forerunner-queue-tests",
        EXAMPLE,
    )
    workdir = tmp_path / "work"
    shutil.copytree(EXAMPLE / "tests", workdir / "tests")

    # When the packaged suite certifies example:// through the entry point
    suite = venv.run(
        venv.python,
        "-m",
        "pytest",
        "--pyargs",
        "forerunner_queue_tests",
        "--forerunner-queue",
        "example://",
        cwd=workdir,
        check=False,
    )

    # Then every clause that applies passes, and the header names the example's class
    assert suite.returncode == 0, suite.stdout + suite.stderr
    assert re.fullmatch(r"=* \d+ passed, \d+ skipped in .*", summary(suite.stdout))
    assert (
        "forerunner queue: example:// -> forerunner_example_queue.queue.ExampleQueue "
        "(forerunner-example-queue 0.1.0, plugin 'example')"
    ) in suite.stdout

    # And the example's own subclass of QueueContract passes too
    subclass = venv.run(venv.python, "-m", "pytest", "tests", cwd=workdir, check=False)
    assert subclass.returncode == 0, subclass.stdout + subclass.stderr
    assert (
        "TestExampleQueue"
        in venv.run(
            venv.python, "-m", "pytest", "--collect-only", "-q", "tests", cwd=workdir
        ).stdout
    )

    # And forerunner plugins prints exactly what the guide shows for this environment
    listed = venv.run("forerunner", "plugins", cwd=workdir)
    assert listed.stdout == guide_plugins_listing(), (
        f"{GUIDE} shows another `forerunner plugins` output than a stranger gets:\n{listed.stdout}"
    )


def guide_plugins_listing() -> str:
    """The output under ``$ forerunner plugins`` in the guide's code block."""
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(r"```\n\$ forerunner plugins\n(.*?)```", text, re.DOTALL)
    assert match, f"{GUIDE} has no code block starting with '$ forerunner plugins'"
    return match.group(1)
