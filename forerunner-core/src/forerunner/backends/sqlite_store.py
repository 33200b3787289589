"""``sqlite://``: the embedded durable store, one SQLite file shared by threads and processes.

It is the default store of ``forerunner manager``: durable with nothing to install.
Safety across processes comes from SQLite itself: the file is in WAL mode (readers and
the one writer do not block each other), every mutating call is one ``BEGIN
IMMEDIATE`` transaction (it takes the write lock before reading, so two processes
claiming one job serialise and the second finds it running), and a busy timeout makes
a writer wait for the lock instead of failing at once.

Connections come from a small pool: a call borrows one for its duration, so any
thread may call, a connection is never used by two threads at once, and the pool grows
only to the number of concurrent calls. :meth:`SQLiteStore.close` closes the idle ones
at once and each borrowed one as its call returns it.

Every call runs a fixed number of statements whatever its batch size (a batch is bound
into a temporary table with one ``executemany``, see ``sql/sqlite/queries.sql`` for
why), so the manager's batches of hundreds cost no Python round trip per job. The SQL
is in ``sql/sqlite/queries.sql`` and the schema in ``sql/sqlite/schema.sql``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from typing import TYPE_CHECKING, Any, ClassVar, Final, final

from forerunner.backends.encoding import dump_json, from_micros, load_json, to_micros
from forerunner.backends.lease import LEASE_EXPIRED
from forerunner.backends.reports import applicable_reports
from forerunner.backends.urls import sqlite_path
from forerunner.errors import (
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    ForerunnerError,
    ValidationError,
)
from forerunner.model import Job, JobError, JobState, stored_job
from forerunner.sqlfiles import load_queries, load_script

if TYPE_CHECKING:
    import builtins
    import datetime as dt
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from forerunner.model import JSON, Report

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

logger = logging.getLogger(__name__)

#: The schema version this code writes and reads; a file with a newer one is refused.
SCHEMA_VERSION: Final = 1

#: How long a call waits for another connection's write lock before giving up with
#: :class:`~forerunner.errors.BackendUnavailable`.
DEFAULT_BUSY_TIMEOUT: Final = 30.0

_Q: Final = load_queries("forerunner.backends", "sql/sqlite/queries.sql")
_STATES: Final = {state.value: state for state in JobState}
_SCHEMA: Final = load_script("forerunner.backends", "sql/sqlite/schema.sql")

#: Errors that mean another connection holds a lock: retrying later may work.
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

#: The ``:before`` bound of the first page of a listing: SQLite orders every TEXT value
#: before every BLOB, so the empty BLOB is above every id.
_ABOVE_EVERY_ID: Final = b""
#: The ``:after`` bound of the first page of ``queued``: every id is non-empty.
_BELOW_EVERY_ID: Final = ""


@final
class SQLiteStore:
    """The jobs in one SQLite file; any thread or process that opens the file sees them."""

    durable: ClassVar[bool] = True
    shared: ClassVar[bool] = True

    def __init__(self, path: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        """Open (creating if needed) the database at ``path`` and bring its schema up.

        :param busy_timeout: seconds a call waits for another writer before it fails.
        """
        #: The absolute path of the database file.
        self.path = os.path.abspath(path)
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        #: Held for each write transaction. The threads of one process queue here for
        #: SQLite's write lock rather than in its busy handler, which sleeps in steps of
        #: up to 100 ms: with a submit, a claim, a finish and the reaper writing at once,
        #: those sleeps made a 1 ms hand-out take 30 ms. Other processes still meet the
        #: busy handler.
        self._writing = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []
        self._closed = False
        self._pid = os.getpid()
        self._idle.append(self._open_file())
        logger.debug("opened SQLite store %r", self.path, extra={"action": "store_open"})

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """Open ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``."""
        return cls(sqlite_path(url))

    def add(self, jobs: Sequence[Job]) -> list[Job]:
        rows = [_to_row(job) for job in jobs]
        if not rows:
            return []
        keys = list(dict.fromkeys(job.key for job in jobs if job.key is not None))
        with self._transaction() as conn:
            existing: dict[str, Job] = {}
            if keys:
                self._fill_batch(conn, keys)
                for row in conn.execute(_Q["jobs_with_keys"]).fetchall():
                    existing[row["key"]] = _from_row(row)
            first_with_key: dict[str, int] = {}
            inserting: list[int] = []
            for index, job in enumerate(jobs):
                if job.key is not None:
                    if job.key in existing or job.key in first_with_key:
                        continue
                    first_with_key[job.key] = index
                inserting.append(index)
            self._insert(conn, [rows[index] for index in inserting])
        inserted = {index: _from_row(rows[index]) for index in inserting}
        stored: list[Job] = []
        for index, job in enumerate(jobs):
            if job.key is None:
                stored.append(inserted[index])
            elif job.key in existing:
                stored.append(existing[job.key])
            else:
                stored.append(inserted[first_with_key[job.key]])
        return stored

    def get(self, job_id: str) -> Job | None:
        with self._connection() as conn:
            row = _first(conn.execute(_Q["get_job"], {"id": job_id}))
        return None if row is None else _from_row(row)

    def claim(
        self, job_ids: Sequence[str], worker: str, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Job]:
        if not job_ids:
            return []
        with self._transaction() as conn:
            self._fill_batch(conn, job_ids)
            rows = conn.execute(
                _Q["claim_jobs"],
                {"worker": worker, "now": to_micros(now), "lease_until": to_micros(lease_until)},
            ).fetchall()
        claimed = {row["id"]: row for row in rows}
        return [_from_row(claimed.pop(job_id)) for job_id in job_ids if job_id in claimed]

    def renew(self, worker: str, job_ids: Sequence[str], lease_until: dt.datetime) -> list[str]:
        if not job_ids:
            return []
        with self._transaction() as conn:
            self._fill_batch(conn, job_ids)
            rows = conn.execute(
                _Q["renew_leases"], {"worker": worker, "lease_until": to_micros(lease_until)}
            ).fetchall()
        renewed = {row["id"] for row in rows}
        return [job_id for job_id in job_ids if job_id in renewed]

    def progress(self, job_id: str, attempt: int, value: JSON, worker: str | None = None) -> bool:
        encoded = dump_json(value, field="progress")
        params = {"id": job_id, "attempt": attempt, "worker": worker, "progress": encoded}
        with self._transaction() as conn:
            cursor = conn.execute(_Q["record_progress"], params)
            return cursor.rowcount == 1

    def finish(self, reports: Sequence[Report]) -> list[Job | None]:
        # Only the reports that could still apply after the earlier ones go to the
        # UPDATE, so that it joins each job to at most one report (reports.py).
        batch = applicable_reports(reports)
        rows = [
            _report_row(reports[index], contested=index in batch.contested)
            for index in batch.indexes
        ]
        if not rows:
            return []
        with self._transaction() as conn:
            conn.execute(_Q["clear_reports"])
            conn.executemany(_Q["fill_reports"], rows)
            finished = conn.execute(_Q["finish_jobs"]).fetchall()
        results: list[Job | None] = [None] * len(reports)
        for row in finished:
            job = _from_row(row)
            results[batch.index_of(job)] = job
        return results

    def reclaim_expired(self, now: dt.datetime, limit: int) -> list[Job]:
        if limit < 1:
            return []
        params = {
            "now": to_micros(now),
            "limit": limit,
            "error_type": LEASE_EXPIRED.type,
            "error_message": LEASE_EXPIRED.message,
            "error_traceback": LEASE_EXPIRED.traceback,
        }
        with self._transaction() as conn:
            order = [row["id"] for row in conn.execute(_Q["expired_leases"], params).fetchall()]
            if not order:
                return []
            rows = conn.execute(_Q["reclaim_jobs"], params).fetchall()
        reclaimed = {row["id"]: row for row in rows}
        return [_from_row(reclaimed[job_id]) for job_id in order if job_id in reclaimed]

    def promote_due(self, now: dt.datetime, limit: int) -> list[Job]:
        if limit < 1:
            return []
        with self._transaction() as conn:
            rows = conn.execute(
                _Q["promote_jobs"], {"now": to_micros(now), "limit": limit}
            ).fetchall()
        rows.sort(key=lambda row: (row["run_at"], row["id"]))
        return [_from_row(row) for row in rows]

    def cancel(self, job_id: str, now: dt.datetime) -> Job | None:
        with self._transaction() as conn:
            row = _first(conn.execute(_Q["cancel_job"], {"id": job_id, "now": to_micros(now)}))
            if row is None:
                row = _first(conn.execute(_Q["get_job"], {"id": job_id}))
        return None if row is None else _from_row(row)

    def retry(self, job_id: str, now: dt.datetime) -> Job | None:
        with self._transaction() as conn:
            row = _first(conn.execute(_Q["retry_job"], {"id": job_id}))
            if row is None:
                row = _first(conn.execute(_Q["get_job"], {"id": job_id}))
        return None if row is None else _from_row(row)

    def queued(self, limit: int, after: str | None = None) -> list[Job]:
        if limit < 1:
            return []
        params = {"after": _BELOW_EVERY_ID if after is None else after, "limit": limit}
        return self._select(_Q["queued_jobs"], params)

    def list(
        self,
        state: JobState | None = None,
        type: str | None = None,
        limit: int = 100,
        before: str | None = None,
        text: str | None = None,
    ) -> list[Job]:
        if limit < 1:
            return []
        params: dict[str, object] = {
            "before": _ABOVE_EVERY_ID if before is None else before,
            "limit": limit,
            "state": None if state is None else JobState(state).value,
            "type": type,
            "text": text,
        }
        if text is not None:
            query = _Q["list_jobs_matching"]
        elif state is None:
            query = _Q["list_jobs"] if type is None else _Q["list_jobs_of_type"]
        else:
            query = _Q["list_jobs_in_state"] if type is None else _Q["list_jobs_in_state_of_type"]
        return self._select(query, params)

    def counts(self) -> dict[tuple[str, JobState], int]:
        with self._connection() as conn:
            rows = conn.execute(_Q["count_jobs"]).fetchall()
        return {(row["type"], JobState(row["state"])): row["jobs"] for row in rows}

    def purge(self, finished_before: dt.datetime, limit: int) -> int:
        if limit < 1:
            return 0
        with self._transaction() as conn:
            cursor = conn.execute(
                _Q["purge_jobs"], {"finished_before": to_micros(finished_before), "limit": limit}
            )
            return cursor.rowcount

    def clear(self) -> None:
        with self._transaction() as conn:
            conn.execute(_Q["clear_jobs"])

    def close(self) -> None:
        """Close every connection: idle ones now, borrowed ones when their call returns.

        Safe from any thread and more than once; the store refuses calls afterwards.
        """
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _select(self, query: str, params: Mapping[str, object]) -> builtins.list[Job]:
        with self._connection() as conn:
            rows = conn.execute(query, params).fetchall()
        return [_from_row(row) for row in rows]

    def _insert(self, conn: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> None:
        ids = [row["id"] for row in rows]
        if len(set(ids)) != len(ids):
            repeated = next(job_id for job_id in ids if ids.count(job_id) > 1)
            raise _id_taken(repeated)
        try:
            conn.executemany(_Q["insert_job"], rows)
        except sqlite3.IntegrityError as error:
            self._fill_batch(conn, ids)
            found = _first(conn.execute(_Q["stored_ids"]))
            raise _id_taken(found["id"] if found else None) from error

    @staticmethod
    def _fill_batch(conn: sqlite3.Connection, values: Iterable[str]) -> None:
        conn.execute(_Q["clear_batch"])
        conn.executemany(_Q["fill_batch"], ((value,) for value in values))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed if the block returns, else rolled back."""
        with self._connection() as conn:
            writing = self._writing
            if not writing.acquire(timeout=self._busy_timeout):
                raise BackendUnavailable(
                    f"SQLite store {self.path!r} is busy: another call of this process held "
                    f"the write lock for over {self._busy_timeout:g} s; retry later"
                )
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                writing.release()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection for one call, translating driver errors on the way out."""
        conn = self._checkout()
        try:
            with _translated_errors(self.path):
                yield conn
        finally:
            self._checkin(conn)

    def _checkout(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise BackendError(
                    f"the SQLite store {self.path!r} is closed; open it again to go on"
                )
            if self._pid != os.getpid():
                # A forked child must not use its parent's connections (SQLite forbids
                # it), nor close them, which would touch the parent's file state: keep
                # them referenced, so that garbage collection does not close them either.
                self._pid = os.getpid()
                self._inherited.extend(self._idle)
                self._idle = []
                # A thread of the parent may have held it at the fork, and that thread
                # does not exist here to release it.
                self._writing = threading.Lock()
            if self._idle:
                return self._idle.pop()
        with _translated_errors(self.path):
            return self._connect()

    def _checkin(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            # Only a failed COMMIT or ROLLBACK leaves one open; the next call needs none.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        with self._lock:
            if not self._closed and self._pid == os.getpid():
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.executescript(_Q["configure_connection"])
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_file(self) -> sqlite3.Connection:
        """Connect for the first time: check the path, turn WAL on, apply the schema."""
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise ConfigurationError(
                f"SQLite store {self.path!r}: the directory {directory!r} does not exist; "
                "create it, or point the sqlite:// URL at an existing directory"
            )
        try:
            conn = self._connect()
            try:
                mode = _first(conn.execute(_Q["enable_wal"]))[0]
                conn.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nCOMMIT;")
                version = _first(conn.execute(_Q["schema_version"]))["version"]
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                conn.close()
                raise
        except sqlite3.Error as error:
            if _is_busy(error):
                raise _unavailable(self.path, error) from error
            raise ConfigurationError(
                f"SQLite store {self.path!r} cannot be opened: {error}. The path must name "
                "a SQLite database, or a new file in a directory this user may write to"
            ) from error
        problem = None
        if str(mode).lower() != "wal":
            problem = (
                f"its journal mode stays {mode!r}: SQLite cannot use WAL there (a network "
                "file system?), and without WAL processes would block each other"
            )
        elif version != SCHEMA_VERSION:
            problem = (
                f"its schema is version {version}, this forerunner knows version "
                f"{SCHEMA_VERSION}; upgrade forerunner-core to open it"
            )
        if problem is not None:
            conn.close()
            raise ConfigurationError(f"SQLite store {self.path!r} cannot be used: {problem}")
        return conn


@contextlib.contextmanager
def _translated_errors(path: str) -> Iterator[None]:
    """Re-raise what the driver raises as forerunner errors, the driver's chained."""
    try:
        yield
    except ForerunnerError:
        raise
    except sqlite3.Error as error:
        if _is_busy(error):
            raise _unavailable(path, error) from error
        raise BackendError(
            f"SQLite store {path!r} failed: {type(error).__name__}: {error}"
        ) from error
    except (OverflowError, UnicodeEncodeError) as error:
        raise ValidationError(
            f"a value cannot be stored in SQLite: {error}. Integers must fit in 64 bits, "
            "and strings must be valid Unicode"
        ) from error


