"""The HTTP protocol's bodies (``/v1``), shared by the manager, the client and the worker.

``msgspec`` Structs decode and validate a request in one pass and name the offending
field in the error (``Expected `int`, got `str` - at `$.jobs[3].priority```), which is
what a 422 answer must say; the same Structs produce the JSON Schema of the OpenAPI
document, so the document cannot drift from what the manager accepts.

Times travel as RFC 3339 text in UTC. Records here are wire shapes only: the manager
turns them into :mod:`forerunner.model` records, which hold the rules.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any, Final, Literal

import msgspec

from forerunner.errors import ValidationError
from forerunner.model import Job, JobError, JobState

__all__ = [
    "MAX_BATCH",
    "MAX_BULK",
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_WAIT",
    "MIN_INT",
    "AttemptRef",
    "BatchSubmit",
    "BatchSubmitResponse",
    "BulkRetry",
    "BulkRetryResponse",
    "ErrorBody",
    "ErrorDetail",
    "JobBody",
    "JobList",
    "JobResponse",
    "JobSpec",
    "OldestWaiting",
    "Overview",
    "PollRequest",
    "PollResponse",
    "ProgressReport",
    "Purge",
    "PurgeResponse",
    "QueueDepth",
    "ResultReport",
    "Session",
    "StateCount",
    "SubmitResponse",
    "Throughput",
    "Timeline",
    "TimelineEvent",
    "WaitResponse",
    "WireError",
    "WorkerInfo",
    "WorkerList",
    "WorkerView",
    "job_from_wire",
    "job_to_wire",
    "value_problem",
]

#: Jobs per batch submit, and reports/progress/running entries per poll.
MAX_BATCH: Final = 1000
#: Longest long-poll, in seconds: below common proxy idle timeouts.
MAX_WAIT: Final = 30.0
#: Jobs one bulk retry may touch: each is a store transition, so one request stays short.
MAX_BULK: Final = 10_000

#: Deepest nesting of arrays and objects in a job's data: far beyond any real payload,
#: far below the depth at which a JSON encoder or decoder runs out of stack.
MAX_DEPTH: Final = 64
#: Integers in a job's data must fit in 64 bits (signed): what a database column, a
#: worker in another language or msgspec itself keeps exactly.
MIN_INT: Final = -(2**63)
MAX_INT: Final = 2**63 - 1

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Attempt = Annotated[int, msgspec.Meta(ge=1, le=MAX_INT)]

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTAINERS: Final = (dict, list, tuple)


def value_problem(value: Any) -> str | None:
    """What makes ``value`` a job value forerunner will not keep, or None if nothing.

    NaN and the infinities are not JSON (msgspec would send them as null, changing the
    value); integers beyond 64 bits and very deep nesting are JSON that other parsers,
    and the stores' encoders, may refuse or round. Decoded JSON cannot hold the first;
    values built in Python can. Every submitted job pays for this walk, so it is kept
    to one pass with the common scalars skipped first.
    """
    kind = type(value)
    if kind in _CONTAINERS:
        return _container_problem(value, 0)
    return _scalar_problem(value, kind)


def _scalar_problem(value: Any, kind: type) -> str | None:
    if kind is int:
        return None if MIN_INT <= value <= MAX_INT else "an integer outside 64 bits"
    if kind is float and not math.isfinite(value):
        return "NaN or an infinity, which are not JSON"
    return None


def _container_problem(value: Any, depth: int) -> str | None:
    if depth >= MAX_DEPTH:
        return f"arrays and objects nested deeper than {MAX_DEPTH} levels"
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        problem = (
            _container_problem(item, depth + 1)
            if kind in _CONTAINERS
            else _scalar_problem(item, kind)
        )
        if problem is not None:
            return problem
    return None


def _check_type_name(name: str | None, field: str) -> None:
    # isprintable() is the quick test; it also refuses some characters that are not
    # controls (other spaces, formats), which the pattern lets through.
    if name is not None and not name.isprintable() and _CONTROL.search(name):
        raise ValidationError(
            f"the job type {name!r} has control characters in field `{field}`", field=field
        )


def _check_run_at(run_at: dt.datetime | None) -> None:
    # The store keeps times in UTC; a time that is a date only in its own zone (the
    # last hours of 9999 west of UTC, the first of year 1 east of it) has none there.
    if run_at is not None and run_at.utcoffset() is not None:
        try:
            run_at.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationError(
                f"{run_at.isoformat()} is not a time in UTC (years 1 to 9999) in field `run_at`",
                field="run_at",
            ) from None


class WireError(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A job error on the wire: what :class:`forerunner.model.JobError` holds."""

    type: str
    message: str
    traceback: str | None = None


