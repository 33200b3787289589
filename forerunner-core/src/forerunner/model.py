"""The records every part of forerunner exchanges (design §2).

They are frozen ``attrs`` classes: a job changes by making a new record with
:func:`attrs.evolve`, never by mutating one that another thread may hold. Validators
check only what a record can check alone (aware datetimes, ranges, which states a
report may carry); the rules between records belong to the store.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Final

import attrs

__all__ = [
    "REPORT_STATES",
    "TERMINAL_STATES",
    "Job",
    "JobError",
    "JobState",
    "QueueEntry",
    "Report",
    "stored_job",
    "utc",
]

#: A JSON value: what ``json.loads`` returns. Kept as ``Any`` because mypy has no
#: recursive alias that accepts the values people actually pass.
JSON = Any


class JobState(enum.StrEnum):
    """Where a job is in its life (design §2).

    ``StrEnum`` so that a state is its own wire and database form: ``"queued"``.
    """

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for the states a job leaves only by a manual retry."""
        return self in TERMINAL_STATES


TERMINAL_STATES: Final = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

#: The states a worker's report may move a running job to.
REPORT_STATES: Final = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.QUEUED, JobState.SCHEDULED}
)


def utc(value: dt.datetime) -> dt.datetime:
    """Return ``value`` in UTC; refuse naive datetimes, whose meaning depends on the host."""
    if value.tzinfo is dt.UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value!r} is naive; forerunner stores only aware UTC times")
    return value.astimezone(dt.UTC)


def _aware(_: object, attribute: attrs.Attribute[Any], value: dt.datetime | None) -> None:
    # Stores build a job from every row they read; UTC values, the common case, are
    # recognised by identity before anything costlier is asked.
    if value is None or value.tzinfo is dt.UTC:
        return
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{attribute.name}={value!r} is naive; pass a timezone-aware datetime")


def _optional_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None or value.tzinfo is dt.UTC:
        return value
    return value.astimezone(dt.UTC)


def _state(value: JobState | str) -> JobState:
    return value if type(value) is JobState else JobState(value)


def _non_empty(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must be a non-empty string")


@attrs.frozen(kw_only=True)
class JobError:
    """Why an attempt failed: enough to show a user without access to the worker's logs."""

    #: The exception's class name, or a forerunner reason such as ``"LeaseExpired"``.
    type: str
    #: ``str(exception)``.
    message: str
    #: The formatted traceback, when one exists.
    traceback: str | None = None


@attrs.frozen(kw_only=True)
class Job:
    """One unit of work and everything known about it; the store holds the true copy."""

    #: Assigned by the manager; unique and sortable by creation time (UUIDv7 text).
    id: str = attrs.field(validator=[attrs.validators.instance_of(str), _non_empty])
    #: The task name a worker must have registered.
    type: str = attrs.field(validator=[attrs.validators.instance_of(str), _non_empty])
    #: JSON value handed to the task.
    data: JSON = None
    state: JobState = attrs.field(default=JobState.QUEUED, converter=_state)
    #: Higher runs first.
    priority: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))
    #: How many times the job was claimed so far; 0 before the first run.
    attempt: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    #: After a failed or lost attempt the job is retried while ``attempt < max_attempts``.
    max_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    #: Idempotency key: at most one job per key exists in a store.
    key: str | None = None
    #: Not before this time (scheduled jobs, retry back-off).
    run_at: dt.datetime | None = attrs.field(
        default=None, converter=_optional_utc, validator=_aware
    )
    #: Seconds one attempt may run.
    timeout: float | None = None
    created_at: dt.datetime | None = attrs.field(
        default=None, converter=_optional_utc, validator=_aware
    )
    started_at: dt.datetime | None = attrs.field(
        default=None, converter=_optional_utc, validator=_aware
    )
    finished_at: dt.datetime | None = attrs.field(
        default=None, converter=_optional_utc, validator=_aware
    )
    #: Id of the worker holding (or, once finished, that held) the latest attempt.
    worker: str | None = None
    #: The current attempt is lost when this passes without renewal; None unless running.
    lease_until: dt.datetime | None = attrs.field(
        default=None, converter=_optional_utc, validator=_aware
    )
    #: The latest progress the running attempt reported.
    progress: JSON = None
    #: What the task returned (succeeded jobs).
    result: JSON = None
    #: The error of the latest failed or lost attempt; cleared when the job succeeds.
    error: JobError | None = None


