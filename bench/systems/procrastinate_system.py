"""Bench adapter for Procrastinate: ``procrastinate worker`` on its own PostgreSQL database.

Procrastinate runs in its reliable (and only) mode: jobs are rows of
``procrastinate_jobs`` that workers lock, run and mark ``succeeded`` or ``failed`` in
transactions, rows are kept after the job ends (``delete_jobs`` ``never``, the default)
and every status change is also an event row. The worker is one asyncio process that
runs up to ``--concurrency`` jobs at once (its ``concurrency`` option; 0 means the
default, 1), woken by LISTEN/NOTIFY, and has no process or thread pool for async tasks.

The database is ``bench_procrastinate``, created here when missing; :meth:`reset`
drops its ``public`` schema and applies Procrastinate's schema with Procrastinate's own
applier (``App.schema_manager.apply_schema``), as ``procrastinate schema --apply`` does.

How completion is read: the run's jobs are the rows whose id is at least the first id
this run deferred (ids come from one sequence, so every backlog row is below it). A row
leaves ``todo``/``doing`` only in the transaction that records its outcome, and workers
take rows in id order, so :meth:`Procrastinate.completed` reads only the lowest id still
unfinished (one indexed row, see there) and :meth:`Procrastinate.verify` counts the
run's ``succeeded`` rows one by one.

Procrastinate keeps no job results, so the ``stamp`` task writes its start time into a
``bench_stamps`` table in the same database (``procrastinate_tasks`` says why).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from _common import BenchError, System, run

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The database that belongs to Procrastinate in the bench (``procrastinate_tasks``).
DATABASE = "bench_procrastinate"
#: Jobs per ``batch_defer`` call (see :meth:`Procrastinate.enqueue`).
BATCH = 1000
#: The queue every bench job goes to: Procrastinate's default.
QUEUE = "default"


def _database_url(pg_url: str, database: str) -> str:
    """``pg_url`` with its database name replaced by ``database``."""
    parts = urlsplit(pg_url)
    return urlunsplit(parts._replace(path=f"/{database}"))


class Procrastinate(System):
    name = "procrastinate"

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        if args.variant:
            raise SystemExit("procrastinate has no variants")
        # Set before procrastinate_tasks is imported: its app reads the DSN at import
        # time, and the workers inherit the variable through env().
        self.dsn = _database_url(args.pg_url, DATABASE)
        os.environ["BENCH_PROCRASTINATE_DSN"] = self.dsn
        import procrastinate_tasks as tasks_module

        self.concurrency = args.concurrency or 1
        self.mode = (
            "rows kept (delete_jobs never), events on, psycopg 3 connector with its default "
            f"pool, LISTEN/NOTIFY, one asyncio process, concurrency {self.concurrency}"
            + (" (procrastinate default)" if not args.concurrency else "")
            + f", batch_defer x{BATCH}"
        )
        self.bin = str(Path(sys.executable).parent / "procrastinate")
        self.tasks_module = tasks_module
        self.app: Any = None
        self._conn: Any = None
        self.enqueued = 0
        self.first_id: int | None = None
        #: Highest id deferred in this run, and the lowest that may still be unfinished.
        self.last_id = self._low = 0
        self._seen_done = False

    # The backend

    def _ensure_database(self) -> None:
        import psycopg

        name = DATABASE
        with psycopg.connect(self.args.pg_url, autocommit=True) as admin:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return
            admin.execute(f'CREATE DATABASE "{name}"')

    def _sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        if self._conn is None:
            self._conn = psycopg.connect(self.dsn, autocommit=True)
        cursor = self._conn.execute(query, params)
        return cursor.fetchall() if cursor.description is not None else []

    def reset(self) -> None:
        """Drop and re-create the ``public`` schema, then apply Procrastinate's schema."""
        self._close_app()
        self._ensure_database()
        self._sql("DROP SCHEMA IF EXISTS public CASCADE")
        self._sql("CREATE SCHEMA public")
        self.app = self.tasks_module.app
        self.app.open()
        self.app.schema_manager.apply_schema()
        self._sql("CREATE TABLE bench_stamps (job_id bigint PRIMARY KEY, started double precision)")
        self.enqueued = 0
        self.first_id = None
        self._low = self.last_id = 0
        self._seen_done = False

    def _close_app(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None

    # Enqueueing

    def enqueue(self, count: int, task: str) -> None:
        """``Task.batch_defer``, :data:`BATCH` jobs per call.

        ``batch_defer`` is Procrastinate's batch API: one call inserts all its jobs
        with one ``procrastinate_defer_jobs_v1`` statement (one NOTIFY per job comes
        from the schema's trigger).
        """
        deferrer = self.tasks_module.TASKS[task]
        for first in range(0, count, BATCH):
            ids = deferrer.batch_defer(
                *({"index": index} for index in range(first, min(count, first + BATCH)))
            )
            if self.first_id is None:
                self.first_id = self._low = min(ids)
            self.last_id = max(self.last_id, *ids)
        self.enqueued += count

    def enqueue_one(self, task: str, index: int) -> Any:
        job_id = self.tasks_module.TASKS[task].defer(index=index)
        if self.first_id is None:
            self.first_id = self._low = job_id
        self.last_id = max(self.last_id, job_id)
        self.enqueued += 1
        return job_id

    def worker_command(self, concurrency: int) -> list[str]:
        """Procrastinate's own CLI: one worker process on every queue."""
        return [
            self.bin,
            "--app",
            "procrastinate_tasks.app",
            "worker",
            "--concurrency",
            str(concurrency or 1),
        ]

    # Counting

    def completed(self) -> int:
        """Finished jobs of this run: exact when it matters to the drain, cheap otherwise.

        Procrastinate has no counter of finished jobs, and counting rows costs time in
        proportion to the run (6 ms for 20,000 rows here, called every 2 ms, would take
        most of a core from the system under test). So this reads one row: the lowest
        id of the run still ``todo`` or ``doing``. None left means every job has
        finished. Workers fetch jobs in id order, so every id below it has finished:
        that prefix is a lower bound of the count, capped below the number enqueued
        while a job is left. The one moment the drain uses the value itself (the first
        nonzero reading, which starts the timed window) gets an exact count of finished
        rows.

        The lowest unfinished id never goes down (jobs are not retried here, and new
        ones get higher ids), so each look starts where the previous one ended: whichever
        index the planner picks (the partial ``procrastinate_jobs_id_lock_idx_v1`` or,
        once ANALYZE has seen a half-drained table, the primary key with a filter), it
        reads only the rows finished since the previous look.
        """
        if self.first_id is None:
            return 0
        lowest = self._sql(
            "SELECT id FROM procrastinate_jobs WHERE status IN ('todo', 'doing') "
            "AND id >= %s ORDER BY id LIMIT 1",
            (self._low,),
        )
        if not lowest:
            self._low = self.last_id + 1
            return self.enqueued
        self._low = int(lowest[0][0])
        prefix = self._low - self.first_id
        if prefix <= 0:
            return 0
        if not self._seen_done:
            self._seen_done = True
            return int(
                self._sql(
                    "SELECT count(*) FROM procrastinate_jobs WHERE id >= %s "
                    "AND status NOT IN ('todo', 'doing')",
                    (self.first_id,),
                )[0][0]
            )
        return min(prefix, self.enqueued - 1)

    def verify(self) -> int:
        if self.first_id is None:
            return 0
        return int(
            self._sql(
                "SELECT count(*) FROM procrastinate_jobs WHERE id >= %s AND status = 'succeeded'",
                (self.first_id,),
            )[0][0]
        )

    def stamps(self, handles: Sequence[Any]) -> list[float]:
        ids = [int(job_id) for job_id in handles]
        rows = self._sql(
            "SELECT s.job_id, s.started FROM bench_stamps s "
            "JOIN procrastinate_jobs j ON j.id = s.job_id "
            "WHERE s.job_id = ANY(%s) AND j.status = 'succeeded'",
            (ids,),
        )
        started = {int(job_id): float(at) for job_id, at in rows}
        missing = [job_id for job_id in ids if job_id not in started]
        if missing:
            raise BenchError(f"{len(missing)} latency jobs have no stamp, e.g. {missing[0]}")
        return [started[job_id] for job_id in ids]

    def fill_backlog(self, rows: int) -> None:
        """Write ``rows`` finished ``noop`` jobs as Procrastinate leaves them.

        A finished job is a ``procrastinate_jobs`` row with status ``succeeded``,
        ``attempts`` 1 and no worker (the worker that ran it has long been pruned, which
        sets ``worker_id`` to NULL), plus its three events: ``deferred``, ``started``
        and ``succeeded``, 0.5 and 0.9 ms after it was deferred; the jobs are a
        millisecond apart, ending a day ago. Both are written server-side with
        ``INSERT ... SELECT`` over ``generate_series`` in one transaction (no data
        crosses the wire, so it is faster than COPY), ids from the tables' own
        sequences, so every backlog id is below the run's first. Inserting
        ``succeeded`` rows fires none of the schema's triggers (they fire on ``todo``
        rows only), as no job is deferred here. VACUUM ANALYZE afterwards stands in for
        the autovacuum that a table grown to this size would have had.
        """
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            conn.execute(
                """
                INSERT INTO procrastinate_jobs
                    (queue_name, task_name, priority, args, status, attempts)
                SELECT %(queue)s, 'noop', 0, jsonb_build_object('index', i - 1),
                       'succeeded', 1
                FROM generate_series(1, %(rows)s) AS i
                ORDER BY i
                """,
                {"queue": QUEUE, "rows": rows},
            )
            conn.execute(
                """
                INSERT INTO procrastinate_events (job_id, type, at)
                SELECT j.id, e.type::procrastinate_job_event_type,
                       now() - interval '1 day'
                           - (%(rows)s - (j.id - first.id)) * interval '1 millisecond'
                           + e.offset_us * interval '1 microsecond'
                FROM (SELECT min(id) AS id FROM procrastinate_jobs) AS first,
                     procrastinate_jobs AS j
                CROSS JOIN (VALUES ('deferred', 0), ('started', 500), ('succeeded', 900))
                    AS e(type, offset_us)
                ORDER BY j.id, e.offset_us
                """,
                {"rows": rows},
            )
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE procrastinate_jobs")
            conn.execute("VACUUM ANALYZE procrastinate_events")

    def close(self) -> None:
        self._close_app()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


if __name__ == "__main__":
    sys.exit(run(Procrastinate))
