"""The job model's records (design §2): frozen, keyword-only, and validated on creation.

What a record can check alone it checks: times are timezone-aware and kept in UTC,
``attempt >= 0``, ``max_attempts >= 1``, a report moves a job only to a state a worker
may report, and a ``scheduled`` report says when. The rules between records belong to
the store and are the store suite's business.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

from forerunner.model import (
    REPORT_STATES,
    TERMINAL_STATES,
    Job,
    JobError,
    JobState,
    QueueEntry,
    Report,
    stored_job,
    utc,
)

PARIS = dt.timezone(dt.timedelta(hours=2), "CEST")
NOON_UTC = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
NOON_PARIS = dt.datetime(2024, 6, 1, 14, 0, tzinfo=PARIS)
#: No time zone: the records must refuse it.
NAIVE = dt.datetime(2024, 6, 1, 12, 0)


def report(**changes: object) -> Report:
    fields: dict[str, object] = {
        "job_id": "j",
        "attempt": 1,
        "state": JobState.SUCCEEDED,
        "now": NOON_UTC,
    }
    fields.update(changes)
    return Report(**fields)  # type: ignore[arg-type]


def test_job_defaults_describe_a_new_queued_job() -> None:
    job = Job(id="j", type="ping")

    assert job.state is JobState.QUEUED
    assert (job.priority, job.attempt, job.max_attempts) == (0, 0, 3)
    assert job.data is job.result is job.progress is job.error is None
    assert job.created_at is job.started_at is job.finished_at is job.lease_until is None


@pytest.mark.parametrize(
    "record",
    [
        Job(id="j", type="ping"),
        JobError(type="KeyError", message="'x'"),
        QueueEntry(job_id="j", type="ping"),
        report(),
    ],
    ids=lambda record: type(record).__name__,
)
def test_records_are_frozen(record: object) -> None:
    field = attrs.fields(type(record))[0].name

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(record, field, "changed")


@pytest.mark.parametrize("record_type", [Job, JobError, QueueEntry, Report])
def test_records_take_keyword_arguments_only(record_type: type) -> None:
    with pytest.raises(TypeError):
        record_type("a", "b")


def test_evolve_makes_a_new_record_and_validates_it() -> None:
    job = Job(id="j", type="ping")

    running = attrs.evolve(job, state="running", attempt=1)

    assert running.state is JobState.RUNNING, "states given as text become JobState"
    assert job.state is JobState.QUEUED
    with pytest.raises(ValueError, match="attempt"):
        attrs.evolve(job, attempt=-1)


@pytest.mark.parametrize(
    "field", ["run_at", "created_at", "started_at", "finished_at", "lease_until"]
)
def test_job_refuses_naive_datetimes(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field}=.*naive"):
        Job(id="j", type="ping", **{field: NAIVE})


@pytest.mark.parametrize(
    "field", ["run_at", "created_at", "started_at", "finished_at", "lease_until"]
)
def test_job_keeps_times_in_utc(field: str) -> None:
    job = Job(id="j", type="ping", **{field: NOON_PARIS})

    stored = getattr(job, field)
    assert stored == NOON_UTC
    assert stored.tzinfo is dt.UTC


def test_report_refuses_naive_times_and_keeps_utc() -> None:
    with pytest.raises(ValueError, match="naive"):
        report(now=NAIVE)
    with pytest.raises(ValueError, match=r"run_at=.*naive"):
        report(state=JobState.SCHEDULED, run_at=NAIVE)

    scheduled = report(now=NOON_PARIS, state="scheduled", run_at=NOON_PARIS)

    assert scheduled.now.tzinfo is dt.UTC
    assert scheduled.run_at == NOON_UTC
    assert scheduled.run_at is not None
    assert scheduled.run_at.tzinfo is dt.UTC


def test_utc_converts_aware_and_refuses_naive() -> None:
    assert utc(NOON_PARIS) == NOON_UTC
    assert utc(NOON_PARIS).tzinfo is dt.UTC
    with pytest.raises(ValueError, match="naive"):
        utc(NAIVE)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"attempt": -1}, "attempt"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"id": ""}, "id"),
        ({"type": ""}, "type"),
        ({"priority": "high"}, "priority"),
        ({"state": "lost"}, None),
    ],
)
def test_job_refuses_out_of_range_values(changes: dict[str, object], field: str | None) -> None:
    with pytest.raises((ValueError, TypeError)) as caught:
        Job(**{"id": "j", "type": "ping", **changes})  # type: ignore[arg-type]

    if field is not None:
        assert field in str(caught.value)


def test_job_accepts_the_edges_of_its_ranges() -> None:
    job = Job(id="j", type="ping", attempt=0, max_attempts=1, priority=-(2**53))

    assert (job.attempt, job.max_attempts, job.priority) == (0, 1, -(2**53))


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"job_id": ""}, "job_id"), ({"type": ""}, "type"), ({"priority": 1.5}, "priority")],
)
def test_queue_entry_refuses_bad_values(changes: dict[str, object], field: str) -> None:
    with pytest.raises((ValueError, TypeError), match=field):
        QueueEntry(**{"job_id": "j", "type": "ping", **changes})  # type: ignore[arg-type]


def test_queue_entries_compare_by_value() -> None:
    assert QueueEntry(job_id="j", type="t", priority=2) == QueueEntry(
        job_id="j", type="t", priority=2
    )
    assert QueueEntry(job_id="j", type="t") != QueueEntry(job_id="j", type="t", priority=1)
    assert len({QueueEntry(job_id="j", type="t"), QueueEntry(job_id="j", type="t")}) == 1


@pytest.mark.parametrize("state", sorted(REPORT_STATES - {JobState.SCHEDULED}))
def test_report_accepts_the_states_a_worker_reports(state: JobState) -> None:
    assert report(state=state).state is state


@pytest.mark.parametrize("state", sorted(set(JobState) - REPORT_STATES))
def test_report_refuses_other_states(state: JobState) -> None:
    with pytest.raises(ValueError, match="a report moves a job to"):
        report(state=state)


def test_scheduled_report_needs_run_at() -> None:
    with pytest.raises(ValueError, match="needs run_at"):
        report(state=JobState.SCHEDULED)

    assert report(state=JobState.SCHEDULED, run_at=NOON_UTC).run_at == NOON_UTC


def test_report_attempt_starts_at_one() -> None:
    with pytest.raises(ValueError, match="attempt"):
        report(attempt=0)


def test_terminal_states_are_the_three_ends() -> None:
    assert {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED} == TERMINAL_STATES
    assert [state for state in JobState if state.terminal] == sorted(
        TERMINAL_STATES, key=list(JobState).index
    )


def test_states_are_their_own_text() -> None:
    assert JobState("queued") is JobState.QUEUED
    assert str(JobState.RUNNING) == "running"
    assert [state.value for state in JobState] == [
        "scheduled",
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ]


def test_a_stored_job_is_the_job_the_same_fields_make_and_stays_frozen() -> None:
    when = dt.datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    fields: dict[str, Any] = {
        "id": "0190a2b4-0000-7000-8000-000000000001",
        "type": "resize",
        "data": {"w": 10},
        "state": JobState.RUNNING,
        "priority": 5,
        "attempt": 2,
        "max_attempts": 4,
        "key": "k",
        "run_at": None,
        "timeout": 1.5,
        "created_at": when,
        "started_at": when,
        "finished_at": None,
        "worker": "w-1",
        "lease_until": when,
        "progress": [1, 2],
        "result": None,
        "error": JobError(type="Boom", message="m"),
    }
    assert [field.name for field in attrs.fields(Job)] == list(fields)

    stored = stored_job(*fields.values())

    assert stored == Job(**fields)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stored.state = JobState.QUEUED  # type: ignore[misc]
