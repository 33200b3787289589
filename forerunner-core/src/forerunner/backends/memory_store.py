"""``memory://``: a store that lives in one process, for tests and throwaway runs.

It keeps jobs in a dict under one lock and answers exactly as the durable stores do:
JSON values go in and come out as their JSON round trip, so a caller never shares an
object with the store (mutating what ``add`` was given or what ``get`` returned changes
nothing stored) and a tuple comes back as a list, as it would from SQLite.

Jobs are also indexed by key, by state and by ``(type, state)`` count, so that claim,
renew and finish cost time in proportion to their batch, ``counts`` in proportion to
the number of distinct pairs, and the listing and time-driven operations scan only the
jobs in the states they concern.
"""

from __future__ import annotations

import collections
import heapq
import threading
from typing import TYPE_CHECKING, Any, ClassVar, Final, final

import attrs

from forerunner.backends.encoding import copy_json
from forerunner.backends.lease import LEASE_EXPIRED
from forerunner.backends.urls import check_memory_url
from forerunner.errors import BackendError, ValidationError
from forerunner.model import TERMINAL_STATES, Job, JobState

if TYPE_CHECKING:
    import builtins
    import datetime as dt
    from collections.abc import Callable, Iterable, Sequence

    from forerunner.model import JSON, Report

__all__ = ["MemoryStore"]

_ACTIVE: Final = frozenset({JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING})
_RETRYABLE: Final = frozenset({JobState.FAILED, JobState.CANCELLED})


