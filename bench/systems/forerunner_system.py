"""Bench adapter for forerunner: one ``forerunner manager`` and N ``forerunner worker``.

Variants: ``sqlite`` (the embedded default: SQLite store, ``memory://`` queue) and
``pg`` (PostgreSQL store in schema ``bench_forerunner``, Redis queue in database 7).
The manager starts in :meth:`reset` and lives for the run; completion is read from the
store with SQL: no job left queued or running, and at the end an exact count of
succeeded rows created in this run.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import BenchError, System, run, stop_workers

from forerunner.client import Client

if TYPE_CHECKING:
    from collections.abc import Sequence

SCHEMA = "bench_forerunner"
REDIS_DB = 7
BATCH = 1000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Forerunner(System):
    name = "forerunner"

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.variant = args.variant or "sqlite"
        if self.variant not in ("sqlite", "pg"):
            raise SystemExit(f"--variant must be sqlite or pg, not {self.variant!r}")
        self.mode = (
            "sqlite store + memory queue"
            if self.variant == "sqlite"
            else "postgresql store + redis queue"
        ) + (
            ", at-least-once by lease, results stored; each worker process "
            f"{args.concurrency or '4 (default)'} threads, automatic prefetch; "
            "enqueue: batches of 1,000 (POST /v1/jobs/batch)"
        )
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-forerunner-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bin = str(Path(sys.executable).parent / "forerunner")
        self.manager: subprocess.Popen[bytes] | None = None
        self.client: Client | None = None
        self.enqueued = 0
        self.first_id: str | None = None
        self._pg: Any = None
        self._lite: sqlite3.Connection | None = None

    # The backend

    @property
    def store_url(self) -> str:
        if self.variant == "sqlite":
            return f"sqlite:///{self.workdir / 'jobs.db'}"
        return f"{self.args.pg_url}?schema={SCHEMA}"

    @property
    def queue_url(self) -> str:
        if self.variant == "sqlite":
            return "memory://"
        return f"{self.args.redis_url}/{REDIS_DB}?prefix=bench"

    def _sql(self, query: str) -> list[tuple[Any, ...]]:
        if self.variant == "sqlite":
            if self._lite is None:
                self._lite = sqlite3.connect(self.workdir / "jobs.db", isolation_level=None)
            return self._lite.execute(query).fetchall()
        if self._pg is None:
            import psycopg

            self._pg = psycopg.connect(self.args.pg_url, autocommit=True)
            self._pg.execute(f"SET search_path TO {SCHEMA}")
        rows: list[tuple[Any, ...]] = self._pg.execute(query).fetchall()
        return rows

    def reset(self) -> None:
        self._stop_manager()
        if self.variant == "pg":
            import psycopg
            import redis

            with psycopg.connect(self.args.pg_url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            redis.Redis.from_url(f"{self.args.redis_url}/{REDIS_DB}").flushdb()
        else:
            for name in ("jobs.db", "jobs.db-wal", "jobs.db-shm"):
                (self.workdir / name).unlink(missing_ok=True)
        self.enqueued = 0
        self.first_id = None
        self._start_manager()

    def _start_manager(self) -> None:
        log = None if self.args.verbose else subprocess.DEVNULL
        self.manager = subprocess.Popen(
            [
                self.bin,
                "manager",
                "--store",
                self.store_url,
                "--queue",
                self.queue_url,
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.client = Client(self.url)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client.list(limit=1)
                break
            except Exception:
                if time.monotonic() > deadline or self.manager.poll() is not None:
                    raise BenchError("the manager did not start") from None
                time.sleep(0.05)

    def _stop_manager(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.manager is not None:
            stop_workers([self.manager])
            self.manager = None

    # Workloads

    def enqueue(self, count: int, task: str) -> None:
        assert self.client is not None
        for first in range(0, count, BATCH):
            jobs = self.client.submit_many(
                {"type": task, "data": i} for i in range(first, min(count, first + BATCH))
            )
            if self.first_id is None:
                self.first_id = jobs[0].id
        self.enqueued += count

    def enqueue_one(self, task: str, index: int) -> Any:
        assert self.client is not None
        job = self.client.submit(task, index)
        if self.first_id is None:
            self.first_id = job.id
        self.enqueued += 1
        return job.id

    def worker_command(self, concurrency: int) -> list[str]:
        # 0: the worker's default (4 threads), as every peer runs at its own default.
        command = [self.bin, "worker", "--manager", self.url, "--tasks", "forerunner_tasks"]
        return command + (["--concurrency", str(concurrency)] if concurrency else [])

    def completed(self) -> int:
        waiting = self._sql(
            "SELECT count(*) FROM (SELECT 1 FROM forerunner_jobs "
            "WHERE state IN ('queued', 'running') LIMIT 1) AS w"
        )[0][0]
        return self.enqueued if not waiting else self.verify()

    def verify(self) -> int:
        if self.first_id is None:
            return 0
        return int(
            self._sql(
                f"SELECT count(*) FROM forerunner_jobs WHERE state = 'succeeded' "
                f"AND id >= '{self.first_id}'"
            )[0][0]
        )

    def stamps(self, handles: Sequence[Any]) -> list[float]:
        assert self.client is not None
        return [float(self.client.get(job_id).result) for job_id in handles]

    def fill_backlog(self, rows: int) -> None:
        """Write ``rows`` succeeded ``noop`` jobs straight into the store's table.

        The manager has already created the schema (:meth:`reset` started it), so the
        rows land in the table, indexes and encodings its store uses. Their ids are
        UUIDv7 one millisecond apart, ending a day before now: forerunner ids sort by
        creation time, so every backlog id sorts before the run's own, and
        :meth:`completed`/:meth:`verify` (which count ids from the run's first) never
        see them. Statistics are gathered afterwards, so that the planner sees the table
        as a long-running store's would: PostgreSQL's autovacuum would have analyzed it,
        and SQLite recommends that applications run ``PRAGMA optimize``, which analyzes.
        """
        first_ms = time.time_ns() // 1_000_000 - 86_400_000 - rows
        if self.variant == "sqlite":
            self._fill_sqlite(rows, first_ms)
        else:
            self._fill_pg(rows, first_ms)

    def _fill_sqlite(self, rows: int, first_ms: int) -> None:
        """One INSERT ... SELECT over a recursive CTE, in one transaction.

        Times are integer microseconds (schema.sql); the id is formatted from its
        UUIDv7 fields in SQL: 48-bit milliseconds, version 7 with a zero counter, the
        variant bits and 62 random bits.
        """
        conn = sqlite3.connect(self.workdir / "jobs.db", isolation_level=None, timeout=60)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                """
                WITH RECURSIVE n(i) AS (
                    SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :rows
                ),
                r(i, ms, rnd) AS (SELECT i, :first_ms + i, random() FROM n)
                INSERT INTO forerunner_jobs (
                    id, type, data, state, priority, attempt, max_attempts, key, run_at,
                    timeout, created_at, started_at, finished_at, worker, lease_until,
                    progress, result, error_type, error_message, error_traceback
                )
                SELECT
                    printf('%08x-%04x-7000-%04x-%012x', ms >> 16, ms & 65535,
                           32768 | (rnd & 16383), (rnd >> 14) & 281474976710655),
                    'noop', CAST(i AS TEXT), 'succeeded', 0, 1, 3, NULL, NULL,
                    NULL, ms * 1000, ms * 1000 + 500, ms * 1000 + 900, 'bench-backlog',
                    NULL, NULL, NULL, NULL, NULL, NULL
                FROM r
                """,
                {"rows": rows, "first_ms": first_ms},
            )
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            # The fill went to the write-ahead log; copy it into the database now, or
            # the drain's first commits would pay for it (PostgreSQL's VACUUM is the
            # counterpart on the other variant).
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def _fill_pg(self, rows: int, first_ms: int) -> None:
        """COPY in text format, in chunks, then VACUUM ANALYZE.

        Times are timestamptz in ISO form with an explicit UTC offset; ``data`` is the
        JSON text of the row's index, as a submitted noop job's is. VACUUM stands in for
        the autovacuum a table that grew to this size would have had.
        """
        import datetime as dt
        import random

        import psycopg

        columns = (
            "id, type, data, state, priority, attempt, max_attempts, created_at, "
            "started_at, finished_at, worker"
        )
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        chunk = 50_000
        with psycopg.connect(self.args.pg_url, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {SCHEMA}")
            with conn.cursor().copy(f"COPY forerunner_jobs ({columns}) FROM STDIN") as copy:
                for start in range(0, rows, chunk):
                    lines = []
                    for i in range(start, min(rows, start + chunk)):
                        ms = first_ms + i
                        value = ms << 80 | 0x7 << 76 | 0b10 << 62 | random.getrandbits(62)
                        hexed = f"{value:032x}"
                        ident = (
                            f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"
                        )
                        at = epoch + dt.timedelta(milliseconds=ms)
                        # up to the milliseconds: "...SS.mmm" of "...SS.mmm000+00:00"
                        base = at.isoformat(timespec="microseconds")[:-9]
                        lines.append(
                            f"{ident}\tnoop\t{i}\tsucceeded\t0\t1\t3\t{base}000+00\t"
                            f"{base}500+00\t{base}900+00\tbench-backlog\n"
                        )
                    copy.write("".join(lines))
            conn.execute("VACUUM ANALYZE forerunner_jobs")

    def close(self) -> None:
        self._stop_manager()
        if self._pg is not None:
            self._pg.close()
        if self._lite is not None:
            self._lite.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run(Forerunner))
