"""Scenario 1: workers killed with SIGKILL at random while jobs run, and restarted.

Every few hundred milliseconds one of three workers is killed mid-work and a new one
takes its place. The jobs it held come back when their leases (2 s) expire and run
again elsewhere: every job ends succeeded, exactly one success is recorded for each,
none is lost, and a job runs more than once only when a run of it was in a killed
process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from faultlab.scenarios import BACKENDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from faultlab.scenarios import Outcome


@pytest.mark.parametrize("backends", BACKENDS)
def test_workers_killed_at_random_lose_no_job_and_rerun_only_what_they_held(
    run_scenario: Callable[[str, str], Outcome], backends: str
) -> None:
    outcome = run_scenario("worker-sigkill", backends)

    assert not outcome.tally.problems, outcome.explain()
    assert outcome.tally.succeeded == outcome.tally.submitted
    # The fault really hit: workers died with jobs in hand, and those jobs ran again.
    assert outcome.notes.seen["kills"] > 0
    assert outcome.tally.duplicates > 0, outcome.explain()
