"""The worker's sync-handler path: jobs onto threads, outcomes batched back to the loop.

:class:`~forerunner.worker.threads.ThreadRunner` as ``_Session._start_in_thread`` uses
it: a :class:`~forerunner.context.JobContext` made current while the context is copied,
then ``submit``; the outcomes come back through ``on_done`` on the event loop.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.context import JobContext, running
from forerunner.worker.threads import Outcome, ThreadRunner

if TYPE_CHECKING:
    import asyncio

    from pytest_benchmark.fixture import BenchmarkFixture

    from forerunner.model import Job

pytestmark = pytest.mark.benchmark(group="worker")

#: The worker's default concurrency, hence its default number of job threads.
THREADS = 4


def noop(job_id: str, data: Any) -> None:
    """The cheapest handler: what is left is the runner's own cost."""


def ignore_progress(value: Any) -> None:
    """Where progress would go; the no-op handler reports none."""


def test_thread_runner_64_noop_jobs(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, running_jobs: list[Job]
) -> None:
    """Worker, for every sync job: 64 no-op jobs run on 4 threads until all 64 came back.

    A round submits 64 jobs as the worker starts them and waits on the event loop until
    ``on_done`` saw all 64 outcomes (each a ``succeeded`` report made on its thread).
    For short jobs this hand-off, not the handler, is the worker's cost per job. The
    round includes one ``run_until_complete`` of the loop, a few microseconds.
    """
    outcomes: list[Outcome] = []
    waiter: list[asyncio.Future[None]] = []

    def on_done(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if len(outcomes) == len(running_jobs):
            waiter[0].set_result(None)

    runner = ThreadRunner(THREADS, loop, on_done)

    async def run_batch() -> list[Outcome]:
        outcomes.clear()
        waiter[:] = [loop.create_future()]
        for job in running_jobs:
            context = JobContext(
                job_id=job.id, attempt=job.attempt, report_progress=ignore_progress
            )
            with running(context):
                copied = contextvars.copy_context()
            runner.submit(job, noop, copied)
        await waiter[0]
        return list(outcomes)

    def one_round() -> list[Outcome]:
        return loop.run_until_complete(run_batch())

    try:
        done = benchmark(one_round)
    finally:
        runner.close()

    assert len(done) == 64
    assert all(item.report is not None and item.report.outcome == "succeeded" for item in done)
