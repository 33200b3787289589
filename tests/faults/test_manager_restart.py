"""Scenario 3: the manager killed with SIGKILL mid-run; one of two managers killed.

A manager holds nothing a job depends on, so killing it loses nothing: restarted on
the same store it rebuilds the queue (an in-memory queue died with it) and takes back
the leases that ran out while it was away. With two managers behind one store and
queue, the workers, given both URLs, turn to the survivor and carry on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from faultlab.scenarios import BACKENDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from faultlab.scenarios import Outcome


@pytest.mark.parametrize("backends", BACKENDS)
def test_a_manager_killed_twice_and_restarted_loses_no_job(
    run_scenario: Callable[[str, str], Outcome], backends: str
) -> None:
    outcome = run_scenario("manager-sigkill", backends)

    assert not outcome.tally.problems, outcome.explain()
    assert outcome.tally.succeeded == outcome.tally.submitted


@pytest.mark.parametrize("backends", BACKENDS)
def test_workers_fail_over_to_the_other_manager_when_one_is_killed(
    run_scenario: Callable[[str, str], Outcome], backends: str
) -> None:
    outcome = run_scenario("manager-failover", backends)

    assert not outcome.tally.problems, outcome.explain()
    assert outcome.tally.succeeded == outcome.tally.submitted
    # The survivor did the rest: it handed out most of the jobs after the kill.
    killed_at = outcome.lab.outages[0][0]
    after = [
        job
        for job in outcome.jobs.values()
        if job.started_at is not None and job.started_at.timestamp() > killed_at
    ]
    assert after, outcome.explain()
