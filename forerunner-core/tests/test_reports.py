"""What the SQL stores send of a finish batch (forerunner.backends.reports).

The store suite checks the outcome of mixed batches on every store; these pin the
parts it cannot see: which rows reach the statement, and that batches naming their
worker, the manager's, never take the slower contested branch.
"""

from __future__ import annotations

import datetime as dt

from forerunner.backends.reports import applicable_reports
from forerunner.model import Job, JobState, Report

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def report(job_id: str, worker: str | None, attempt: int = 1) -> Report:
    return Report(job_id=job_id, attempt=attempt, state=JobState.SUCCEEDED, now=NOW, worker=worker)


def running(job_id: str, worker: str | None, attempt: int = 1) -> Job:
    return Job(id=job_id, type="t", state=JobState.RUNNING, attempt=attempt, worker=worker)


def test_reports_naming_their_worker_are_all_sent_and_none_is_contested() -> None:
    reports = [report("a", "w1"), report("b", "w1"), report("a", "w2"), report("a", "w1", 2)]

    batch = applicable_reports(reports)

    assert batch.indexes == (0, 1, 2, 3)
    assert batch.contested == frozenset()
    assert batch.index_of(running("a", "w2")) == 2
    assert batch.index_of(running("a", "w1", 2)) == 3


def test_a_workers_second_report_and_reports_after_an_unnamed_one_are_not_sent() -> None:
    reports = [report("a", "w1"), report("a", "w1"), report("b", None), report("b", "w1")]

    batch = applicable_reports(reports)

    assert batch.indexes == (0, 2)
    assert batch.index_of(running("b", "w1")) == 2


def test_an_unnamed_report_after_named_ones_is_contested() -> None:
    reports = [report("a", "w1"), report("a", None), report("b", None)]

    batch = applicable_reports(reports)

    assert batch.indexes == (0, 1, 2)
    assert batch.contested == frozenset({1})
    assert batch.index_of(running("a", "w1")) == 0
    assert batch.index_of(running("a", "w9")) == 1