class JobBody(msgspec.Struct, frozen=True):
    """A job as the API shows it: every field of :class:`forerunner.model.Job`."""

    id: str
    type: str
    state: JobState
    data: Any = None
    priority: int = 0
    attempt: int = 0
    max_attempts: int = 3
    key: str | None = None
    run_at: dt.datetime | None = None
    timeout: float | None = None
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    worker: str | None = None
    lease_until: dt.datetime | None = None
    progress: Any = None
    result: Any = None
    error: WireError | None = None


class JobSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a client submits. ``run_at`` and ``delay`` both schedule; give at most one."""

    type: NonEmpty
    data: Any = None
    priority: Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)] = 0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 3
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    run_at: dt.datetime | None = None
    #: Seconds; a century at most, so that now + delay is still a date.
    delay: Annotated[float, msgspec.Meta(ge=0, le=100 * 365 * 86400)] | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0)] | None = None

    def __post_init__(self) -> None:
        # msgspec runs this on decode too, and turns the error into a ValidationError
        # naming the job (``- at `$.jobs[3]```).
        _check_type_name(self.type, "type")
        _check_run_at(self.run_at)
        problem = value_problem(self.data)
        if problem is not None:
            raise ValidationError(f"{problem} in field `data`", field="data")
        # Only a job built in Python can hold these: msgspec would send them as null.
        for field, seconds in (("delay", self.delay), ("timeout", self.timeout)):
            if seconds is not None and not math.isfinite(seconds):
                raise ValidationError(f"{seconds} is not a number in field `{field}`", field=field)


class BatchSubmit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    jobs: Annotated[list[JobSpec], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class SubmitResponse(msgspec.Struct, frozen=True):
    """``created`` is false when the idempotency key named an existing job."""

    job: JobBody
    created: bool


class BatchSubmitResponse(msgspec.Struct, frozen=True):
    jobs: list[JobBody]
    created: list[bool]


class JobResponse(msgspec.Struct, frozen=True):
    job: JobBody


class WaitResponse(msgspec.Struct, frozen=True):
    """``done`` is false when the wait timed out before the job reached a terminal state."""

    job: JobBody
    done: bool


class JobList(msgspec.Struct, frozen=True):
    """``next`` is the ``before`` cursor of the following page, None on the last."""

    jobs: list[JobBody]
    next: str | None = None


class AttemptRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A running attempt the worker holds; its lease is renewed by the poll."""

    id: NonEmpty
    attempt: Attempt


class ProgressReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: NonEmpty
    attempt: Attempt
    value: Any = None


class ResultReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How an attempt ended on the worker; the manager decides retry or failure."""

    id: NonEmpty
    attempt: Attempt
    outcome: Literal["succeeded", "failed"]
    result: Any = None
    error: WireError | None = None


class WorkerInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who a worker is, for the operator: sent now and then, never needed to run jobs."""

    host: Annotated[str, msgspec.Meta(max_length=255)]
    pid: Annotated[int, msgspec.Meta(ge=0, le=2**31)]
    concurrency: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]


class PollRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One round trip of a worker: reports, progress and lease renewal, then new work.

    ``capacity`` is how many more jobs the worker can start now; ``wait`` how long the
    manager may hold the request open when it has nothing to hand out. ``stopping`` ends
    the worker's open long poll at once, so a worker shutting down never walks away
    from a request that may be handing it a job at that very moment: it waits for the
    answer and runs what it carries within its grace period.
    """

    worker: NonEmpty
    types: Annotated[list[NonEmpty], msgspec.Meta(max_length=MAX_BATCH)] = []
    capacity: Annotated[int, msgspec.Meta(ge=0, le=MAX_BATCH)] = 0
    running: Annotated[list[AttemptRef], msgspec.Meta(max_length=MAX_BATCH)] = []
    progress: Annotated[list[ProgressReport], msgspec.Meta(max_length=MAX_BATCH)] = []
    reports: Annotated[list[ResultReport], msgspec.Meta(max_length=MAX_BATCH)] = []
    wait: Annotated[float, msgspec.Meta(ge=0, le=MAX_WAIT)] = 0.0
    stopping: bool = False
    info: WorkerInfo | None = None
    #: A secret the worker made at start; the manager binds the worker id to it (and to
    #: the token) at the first poll, so another caller cannot pose as this worker.
    session: Annotated[str, msgspec.Meta(min_length=16, max_length=200)] | None = None


class PollResponse(msgspec.Struct, frozen=True):
    """``abandon``: ids the worker must stop, because its attempt was fenced out.

    ``lease_seconds`` tells the worker how often to poll at the least (a third of it).
    """

    jobs: list[JobBody]
    abandon: list[str]
    lease_seconds: float
    #: The largest request body the manager takes, so the worker splits its reports to fit.
    max_body: int | None = None


class StateCount(msgspec.Struct, frozen=True):
    type: str
    state: JobState
    count: int


class QueueDepth(msgspec.Struct, frozen=True):
    type: str
    depth: int


class OldestWaiting(msgspec.Struct, frozen=True):
    """The queued job with the lowest id; ``since`` is when it became due."""

    id: str
    type: str
    since: dt.datetime
    age_seconds: float


class Throughput(msgspec.Struct, frozen=True):
    """Jobs per bucket over the last hour, oldest bucket first, as this manager saw them."""

    bucket_seconds: int
    start: dt.datetime
    submitted: list[int]
    succeeded: list[int]
    failed: list[int]


class Overview(msgspec.Struct, frozen=True):
    """The dashboard's first page and ``forerunner status``: the state of things at a glance."""

    counts: list[StateCount]
    queue: list[QueueDepth]
    queue_total: int
    oldest_waiting: OldestWaiting | None
    throughput: Throughput
    workers: int
    read_only: bool
    version: str
    store: str
    queue_url: str


