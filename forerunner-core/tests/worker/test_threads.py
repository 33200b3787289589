"""The thread runner: sync handlers on fixed threads, outcomes handed back in batches.

Covers: a returned value is a ``succeeded`` report and an exception a ``failed`` one
with its traceback, a result that is not JSON a failure, an awaitable returned is
handed back for the loop to await; ``on_done`` runs on the event loop's thread;
outcomes that finish while the loop is busy reach it in a handful of wake-ups, not
one per job (the point of the runner: a wake-up of the loop per job was most of a
short job's cost); ``close()`` ends idle threads while a running handler finishes and
is still reported; the handler runs in the :mod:`contextvars` context it was given.
No worker or manager is involved: :class:`ThreadRunner` is driven directly.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
import time
from typing import TYPE_CHECKING, Any

import attrs

from forerunner.context import JobContext, current_job, running
from forerunner.model import Job, JobState
from forerunner.worker.threads import Outcome, ThreadRunner

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    import pytest

    from forerunner.handlers import Handler

#: Tells apart the threads of the runners made by different tests.
_names = itertools.count()


def running_job(number: int = 1, data: Any = None) -> Job:
    return Job(id=f"job-{number}", type="t", state=JobState.RUNNING, attempt=2, data=data)


class Collector:
    """``on_done`` for a runner: keeps outcomes, and the thread each was delivered on."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.threads: set[int] = set()
        self.changed = asyncio.Event()

    def __call__(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.threads.add(threading.get_ident())
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Outcome]:
        """The outcomes once there are ``count`` of them."""
        async with asyncio.timeout(timeout):
            while len(self.outcomes) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.outcomes


@attrs.frozen
class Harness:
    runner: ThreadRunner
    collector: Collector
    #: The runner's threads, found by the name it was given.
    threads: list[threading.Thread]


def run_with_runner(size: int, body: Callable[[Harness], Coroutine[Any, Any, None]]) -> None:
    """Run ``body`` on a fresh loop with a runner of ``size`` threads; close it after.

    The threads are not daemons, so a runner left open would keep pytest from exiting:
    it is closed whatever ``body`` does.
    """
    name = f"test-threads-{next(_names)}"

    async def main() -> None:
        collector = Collector()
        runner = ThreadRunner(size, asyncio.get_running_loop(), collector, name=name)
        threads = [thread for thread in threading.enumerate() if thread.name.startswith(f"{name}-")]
        try:
            await body(Harness(runner, collector, threads))
        finally:
            runner.close()

    asyncio.run(main())


def context_for(job: Job) -> contextvars.Context:
    """The context the worker gives a job's thread: the job's :class:`JobContext` set."""
    with running(JobContext(job_id=job.id, attempt=job.attempt, report_progress=print)):
        return contextvars.copy_context()


def submit(runner: ThreadRunner, job: Job, handler: Handler) -> None:
    runner.submit(job, handler, context_for(job))


def test_returned_value_is_a_succeeded_report_delivered_on_the_loop() -> None:
    def double(job_id: str, data: Any) -> Any:
        return {"id": job_id, "twice": data * 2}

    async def body(harness: Harness) -> None:
        runner, collector = harness.runner, harness.collector
        submit(runner, running_job(data=21), double)

        [outcome] = await collector.wait_for(1)

        assert outcome.report is not None
        assert outcome.awaitable is None
        report = outcome.report
        assert (report.id, report.attempt, report.outcome, report.result) == (
            "job-1",
            2,
            "succeeded",
            {"id": "job-1", "twice": 42},
        )
        # on_done runs on the event loop's thread, never on the handler's
        assert collector.threads == {threading.get_ident()}

    run_with_runner(2, body)


def test_exception_is_a_failed_report_with_its_traceback() -> None:
    def broken(job_id: str, data: Any) -> Any:
        raise KeyError("missing")

    async def body(harness: Harness) -> None:
        runner, collector = harness.runner, harness.collector
        submit(runner, running_job(), broken)

        [outcome] = await collector.wait_for(1)

        report = outcome.report
        assert report is not None
        assert report.outcome == "failed"
        assert report.error is not None
        assert (report.error.type, report.error.message) == ("KeyError", "'missing'")
        assert report.error.traceback is not None
        assert "in broken" in report.error.traceback

    run_with_runner(1, body)


def test_result_that_is_not_json_is_a_failure() -> None:
    def opaque(job_id: str, data: Any) -> Any:
        return object()

    async def body(harness: Harness) -> None:
        runner, collector = harness.runner, harness.collector
        submit(runner, running_job(), opaque)

        [outcome] = await collector.wait_for(1)

        report = outcome.report
        assert report is not None
        assert report.outcome == "failed"
        assert report.error is not None
        assert report.error.type == "TypeError"
        assert "not JSON" in report.error.message

    run_with_runner(1, body)


