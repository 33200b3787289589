"""The manager's work, without HTTP: submit, inspect, dispatch, and keep the queue honest.

Everything here is synchronous and calls the store and the queue directly; the ASGI app
runs it in a thread pool, never on the event loop. The manager keeps no fact a job
depends on in memory: every transition goes through the store, and the queue is rebuilt
from the store whenever it falls behind, so many managers may share one store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import attrs
import msgspec

from forerunner.errors import BackendError, InvalidTransition, JobNotFound, ValidationError
from forerunner.ids import new_id
from forerunner.manager.history import History, Step, Throughput, timeline
from forerunner.manager.workers import WorkerRegistry
from forerunner.model import Job, JobError, JobState, QueueEntry, Report
from forerunner.wire import JobSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from forerunner.manager.events import Events
    from forerunner.queue import Queue
    from forerunner.store import Store
    from forerunner.wire import PollRequest

__all__ = [
    "MAX_BACKOFF",
    "ManagerService",
    "Oldest",
    "Snapshot",
    "backoff",
    "spec_from_options",
    "utc_now",
]

logger = logging.getLogger(__name__)

#: Longest pause between two attempts, in seconds.
MAX_BACKOFF: Final = 300.0
#: Jobs one reaper step reclaims or promotes, and one rebuild page pushes.
BATCH: Final = 1000
#: Seconds the overview reuses the store's counts: counting scans a large store.
COUNTS_TTL: Final = 5.0


def utc_now() -> dt.datetime:
    """The manager's clock unless told otherwise: every lease is judged by it."""
    return dt.datetime.now(dt.UTC)


def backoff(attempt: int, jitter: float) -> float:
    """Seconds before the attempt after ``attempt``: doubling from 1 s, capped, jittered.

    ``jitter`` in [0.5, 1.0] spreads the retries of jobs that failed together, so a
    recovering dependency is not hit by all of them at the same instant.
    """
    return min(MAX_BACKOFF, 2.0 ** min(attempt - 1, 30)) * jitter


def spec_from_options(type: str, data: Any = None, **options: Any) -> JobSpec:
    """Validate a submission given as Python arguments exactly as the HTTP API would."""
    try:
        return msgspec.convert({"type": type, "data": data, **options}, JobSpec)
    except msgspec.ValidationError as error:
        raise ValidationError(str(error), field=_field_of(str(error))) from error


def _field_of(message: str) -> str | None:
    _, at, path = message.rpartition(" - at `")
    return path.rstrip("`") if at else None


@attrs.frozen
class Oldest:
    """The job waiting longest in ``queued``, and since when it could have run."""

    job: Job
    since: dt.datetime
    age_seconds: float


@attrs.frozen
class Snapshot:
    """What the overview shows; ``counts`` may be up to :data:`COUNTS_TTL` seconds old."""

    counts: dict[tuple[str, JobState], int]
    queue: dict[str, int]
    queue_total: int
    oldest: Oldest | None
    throughput: Throughput
    workers: int