@final
class MemoryStore:
    """The jobs of one process; gone when it exits or the store is closed."""

    durable: ClassVar[bool] = False
    shared: ClassVar[bool] = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._keys: dict[str, str] = {}
        self._by_state: dict[JobState, set[str]] = {state: set() for state in JobState}
        self._counts: collections.Counter[tuple[str, JobState]] = collections.Counter()
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        """A new, empty store for ``memory://``; each call makes another one."""
        check_memory_url(url, "memory", "store")
        return cls()

    def add(self, jobs: Sequence[Job]) -> list[Job]:
        copies = [_copied(job) for job in jobs]
        with self._lock:
            self._check_open()
            self._check_new_ids(copies)
            stored: list[Job] = []
            for job in copies:
                existing = self._keys.get(job.key) if job.key is not None else None
                if existing is not None:
                    stored.append(self._jobs[existing])
                    continue
                self._insert(job)
                stored.append(job)
            return [_copied(job) for job in stored]

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._check_open()
            job = self._jobs.get(job_id)
        return None if job is None else _copied(job)

    def claim(
        self, job_ids: Sequence[str], worker: str, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Job]:
        with self._lock:
            self._check_open()
            claimed = []
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is None or job.state is not JobState.QUEUED:
                    continue
                claimed.append(
                    self._replace(
                        job,
                        state=JobState.RUNNING,
                        attempt=job.attempt + 1,
                        worker=worker,
                        started_at=now,
                        lease_until=lease_until,
                        progress=None,
                    )
                )
        return [_copied(job) for job in claimed]

    def renew(self, worker: str, job_ids: Sequence[str], lease_until: dt.datetime) -> list[str]:
        with self._lock:
            self._check_open()
            renewed = []
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is not None and job.state is JobState.RUNNING and job.worker == worker:
                    self._replace(job, lease_until=lease_until)
                    renewed.append(job_id)
            return renewed

    def progress(self, job_id: str, attempt: int, value: JSON, worker: str | None = None) -> bool:
        value = copy_json(value, field="progress")
        with self._lock:
            self._check_open()
            job = self._running(job_id, attempt, worker)
            if job is None:
                return False
            self._replace(job, progress=value)
            return True

    def finish(self, reports: Sequence[Report]) -> list[Job | None]:
        results = [
            copy_json(report.result, field="result") if report.state is JobState.SUCCEEDED else None
            for report in reports
        ]
        with self._lock:
            self._check_open()
            finished = [
                self._finish(report, result)
                for report, result in zip(reports, results, strict=True)
            ]
        return [None if job is None else _copied(job) for job in finished]

    def reclaim_expired(self, now: dt.datetime, limit: int) -> list[Job]:
        with self._lock:
            self._check_open()
            expired = self._earliest(
                JobState.RUNNING, limit, lambda job: job.lease_until, lambda when: when < now
            )
            changed = []
            for job in expired:
                if job.attempt < job.max_attempts:
                    changed.append(
                        self._replace(
                            job, state=JobState.QUEUED, error=LEASE_EXPIRED, lease_until=None
                        )
                    )
                else:
                    changed.append(
                        self._replace(
                            job,
                            state=JobState.FAILED,
                            error=LEASE_EXPIRED,
                            finished_at=now,
                            lease_until=None,
                        )
                    )
        return [_copied(job) for job in changed]

    def promote_due(self, now: dt.datetime, limit: int) -> list[Job]:
        with self._lock:
            self._check_open()
            due = self._earliest(
                JobState.SCHEDULED, limit, lambda job: job.run_at, lambda when: when <= now
            )
            promoted = [self._replace(job, state=JobState.QUEUED) for job in due]
        return [_copied(job) for job in promoted]

    def cancel(self, job_id: str, now: dt.datetime) -> Job | None:
        with self._lock:
            self._check_open()
            job = self._jobs.get(job_id)
            if job is not None and job.state in _ACTIVE:
                job = self._replace(
                    job, state=JobState.CANCELLED, finished_at=now, lease_until=None
                )
        return None if job is None else _copied(job)

    def retry(self, job_id: str, now: dt.datetime) -> Job | None:
        with self._lock:
            self._check_open()
            job = self._jobs.get(job_id)
            if job is not None and job.state in _RETRYABLE:
                job = self._replace(
                    job,
                    state=JobState.QUEUED,
                    finished_at=None,
                    result=None,
                    run_at=None,
                    max_attempts=max(job.max_attempts, job.attempt + 1),
                )
        return None if job is None else _copied(job)

    def queued(self, limit: int, after: str | None = None) -> list[Job]:
        with self._lock:
            self._check_open()
            ids = self._by_state[JobState.QUEUED]
            chosen = heapq.nsmallest(
                max(limit, 0), ids if after is None else (i for i in ids if i > after)
            )
            found = [self._jobs[job_id] for job_id in chosen]
        return [_copied(job) for job in found]

    def list(
        self,
        state: JobState | None = None,
        type: str | None = None,
        limit: int = 100,
        before: str | None = None,
        text: str | None = None,
    ) -> list[Job]:
        with self._lock:
            self._check_open()
            ids: Iterable[str] = self._jobs if state is None else self._by_state[JobState(state)]
            if before is not None:
                ids = (i for i in ids if i < before)
            if type is not None:
                ids = (i for i in ids if self._jobs[i].type == type)
            if text is not None:
                ids = (i for i in ids if text in i or text in (self._jobs[i].key or ""))
            found = [self._jobs[job_id] for job_id in heapq.nlargest(max(limit, 0), ids)]
        return [_copied(job) for job in found]

    def counts(self) -> dict[tuple[str, JobState], int]:
        with self._lock:
            self._check_open()
            return dict(self._counts)

    def purge(self, finished_before: dt.datetime, limit: int) -> int:
        with self._lock:
            self._check_open()
            old = [
                job
                for state in TERMINAL_STATES
                for job in self._earliest(
                    state, limit, lambda job: job.finished_at, lambda when: when < finished_before
                )
            ]
            old.sort(key=lambda job: (job.finished_at, job.id))
            for job in old[: max(limit, 0)]:
                self._delete(job)
            return min(len(old), max(limit, 0))

    def clear(self) -> None:
        with self._lock:
            self._check_open()
            self._clear()

    def close(self) -> None:
        """Drop every job; the store refuses further calls. Closing twice is fine."""
        with self._lock:
            self._closed = True
            self._clear()

    def _finish(self, report: Report, result: JSON) -> Job | None:
        job = self._running(report.job_id, report.attempt, report.worker)
        if job is None:
            return None
        if report.state is JobState.SUCCEEDED:
            return self._replace(
                job,
                state=JobState.SUCCEEDED,
                result=result,
                error=None,
                finished_at=report.now,
                lease_until=None,
            )
        if report.state is JobState.FAILED:
            return self._replace(
                job,
                state=JobState.FAILED,
                error=report.error,
                finished_at=report.now,
                lease_until=None,
            )
        return self._replace(
            job,
            state=report.state,
            run_at=report.run_at,
            error=report.error if report.error is not None else job.error,
            lease_until=None,
        )

    def _running(self, job_id: str, attempt: int, worker: str | None) -> Job | None:
        """The job while it runs ``attempt`` for ``worker`` (None: for any worker)."""
        job = self._jobs.get(job_id)
        if job is None or job.state is not JobState.RUNNING or job.attempt != attempt:
            return None
        if worker is not None and job.worker != worker:
            return None
        return job

    def _earliest(
        self,
        state: JobState,
        limit: int,
        time_of: Callable[[Job], dt.datetime | None],
        due: Callable[[dt.datetime], bool],
    ) -> builtins.list[Job]:
        """The jobs in ``state`` whose time is due, earliest first (then by id), at most limit."""
        candidates = []
        for job_id in self._by_state[state]:
            job = self._jobs[job_id]
            when = time_of(job)
            if when is not None and due(when):
                candidates.append((when, job_id, job))
        return [job for _, _, job in heapq.nsmallest(max(limit, 0), candidates)]

    def _check_new_ids(self, jobs: Sequence[Job]) -> None:
        """Refuse the whole batch if a job that would be inserted reuses an id."""
        seen: set[str] = set()
        keys: set[str] = set()
        for job in jobs:
            if job.key is not None and (job.key in self._keys or job.key in keys):
                continue
            if job.id in self._jobs or job.id in seen:
                raise ValidationError(
                    f"job id {job.id!r} is already stored or repeated in the batch; "
                    "every job needs a new id (forerunner.new_id())",
                    field="id",
                )
            seen.add(job.id)
            if job.key is not None:
                keys.add(job.key)

    def _insert(self, job: Job) -> None:
        self._jobs[job.id] = job
        if job.key is not None:
            self._keys[job.key] = job.id
        self._by_state[job.state].add(job.id)
        self._counts[job.type, job.state] += 1

    def _delete(self, job: Job) -> None:
        del self._jobs[job.id]
        if job.key is not None:
            del self._keys[job.key]
        self._by_state[job.state].discard(job.id)
        self._uncount(job)

    def _replace(self, job: Job, **changes: Any) -> Job:
        changed = attrs.evolve(job, **changes)
        self._jobs[job.id] = changed
        if changed.state is not job.state:
            self._by_state[job.state].discard(job.id)
            self._by_state[changed.state].add(job.id)
            self._uncount(job)
            self._counts[changed.type, changed.state] += 1
        return changed

    def _uncount(self, job: Job) -> None:
        pair = (job.type, job.state)
        self._counts[pair] -= 1
        if not self._counts[pair]:
            del self._counts[pair]

    def _clear(self) -> None:
        self._jobs.clear()
        self._keys.clear()
        for ids in self._by_state.values():
            ids.clear()
        self._counts.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("this memory:// store is closed; open a new one with memory://")


def _copied(job: Job) -> Job:
    """``job`` with JSON values of its own, as a store that serialises them returns it."""
    return attrs.evolve(
        job,
        data=copy_json(job.data, field="data"),
        progress=copy_json(job.progress, field="progress"),
        result=copy_json(job.result, field="result"),
    )
