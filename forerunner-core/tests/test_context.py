"""The job context: how a running task reports progress without a new handler signature.

Covers ``report_progress`` inside a job (delivered to that job's sink) and outside one (a
no-op, so tasks stay plain functions), nesting and restoring in ``running``, and the two
ways the worker runs handlers: threads (with ``copy_context``) and asyncio tasks, where
concurrent jobs must each see only their own context.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
from typing import Any

import pytest

import forerunner
from forerunner.context import JobContext, current_job, report_progress, running


def make_context(job_id: str, sink: list[Any], attempt: int = 1) -> JobContext:
    return JobContext(job_id=job_id, attempt=attempt, report_progress=sink.append)


def test_report_progress_goes_to_the_running_job() -> None:
    sink: list[Any] = []
    with running(make_context("job-1", sink)) as context:
        assert current_job() is context
        report_progress({"done": 1})
    assert sink == [{"done": 1}]


def test_report_progress_outside_a_job_is_a_logged_no_op(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="forerunner.context")
    assert current_job() is None
    report_progress(50)
    assert "outside a job" in caplog.text


def test_report_progress_is_exported_at_the_top_level() -> None:
    assert forerunner.report_progress is report_progress
    assert "report_progress" in forerunner.__all__


def test_running_restores_the_previous_context_even_on_error() -> None:
    outer_sink: list[Any] = []
    inner_sink: list[Any] = []

    def fail_inside_inner_job() -> None:
        with running(make_context("inner", inner_sink)):
            report_progress("inner")
            raise RuntimeError("boom")

    with running(make_context("outer", outer_sink)):
        with pytest.raises(RuntimeError):
            fail_inside_inner_job()
        report_progress("outer")
    assert current_job() is None
    assert (outer_sink, inner_sink) == (["outer"], ["inner"])


def test_a_sync_handler_in_a_thread_pool_sees_its_job() -> None:
    sink: list[Any] = []

    def handler() -> str | None:
        report_progress("from thread")
        job = current_job()
        return job.job_id if job else None

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        with running(make_context("threaded", sink)):
            future = pool.submit(contextvars.copy_context().run, handler)
        assert future.result(timeout=5) == "threaded"
    assert sink == ["from thread"]


def test_concurrent_asyncio_jobs_each_see_their_own_context() -> None:
    sinks: dict[str, list[Any]] = {"a": [], "b": []}

    async def handler(step_delay: float) -> str:
        for step in range(3):
            report_progress(step)
            await asyncio.sleep(step_delay)
        job = current_job()
        assert job is not None
        return job.job_id

    async def main() -> list[str]:
        tasks = []
        for job_id, delay in (("a", 0.001), ("b", 0.0)):
            # Given each task is created inside its own job's context
            with running(make_context(job_id, sinks[job_id])):
                tasks.append(asyncio.create_task(handler(delay)))
        # When they interleave on one loop
        return await asyncio.gather(*tasks)

    # Then each reported only to its own job
    assert asyncio.run(main()) == ["a", "b"]
    assert sinks == {"a": [0, 1, 2], "b": [0, 1, 2]}


def test_job_context_is_frozen() -> None:
    context = make_context("job", [])
    with pytest.raises(AttributeError):
        context.attempt = 2  # type: ignore[misc]