class ManagerService:
    """Submits, dispatches and reaps jobs on one store and one queue."""

    def __init__(
        self,
        store: Store,
        queue: Queue,
        events: Events,
        *,
        lease: float = 30.0,
        clock: Callable[[], dt.datetime] = utc_now,
        jitter: Callable[[], float] = lambda: random.uniform(0.5, 1.0),
    ) -> None:
        self.store = store
        self.queue = queue
        self.events = events
        #: Seconds a handed-out attempt lives without renewal.
        self.lease = lease
        self._clock = clock
        self._jitter = jitter
        #: Set when the manager stops, so long polls answer instead of holding shutdown.
        self.closing = threading.Event()
        #: The workers that polled lately, for the operator.
        self.workers = WorkerRegistry(clock, lambda: self.lease)
        #: Recent throughput and job steps, for the operator.
        self.history = History(clock)
        events.listen_batches(self.history.record)
        self._counts: tuple[float, dict[tuple[str, JobState], int]] | None = None
        self._counts_lock = threading.Lock()

    # Submitting and inspecting

    def submit(self, specs: Sequence[JobSpec], *, batch: bool = False) -> list[tuple[Job, bool]]:
        """Store the jobs, queue the new ones that are due; ``(job, created)`` per spec.

        ``created`` is false where the idempotency key named an existing job, which is
        returned as it is. Every spec is checked before anything is stored; ``batch``
        says the specs came as ``$.jobs``, so an error names ``$.jobs[3].delay``.
        """
        now = self._clock()
        jobs = [
            self._job_of(spec, now, f"$.jobs[{index}]" if batch else "$")
            for index, spec in enumerate(specs)
        ]
        stored = self.store.add(jobs)
        created = [(kept, kept.id == mine.id) for kept, mine in zip(stored, jobs, strict=True)]
        due = [job for job, new in created if new and job.state is JobState.QUEUED]
        try:
            self._push(due)
        except BackendError as error:
            # The jobs are stored, so the submission succeeded: answering 503 now would
            # make a retrying client submit them twice. The reaper's rebuild queues them.
            logger.warning(
                "stored %d job(s) but could not queue them (%s); the queue rebuild will: %s",
                len(due),
                error,
                ", ".join(job.id for job in due),
                extra={"action": "push_deferred", "job_id": due[0].id},
            )
        self.events.emit_all("created", [job for job, new in created if new])
        return created

    def get(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFound(
                f"no job with id {job_id!r}; check the id, or list jobs with GET /v1/jobs"
            )
        return job

    def list_jobs(
        self,
        state: JobState | None,
        type: str | None,
        limit: int,
        before: str | None,
        text: str | None = None,
    ) -> tuple[list[Job], str | None]:
        """A page of jobs, newest first, and the cursor of the next page (None on the last)."""
        if text is None:
            # Without ``text`` a store written before it existed still lists.
            jobs = self.store.list(state=state, type=type, limit=limit, before=before)
        else:
            jobs = self.store.list(state=state, type=type, limit=limit, before=before, text=text)
        return jobs, (jobs[-1].id if len(jobs) == limit else None)

    def timeline(self, job_id: str) -> tuple[Job, list[Step]]:
        """The job and its steps, oldest first (:func:`forerunner.manager.history.timeline`)."""
        job = self.get(job_id)
        return job, timeline(job, self.history.steps(job_id))

    def overview(self) -> Snapshot:
        """Counts, queue depths, the oldest waiting job and the last hour, for the operator."""
        counts = self._cached_counts()
        types = {kind for kind, _ in counts} | self.workers.types()
        queue = {kind: self.queue.size([kind]) for kind in sorted(types)}
        oldest: Oldest | None = None
        first = self.store.queued(1)
        if first:
            job = first[0]
            since = job.run_at or job.created_at or self._clock()
            age = max(0.0, (self._clock() - since).total_seconds())
            oldest = Oldest(job=job, since=since, age_seconds=age)
        return Snapshot(
            counts=counts,
            queue=queue,
            queue_total=self.queue.size(),
            oldest=oldest,
            throughput=self.history.throughput(),
            workers=len(self.workers.snapshot()),
        )

    def _cached_counts(self) -> dict[tuple[str, JobState], int]:
        with self._counts_lock:
            cached = self._counts
            if cached is not None and time.monotonic() - cached[0] < COUNTS_TTL:
                return cached[1]
            counts = self.store.counts()
            self._counts = (time.monotonic(), counts)
            return counts

    def cancel(self, job_id: str) -> Job:
        """Cancel a job that has not finished; a running attempt is fenced out."""
        before = self.get(job_id)
        if before.state.terminal:
            raise _not_in(before, "cancelled", "scheduled, queued or running")
        job = self.store.cancel(job_id, self._clock())
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        if job.state is not JobState.CANCELLED:
            raise _not_in(job, "cancelled", "scheduled, queued or running")
        self.queue.remove([job_id])
        self.events.emit("cancelled", job)
        return job

    def retry(self, job_id: str) -> Job:
        """Queue a failed or cancelled job again, with one more attempt if it used all."""
        before = self.get(job_id)
        if before.state not in (JobState.FAILED, JobState.CANCELLED):
            raise _not_in(before, "retried", "failed or cancelled")
        job = self.store.retry(job_id, self._clock())
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        if job.state is not JobState.QUEUED:
            raise _not_in(job, "retried", "failed or cancelled")
        self._push([job])
        self.history.record("retried", [job])
        return job

    def retry_many(self, state: JobState, type: str | None, limit: int) -> list[Job]:
        """Retry up to ``limit`` jobs in ``state`` (failed or cancelled), newest first.

        A job another caller retried or purged meanwhile is passed over, not an error:
        the operator asked for "the failed ones", and it no longer is one.
        """
        if state not in (JobState.FAILED, JobState.CANCELLED):
            raise ValidationError("only failed or cancelled jobs can be retried", field="state")
        retried: list[Job] = []
        before: str | None = None
        while len(retried) < limit:
            page = self.store.list(state=state, type=type, limit=min(BATCH, limit), before=before)
            if not page:
                break
            before = page[-1].id
            now = self._clock()
            for candidate in page:
                if len(retried) >= limit:
                    break
                job = self.store.retry(candidate.id, now)
                if job is not None and job.state is JobState.QUEUED:
                    retried.append(job)
            if len(page) < min(BATCH, limit):
                break
        self._push(retried)
        self.history.record("retried", retried)
        return retried

    def purge(self, older_than: float, limit: int) -> int:
        """Delete up to ``limit`` finished jobs that ended more than ``older_than`` s ago."""
        finished_before = self._clock() - dt.timedelta(seconds=older_than)
        purged = 0
        while purged < limit:
            wanted = min(BATCH, limit - purged)
            step = self.store.purge(finished_before, wanted)
            purged += step
            if step < wanted:
                break
        with self._counts_lock:
            self._counts = None
        if purged:
            logger.info(
                "purged %d job(s) that finished before %s",
                purged,
                finished_before.isoformat(),
                extra={"action": "purged"},
            )
        return purged

    # Workers

    def settle(self, request: PollRequest) -> list[str]:
        """Apply a poll's progress, reports and lease renewals; return the ids to abandon.

        Progress goes first: a task's last progress often travels in the same poll as its
        result, and once the result is recorded the attempt no longer runs, so progress
        applied after it would be fenced out.
        """
        abandon: dict[str, None] = {}
        now = self._clock()
        self.workers.saw(request)
        for item in request.progress:
            if not self.store.progress(item.id, item.attempt, item.value, request.worker):
                abandon[item.id] = None
                continue
            job = self.store.get(item.id)
            if job is not None:
                self.events.emit("progress", job)
        for job_id in self._finish(request, now):
            abandon[job_id] = None
        running = [ref.id for ref in request.running]
        if running:
            renewed = set(self.store.renew(request.worker, running, now + self._lease_delta()))
            for job_id in running:
                if job_id not in renewed:
                    abandon[job_id] = None
        return list(abandon)

    def hand_out(
        self, worker: str, types: Sequence[str], capacity: int, timeout: float
    ) -> list[Job]:
        """Pop up to ``capacity`` entries, waiting up to ``timeout`` s, and claim them.

        Entries whose claim fails are dropped: the job was cancelled, or another manager
        sharing the store handed it out already.
        """
        if capacity <= 0 or not types:
            return []
        entries = self.queue.pop(types, capacity, timeout)
        if not entries:
            return []
        now = self._clock()
        try:
            claimed = self.store.claim(
                [entry.job_id for entry in entries], worker, now, now + self._lease_delta()
            )
        except BackendError:
            # The popped entries are gone from the queue while their jobs stay queued in
            # the store; put them back so they do not wait for the next full rebuild.
            with contextlib.suppress(BackendError):
                self.queue.push(entries)
            raise
        self.events.emit_all("staged", claimed)
        return claimed

    # Keeping the queue honest

    def reap(self) -> None:
        """One reaper step: take back lost attempts, queue due jobs, rebuild a lost queue."""
        now = self._clock()
        reclaimed = self.store.reclaim_expired(now, BATCH)
        requeued = [job for job in reclaimed if job.state is JobState.QUEUED]
        self._push(requeued)
        for job in reclaimed:
            self.events.emit("retrying" if job.state is JobState.QUEUED else "failed", job)
        self._push(self.store.promote_due(now, BATCH))
        # An empty queue while the store holds queued jobs means the queue was lost or
        # emptied behind this manager's back; asking for one queued job is an index probe.
        if self.queue.size() == 0 and self.store.queued(1):
            self.rebuild()

    def rebuild(self) -> int:
        """Push every queued job of the store again; return how many. Duplicates are harmless."""
        pushed = 0
        after: str | None = None
        while True:
            page = self.store.queued(BATCH, after)
            self._push(page)
            pushed += len(page)
            if len(page) < BATCH:
                break
            after = page[-1].id
        if pushed:
            logger.info(
                "rebuilt the queue from the store: %d jobs",
                pushed,
                extra={"action": "queue_rebuilt"},
            )
        return pushed

    # Internals

    def _lease_delta(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.lease)

    def _push(self, jobs: Sequence[Job]) -> None:
        if jobs:
            self.queue.push(
                [QueueEntry(job_id=job.id, type=job.type, priority=job.priority) for job in jobs]
            )

    def _job_of(self, spec: JobSpec, now: dt.datetime, where: str) -> Job:
        if spec.run_at is not None and spec.delay is not None:
            raise ValidationError(
                "give run_at or delay, not both: each one sets when the job may start",
                field=f"{where}.delay",
            )
        run_at: dt.datetime | None = None
        if spec.run_at is not None:
            if spec.run_at.tzinfo is None or spec.run_at.utcoffset() is None:
                raise ValidationError(
                    "run_at has no time zone; write it with an offset, e.g. 2030-01-01T00:00:00Z",
                    field=f"{where}.run_at",
                )
            run_at = spec.run_at
        elif spec.delay is not None:
            run_at = now + dt.timedelta(seconds=spec.delay)
        scheduled = run_at is not None and run_at > now
        return Job(
            id=new_id(),
            type=spec.type,
            data=spec.data,
            state=JobState.SCHEDULED if scheduled else JobState.QUEUED,
            priority=spec.priority,
            max_attempts=spec.max_attempts,
            key=spec.key,
            run_at=run_at if scheduled else None,
            timeout=spec.timeout,
            created_at=now,
        )

    def _finish(self, request: PollRequest, now: dt.datetime) -> list[str]:
        """Turn the worker's outcomes into store reports; return the fenced-out ids."""
        if not request.reports:
            return []
        reports: list[Report] = []
        for item in request.reports:
            if item.outcome == "succeeded":
                reports.append(
                    Report(
                        job_id=item.id,
                        attempt=item.attempt,
                        state=JobState.SUCCEEDED,
                        now=now,
                        result=item.result,
                        worker=request.worker,
                    )
                )
                continue
            error = (
                JobError(
                    type=item.error.type, message=item.error.message, traceback=item.error.traceback
                )
                if item.error is not None
                else JobError(
                    type="UnknownError", message="the worker reported a failure without an error"
                )
            )
            job = self.store.get(item.id)
            retry = job is not None and item.attempt < job.max_attempts
            reports.append(
                Report(
                    job_id=item.id,
                    attempt=item.attempt,
                    state=JobState.SCHEDULED if retry else JobState.FAILED,
                    now=now,
                    error=error,
                    run_at=now + dt.timedelta(seconds=backoff(item.attempt, self._jitter()))
                    if retry
                    else None,
                    worker=request.worker,
                )
            )
        fenced: list[str] = []
        ended: dict[str, list[Job]] = {"succeeded": [], "failed": [], "retrying": []}
        for report, job in zip(reports, self.store.finish(reports), strict=True):
            if job is None:
                fenced.append(report.job_id)
            elif job.state is JobState.SUCCEEDED:
                ended["succeeded"].append(job)
            elif job.state is JobState.FAILED:
                ended["failed"].append(job)
            else:
                ended["retrying"].append(job)
        for event, jobs in ended.items():
            self.events.emit_all(event, jobs)
        return fenced


def _not_in(job: Job, verb: str, allowed: str) -> InvalidTransition:
    return InvalidTransition(
        f"job {job.id!r} is {job.state.value}; only a job that is {allowed} can be {verb}"
    )
