"""What a manager saw happen recently: throughput per minute and each job's last steps.

The store keeps a job's current state, not its past, and the job model has no room
for an event log; keeping one in the store would add a write per transition to the
hot path. So the manager remembers, in bounded memory, what its own events told it:
the last hour in one-minute buckets for the overview's chart, and the recent steps of
the last jobs it handled for the job page's timeline. A restart forgets both; the
timeline then falls back on what the job record says (:func:`timeline`).
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
from typing import TYPE_CHECKING, Final

import attrs
import msgspec

from forerunner.model import JobState

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from forerunner.model import Job

__all__ = ["BUCKETS", "BUCKET_SECONDS", "History", "Step", "Throughput", "timeline"]

#: Width of one throughput bucket, and how many the overview shows: one hour.
BUCKET_SECONDS: Final = 60
BUCKETS: Final = 60
#: Jobs whose steps are remembered, and steps per job: bounded whatever the load.
JOBS_REMEMBERED: Final = 10_000
STEPS_PER_JOB: Final = 50

#: The events the throughput chart counts, by the series they count in.
_COUNTED: Final = {"created": "submitted", "succeeded": "succeeded", "failed": "failed"}
#: The events whose step says more than its name: an error, or the progress.
_DETAILED: Final = frozenset({"failed", "retrying", "progress"})
#: A step as :class:`History` keeps it: at, event, attempt, worker, detail.
_Raw = tuple[dt.datetime, str, int, "str | None", "str | None"]
#: Event names as a person reads them on a timeline.
_STEP_NAMES: Final = {
    "created": "submitted",
    "staged": "started",
    "progress": "progress",
    "retrying": "retry scheduled",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
    "retried": "retried by hand",
}


@attrs.frozen
class Step:
    """One step of a job's life as the timeline shows it."""

    at: dt.datetime
    event: str
    attempt: int
    worker: str | None = None
    detail: str | None = None


@attrs.frozen
class Throughput:
    """Counts per bucket, oldest first; the last bucket is the current, unfinished minute."""

    start: dt.datetime
    submitted: tuple[int, ...]
    succeeded: tuple[int, ...]
    failed: tuple[int, ...]


class History:
    """Counts events per minute and keeps the recent steps of recent jobs."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: Minute number (seconds since the epoch // 60) -> series -> count.
        self._buckets: dict[int, collections.Counter[str]] = {}
        #: Job id -> its steps as tuples (the fields of :class:`Step`), oldest first. Kept
        #: as tuples and turned into records only when asked: this runs for every job
        #: three times or more, and must cost the manager about a microsecond each time.
        self._steps: dict[str, list[_Raw]] = {}

    def record(self, event: str, jobs: Sequence[Job]) -> None:
        """Note that ``jobs`` went through ``event``; an ``Events`` batch listener."""
        if not jobs:
            return
        now = self._clock()
        minute = int(now.timestamp()) // BUCKET_SECONDS
        name = _STEP_NAMES.get(event, event)
        detailed = event in _DETAILED
        series = _COUNTED.get(event)
        steps = self._steps
        with self._lock:
            if series is not None:
                bucket = self._buckets.get(minute)
                if bucket is None:
                    bucket = self._buckets[minute] = collections.Counter()
                    for old in [m for m in self._buckets if m <= minute - BUCKETS]:
                        del self._buckets[old]
                bucket[series] += len(jobs)
            for job in jobs:
                step = (
                    now,
                    name,
                    job.attempt,
                    job.worker,
                    _detail(event, job) if detailed else None,
                )
                # A dict keeps insertion order: popping a job and putting it back makes
                # it the newest, so the oldest-touched job is the first to forget.
                remembered = steps.pop(job.id, None)
                if remembered is None:
                    remembered = [step]
                    if len(steps) >= JOBS_REMEMBERED:
                        del steps[next(iter(steps))]
                elif event == "progress" and remembered[-1][1] == name:
                    remembered[-1] = step
                else:
                    remembered.append(step)
                    if len(remembered) > STEPS_PER_JOB:
                        del remembered[0]
                steps[job.id] = remembered

    def throughput(self) -> Throughput:
        """The last :data:`BUCKETS` minutes, the current one last."""
        minute = int(self._clock().timestamp()) // BUCKET_SECONDS
        first = minute - BUCKETS + 1
        with self._lock:
            rows = [self._buckets.get(m, collections.Counter()) for m in range(first, minute + 1)]
            return Throughput(
                start=dt.datetime.fromtimestamp(first * BUCKET_SECONDS, dt.UTC),
                submitted=tuple(row["submitted"] for row in rows),
                succeeded=tuple(row["succeeded"] for row in rows),
                failed=tuple(row["failed"] for row in rows),
            )

    def steps(self, job_id: str) -> list[Step]:
        with self._lock:
            raw = list(self._steps.get(job_id, ()))
        return [
            Step(at=at, event=event, attempt=attempt, worker=worker, detail=detail)
            for at, event, attempt, worker, detail in raw
        ]


def timeline(job: Job, remembered: Sequence[Step]) -> list[Step]:
    """The job's steps, oldest first: those remembered, and those its record implies.

    The record holds when the job was created, when its latest attempt started and
    when it ended; the remembered steps add earlier attempts, retries and progress,
    for jobs this manager handled since it started. A step both sources know appears
    once, as remembered.
    """
    implied: list[Step] = []
    if job.created_at is not None:
        implied.append(Step(at=job.created_at, event="submitted", attempt=0))
    if job.started_at is not None and job.attempt > 0:
        implied.append(
            Step(at=job.started_at, event="started", attempt=job.attempt, worker=job.worker)
        )
    if job.finished_at is not None and job.state.terminal:
        detail = None
        if job.state is JobState.FAILED and job.error is not None:
            detail = f"{job.error.type}: {job.error.message}"
        implied.append(
            Step(
                at=job.finished_at,
                event=job.state.value,
                attempt=job.attempt,
                worker=job.worker,
                detail=detail,
            )
        )
    if job.state is JobState.SCHEDULED and job.run_at is not None:
        implied.append(
            Step(at=job.run_at, event="due", attempt=job.attempt, detail="scheduled to run")
        )
    known = {(step.event, step.attempt) for step in remembered}
    merged = [*remembered, *(step for step in implied if (step.event, step.attempt) not in known)]
    return sorted(merged, key=lambda step: step.at)


def _detail(event: str, job: Job) -> str | None:
    if event in ("failed", "retrying") and job.error is not None:
        detail = f"{job.error.type}: {job.error.message}"
        if event == "retrying" and job.run_at is not None:
            detail += f" (next attempt at {job.run_at.isoformat()})"
        return detail
    if event == "progress" and job.progress is not None:
        return _short(job.progress)
    return None


def _short(value: object, limit: int = 120) -> str:
    """Progress as JSON, as the API shows it, cut to fit a line of the timeline."""
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"