def _first(cursor: sqlite3.Cursor) -> Any:
    """The first row, or None; reads the cursor to its end, so its statement is reset.

    A statement left part-read would hold its read snapshot on the pooled connection.
    """
    rows = cursor.fetchall()
    return rows[0] if rows else None


def _is_busy(error: sqlite3.Error) -> bool:
    return isinstance(error, sqlite3.OperationalError) and (
        error.sqlite_errorcode & 0xFF in _BUSY_CODES
    )


def _unavailable(path: str, error: sqlite3.Error) -> BackendUnavailable:
    return BackendUnavailable(
        f"SQLite store {path!r} is busy: {error}. Another connection held the write lock "
        "longer than the busy timeout; retry later, or find the process that holds it"
    )


def _id_taken(job_id: str | None) -> ValidationError:
    which = f"job id {job_id!r} is" if job_id is not None else "a job id of the batch is"
    return ValidationError(
        f"{which} already stored or repeated in the batch; every job needs a new id "
        "(forerunner.new_id())",
        field="id",
    )


def _to_row(job: Job) -> dict[str, Any]:
    """The columns of ``job`` as :mod:`~forerunner.backends.encoding` stores them."""
    error = job.error
    return {
        "id": job.id,
        "type": job.type,
        "data": dump_json(job.data, field="data"),
        "state": JobState(job.state).value,
        "priority": job.priority,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "key": job.key,
        "run_at": to_micros(job.run_at),
        "timeout": None if job.timeout is None else float(job.timeout),
        "created_at": to_micros(job.created_at),
        "started_at": to_micros(job.started_at),
        "finished_at": to_micros(job.finished_at),
        "worker": job.worker,
        "lease_until": to_micros(job.lease_until),
        "progress": dump_json(job.progress, field="progress"),
        "result": dump_json(job.result, field="result"),
        "error_type": None if error is None else error.type,
        "error_message": None if error is None else error.message,
        "error_traceback": None if error is None else error.traceback,
    }