def test_awaitable_returned_is_handed_back_for_the_loop_to_await() -> None:
    # Given a sync handler that returns a coroutine (say, a partial of an async function)
    def deferred(job_id: str, data: Any) -> Any:
        return asyncio.sleep(0, result=f"later for {job_id}")

    async def body(harness: Harness) -> None:
        runner, collector = harness.runner, harness.collector
        submit(runner, running_job(), deferred)

        [outcome] = await collector.wait_for(1)

        # Then there is no report yet: the awaitable comes back, and the loop awaits it
        assert outcome.report is None
        assert outcome.awaitable is not None
        assert await outcome.awaitable == "later for job-1"

    run_with_runner(1, body)


def test_outcomes_finishing_together_reach_the_loop_in_a_few_wake_ups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = 50
    finished = 0
    lock = threading.Lock()

    def tick(job_id: str, data: Any) -> Any:
        nonlocal finished
        with lock:
            finished += 1
        return data

    async def body(harness: Harness) -> None:
        runner, collector = harness.runner, harness.collector
        # Count the callbacks the threads schedule on the loop, as they run
        loop = asyncio.get_running_loop()
        scheduled = loop.call_soon_threadsafe
        wake_ups = 0

        def counted(callback: Callable[..., object], *args: Any, **kwargs: Any) -> Any:
            def count_and_call() -> None:
                nonlocal wake_ups
                wake_ups += 1
                callback(*args)

            return scheduled(count_and_call, **kwargs)

        monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
        # Given 50 jobs that all finish while the loop is busy with something else
        for number in range(jobs):
            submit(runner, running_job(number, data=number), tick)
        deadline = time.monotonic() + 5
        while finished < jobs and time.monotonic() < deadline:
            time.sleep(0.001)  # blocks the loop on purpose
        # When the loop next looks
        outcomes = await collector.wait_for(jobs)
        # Then every outcome arrived, in far fewer wake-ups of the loop than outcomes
        assert {outcome.job.id for outcome in outcomes} == {f"job-{n}" for n in range(jobs)}
        assert 1 <= wake_ups <= 5, f"{wake_ups} wake-ups for {jobs} outcomes"

    run_with_runner(4, body)


def test_close_ends_idle_threads_while_a_running_handler_finishes_first() -> None:
    started = threading.Event()
    release = threading.Event()
    busy: list[threading.Thread] = []

    def gated(job_id: str, data: Any) -> Any:
        busy.append(threading.current_thread())
        started.set()
        release.wait(10)
        return "finished"

    async def body(harness: Harness) -> None:
        threads = harness.threads
        try:
            # Given three threads, not daemons, one of them running a handler
            assert len(threads) == 3
            assert not any(thread.daemon for thread in threads)
            submit(harness.runner, running_job(), gated)
            assert await asyncio.to_thread(started.wait, 5)
            # When the runner is closed
            harness.runner.close()
            # Then the two idle threads end, and the busy one runs on
            idle = [thread for thread in threads if thread not in busy]
            await asyncio.to_thread(join_all, idle)
            assert [thread.is_alive() for thread in idle] == [False, False]
            assert busy[0].is_alive()
            # ...until its handler returns: its outcome is still delivered, then it ends
            release.set()
            [outcome] = await harness.collector.wait_for(1)
            assert outcome.report is not None
            assert (outcome.report.outcome, outcome.report.result) == ("succeeded", "finished")
            await asyncio.to_thread(join_all, busy)
            assert not busy[0].is_alive()
        finally:
            release.set()

    run_with_runner(3, body)


def test_handler_runs_in_the_context_it_was_given() -> None:
    seen: dict[str, JobContext | None] = {}

    def whoami(job_id: str, data: Any) -> Any:
        seen[job_id] = current_job()
        return None

    async def body(harness: Harness) -> None:
        # Given two jobs, each submitted with a context naming it, on one thread
        first, second = running_job(1), running_job(2)
        contexts = {job.id: context_for(job) for job in (first, second)}
        for job in (first, second):
            harness.runner.submit(job, whoami, contexts[job.id])

        await harness.collector.wait_for(2)

        # Then each handler saw its own job as the current one, and the loop saw none
        assert {job_id: job.job_id for job_id, job in seen.items() if job is not None} == {
            "job-1": "job-1",
            "job-2": "job-2",
        }
        for job_id, context in contexts.items():
            # the very JobContext that the given context holds
            assert seen[job_id] is context.run(current_job)
        assert current_job() is None

    run_with_runner(1, body)


def join_all(threads: list[threading.Thread], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
