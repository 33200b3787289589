"""A correct store written for the suite's own tests, and one broken variant per clause.

:class:`FileStore` keeps jobs in a SQLite file, one JSON body per job plus the columns
its queries need, so that it is durable and shared between processes and every clause
(the multi-process and reopen ones too) can be broken on purpose. It shares no code
with forerunner's own backends or with the reference model. Its decisions are split
into small methods and SQL fragments so that each variant overrides exactly one of
them and breaks exactly one clause.

The module is a forerunner plugin: the tests install it with a ``*.dist-info``
directory on ``PYTHONPATH``, so that ``open_store("broken-claim.skips:///x.db")``
resolves in pytester's child process and in the processes the suite spawns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, ClassVar, Final

import attrs

from forerunner import hookimpl
from forerunner.errors import JobNotFound
from forerunner.model import TERMINAL_STATES, Job, JobError, JobState

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from forerunner.model import JSON, Report
    from forerunner.store import Store

#: The scheme of the correct store.
SCHEME: Final = "filestore"
_TIME: Final = "%Y-%m-%dT%H:%M:%S.%f"
_TERMINAL: Final = "('succeeded', 'failed', 'cancelled')"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    key TEXT UNIQUE,
    type TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL,
    lease_until TEXT,
    run_at TEXT,
    finished_at TEXT,
    body TEXT NOT NULL
)
"""


def _text(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).strftime(_TIME)