class WorkerView(msgspec.Struct, frozen=True):
    """A worker as the manager last saw it poll; ``running`` as of its last renewal."""

    id: str
    types: list[str]
    capacity: int
    running: list[str]
    last_seen: dt.datetime
    seconds_since: float
    stopping: bool
    host: str | None = None
    pid: int | None = None
    concurrency: int | None = None


class WorkerList(msgspec.Struct, frozen=True):
    workers: list[WorkerView]


class TimelineEvent(msgspec.Struct, frozen=True):
    """One step of a job's life; ``detail`` is an error's type and message, or a note."""

    at: dt.datetime
    event: str
    attempt: int
    worker: str | None = None
    detail: str | None = None


class Timeline(msgspec.Struct, frozen=True):
    job: JobBody
    events: list[TimelineEvent]


class BulkRetry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Retry up to ``limit`` jobs in ``state``, of ``type`` when given, newest first."""

    type: NonEmpty | None = None
    state: Literal["failed", "cancelled"] = "failed"
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_BULK)] = 1000

    def __post_init__(self) -> None:
        _check_type_name(self.type, "type")


class BulkRetryResponse(msgspec.Struct, frozen=True):
    retried: int
    ids: list[str]


class Purge(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Delete up to ``limit`` finished jobs whose end is more than ``older_than`` s ago."""

    older_than: Annotated[float, msgspec.Meta(ge=0, le=100 * 365 * 86400)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 100_000


class PurgeResponse(msgspec.Struct, frozen=True):
    purged: int


class ErrorDetail(msgspec.Struct, frozen=True):
    """``code``: malformed_json, unauthorized, forbidden, worker_taken, read_only,
    cross_origin, not_found, request_timeout, invalid_transition, too_large,
    validation_error, too_many_requests, internal_error, unavailable."""

    code: str
    message: str
    field: str | None = None


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail


class Session(msgspec.Struct, frozen=True):
    """What the caller of ``GET /v1/session`` may do.

    ``auth``: whether this manager asks for tokens; ``role``: the role of the token the
    request carried (``admin`` for everyone when auth is off), None without a valid one.
    """

    auth: bool
    role: Literal["client", "worker", "admin"] | None
    read_only: bool


def job_to_wire(job: Job) -> JobBody:
    """The API form of a job."""
    error = job.error
    return JobBody(
        id=job.id,
        type=job.type,
        state=job.state,
        data=job.data,
        priority=job.priority,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        key=job.key,
        run_at=job.run_at,
        timeout=job.timeout,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        worker=job.worker,
        lease_until=job.lease_until,
        progress=job.progress,
        result=job.result,
        error=None
        if error is None
        else WireError(type=error.type, message=error.message, traceback=error.traceback),
    )


def job_from_wire(body: JobBody) -> Job:
    """The model form of a job the API sent (client and worker side)."""
    error = body.error
    return Job(
        id=body.id,
        type=body.type,
        state=body.state,
        data=body.data,
        priority=body.priority,
        attempt=body.attempt,
        max_attempts=body.max_attempts,
        key=body.key,
        run_at=body.run_at,
        timeout=body.timeout,
        created_at=body.created_at,
        started_at=body.started_at,
        finished_at=body.finished_at,
        worker=body.worker,
        lease_until=body.lease_until,
        progress=body.progress,
        result=body.result,
        error=None
        if error is None
        else JobError(type=error.type, message=error.message, traceback=error.traceback),
    )
