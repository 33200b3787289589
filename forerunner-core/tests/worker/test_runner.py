"""Running one attempt: what each way a handler can end is reported as.

A returned JSON value is ``succeeded``; an exception is ``failed`` with the class name,
message and traceback; a non-JSON result is ``failed``; running past ``job.timeout``
is ``failed`` with type ``Timeout`` (reported at once, even for a sync handler whose
thread goes on); progress reported inside the handler reaches the attempt's callback.
No manager is involved: :func:`forerunner.worker.runner.execute` is called directly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from forerunner.context import report_progress
from forerunner.model import Job, JobState
from forerunner.worker.runner import TIMEOUT_ERROR, execute, is_async

if TYPE_CHECKING:
    from collections.abc import Iterator

    from forerunner.handlers import Handler
    from forerunner.wire import ResultReport

import pytest


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(2)
    yield pool
    pool.shutdown(wait=True)


def running_job(timeout: float | None = None, data: Any = None) -> Job:
    return Job(id="job-1", type="t", state=JobState.RUNNING, attempt=2, data=data, timeout=timeout)


def run(
    handler: Handler, job: Job, executor: ThreadPoolExecutor
) -> tuple[list[ResultReport], list[Any]]:
    reports: list[ResultReport] = []
    progress: list[Any] = []
    asyncio.run(
        execute(
            handler,
            job,
            executor=executor,
            report_progress=progress.append,
            deliver=reports.append,
        )
    )
    return reports, progress


def test_sync_handler_result_is_succeeded(executor: ThreadPoolExecutor) -> None:
    def double(job_id: str, data: Any) -> Any:
        return {"id": job_id, "twice": data * 2}

    reports, _ = run(double, running_job(data=21), executor)

    assert [(r.id, r.attempt, r.outcome, r.result) for r in reports] == [
        ("job-1", 2, "succeeded", {"id": "job-1", "twice": 42})
    ]


def test_async_handler_runs_on_the_loop(executor: ThreadPoolExecutor) -> None:
    async def echo(job_id: str, data: Any) -> Any:
        await asyncio.sleep(0)
        return [data, threading.current_thread() is threading.main_thread()]

    reports, _ = run(echo, running_job(data="x"), executor)

    assert [(r.outcome, r.result) for r in reports] == [("succeeded", ["x", True])]
    assert is_async(echo)


def test_raising_handler_is_failed_with_type_message_and_traceback(
    executor: ThreadPoolExecutor,
) -> None:
    def broken(job_id: str, data: Any) -> Any:
        raise KeyError("missing")

    reports, _ = run(broken, running_job(), executor)

    [report] = reports
    assert report.outcome == "failed"
    assert report.error is not None
    assert (report.error.type, report.error.message) == ("KeyError", "'missing'")
    assert report.error.traceback is not None
    assert "in broken" in report.error.traceback


def test_result_that_is_not_json_fails_the_attempt(executor: ThreadPoolExecutor) -> None:
    def opaque(job_id: str, data: Any) -> Any:
        return object()

    reports, _ = run(opaque, running_job(), executor)

    [report] = reports
    assert report.outcome == "failed"
    assert report.error is not None
    assert report.error.type == "TypeError"
    assert "not JSON" in report.error.message


def test_a_result_nested_too_deep_for_json_fails_the_attempt(
    executor: ThreadPoolExecutor,
) -> None:
    def deep(job_id: str, data: Any) -> Any:
        nested: list[Any] = []
        for _ in range(5000):
            nested = [nested]
        return nested

    reports, _ = run(deep, running_job(), executor)

    [report] = reports
    assert report.outcome == "failed"
    assert report.error is not None
    assert "not JSON" in report.error.message


def test_async_handler_past_its_timeout_is_failed_with_timeout(
    executor: ThreadPoolExecutor,
) -> None:
    async def slow(job_id: str, data: Any) -> Any:
        await asyncio.sleep(30)

    reports, _ = run(slow, running_job(timeout=0.05), executor)

    [report] = reports
    assert report.outcome == "failed"
    assert report.error is not None
    assert report.error.type == TIMEOUT_ERROR


def test_sync_timeout_is_reported_before_the_thread_returns(
    executor: ThreadPoolExecutor,
) -> None:
    # Given a sync handler that blocks until released
    release = threading.Event()
    reported_while_blocked: list[bool] = []

    def blocking(job_id: str, data: Any) -> Any:
        release.wait(10)
        return "late"

    def deliver(report: ResultReport) -> None:
        reported_while_blocked.append(not release.is_set())
        reports.append(report)
        release.set()

    reports: list[ResultReport] = []
    # When its timeout passes
    started = time.monotonic()
    asyncio.run(
        execute(
            blocking,
            running_job(timeout=0.05),
            executor=executor,
            report_progress=lambda _: None,
            deliver=deliver,
        )
    )
    # Then the timeout is reported while the thread still blocks, and only once
    assert [r.error.type if r.error else None for r in reports] == [TIMEOUT_ERROR]
    assert reported_while_blocked == [True]
    assert time.monotonic() - started < 5


def test_handler_that_raises_timeout_error_itself_is_not_a_timeout(
    executor: ThreadPoolExecutor,
) -> None:
    async def raises(job_id: str, data: Any) -> Any:
        raise TimeoutError("upstream")

    reports, _ = run(raises, running_job(timeout=10), executor)

    [report] = reports
    assert report.error is not None
    assert (report.error.type, report.error.message) == ("TimeoutError", "upstream")


def test_progress_reaches_the_attempt_from_sync_and_async_handlers(
    executor: ThreadPoolExecutor,
) -> None:
    def sync_task(job_id: str, data: Any) -> Any:
        report_progress({"sync": job_id})
        return None

    async def async_task(job_id: str, data: Any) -> Any:
        report_progress({"async": job_id})
        return None

    _, sync_progress = run(sync_task, running_job(), executor)
    _, async_progress = run(async_task, running_job(), executor)

    assert sync_progress == [{"sync": "job-1"}]
    assert async_progress == [{"async": "job-1"}]
