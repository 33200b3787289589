"""Scenario 6: SIGTERM to workers under load drains them, wasting no attempt.

Three times during the run a busy worker gets SIGTERM (grace 10 s) and a new one is
started. The stopping worker takes no more work, ends its long poll by telling the
manager it is stopping, finishes and reports what it runs, and exits 0. Nothing it was
handed is left to a lease: every job ran exactly once, in its first attempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from faultlab.scenarios import BACKENDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from faultlab.scenarios import Outcome


@pytest.mark.parametrize("backends", BACKENDS)
def test_sigterm_drains_a_busy_worker_and_wastes_no_attempt(
    run_scenario: Callable[[str, str], Outcome], backends: str
) -> None:
    outcome = run_scenario("graceful-sigterm", backends)

    assert [code for _, code in outcome.lab.retired] == [0, 0, 0], outcome.explain()
    assert not outcome.tally.problems, outcome.explain()
    assert outcome.tally.succeeded == outcome.tally.submitted
    assert outcome.tally.duplicates == 0
    assert {job.attempt for job in outcome.jobs.values()} == {1}
    # The retired workers did run jobs: they were stopped under load.
    retired = {proc.pid for proc, _ in outcome.lab.retired}
    assert retired <= {execution.pid for execution in outcome.executions}
