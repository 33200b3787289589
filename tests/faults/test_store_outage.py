"""Scenario 5: PostgreSQL stopped for three seconds mid-run, then started again.

While the store is down, a submit answers 503 with a body that says the store is
unavailable, and stores nothing; the client, given ``retry_for``, retries with back-off
and gets its jobs in once the store is back (each has an idempotency key, so a retry
cannot make two). Workers' polls answer 503 too, and the workers keep their reports
and retry. Everything completes afterwards. The server is a private one of the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from faultlab.scenarios import Outcome


def test_a_postgresql_restart_answers_503_then_completes_every_job(
    run_scenario: Callable[[str, str], Outcome],
) -> None:
    outcome = run_scenario("postgres-restart", "postgresql+redis")

    # During the outage: 503, and a body naming the cause
    status, body = outcome.notes.seen["outage_answer"]
    assert status == 503, body
    assert body["error"]["code"] == "unavailable"
    assert "PostgreSQL store" in body["error"]["message"], body
    # After it: the retrying submit got through, nothing was half-written (no job
    # beyond those submitted, the probe of the outage included), and every job ran
    assert outcome.notes.seen["late_submit_done"]
    assert not outcome.tally.problems, outcome.explain()
    assert outcome.tally.succeeded == outcome.tally.submitted
