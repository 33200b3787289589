"""Scenario 2: a worker frozen with SIGSTOP past its lease, then resumed with SIGCONT.

Twice during the run one worker is frozen for two and a half leases. The jobs it held
are taken back when their leases expire and run again on the other workers. When it
resumes, its handlers finish and it reports them: those late reports are fenced out by
attempt, so every job's recorded outcome is the one its latest attempt produced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from faultlab.scenarios import BACKENDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from faultlab.scenarios import Outcome


@pytest.mark.parametrize("backends", BACKENDS)
def test_late_reports_of_a_frozen_worker_are_fenced_out_and_the_rerun_stands(
    run_scenario: Callable[[str, str], Outcome], backends: str
) -> None:
    outcome = run_scenario("worker-sigstop", backends)

    # Every job succeeded once, with the result of its recorded attempt (tally checks
    # each result names the attempt and process that really returned it).
    assert not outcome.tally.problems, outcome.explain()
    assert outcome.tally.succeeded == outcome.tally.submitted
    # And the frozen workers' runs did finish after resuming, and lost to the re-runs.
    frozen = set(outcome.notes.seen["frozen"])
    late = [
        execution
        for execution in outcome.executions
        if execution.pid in frozen
        and execution.ended is not None
        and outcome.jobs[execution.job_id].attempt > execution.attempt
    ]
    assert late, outcome.explain()
    for execution in late:
        assert outcome.jobs[execution.job_id].result != {
            "attempt": execution.attempt,
            "pid": execution.pid,
        }
