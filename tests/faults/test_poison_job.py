"""Scenario 7: poison jobs, each of which takes its worker process down every time.

Three jobs among the rest kill their worker with SIGKILL whenever they run. Each is
handed out ``max_attempts`` (3) times, then fails with ``LeaseExpired``; the supervisor
restarts the dead workers, as systemd would, and every other job still succeeds: the
poison does not stall the queue. An attempt is spent when its worker dies, whether the
job had started or not, so a poison job that lands in a worker beside another one may
lose an attempt without running: it runs at most three times, not always three.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pytest
from faultlab.scenarios import BACKENDS, POISON

if TYPE_CHECKING:
    from collections.abc import Callable

    from faultlab.scenarios import Outcome


@pytest.mark.parametrize("backends", BACKENDS)
def test_a_poison_job_fails_after_max_attempts_and_stalls_nothing(
    run_scenario: Callable[[str, str], Outcome], backends: str
) -> None:
    outcome = run_scenario("poison-job", backends)

    assert not outcome.tally.problems, outcome.explain()
    poison = outcome.notes.may_fail
    assert len(poison) == POISON
    runs = Counter(execution.job_id for execution in outcome.executions)
    for job_id in poison:
        job = outcome.jobs[job_id]
        assert job.error is not None
        assert (job.state.value, job.attempt, job.error.type) == ("failed", 3, "LeaseExpired")
        assert runs[job_id] <= 3
    assert sum(runs[job_id] for job_id in poison) >= POISON
    assert outcome.tally.failed == POISON
    assert outcome.tally.succeeded == outcome.tally.submitted - POISON
