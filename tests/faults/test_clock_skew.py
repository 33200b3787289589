"""Scenario 8: two managers whose clocks are 4 s apart (+2 s and -2 s) share one store.

Leases are judged by the clock of the manager that reaps: a lease handed out or renewed
by the manager that is behind looks 4 s shorter to the one that is ahead. With a lease
longer than its renewal interval (a third of it) plus that difference, as
docs/guarantees.md asks an operator to configure, no lease runs out under a live
worker: no job is claimed twice, and none runs twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from faultlab.scenarios import BACKENDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from faultlab.scenarios import Outcome


@pytest.mark.parametrize("backends", BACKENDS)
def test_managers_with_skewed_clocks_never_claim_a_job_twice(
    run_scenario: Callable[[str, str], Outcome], backends: str
) -> None:
    outcome = run_scenario("clock-skew", backends)

    assert not outcome.tally.problems, outcome.explain()
    assert outcome.tally.succeeded == outcome.tally.submitted
    assert outcome.tally.duplicates == 0
    assert {job.attempt for job in outcome.jobs.values()} == {1}
    # Both managers handed out work (workers poll them in alternating order).
    workers = {job.worker for job in outcome.jobs.values()}
    assert len(workers) >= 2