def _from_row(row: sqlite3.Row | Mapping[str, Any]) -> Job:
    """The job a row of ``forerunner_jobs`` (or :func:`_to_row`'s dict) holds."""
    error_type = row["error_type"]
    return stored_job(
        row["id"],
        row["type"],
        load_json(row["data"]),
        _STATES[row["state"]],
        row["priority"],
        row["attempt"],
        row["max_attempts"],
        row["key"],
        from_micros(row["run_at"]),
        row["timeout"],
        from_micros(row["created_at"]),
        from_micros(row["started_at"]),
        from_micros(row["finished_at"]),
        row["worker"],
        from_micros(row["lease_until"]),
        load_json(row["progress"]),
        load_json(row["result"]),
        None
        if error_type is None
        else JobError(
            type=error_type, message=row["error_message"], traceback=row["error_traceback"]
        ),
    )


def _report_row(report: Report, *, contested: bool) -> dict[str, Any]:
    succeeded = report.state is JobState.SUCCEEDED
    error = None if succeeded else report.error
    return {
        "job_id": report.job_id,
        "attempt": report.attempt,
        "worker": report.worker,
        "contested": contested,
        "state": JobState(report.state).value,
        "now": to_micros(report.now),
        "result": dump_json(report.result, field="result") if succeeded else None,
        "error_type": None if error is None else error.type,
        "error_message": None if error is None else error.message,
        "error_traceback": None if error is None else error.traceback,
        "run_at": to_micros(report.run_at),
    }
