"""The reference store: design §2-§3 and the Store docstrings as plain Python.

It is the oracle of the stateful test, written from the contract alone and sharing no
code with any backend, so that a bug copied from one implementation cannot hide in the
model too. It is deliberately slow and obvious: a dict of jobs, a dict of keys, and
each operation as the docstring of :class:`forerunner.store.Store` states it.

Where the contract names the fields an operation sets, every other field keeps its
value; the model reads the contract that way throughout:

* ``claim`` keeps ``error`` (why the previous attempt failed) and ``run_at``;
* ``finish`` keeps ``progress`` (the attempt's last report); a ``queued`` or
  ``scheduled`` report sets ``run_at`` to the report's (None: at once) and records the
  report's error, keeping the job's previous error when the report has none;
* ``reclaim_expired`` and ``cancel`` keep ``worker`` and ``started_at``; ``promote_due``
  changes only the state; ``retry`` keeps ``error``, ``worker`` and ``progress``.

It is also a complete, thread-safe (one lock) :class:`~forerunner.store.Store`, so the
contract can run against it: that keeps the example tests and the model in agreement.
The operations that pick "earliest first, at most limit" break ties by id; a backend
may break them otherwise, so the stateful test asks :meth:`ReferenceStore.due` for the
ordered candidates and accepts any choice among ties.
"""

from __future__ import annotations

import collections
import enum
import threading
from typing import TYPE_CHECKING, Any, ClassVar, Final

import attrs

from forerunner.model import TERMINAL_STATES, Job, JobError, JobState

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable, Sequence

    from forerunner.model import JSON, Report

__all__ = ["LEASE_EXPIRED_ERROR", "Due", "ReferenceStore"]

#: What the model records for a lost attempt. Only the type is contract; the suite
#: compares a ``LeaseExpired`` error by type alone.
LEASE_EXPIRED_ERROR: Final = JobError(
    type="LeaseExpired", message="the worker's lease expired before it reported"
)


class Due(enum.Enum):
    """The operations that choose jobs by a time, earliest first, at most ``limit``."""

    #: ``reclaim_expired``: running, ``lease_until < now``, by ``lease_until``.
    RECLAIM = "reclaim_expired"
    #: ``promote_due``: scheduled, ``run_at <= now``, by ``run_at``.
    PROMOTE = "promote_due"
    #: ``purge``: terminal, ``finished_at < before``, by ``finished_at``.
    PURGE = "purge"