_SET: Final = object.__setattr__
_NEW: Final = object.__new__


def stored_job(  # noqa: PLR0917 - one argument per field, in table order
    id: str,
    type: str,
    data: JSON,
    state: JobState,
    priority: int,
    attempt: int,
    max_attempts: int,
    key: str | None,
    run_at: dt.datetime | None,
    timeout: float | None,
    created_at: dt.datetime | None,
    started_at: dt.datetime | None,
    finished_at: dt.datetime | None,
    worker: str | None,
    lease_until: dt.datetime | None,
    progress: JSON,
    result: JSON,
    error: JobError | None,
) -> Job:
    """A :class:`Job` rebuilt from values a store wrote, without checking them again.

    For backends reading back their own rows: every field was validated when the job was
    made, and the store kept it in an encoding that gives it back exactly (times aware
    UTC, the state a :class:`JobState`). Skipping the validators and converters halves
    the cost of a job, which a store pays for every row a claim or a finish returns.
    Anything else builds jobs with ``Job(...)``.
    """
    job: Job = _NEW(Job)
    _SET(job, "id", id)
    _SET(job, "type", type)
    _SET(job, "data", data)
    _SET(job, "state", state)
    _SET(job, "priority", priority)
    _SET(job, "attempt", attempt)
    _SET(job, "max_attempts", max_attempts)
    _SET(job, "key", key)
    _SET(job, "run_at", run_at)
    _SET(job, "timeout", timeout)
    _SET(job, "created_at", created_at)
    _SET(job, "started_at", started_at)
    _SET(job, "finished_at", finished_at)
    _SET(job, "worker", worker)
    _SET(job, "lease_until", lease_until)
    _SET(job, "progress", progress)
    _SET(job, "result", result)
    _SET(job, "error", error)
    return job


@attrs.frozen(kw_only=True)
class QueueEntry:
    """What the queue orders: just enough to pick the next job, never the job itself."""

    job_id: str = attrs.field(validator=[attrs.validators.instance_of(str), _non_empty])
    type: str = attrs.field(validator=[attrs.validators.instance_of(str), _non_empty])
    priority: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))


def _report_state(_: object, attribute: attrs.Attribute[Any], value: JobState) -> None:
    if value not in REPORT_STATES:
        allowed = ", ".join(sorted(REPORT_STATES))
        raise ValueError(f"{attribute.name}={value.value!r}: a report moves a job to {allowed}")


@attrs.frozen(kw_only=True)
class Report:
    """A worker's account of one attempt, applied by :meth:`Store.finish` only if still current."""

    job_id: str
    #: The attempt this report is about; fences out reports of older attempts.
    attempt: int = attrs.field(validator=attrs.validators.ge(1))
    #: ``succeeded``, ``failed``, ``queued`` (retry now) or ``scheduled`` (retry at ``run_at``).
    state: JobState = attrs.field(converter=_state, validator=_report_state)
    now: dt.datetime = attrs.field(converter=utc)
    result: JSON = None
    error: JobError | None = None
    run_at: dt.datetime | None = attrs.field(
        default=None, converter=_optional_utc, validator=_aware
    )
    #: The worker sending the report; it applies only to an attempt leased to that
    #: worker, so a worker cannot finish another's job by guessing its attempt. None
    #: names no worker: for callers in the manager's own process, which hold no lease.
    worker: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.state is JobState.SCHEDULED and self.run_at is None:
            raise ValueError("a report with state 'scheduled' needs run_at")