def _time(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.strptime(value, _TIME).replace(tzinfo=dt.UTC)


class FileStore:
    """A correct store in one SQLite file; every public method is one transaction."""

    durable: ClassVar[bool] = True
    shared: ClassVar[bool] = True

    #: SQL fragments the broken variants change.
    lease_passed: ClassVar[str] = "<"
    reclaim_order: ClassVar[str] = "lease_until, id"
    run_at_due: ClassVar[str] = "<="
    queued_after: ClassVar[str] = ">"
    list_order: ClassVar[str] = "DESC"
    text_condition: ClassVar[str] = "(instr(id, ?) > 0 OR instr(key, ?) > 0)"

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        # Durable enough for tests that never crash the machine, and much faster.
        self._db.execute("PRAGMA synchronous = OFF")
        with self._write():
            self._db.execute(_SCHEMA)

    @classmethod
    def from_url(cls, url: str) -> FileStore:
        return cls(urllib.parse.urlsplit(url).path)

    # The Store interface.

    def add(self, jobs: Sequence[Job]) -> list[Job]:
        with self._write():
            stored = []
            for job in jobs:
                existing = self._by_key(job.key)
                if existing is None:
                    self._insert(job)
                stored.append(existing or job)
            return stored

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._load(job_id)

    def claim(
        self, job_ids: Sequence[str], worker: str, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Job]:
        with self._write():
            return self._claim(job_ids, worker, now, lease_until)

    def renew(self, worker: str, job_ids: Sequence[str], lease_until: dt.datetime) -> list[str]:
        with self._write():
            renewed = []
            for job_id in job_ids:
                job = self._load(job_id)
                if job is not None and self._holds(job, worker):
                    self._save(attrs.evolve(job, lease_until=self._utc(lease_until)))
                    renewed.append(job_id)
            return renewed

    def progress(self, job_id: str, attempt: int, value: JSON, worker: str | None = None) -> bool:
        with self._write():
            job = self._current(job_id, attempt, worker)
            if job is None:
                return False
            self._save(attrs.evolve(job, progress=value))
            return True

    def finish(self, reports: Sequence[Report]) -> list[Job | None]:
        with self._write():
            finished: list[Job | None] = []
            for report in reports:
                job = self._current(report.job_id, report.attempt, report.worker)
                finished.append(None if job is None else self._save(self._finished(job, report)))
            return finished

    def reclaim_expired(self, now: dt.datetime, limit: int) -> list[Job]:
        with self._write():
            jobs = self._select(
                f"state = 'running' AND lease_until {self.lease_passed} ? "
                f"ORDER BY {self.reclaim_order} LIMIT ?",
                (_text(self._utc(now)), limit),
            )
            return [self._save(self._reclaimed(job, self._utc(now))) for job in jobs]

    def promote_due(self, now: dt.datetime, limit: int) -> list[Job]:
        with self._write():
            jobs = self._select(
                f"state = 'scheduled' AND run_at {self.run_at_due} ? ORDER BY run_at, id LIMIT ?",
                (_text(self._utc(now)), limit),
            )
            return [self._save(attrs.evolve(job, state=JobState.QUEUED)) for job in jobs]

    def cancel(self, job_id: str, now: dt.datetime) -> Job | None:
        with self._write():
            job = self._load(job_id)
            if job is None or not self._cancellable(job):
                return job
            return self._save(self._cancelled(job, self._utc(now)))

    def retry(self, job_id: str, now: dt.datetime) -> Job | None:
        with self._write():
            job = self._load(job_id)
            if job is None or not self._retryable(job):
                return job
            return self._save(self._retried(job))

    def queued(self, limit: int, after: str | None = None) -> list[Job]:
        with self._lock:
            return self._select(
                f"state = 'queued' AND id {self.queued_after} ? ORDER BY id LIMIT ?",
                (after or "", limit),
            )

    def list(
        self,
        state: JobState | None = None,
        type: str | None = None,
        limit: int = 100,
        before: str | None = None,
        text: str | None = None,
    ) -> list[Job]:
        conditions, values = ["1 = 1"], []
        for column, operator, value in (
            ("state", "=", state.value if state else None),
            ("type", "=", type),
            ("id", "<", before),
        ):
            if value is not None:
                conditions.append(f"{column} {operator} ?")
                values.append(value)
        if text is not None:
            conditions.append(self.text_condition)
            values.extend([text] * self.text_condition.count("?"))
        with self._lock:
            return self._select(
                " AND ".join(conditions) + f" ORDER BY id {self.list_order} LIMIT ?",
                (*values, limit),
            )

    def counts(self) -> dict[tuple[str, JobState], int]:
        with self._lock:
            rows = self._db.execute("SELECT type, state, COUNT(*) FROM jobs GROUP BY type, state")
            return {(kind, JobState(state)): count for kind, state, count in rows}

    def purge(self, finished_before: dt.datetime, limit: int) -> int:
        with self._write():
            ids = [
                job.id
                for job in self._select(
                    f"state IN {_TERMINAL} AND finished_at < ? ORDER BY finished_at, id LIMIT ?",
                    (_text(self._utc(finished_before)), limit),
                )
            ]
            self._db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
            return len(ids)

    def clear(self) -> None:
        with self._write():
            self._db.execute("DELETE FROM jobs")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # The decisions the broken variants override.

    def _utc(self, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC)

    def _dumps(self, body: dict[str, Any]) -> str:
        return json.dumps(body)

    def _claim(
        self, job_ids: Sequence[str], worker: str, now: dt.datetime, lease_until: dt.datetime
    ) -> builtins.list[Job]:
        claimed = []
        for job_id in job_ids:
            job = self._load(job_id)
            if job is not None and self._claimable(job):
                claimed.append(self._save(self._claimed(job, worker, now, lease_until)))
        return claimed

    def _claimable(self, job: Job) -> bool:
        return job.state is JobState.QUEUED

    def _claimed(self, job: Job, worker: str, now: dt.datetime, lease_until: dt.datetime) -> Job:
        return attrs.evolve(
            job,
            state=JobState.RUNNING,
            attempt=job.attempt + 1,
            worker=worker,
            started_at=self._utc(now),
            lease_until=self._utc(lease_until),
            progress=None,
        )

    def _holds(self, job: Job, worker: str) -> bool:
        return job.state is JobState.RUNNING and job.worker == worker

    def _current(self, job_id: str, attempt: int, worker: str | None) -> Job | None:
        job = self._load(job_id)
        running = job is not None and job.state is JobState.RUNNING and job.attempt == attempt
        if running and worker is not None and job is not None and job.worker != worker:
            return None
        return job if running else None

    def _finished(self, job: Job, report: Report) -> Job:
        if report.state is JobState.SUCCEEDED:
            return attrs.evolve(
                job,
                state=JobState.SUCCEEDED,
                result=report.result,
                error=None,
                finished_at=report.now,
                lease_until=None,
            )
        if report.state is JobState.FAILED:
            return attrs.evolve(
                job,
                state=JobState.FAILED,
                error=report.error,
                finished_at=report.now,
                lease_until=None,
            )
        return attrs.evolve(
            job,
            state=report.state,
            run_at=report.run_at,
            error=report.error or job.error,
            lease_until=None,
        )

    def _reclaimed(self, job: Job, now: dt.datetime) -> Job:
        lost = JobError(type="LeaseExpired", message=f"lease of {job.worker} expired")
        if job.attempt < job.max_attempts:
            return attrs.evolve(job, state=JobState.QUEUED, error=lost, lease_until=None)
        return attrs.evolve(
            job, state=JobState.FAILED, error=lost, finished_at=now, lease_until=None
        )

    def _cancellable(self, job: Job) -> bool:
        return job.state not in TERMINAL_STATES

    def _cancelled(self, job: Job, now: dt.datetime) -> Job:
        return attrs.evolve(job, state=JobState.CANCELLED, finished_at=now, lease_until=None)

    def _retryable(self, job: Job) -> bool:
        return job.state in {JobState.FAILED, JobState.CANCELLED}

    def _retried(self, job: Job) -> Job:
        return attrs.evolve(
            job,
            state=JobState.QUEUED,
            finished_at=None,
            result=None,
            run_at=None,
            max_attempts=max(job.max_attempts, job.attempt + 1),
        )

    # Storage.

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction, taken at once so that other processes wait for it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _load(self, job_id: str) -> Job | None:
        row = self._db.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else self._decode(row[0])

    def _by_key(self, key: str | None) -> Job | None:
        if key is None:
            return None
        row = self._db.execute("SELECT body FROM jobs WHERE key = ?", (key,)).fetchone()
        return None if row is None else self._decode(row[0])

    def _select(self, where: str, values: Sequence[object]) -> builtins.list[Job]:
        rows = self._db.execute(f"SELECT body FROM jobs WHERE {where}", values)
        return [self._decode(body) for (body,) in rows]

    def _insert(self, job: Job) -> None:
        self._db.execute(
            "INSERT INTO jobs (id, key, type, state, priority, lease_until, run_at, finished_at,"
            " body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._row(job),
        )

    def _save(self, job: Job) -> Job:
        self._db.execute(
            "UPDATE jobs SET key = ?, type = ?, state = ?, priority = ?, lease_until = ?,"
            " run_at = ?, finished_at = ?, body = ? WHERE id = ?",
            (*self._row(job)[1:], job.id),
        )
        return job

    def _row(self, job: Job) -> tuple[object, ...]:
        body = attrs.asdict(job, recurse=False)
        body["state"] = job.state.value
        body["error"] = attrs.asdict(job.error) if job.error else None
        for name in ("run_at", "created_at", "started_at", "finished_at", "lease_until"):
            body[name] = _text(body[name])
        return (
            job.id,
            job.key,
            job.type,
            job.state.value,
            job.priority,
            _text(job.lease_until),
            _text(job.run_at),
            _text(job.finished_at),
            self._dumps(body),
        )

    def _decode(self, text: str) -> Job:
        body = json.loads(text)
        for name in ("run_at", "created_at", "started_at", "finished_at", "lease_until"):
            body[name] = _time(body[name])
        body["error"] = JobError(**body["error"]) if body["error"] else None
        return Job(**body)


# One variant per clause, each breaking only that clause's rule.


class AddReturnsReversed(FileStore):
    """add returns the stored jobs in reverse order."""

    def add(self, jobs: Sequence[Job]) -> list[Job]:
        return super().add(jobs)[::-1]


class GetLosesKey(FileStore):
    """get forgets the job's key, as if the column were not selected."""

    def get(self, job_id: str) -> Job | None:
        job = super().get(job_id)
        return None if job is None else attrs.evolve(job, key=None)


class KeyOnlyAgainstStored(FileStore):
    """A repeated key is looked up among stored jobs only, not earlier in the batch."""

    def add(self, jobs: Sequence[Job]) -> list[Job]:
        with self._write():
            stored, seen = [], set()
            for job in jobs:
                existing = self._by_key(job.key)
                if existing is not None and job.key not in seen:
                    stored.append(existing)
                    continue
                if existing is None:
                    self._insert(job)
                    seen.add(job.key)
                stored.append(job)
            return stored


class GetUnknownRaises(FileStore):
    """get of an unknown id raises instead of returning None."""

    def get(self, job_id: str) -> Job | None:
        job = super().get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job


class DropsNul(FileStore):
    """JSON text loses NUL characters, as PostgreSQL's jsonb would refuse them."""

    def _dumps(self, body: dict[str, Any]) -> str:
        return super()._dumps(body).replace("\\u0000", "")


class WallClockTimes(FileStore):
    """A time given in another timezone is stored by its clock reading, as if UTC."""

    def _utc(self, value: dt.datetime) -> dt.datetime:
        return value.replace(tzinfo=dt.UTC)


class EmptyRenewMeansAll(FileStore):
    """renew with no ids renews every job the worker holds ("no filter" means all)."""

    def renew(self, worker: str, job_ids: Sequence[str], lease_until: dt.datetime) -> list[str]:
        if not job_ids:
            with self._lock:
                job_ids = [job.id for job in self._select("state = 'running'", ())]
        return super().renew(worker, job_ids, lease_until)


class ClaimInIdOrder(FileStore):
    """claim returns the claimed jobs in id order, not in the order asked."""

    def claim(
        self, job_ids: Sequence[str], worker: str, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Job]:
        return sorted(super().claim(job_ids, worker, now, lease_until), key=lambda job: job.id)


class ClaimsScheduled(FileStore):
    """claim also starts scheduled jobs."""

    def _claimable(self, job: Job) -> bool:
        return job.state in {JobState.QUEUED, JobState.SCHEDULED}


class ClaimRacesThreads(FileStore):
    """claim reads, lets go of the lock, then writes: two threads can both win."""

    def claim(
        self, job_ids: Sequence[str], worker: str, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Job]:
        with self._lock:
            queued = [job for job in map(self._load, job_ids) if job and self._claimable(job)]
        time.sleep(0.002)
        with self._write():
            return [self._save(self._claimed(j, worker, now, lease_until)) for j in queued]


class ClaimRacesProcesses(FileStore):
    """claim reads and writes in two transactions: safe between threads, not processes."""

    def claim(
        self, job_ids: Sequence[str], worker: str, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Job]:
        with self._lock:
            with self._write():
                queued = [job for job in map(self._load, job_ids) if job and self._claimable(job)]
            time.sleep(0.005)
            with self._write():
                return [self._save(self._claimed(j, worker, now, lease_until)) for j in queued]


class RenewWithoutExtending(FileStore):
    """renew answers with the worker's ids but does not move their leases."""

    def renew(self, worker: str, job_ids: Sequence[str], lease_until: dt.datetime) -> list[str]:
        with self._lock:
            return [i for i in job_ids if (job := self._load(i)) and self._holds(job, worker)]


class RenewAnyWorker(FileStore):
    """renew extends any running job, whoever holds it."""

    def _holds(self, job: Job, worker: str) -> bool:
        return job.state is JobState.RUNNING


class ProgressAnyAttempt(FileStore):
    """progress is recorded for any attempt of a running job."""

    def progress(self, job_id: str, attempt: int, value: JSON, worker: str | None = None) -> bool:
        job = self.get(job_id)
        return super().progress(job_id, job.attempt if job else attempt, value, worker)


class ProgressAnyWorker(FileStore):
    """progress is recorded for the running attempt whichever worker sends it."""

    def progress(self, job_id: str, attempt: int, value: JSON, worker: str | None = None) -> bool:
        return super().progress(job_id, attempt, value)


class SucceededKeepsError(FileStore):
    """A succeeded job keeps the error of an earlier attempt."""

    def _finished(self, job: Job, report: Report) -> Job:
        done = super()._finished(job, report)
        return attrs.evolve(done, error=job.error) if done.state is JobState.SUCCEEDED else done


class FailedKeepsLease(FileStore):
    """A failed job keeps its lease."""

    def _finished(self, job: Job, report: Report) -> Job:
        done = super()._finished(job, report)
        failed = done.state is JobState.FAILED
        return attrs.evolve(done, lease_until=job.lease_until) if failed else done


class RetryDropsError(FileStore):
    """A job put back by its worker takes the report's error even when that is None."""

    def _finished(self, job: Job, report: Report) -> Job:
        done = super()._finished(job, report)
        retried = done.state in {JobState.QUEUED, JobState.SCHEDULED}
        return attrs.evolve(done, error=report.error) if retried else done


class FinishAnyAttempt(FileStore):
    """A report is applied to a running job whatever attempt it names."""

    def _current(self, job_id: str, attempt: int, worker: str | None) -> Job | None:
        job = self._load(job_id)
        return job if job is not None and job.state is JobState.RUNNING else None


class FinishAnyWorker(FileStore):
    """A report is applied to the running attempt whichever worker sends it."""

    def finish(self, reports: Sequence[Report]) -> list[Job | None]:
        return super().finish([attrs.evolve(report, worker=None) for report in reports])


class ReclaimWithoutError(FileStore):
    """A job requeued after its lease expired carries no error."""

    def _reclaimed(self, job: Job, now: dt.datetime) -> Job:
        lost = super()._reclaimed(job, now)
        return attrs.evolve(lost, error=None) if lost.state is JobState.QUEUED else lost


class ReclaimNeverFails(FileStore):
    """A job whose lease expired is requeued even with no attempts left."""

    def _reclaimed(self, job: Job, now: dt.datetime) -> Job:
        return super()._reclaimed(attrs.evolve(job, max_attempts=job.attempt + 1), now)


class ReclaimAtLeaseEnd(FileStore):
    """A lease ending exactly now counts as expired."""

    lease_passed = "<="


class ReclaimInIdOrder(FileStore):
    """reclaim_expired takes the oldest ids first instead of the earliest leases."""

    reclaim_order = "id"


class PromoteOnlyPast(FileStore):
    """A job whose run_at is exactly now is not yet promoted."""

    run_at_due = "<"


class CancelKeepsLease(FileStore):
    """A cancelled job keeps its lease."""

    def _cancelled(self, job: Job, now: dt.datetime) -> Job:
        return attrs.evolve(super()._cancelled(job, now), lease_until=job.lease_until)


class CancelsTerminal(FileStore):
    """cancel also cancels succeeded and failed jobs."""

    def _cancellable(self, job: Job) -> bool:
        return job.state is not JobState.CANCELLED


class RetryWithoutAttempt(FileStore):
    """retry requeues a used-up job without allowing another attempt."""

    def _retried(self, job: Job) -> Job:
        return attrs.evolve(super()._retried(job), max_attempts=job.max_attempts)


class RetriesSucceeded(FileStore):
    """retry also requeues succeeded jobs."""

    def _retryable(self, job: Job) -> bool:
        return job.state in TERMINAL_STATES


class QueuedCursorInclusive(FileStore):
    """queued(after=x) includes x itself."""

    queued_after = ">="


class ListOldestFirst(FileStore):
    """list returns the oldest jobs first."""

    list_order = "ASC"


class ListStateIgnoresType(FileStore):
    """list ignores the type filter when a state is also given."""

    def list(
        self,
        state: JobState | None = None,
        type: str | None = None,
        limit: int = 100,
        before: str | None = None,
        text: str | None = None,
    ) -> list[Job]:
        return super().list(state, None if state else type, limit, before, text)


class ListTextMissesKeys(FileStore):
    """list(text=...) looks for the text in ids only, never in keys."""

    text_condition = "instr(id, ?) > 0"


class CountsKeepZeros(FileStore):
    """counts lists every state of every type it holds, zeros included."""

    def counts(self) -> dict[tuple[str, JobState], int]:
        found = super().counts()
        kinds = {kind for kind, _ in found}
        return {(kind, state): found.get((kind, state), 0) for kind in kinds for state in JobState}


class PurgeIgnoresLimit(FileStore):
    """purge deletes every job finished before the time, however many."""

    def purge(self, finished_before: dt.datetime, limit: int) -> int:
        return super().purge(finished_before, 1_000_000)


class ClearKeepsFinished(FileStore):
    """clear deletes only the jobs that are not finished."""

    def clear(self) -> None:
        with self._write():
            self._db.execute(f"DELETE FROM jobs WHERE state NOT IN {_TERMINAL}")


class FilePerProcess(FileStore):
    """Says it is shared, but each process opens a file of its own."""

    @classmethod
    def from_url(cls, url: str) -> FileStore:
        return cls(f"{urllib.parse.urlsplit(url).path}.{os.getpid()}")


class ForgetsOnClose(FileStore):
    """Says it is durable, but deletes its jobs on close."""

    def close(self) -> None:
        with contextlib.suppress(sqlite3.ProgrammingError):
            self.clear()
        super().close()


class QueuedSkipsNegativePriority(FileStore):
    """queued leaves out jobs with a negative priority; only the model test tries one."""

    def queued(self, limit: int, after: str | None = None) -> list[Job]:
        return [job for job in super().queued(limit, after) if job.priority >= 0]


#: The variant that breaks each clause.
BROKEN: Final[dict[str, type[FileStore]]] = {
    "store.add.returns": AddReturnsReversed,
    "store.add.get": GetLosesKey,
    "store.add.key": KeyOnlyAgainstStored,
    "store.get.unknown": GetUnknownRaises,
    "store.data.roundtrip": DropsNul,
    "store.times.utc": WallClockTimes,
    "store.batch.empty": EmptyRenewMeansAll,
    "store.claim.queued": ClaimInIdOrder,
    "store.claim.skips": ClaimsScheduled,
    "store.claim.once.threads": ClaimRacesThreads,
    "store.claim.once.processes": ClaimRacesProcesses,
    "store.renew.own": RenewWithoutExtending,
    "store.renew.others": RenewAnyWorker,
    "store.progress.fenced": ProgressAnyAttempt,
    "store.progress.owner": ProgressAnyWorker,
    "store.finish.succeeded": SucceededKeepsError,
    "store.finish.failed": FailedKeepsLease,
    "store.finish.retry": RetryDropsError,
    "store.finish.fenced": FinishAnyAttempt,
    "store.finish.owner": FinishAnyWorker,
    "store.reclaim.requeue": ReclaimWithoutError,
    "store.reclaim.fail": ReclaimNeverFails,
    "store.reclaim.live": ReclaimAtLeaseEnd,
    "store.reclaim.limit": ReclaimInIdOrder,
    "store.promote.due": PromoteOnlyPast,
    "store.cancel.active": CancelKeepsLease,
    "store.cancel.terminal": CancelsTerminal,
    "store.retry.requeues": RetryWithoutAttempt,
    "store.retry.others": RetriesSucceeded,
    "store.queued.order": QueuedCursorInclusive,
    "store.list.order": ListOldestFirst,
    "store.list.filter": ListStateIgnoresType,
    "store.list.text": ListTextMissesKeys,
    "store.counts": CountsKeepZeros,
    "store.purge.terminal": PurgeIgnoresLimit,
    "store.clear.empties": ClearKeepsFinished,
    "store.shared.visible": FilePerProcess,
    "store.durable.reopen": ForgetsOnClose,
    "store.model.reference": QueuedSkipsNegativePriority,
}


def scheme_for(clause_id: str) -> str:
    """The URL scheme of the variant that breaks ``clause_id``."""
    return "broken-" + clause_id.removeprefix("store.")


@hookimpl
def forerunner_store_backends() -> Mapping[str, Callable[[str], Store]]:
    backends: dict[str, Callable[[str], Store]] = {SCHEME: FileStore.from_url}
    for clause_id, variant in BROKEN.items():
        backends[scheme_for(clause_id)] = variant.from_url
    return backends