class ReferenceStore:
    """What every store must answer, for one process."""

    durable: ClassVar[bool] = False
    shared: ClassVar[bool] = False

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._keys: dict[str, str] = {}
        self._lock = threading.RLock()

    def add(self, jobs: Sequence[Job]) -> list[Job]:
        with self._lock:
            stored = []
            for job in jobs:
                existing = self._keys.get(job.key) if job.key is not None else None
                if existing is not None:
                    stored.append(self._jobs[existing])
                    continue
                if job.id in self._jobs:
                    raise ValueError(f"job id {job.id!r} is already stored; ids are unique")
                self._jobs[job.id] = job
                if job.key is not None:
                    self._keys[job.key] = job.id
                stored.append(job)
            return stored

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def claim(
        self, job_ids: Sequence[str], worker: str, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Job]:
        with self._lock:
            claimed = []
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is None or job.state is not JobState.QUEUED:
                    continue
                claimed.append(
                    self._put(
                        job,
                        state=JobState.RUNNING,
                        attempt=job.attempt + 1,
                        worker=worker,
                        started_at=now,
                        lease_until=lease_until,
                        progress=None,
                    )
                )
            return claimed

    def renew(self, worker: str, job_ids: Sequence[str], lease_until: dt.datetime) -> list[str]:
        with self._lock:
            renewed = []
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is not None and job.state is JobState.RUNNING and job.worker == worker:
                    self._put(job, lease_until=lease_until)
                    renewed.append(job_id)
            return renewed

    def progress(self, job_id: str, attempt: int, value: JSON, worker: str | None = None) -> bool:
        with self._lock:
            job = self._running(job_id, attempt, worker)
            if job is None:
                return False
            self._put(job, progress=value)
            return True

    def finish(self, reports: Sequence[Report]) -> list[Job | None]:
        with self._lock:
            return [self._finish_one(report) for report in reports]

    def _finish_one(self, report: Report) -> Job | None:
        job = self._running(report.job_id, report.attempt, report.worker)
        if job is None:
            return None
        if report.state is JobState.SUCCEEDED:
            return self._put(
                job,
                state=JobState.SUCCEEDED,
                result=report.result,
                error=None,
                finished_at=report.now,
                lease_until=None,
            )
        if report.state is JobState.FAILED:
            return self._put(
                job,
                state=JobState.FAILED,
                error=report.error,
                finished_at=report.now,
                lease_until=None,
            )
        return self._put(
            job,
            state=report.state,
            run_at=report.run_at,
            error=report.error if report.error is not None else job.error,
            lease_until=None,
        )

    def due(self, kind: Due, now: dt.datetime) -> list[list[Job]]:
        """The jobs ``kind`` may change at ``now``, as groups of equal time, earliest first.

        An operation with ``limit`` must take whole groups in order; of the group the
        limit cuts through, it may take any jobs.
        """
        with self._lock:
            groups: dict[dt.datetime, list[Job]] = collections.defaultdict(list)
            for job in self._jobs.values():
                when = _due_time(kind, job, now)
                if when is not None:
                    groups[when].append(job)
            return [sorted(groups[when], key=lambda j: j.id) for when in sorted(groups)]

    def reclaim_expired(self, now: dt.datetime, limit: int) -> list[Job]:
        with self._lock:
            return self.reclaim_ids(_first(self.due(Due.RECLAIM, now), limit), now)

    def reclaim_ids(self, job_ids: Iterable[str], now: dt.datetime) -> list[Job]:
        """Reclaim exactly ``job_ids``, which the caller took from :meth:`due`."""
        with self._lock:
            changed = []
            for job_id in job_ids:
                job = self._jobs[job_id]
                if job.attempt < job.max_attempts:
                    changed.append(
                        self._put(
                            job, state=JobState.QUEUED, error=LEASE_EXPIRED_ERROR, lease_until=None
                        )
                    )
                else:
                    changed.append(
                        self._put(
                            job,
                            state=JobState.FAILED,
                            error=LEASE_EXPIRED_ERROR,
                            finished_at=now,
                            lease_until=None,
                        )
                    )
            return changed

    def promote_due(self, now: dt.datetime, limit: int) -> list[Job]:
        with self._lock:
            return self.promote_ids(_first(self.due(Due.PROMOTE, now), limit))

    def promote_ids(self, job_ids: Iterable[str]) -> list[Job]:
        """Promote exactly ``job_ids``, which the caller took from :meth:`due`."""
        with self._lock:
            return [self._put(self._jobs[job_id], state=JobState.QUEUED) for job_id in job_ids]

    def cancel(self, job_id: str, now: dt.datetime) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state in TERMINAL_STATES:
                return job
            return self._put(job, state=JobState.CANCELLED, finished_at=now, lease_until=None)

    def retry(self, job_id: str, now: dt.datetime) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state not in {JobState.FAILED, JobState.CANCELLED}:
                return job
            return self._put(
                job,
                state=JobState.QUEUED,
                finished_at=None,
                result=None,
                run_at=None,
                max_attempts=max(job.max_attempts, job.attempt + 1),
            )

    def queued(self, limit: int, after: str | None = None) -> list[Job]:
        with self._lock:
            found = [
                job
                for job in self._jobs.values()
                if job.state is JobState.QUEUED and (after is None or job.id > after)
            ]
            return sorted(found, key=lambda job: job.id)[:limit]

    def list(
        self,
        state: JobState | None = None,
        type: str | None = None,
        limit: int = 100,
        before: str | None = None,
        text: str | None = None,
    ) -> list[Job]:
        with self._lock:
            found = [
                job
                for job in self._jobs.values()
                if (state is None or job.state is state)
                and (type is None or job.type == type)
                and (before is None or job.id < before)
                and (text is None or text in job.id or text in (job.key or ""))
            ]
            return sorted(found, key=lambda job: job.id, reverse=True)[:limit]

    def counts(self) -> dict[tuple[str, JobState], int]:
        with self._lock:
            return dict(collections.Counter((job.type, job.state) for job in self._jobs.values()))

    def purge(self, finished_before: dt.datetime, limit: int) -> int:
        with self._lock:
            return self.purge_ids(_first(self.due(Due.PURGE, finished_before), limit))

    def purge_ids(self, job_ids: Iterable[str]) -> int:
        """Delete exactly ``job_ids``, which the caller took from :meth:`due`."""
        with self._lock:
            deleted = 0
            for job_id in job_ids:
                job = self._jobs.pop(job_id)
                if job.key is not None:
                    del self._keys[job.key]
                deleted += 1
            return deleted

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._keys.clear()

    def close(self) -> None:
        """Nothing to release; closing twice is harmless."""

    def _running(self, job_id: str, attempt: int, worker: str | None) -> Job | None:
        """The job if it runs ``attempt``, for ``worker`` when one is named."""
        job = self._jobs.get(job_id)
        if job is None or job.state is not JobState.RUNNING or job.attempt != attempt:
            return None
        if worker is not None and job.worker != worker:
            return None
        return job

    def _put(self, job: Job, **changes: Any) -> Job:
        changed = attrs.evolve(job, **changes)
        self._jobs[job.id] = changed
        return changed


def _due_time(kind: Due, job: Job, now: dt.datetime) -> dt.datetime | None:
    if kind is Due.RECLAIM:
        lease = job.lease_until if job.state is JobState.RUNNING else None
        return lease if lease is not None and lease < now else None
    if kind is Due.PROMOTE:
        run_at = job.run_at if job.state is JobState.SCHEDULED else None
        return run_at if run_at is not None and run_at <= now else None
    finished = job.finished_at if job.state in TERMINAL_STATES else None
    return finished if finished is not None and finished < now else None


def _first(groups: list[list[Job]], limit: int) -> list[str]:
    return [job.id for group in groups for job in group][: max(limit, 0)]
