"""The worker against a real manager over HTTP, in threads of this process.

Covers: a sync and an async handler end to end; a raising handler retried with
back-off, then failed with its traceback; the per-job timeout; jobs running in
parallel up to ``concurrency``; progress reaching the store; a cancelled job's async
handler being cancelled (abandon); ``stop()`` letting a running job finish and report;
a result finished while the manager is down delivered once it is back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.client import Client
from forerunner.context import report_progress
from forerunner.errors import ConfigurationError
from forerunner.manager import Manager
from forerunner.model import JobState
from forerunner.worker import Worker

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    RunWorker = Callable[[Worker], threading.Thread]


def test_sync_handler_runs_a_submitted_job(client: Client, run_worker: RunWorker) -> None:
    worker = Worker(2)
    worker.register_job_handler("ping", lambda job_id, data: {"pong": data, "id": job_id})
    run_worker(worker)

    job = client.submit("ping", {"n": 1})
    done = client.wait(job.id, 10)

    assert done.state is JobState.SUCCEEDED
    assert done.result == {"pong": {"n": 1}, "id": job.id}
    assert done.worker == worker.worker_id
    assert done.attempt == 1


def test_async_handler_runs_on_the_event_loop(client: Client, run_worker: RunWorker) -> None:
    worker = Worker(2)

    @worker.task("sleepy")
    async def sleepy(job_id: str, data: Any) -> Any:
        await asyncio.sleep(0.01)
        return data

    run_worker(worker)

    done = client.wait(client.submit("sleepy", [1, 2]).id, 10)

    assert (done.state, done.result) == (JobState.SUCCEEDED, [1, 2])


def test_raising_handler_is_retried_then_failed_with_its_traceback(
    client: Client, run_worker: RunWorker
) -> None:
    calls: list[float] = []
    worker = Worker(1)

    @worker.task("flaky")
    def flaky(job_id: str, data: Any) -> Any:
        calls.append(time.monotonic())
        raise ValueError(f"attempt {len(calls)} broke")

    run_worker(worker)

    done = client.wait(client.submit("flaky", max_attempts=2).id, 15)

    assert done.state is JobState.FAILED
    assert done.attempt == 2
    assert done.error is not None
    assert (done.error.type, done.error.message) == ("ValueError", "attempt 2 broke")
    assert done.error.traceback is not None
    assert "in flaky" in done.error.traceback
    # the retry waited for the back-off: 1 s times a jitter in [0.5, 1.0]
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.5


def test_job_past_its_timeout_fails_with_timeout(client: Client, run_worker: RunWorker) -> None:
    worker = Worker(1)

    @worker.task("hang")
    async def hang(job_id: str, data: Any) -> Any:
        await asyncio.sleep(30)

    run_worker(worker)

    done = client.wait(client.submit("hang", timeout=0.1, max_attempts=1).id, 10)

    assert done.state is JobState.FAILED
    assert done.error is not None
    assert done.error.type == "Timeout"


def test_jobs_run_in_parallel_up_to_concurrency(client: Client, run_worker: RunWorker) -> None:
    # Given a worker with 4 slots and a task recording when it runs
    lock = threading.Lock()
    active = 0
    most = 0

    def nap(job_id: str, data: Any) -> Any:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        time.sleep(0.2)
        with lock:
            active -= 1
        return None

    worker = Worker(4)
    worker.register_job_handler("nap", nap)
    # When 4 jobs are submitted together
    jobs = client.submit_many([{"type": "nap"} for _ in range(4)])
    run_worker(worker)
    # Then they all succeed, and more than one ran at a time, never more than 4
    states = [client.wait(job.id, 10).state for job in jobs]
    assert states == [JobState.SUCCEEDED] * 4
    assert 1 < most <= 4


def test_progress_reported_by_a_task_reaches_the_store(
    client: Client, manager: Manager, run_worker: RunWorker
) -> None:
    seen = threading.Event()
    release = threading.Event()
    worker = Worker(1)

    @worker.task("steps")
    def steps(job_id: str, data: Any) -> Any:
        report_progress({"done": 1, "of": 2})
        seen.set()
        release.wait(10)
        return "ok"

    run_worker(worker)
    job = client.submit("steps")
    assert seen.wait(10)

    deadline = time.monotonic() + 5
    while client.get(job.id).progress is None and time.monotonic() < deadline:
        time.sleep(0.02)
    release.set()

    assert client.get(job.id).progress == {"done": 1, "of": 2}
    assert client.wait(job.id, 10).state is JobState.SUCCEEDED


def test_progress_that_is_not_json_is_dropped_without_logging_its_value(
    client: Client, run_worker: RunWorker, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(1)

    @worker.task("secretive")
    def secretive(job_id: str, data: Any) -> Any:
        report_progress({"card": "4111-1111", "at": object()})
        return "ok"

    run_worker(worker)
    job = client.submit("secretive")

    assert client.wait(job.id, 10).state is JobState.SUCCEEDED
    dropped = [r for r in caplog.records if getattr(r, "action", None) == "progress_dropped"]
    assert [r.getMessage() for r in dropped] == [
        f"job {job.id!r} reported progress of type dict, which is not JSON; dropped"
    ]
    assert "4111" not in caplog.text


def test_cancelled_job_is_abandoned_by_the_worker(client: Client, run_worker: RunWorker) -> None:
    # Given an async task running on the worker
    started = threading.Event()
    cancelled = threading.Event()
    worker = Worker(1)

    @worker.task("long")
    async def long(job_id: str, data: Any) -> Any:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    run_worker(worker)
    job = client.submit("long")
    assert started.wait(10)
    # When the job is cancelled
    client.cancel(job.id)
    # Then the next lease renewal tells the worker to abandon it, which cancels the handler
    assert cancelled.wait(5)
    assert client.get(job.id).state is JobState.CANCELLED


def test_stop_lets_a_running_job_finish_and_report(client: Client, run_worker: RunWorker) -> None:
    started = threading.Event()
    worker = Worker(1, grace=10)

    @worker.task("slow")
    def slow(job_id: str, data: Any) -> Any:
        started.set()
        time.sleep(0.3)
        return "finished"

    thread = run_worker(worker)
    job = client.submit("slow")
    assert started.wait(10)

    worker.stop()
    thread.join(10)

    assert not thread.is_alive()
    done = client.get(job.id)
    assert (done.state, done.result) == (JobState.SUCCEEDED, "finished")


def test_worker_without_handlers_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match="no task handlers"):
        Worker().start("http://127.0.0.1:9")


def test_result_finished_while_the_manager_is_down_is_reported_when_it_returns(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'jobs.db'}"
    manager = Manager(store, "memory://", port=0).start()
    port = manager.port
    started, release = threading.Event(), threading.Event()
    worker = Worker(1)

    @worker.task("gated")
    def gated(job_id: str, data: Any) -> Any:
        started.set()
        release.wait(10)
        return "kept"

    thread = threading.Thread(target=worker.start, args=(manager.url,), daemon=True)
    thread.start()
    try:
        # Given a job running while its manager goes away
        with Client(manager.url) as client:
            job = client.submit("gated")
        assert started.wait(10)
        manager.stop()
        # When the job finishes with no manager to report to, and the manager comes back
        release.set()
        time.sleep(0.3)
        manager = Manager(store, "memory://", port=port).start()
        # Then the worker delivers the result it kept
        with Client(manager.url) as client:
            done = client.wait(job.id, 15)
        assert (done.state, done.result) == (JobState.SUCCEEDED, "kept")
    finally:
        worker.stop()
        thread.join(15)
        manager.stop()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_progress_reported_just_before_the_result_is_kept(
    kind: str, client: Client, run_worker: RunWorker
) -> None:
    # Given a task whose last act before returning is to report progress
    worker = Worker(1)
    if kind == "sync":

        @worker.task("last_words")
        def sync_last_words(job_id: str, data: Any) -> Any:
            report_progress("all done")
            return "ok"

    else:

        @worker.task("last_words")
        async def async_last_words(job_id: str, data: Any) -> Any:
            report_progress("all done")
            return "ok"

    run_worker(worker)
    # When it runs
    job = client.wait(client.submit("last_words").id, 10)
    # Then that progress is recorded with the result, not dropped
    assert (job.state, job.result, job.progress) == (JobState.SUCCEEDED, "ok", "all done")


def test_forced_stop_returns_without_waiting_for_running_jobs(
    client: Client, run_worker: RunWorker
) -> None:
    # Given a worker running a job that will not end by itself for a long time
    started = threading.Event()
    release = threading.Event()
    worker = Worker(1, grace=60)

    @worker.task("stuck")
    def stuck(job_id: str, data: Any) -> Any:
        started.set()
        release.wait(60)
        return "too late"

    thread = run_worker(worker)
    job = client.submit("stuck")
    assert started.wait(10)
    # When it is asked to stop, then to stop now (a second Ctrl-C)
    worker.stop()
    thread.join(0.5)
    assert thread.is_alive(), "a graceful stop waits for the running job"
    worker.stop(force=True)
    thread.join(10)
    # Then it returned while the job still runs, left to its lease, its thread lingering
    try:
        assert not thread.is_alive()
        assert worker.lingering == 1
        assert client.get(job.id).state is JobState.RUNNING
    finally:
        release.set()
