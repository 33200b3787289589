"""Scenario 4: Redis flushed (FLUSHDB), later killed and restarted empty, mid-run.

The queue is only a hint about what to claim next; the store holds the truth. When the
queue is emptied behind the manager's back, its reaper finds the store holding queued
jobs and an empty queue, and pushes them again, so no job is lost. The Redis server is
a private one of the run: the shared one is never flushed or restarted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from faultlab.scenarios import Outcome


def test_a_flushed_then_restarted_redis_loses_no_job(
    run_scenario: Callable[[str, str], Outcome],
) -> None:
    outcome = run_scenario("redis-flush-restart", "postgresql+redis")

    assert not outcome.tally.problems, outcome.explain()
    assert outcome.tally.succeeded == outcome.tally.submitted
    assert len(outcome.lab.outages) == 2
