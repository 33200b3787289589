"""``postgresql://``: the production store, every job in one PostgreSQL table.

Each call borrows a connection from a psycopg pool and runs one statement in
autocommit mode: PostgreSQL runs a lone statement as its own transaction, so a batch is
applied whole or not at all, in one round trip. The SQL is in ``sql/queries.sql`` (why
each statement is safe when many managers share the table is written beside it), the
schema in ``sql/migrations/`` and, for reading, ``sql/schema.sql``.

Failures: a lost connection, a restarting server or an exhausted pool raise
:class:`~forerunner.errors.BackendUnavailable` naming the URL (password masked) and the
cause. The broken connection is dropped, the pool's idle connections are checked and
replaced, so the calls after the server is back succeed. A read that met a dead
connection is tried once more on a fresh one; a write is not, because its statement may
have committed before the connection died, and only the caller knows whether doing it
again is harmless. A deadlock or serialization failure aborted the statement, so it is
run again, up to :data:`ATTEMPTS` times.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar, final

import psycopg
import psycopg_pool
from psycopg.types.json import set_json_loads

from forerunner.backends.lease import LEASE_EXPIRED
from forerunner.backends.reports import applicable_reports
from forerunner.errors import BackendError, ForerunnerError
from forerunner.model import Job, JobState
from forerunner.sqlfiles import load_queries
from forerunner_postgres_store import schema as migrations
from forerunner_postgres_store.failures import (
    describe,
    is_connection_failure,
    is_transient_conflict,
    translate,
)
from forerunner_postgres_store.rows import (
    dump_error,
    dump_json,
    job_columns,
    job_row,
    load_json_text,
    positioned_job_row,
    report_columns,
)
from forerunner_postgres_store.urls import parse_url

if TYPE_CHECKING:
    import builtins
    import datetime as dt
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from forerunner.model import JSON, Report
    from forerunner_postgres_store.schema import MigrationResult
    from forerunner_postgres_store.urls import StoreURL

__all__ = ["ATTEMPTS", "PostgresStore", "migrate"]

logger = logging.getLogger(__name__)

_Q: Final = load_queries("forerunner_postgres_store", "sql/queries.sql")

#: How many times a statement runs when PostgreSQL aborts it for a deadlock or a
#: serialization failure.
ATTEMPTS: Final = 3

#: JSON values that are their own round trip.
_SCALARS: Final = frozenset({type(None), str, int, float, bool})
_TIMEOUTS: Final = frozenset({type(None), float})

#: How long the pool keeps retrying a connection it could not open, with growing
#: pauses, before it gives up and lets the next call try at once. psycopg_pool's 300 s
#: would let the pauses grow past a minute during a long outage, and the store would
#: stay down that long after the server is back.
RECONNECT_SECONDS: Final = 10.0

_Connection = psycopg.Connection[tuple[Any, ...]]
T = TypeVar("T")


@final
class PostgresStore:
    """The jobs in one PostgreSQL schema; every process that opens the URL sees them."""

    durable: ClassVar[bool] = True
    shared: ClassVar[bool] = True

    def __init__(self, url: str) -> None:
        """Connect, bring the schema up to date (unless ``migrate=false``), open the pool.

        Raises :class:`~forerunner.errors.BackendUnavailable` when the server does not
        answer and :class:`~forerunner.errors.ConfigurationError` for a URL or schema it
        cannot use, both naming the URL with its password masked.
        """
        self._url: Final[StoreURL] = parse_url(url)
        #: The URL with its password masked, as it appears in every message.
        self.url: Final = self._url.display
        #: The PostgreSQL schema holding the tables.
        self.schema: Final = self._url.schema
        self._lock = threading.Lock()
        self._inherited: list[psycopg_pool.ConnectionPool[_Connection]] = []
        self._pid = os.getpid()
        self._behind = False
        #: What opening did to the schema: the version found, and the migrations applied.
        self.opened: Final[MigrationResult] = self._prepare_schema()
        self._pool = self._open_pool()
        logger.debug("opened PostgreSQL store %s", self.url, extra={"action": "store_open"})

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """Open ``postgresql://`` or ``postgres://`` URLs; the plugin's factory."""
        return cls(url)

    def migrate(self) -> MigrationResult:
        """Apply the migrations this schema lacks; safe while other managers use it.

        Returns the schema's version when this store opened it and every migration
        applied since, by the opening or by this call, which is what ``forerunner
        migrate --store URL`` reports.
        """
        done = _migrate(self._url)
        self._behind = False
        return migrations.MigrationResult(
            schema=self.schema,
            before=self.opened.before,
            after=done.after,
            applied=self.opened.applied + done.applied,
        )

    # The Store interface.

    def add(self, jobs: Sequence[Job]) -> list[Job]:
        if not jobs:
            return []
        # Only the first job of each key is sent: the later ones return it.
        first_of_key: dict[str, int] = {}
        sent: list[int] = []
        for index, job in enumerate(jobs):
            if job.key is not None:
                if job.key in first_of_key:
                    continue
                first_of_key[job.key] = index
            sent.append(index)
        params = job_columns([jobs[index] for index in sent])
        data = params["data"]
        progress = params["progress"]
        result = params["result"]

        def work(conn: _Connection) -> tuple[dict[int, Job | None], dict[str, Job]]:
            with conn.cursor(row_factory=positioned_job_row) as cursor:
                refused = dict(cursor.execute(_Q["add_jobs"], params).fetchall())
            # A key's holder committed after the statement began is not in its snapshot.
            unseen = [jobs[sent[position - 1]].key for position, job in refused.items() if not job]
            late: dict[str, Job] = {}
            if unseen:
                with conn.cursor(row_factory=job_row) as cursor:
                    for job in cursor.execute(_Q["jobs_with_keys"], {"keys": unseen}):
                        late[job.key or ""] = job
            return refused, late

        refused, late = self._run(work, writes=True)
        stored: dict[int, Job] = {}
        by_key: dict[str, Job] = {}
        for position, index in enumerate(sent, start=1):
            job = jobs[index]
            if position in refused:
                holder = refused[position] or late.get(job.key or "")
                if holder is None:
                    raise BackendError(
                        f"the PostgreSQL store {self.url} did not insert job {job.id} for "
                        f"its key {job.key!r}, and no job holds that key: it was purged "
                        "at the same moment; add the job again"
                    )
                stored[index] = holder
            else:
                stored[index] = _as_stored(job, data[position - 1], progress[position - 1],
                                           result[position - 1])  # fmt: skip
            if job.key is not None:
                by_key[job.key] = stored[index]
        return [
            stored[index] if index in stored else by_key[job.key or ""]
            for index, job in enumerate(jobs)
        ]

    def get(self, job_id: str) -> Job | None:
        found = self._select(_Q["get_job"], {"id": job_id})
        return found[0] if found else None

    def claim(
        self, job_ids: Sequence[str], worker: str, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Job]:
        if not job_ids:
            return []
        params = {
            "ids": sorted(set(job_ids)),
            "worker": worker,
            "now": now,
            "lease_until": lease_until,
        }
        claimed = {job.id: job for job in self._write(_Q["claim_jobs"], params)}
        return [claimed.pop(job_id) for job_id in job_ids if job_id in claimed]

    def renew(self, worker: str, job_ids: Sequence[str], lease_until: dt.datetime) -> list[str]:
        if not job_ids:
            return []
        params = {"ids": sorted(set(job_ids)), "worker": worker, "lease_until": lease_until}

        def work(conn: _Connection) -> set[str]:
            return {row[0] for row in conn.execute(_Q["renew_leases"], params)}

        renewed = self._run(work, writes=True)
        return [job_id for job_id in dict.fromkeys(job_ids) if job_id in renewed]

    def progress(self, job_id: str, attempt: int, value: JSON, worker: str | None = None) -> bool:
        params = {
            "id": job_id,
            "attempt": attempt,
            "worker": worker,
            "progress": dump_json(value, field="progress"),
        }

        def work(conn: _Connection) -> bool:
            return conn.execute(_Q["record_progress"], params).rowcount == 1

        return self._run(work, writes=True)

    def finish(self, reports: Sequence[Report]) -> list[Job | None]:
        # Only the reports that could still apply after the earlier ones go to the
        # UPDATE, so that it joins each job to at most one report (forerunner's
        # backends/reports.py). Sorting by id makes concurrent batches lock shared rows
        # in the same order.
        batch = applicable_reports(reports)
        if not batch.indexes:
            return []
        order = sorted(batch.indexes, key=lambda index: (reports[index].job_id, index))
        params = report_columns(
            [reports[index] for index in order], [index in batch.contested for index in order]
        )
        results: list[Job | None] = [None] * len(reports)
        for job in self._write(_Q["finish_jobs"], params):
            results[batch.index_of(job)] = job
        return results

    def reclaim_expired(self, now: dt.datetime, limit: int) -> list[Job]:
        if limit < 1:
            return []
        params = {"now": now, "limit": limit, "error": dump_error(LEASE_EXPIRED)}
        return self._write(_Q["reclaim_jobs"], params)

    def promote_due(self, now: dt.datetime, limit: int) -> list[Job]:
        if limit < 1:
            return []
        return self._write(_Q["promote_jobs"], {"now": now, "limit": limit})

    def cancel(self, job_id: str, now: dt.datetime) -> Job | None:
        changed = self._write(_Q["cancel_job"], {"id": job_id, "now": now})
        return changed[0] if changed else self.get(job_id)

    def retry(self, job_id: str, now: dt.datetime) -> Job | None:
        changed = self._write(_Q["retry_job"], {"id": job_id})
        return changed[0] if changed else self.get(job_id)

    def queued(self, limit: int, after: str | None = None) -> list[Job]:
        if limit < 1:
            return []
        return self._select(_Q["queued_jobs"], {"after": after or "", "limit": limit})

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
            "before": before,
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
        # Unprepared, so that each call is planned with its own values (queries.sql).
        return self._select(query, params, prepare=False)

    def counts(self) -> dict[tuple[str, JobState], int]:
        def work(conn: _Connection) -> dict[tuple[str, JobState], int]:
            rows = conn.execute(_Q["count_jobs"]).fetchall()
            return {(kind, JobState(state)): count for kind, state, count in rows}

        return self._run(work, writes=False)

    def purge(self, finished_before: dt.datetime, limit: int) -> int:
        if limit < 1:
            return 0
        params = {"finished_before": finished_before, "limit": limit}

        def work(conn: _Connection) -> int:
            return conn.execute(_Q["purge_jobs"], params).rowcount

        return self._run(work, writes=True)

    def clear(self) -> None:
        def work(conn: _Connection) -> None:
            conn.execute(_Q["clear_jobs"])

        self._run(work, writes=True)

    def close(self) -> None:
        """Close the pool's connections; safe from any thread and more than once."""
        with self._lock:
            pool = self._pool
        pool.close()

    # Running statements.

    def _select(
        self, query: str, params: Mapping[str, object], *, prepare: bool | None = None
    ) -> builtins.list[Job]:
        def work(conn: _Connection) -> builtins.list[Job]:
            with conn.cursor(row_factory=job_row) as cursor:
                return cursor.execute(query, params, prepare=prepare).fetchall()

        return self._run(work, writes=False)

    def _write(self, query: str, params: Mapping[str, object]) -> builtins.list[Job]:
        def work(conn: _Connection) -> builtins.list[Job]:
            with conn.cursor(row_factory=job_row) as cursor:
                return cursor.execute(query, params).fetchall()

        return self._run(work, writes=True)

    def _run(self, work: Callable[[_Connection], T], *, writes: bool) -> T:
        """Run ``work`` on a pooled connection, translating and retrying as the module says."""
        if self._behind:
            self._check_schema()
        attempt = 0
        while True:
            attempt += 1
            pool = self._current_pool()
            try:
                with pool.connection() as conn:
                    return work(conn)
            except ForerunnerError:
                raise
            except Exception as error:
                if is_transient_conflict(error) and attempt < ATTEMPTS:
                    logger.info(
                        "PostgreSQL store %s: %s; running the statement again",
                        self.url,
                        describe(error),
                        extra={"action": "store_retry"},
                    )
                    continue
                if is_connection_failure(error):
                    self._drop_dead_connections(pool)
                    # A pool timeout waited already; a dead connection did not.
                    timed_out = isinstance(error, psycopg_pool.PoolTimeout)
                    if not writes and attempt == 1 and not timed_out:
                        continue
                raise translate(error, self.url) from error

    def _drop_dead_connections(self, pool: psycopg_pool.ConnectionPool[_Connection]) -> None:
        """Check the idle connections, so that the next calls get live ones.

        After a server restart every idle connection is dead; without this, each would
        fail one call before the pool noticed.
        """
        try:
            pool.check()
        except psycopg_pool.PoolClosed:
            return

    def _current_pool(self) -> psycopg_pool.ConnectionPool[_Connection]:
        with self._lock:
            if self._pid != os.getpid():
                # A forked child must not use its parent's connections, nor close them
                # (that would end the parent's sessions): keep them referenced, and
                # connect anew.
                self._pid = os.getpid()
                self._inherited.append(self._pool)
                self._pool = self._open_pool()
            return self._pool

    # Opening.

    def _prepare_schema(self) -> MigrationResult:
        """Migrate at opening, or (``migrate=false``) note whether the schema is behind."""
        if self._url.migrate:
            result = _migrate(self._url)
            if result.applied:
                logger.info(
                    "PostgreSQL store %s: %s",
                    self.url,
                    result,
                    extra={"action": "store_migrated"},
                )
            return result
        version = _schema_version(self._url)
        if version > migrations.LATEST_VERSION:
            migrations.check_version(version, self.schema, self.url)
        if version < migrations.LATEST_VERSION:
            logger.info(
                "PostgreSQL store %s: schema %r is at version %d, not %d; every call "
                "fails until it is migrated",
                self.url,
                self.schema,
                version,
                migrations.LATEST_VERSION,
                extra={"action": "store_behind"},
            )
            self._behind = True
        return migrations.MigrationResult(
            schema=self.schema, before=version, after=version, applied=()
        )

    def _check_schema(self) -> None:
        """Refuse to run statements on a schema that is behind (opened with migrate=false).

        Checked again on every call, so a store opened before the schema was migrated
        starts working as soon as it is, without being opened again.
        """
        version = _schema_version(self._url)
        migrations.check_version(version, self.schema, self.url)
        self._behind = False

    def _open_pool(self) -> psycopg_pool.ConnectionPool[_Connection]:
        pool: psycopg_pool.ConnectionPool[_Connection] = psycopg_pool.ConnectionPool(
            self._url.conninfo,
            kwargs={"autocommit": True},
            min_size=1,
            max_size=self._url.pool_size,
            timeout=self._url.pool_timeout,
            reconnect_timeout=RECONNECT_SECONDS,
            name=f"forerunner {self.url}",
            configure=_configure,
            open=False,
        )
        pool.open(wait=False)
        return pool


