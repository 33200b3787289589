"""Fixtures of the fault suite, and the counts table at the end of the run.

The scenarios live in the ``faultlab`` package beside this file, shared with
``bench/chaos.py``; this conftest puts its directory on ``sys.path`` (the suite runs
with ``--import-mode=importlib``, which does not). ``run_scenario`` runs one scenario
with ``FORERUNNER_FAULT_JOBS`` jobs (1,000 by default, the CI size) and records its
counts, which :func:`pytest_terminal_summary` prints as one table, so that CI's output
shows jobs submitted, succeeded, failed, lost and duplicate executions per scenario.

A service that does not answer skips the scenarios that need it, except under ``CI``,
where it fails them: CI must never pass by testing nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from faultlab.scenarios import SCENARIOS, run
from faultlab.services import ServiceMissing
from faultlab.tally import render

if TYPE_CHECKING:
    from collections.abc import Callable

    from faultlab.scenarios import Outcome
    from faultlab.tally import Tally

#: Jobs per scenario in CI; bench/chaos.py runs the same scenarios with more.
JOBS: Final = int(os.environ.get("FORERUNNER_FAULT_JOBS", "1000"))
TALLIES: Final = pytest.StashKey[list["Tally"]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TALLIES] = []


@pytest.fixture
def run_scenario(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str, str], Outcome]:
    """Run the scenario named so on the backends named so, and record its counts."""

    def go(name: str, backends: str) -> Outcome:
        [scenario] = [scenario for scenario in SCENARIOS if scenario.name == name]
        try:
            outcome = run(scenario, backends, tmp_path, JOBS)
        except ServiceMissing as missing:
            if os.environ.get("CI"):
                pytest.fail(f"{missing}, and CI is set: the fault suite must run", pytrace=False)
            pytest.skip(str(missing))
        request.config.stash[TALLIES].append(outcome.tally)
        return outcome

    return go


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tallies = terminalreporter.config.stash.get(TALLIES, [])
    if tallies:
        terminalreporter.write_sep("=", "fault scenarios: counts")
        terminalreporter.write_line(render(tallies))