def _configure(conn: _Connection) -> None:
    """Decode ``json`` columns with msgspec: several times faster than :func:`json.loads`."""
    set_json_loads(load_json_text, conn)


def _as_stored(job: Job, data: str | None, progress: str | None, result: str | None) -> Job:
    """``job`` as the store now holds it: JSON values as their round trip, timeout a float.

    A job whose values are None or immutable scalars already is that (the common case:
    nothing to rebuild); any other gets fresh values, so the caller shares nothing with
    what the store returns.
    """
    if (
        type(job.data) in _SCALARS
        and type(job.progress) in _SCALARS
        and type(job.result) in _SCALARS
        and type(job.timeout) in _TIMEOUTS
    ):
        return job
    return Job(
        id=job.id,
        type=job.type,
        data=None if data is None else json.loads(data),
        state=job.state,
        priority=job.priority,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        key=job.key,
        run_at=job.run_at,
        timeout=None if job.timeout is None else float(job.timeout),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        worker=job.worker,
        lease_until=job.lease_until,
        progress=None if progress is None else json.loads(progress),
        result=None if result is None else json.loads(result),
        error=job.error,
    )


def migrate(url: str) -> MigrationResult:
    """Apply the migrations the store at ``url`` lacks, without opening a store.

    The URL's ``migrate=`` option is ignored: migrating is what was asked. Safe while
    managers use the store and while other processes migrate it at the same time.
    """
    return _migrate(parse_url(url))


def _migrate(url: StoreURL) -> MigrationResult:
    with _guarded(url.display), _connect(url) as conn:
        return migrations.apply_migrations(conn, url.schema, url.display)


def _schema_version(url: StoreURL) -> int:
    with _guarded(url.display), _connect(url) as conn:
        return migrations.schema_version(conn)


def _connect(url: StoreURL) -> _Connection:
    """A connection outside the pool, for migrations; the caller closes it."""
    return psycopg.connect(url.conninfo, autocommit=True)


@contextlib.contextmanager
def _guarded(display: str) -> Iterator[None]:
    """Translate what the driver raises into forerunner errors, the driver's chained."""
    try:
        yield
    except ForerunnerError:
        raise
    except Exception as error:
        raise translate(error, display) from error
