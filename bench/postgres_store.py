"""Throughput of the PostgreSQL store on a table of 1,000,000 finished jobs, beside plain SQL.

Creates a schema of its own (``bench_<random>``) in the database at ``--url``, loads
``--rows`` finished jobs into the store's table with COPY, and the same number into a
minimal hand-written queue table, then measures in this one process, on one connection
each, for batches of 1, 10 and 100 jobs:

- add: ``PostgresStore.add`` against one ``INSERT ... SELECT FROM unnest`` per batch;
- claim+finish: ``PostgresStore.claim`` then ``finish`` of the claimed batch, against the
  classic single-statement dequeue (``UPDATE ... WHERE id IN (SELECT ... ORDER BY id
  LIMIT n FOR UPDATE SKIP LOCKED) RETURNING``) then one ``UPDATE ... FROM unnest``.

The store claims the ids it is given (the queue chose them), the baseline picks its own
from an index; both keep the job's JSON. Each cell runs for ``--seconds`` and reports
jobs per second; the ratio is forerunner's rate over the baseline's. ``--explain``
also prints the plans of the store's hot queries on the loaded table (for
docs/postgres-store.md). The schema is dropped at the end, also after a failure.

Run: ``.venv/bin/python bench/postgres_store.py [--url postgresql://...] [--explain]``.
A measurement, never a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import re
import secrets
import sys
import time
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from forerunner.ids import new_id
from forerunner.model import Job, JobState, Report
from forerunner_postgres_store.store import PostgresStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BATCHES = (1, 10, 100)
DATA = {"url": "https://example.com/page", "depth": 2, "tags": ["a", "b"]}
RESULT = {"status": 200, "bytes": 5120}

BASELINE_SCHEMA = """
CREATE TABLE baseline_jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type text NOT NULL,
    state text NOT NULL,
    payload json,
    result json,
    created_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX baseline_jobs_queued ON baseline_jobs (id) WHERE state = 'queued';
"""
BASELINE_ADD = """
INSERT INTO baseline_jobs (type, state, payload, created_at)
SELECT 'bench', 'queued', payload, now() FROM unnest(%(payloads)b::json[]) AS payload
"""
BASELINE_CLAIM = """
UPDATE baseline_jobs SET state = 'running', started_at = now()
WHERE id IN (
    SELECT id FROM baseline_jobs WHERE state = 'queued'
    ORDER BY id LIMIT %(n)s FOR UPDATE SKIP LOCKED
)
RETURNING id, payload
"""
BASELINE_FINISH = """
UPDATE baseline_jobs AS job
SET state = 'succeeded', result = done.result, finished_at = now()
FROM unnest(%(ids)b::bigint[], %(results)b::json[]) AS done (id, result)
WHERE job.id = done.id AND job.state = 'running'
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://root@127.0.0.1:5432/test")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--explain", action="store_true", help="print the hot queries' plans")
    args = parser.parse_args()

    schema = f"bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(args.url, autocommit=True)
    store: PostgresStore | None = None
    try:
        store = PostgresStore(f"{args.url}?schema={schema}&pool_size=2")
        conn = psycopg.connect(args.url, autocommit=True, options=f"-c search_path={schema}")
        started = time.perf_counter()
        load(conn, args.rows)
        print(f"loaded {args.rows:,} finished jobs into each table in "
              f"{time.perf_counter() - started:.1f} s (schema {schema})", flush=True)  # fmt: skip
        rows = measure(store, conn, args.seconds)
        print_table(rows, args.rows)
        if args.explain:
            explain(conn)
        conn.close()
    finally:
        if store is not None:
            store.close()
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        admin.close()
    return 0


def load(conn: psycopg.Connection[Any], rows: int) -> None:
    """COPY ``rows`` succeeded jobs into both tables, then VACUUM ANALYZE them."""
    conn.execute(BASELINE_SCHEMA.encode())
    data, result = json.dumps(DATA), json.dumps(RESULT)
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    chunk = 50_000
    with conn.cursor() as cursor:
        with cursor.copy(
            "COPY forerunner_jobs (id, type, data, state, priority, attempt, max_attempts, "
            "created_at, started_at, finished_at, worker, result) FROM STDIN"
        ) as copy:
            for first in range(0, rows, chunk):
                lines = []
                for n in range(first, min(rows, first + chunk)):
                    when = (base + dt.timedelta(seconds=n)).isoformat()
                    lines.append(
                        f"{new_id()}\tbench\t{data}\tsucceeded\t0\t1\t3\t"
                        f"{when}\t{when}\t{when}\tworker-1\t{result}\n"
                    )
                copy.write("".join(lines))
        with cursor.copy(
            "COPY baseline_jobs (type, state, payload, result, created_at, started_at, "
            "finished_at) FROM STDIN"
        ) as copy:
            for first in range(0, rows, chunk):
                lines = []
                for n in range(first, min(rows, first + chunk)):
                    when = (base + dt.timedelta(seconds=n)).isoformat()
                    lines.append(f"bench\tsucceeded\t{data}\t{result}\t{when}\t{when}\t{when}\n")
                copy.write("".join(lines))
    conn.execute("VACUUM ANALYZE forerunner_jobs")
    conn.execute("VACUUM ANALYZE baseline_jobs")


def timed(seconds: float, step: Callable[[], int]) -> float:
    """Run ``step`` (it returns how many jobs it did, 0 when out of work) for ``seconds``.

    Returns jobs per second.
    """
    done = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        did = step()
        if not did:
            break
        done += did
    return done / elapsed


def measure(store: PostgresStore, conn: psycopg.Connection[Any], seconds: float) -> list[Any]:
    now = dt.datetime.now(dt.UTC)
    lease = now + dt.timedelta(minutes=5)
    results = []
    for batch in BATCHES:
        # Jobs are made before the clock starts: making them is the caller's work.
        made = iter([
            [Job(id=new_id(), type="bench", data=DATA, created_at=now) for _ in range(batch)]
            for _ in range(int(seconds * 40_000) // batch)
        ])  # fmt: skip

        def add_store(made: Iterator[list[Job]] = made) -> int:
            jobs = next(made, [])
            if jobs:
                store.add(jobs)
            return len(jobs)

        def add_baseline(batch: int = batch) -> int:
            conn.execute(BASELINE_ADD, {"payloads": [json.dumps(DATA)] * batch})
            return batch

        results.append(("add", batch, timed(seconds, add_store), timed(seconds, add_baseline)))

    for batch in BATCHES:
        pending = iter(queued_ids(store, conn, int(seconds * 10_000)))
        ours, theirs = Phases(), Phases()

        def claim_finish_store(
            batch: int = batch, pending: Iterator[str] = pending, ours: Phases = ours
        ) -> int:
            ids = list(itertools.islice(pending, batch))
            with ours.phase("claim"):
                claimed = store.claim(ids, "worker-1", now, lease)
            reports = [
                Report(job_id=job.id, attempt=job.attempt, state=JobState.SUCCEEDED,
                       now=now, result=RESULT)
                for job in claimed
            ]  # fmt: skip
            with ours.phase("finish"):
                store.finish(reports)
            ours.jobs += len(claimed)
            return len(claimed)

        def claim_finish_baseline(batch: int = batch, theirs: Phases = theirs) -> int:
            with theirs.phase("claim"):
                claimed = conn.execute(BASELINE_CLAIM, {"n": batch}).fetchall()
            ids = [row[0] for row in claimed]
            results_json = [json.dumps(RESULT)] * len(ids)
            with theirs.phase("finish"):
                conn.execute(BASELINE_FINISH, {"ids": ids, "results": results_json})
            theirs.jobs += len(ids)
            return len(ids)

        both = ("claim+finish", batch, timed(seconds, claim_finish_store),
                timed(seconds, claim_finish_baseline))  # fmt: skip
        for name in ("claim", "finish"):
            results.append((name, batch, ours.rate(name), theirs.rate(name)))
        results.append(both)
    return results


class Phases:
    """Seconds spent in each phase of a step, and the jobs those phases handled."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.jobs = 0

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def rate(self, name: str) -> float:
        return self.jobs / self.seconds[name] if self.seconds.get(name) else 0.0


def queued_ids(store: PostgresStore, conn: psycopg.Connection[Any], count: int) -> list[str]:
    """The ids of ``count`` queued jobs, oldest first, added now (untimed) if missing.

    The store claims the ids a queue hands it; this list plays the queue. Read with
    plain SQL, so that reading them costs the store nothing.
    """
    query = "SELECT id FROM forerunner_jobs WHERE state = 'queued' ORDER BY id LIMIT %s"
    while len(ids := [row[0] for row in conn.execute(query, [count])]) < count:
        store.add([Job(id=new_id(), type="bench", data=DATA) for _ in range(1_000)])
    return ids


def print_table(rows: list[Any], loaded: int) -> None:
    print(f"\nthroughput with {loaded:,} finished jobs in each table (jobs/s, one connection)")
    print(f"{'operation':<14}{'batch':>6}{'forerunner':>12}{'SQL baseline':>14}{'ratio':>8}")
    for operation, batch, ours, baseline in rows:
        print(f"{operation:<14}{batch:>6}{ours:>12,.0f}{baseline:>14,.0f}{ours / baseline:>8.2f}")


def explain(conn: psycopg.Connection[Any]) -> None:
    """EXPLAIN ANALYZE each hot query of the store on the loaded table, rolled back.

    Before, 1,000 of the queued jobs are made running (leases expired) and 1,000
    scheduled (due), so that reclaim and promote have work.
    """
    from forerunner.sqlfiles import load_queries

    queries = load_queries("forerunner_postgres_store", "sql/queries.sql")
    now = dt.datetime.now(dt.UTC)
    some = ids_in(conn, "queued")
    conn.execute("""
        UPDATE forerunner_jobs SET state = 'running', attempt = 1, worker = 'worker-1',
            lease_until = %(now)s
        WHERE id IN (SELECT id FROM forerunner_jobs WHERE state = 'queued'
                     ORDER BY id DESC LIMIT 1000)
    """, {"now": now - dt.timedelta(minutes=1)})  # fmt: skip
    conn.execute("""
        UPDATE forerunner_jobs SET state = 'scheduled', run_at = %(now)s
        WHERE id IN (SELECT id FROM forerunner_jobs WHERE state = 'queued'
                     ORDER BY id DESC LIMIT 1000)
    """, {"now": now - dt.timedelta(minutes=1)})  # fmt: skip
    # No ANALYZE here: the plans are those the statistics of a live queue give, which
    # lag behind its states (sql/queries.sql says why that matters).
    running = ids_in(conn, "running")
    counts = conn.execute("SELECT state, count(*) FROM forerunner_jobs GROUP BY 1 ORDER BY 1")
    print("\nthe table for the plans: " + ", ".join(f"{s} {n:,}" for s, n in counts))
    reports = {
        "job_id": running, "attempt": [1] * 100, "worker": ["worker-1"] * 100,
        "contested": [False] * 100, "state": ["succeeded"] * 100,
        "now": [now] * 100, "result": [json.dumps(RESULT)] * 100, "error": [None] * 100,
        "run_at": [None] * 100,
    }  # fmt: skip
    newest = conn.execute("SELECT max(id) FROM forerunner_jobs").fetchone()
    cases: list[tuple[str, dict[str, Any]]] = [
        ("get_job", {"id": some[0]}),
        ("claim_jobs", {"ids": some, "worker": "w", "now": now, "lease_until": now}),
        ("renew_leases", {"ids": running, "worker": "worker-1", "lease_until": now}),
        ("finish_jobs", reports),
        ("reclaim_jobs", {"now": now, "limit": 100, "error": '{"type": "LeaseExpired"}'}),
        ("promote_jobs", {"now": now, "limit": 100}),
        ("queued_jobs", {"after": "", "limit": 100}),
        ("list_jobs", {"before": None, "limit": 100}),
        ("list_jobs_in_state", {"state": "failed", "before": None, "limit": 100}),
        (
            "list_jobs_of_type",
            {"type": "bench", "before": newest[0] if newest else None, "limit": 100},
        ),
        (
            "list_jobs_in_state_of_type",
            {"type": "bench", "state": "succeeded", "before": None, "limit": 100},
        ),
        ("count_jobs", {}),
        ("purge_jobs", {"finished_before": now, "limit": 1000}),
    ]
    for name, params in cases:
        with conn.transaction(force_rollback=True):
            plan = conn.execute(
                f"EXPLAIN (ANALYZE, COSTS OFF, BUFFERS OFF) {queries[name]}", params, prepare=False
            ).fetchall()
        print(f"\n-- {name}")
        for (line,) in plan:
            print(shorten(line))
    # add: a batch of 100 new jobs, 10 of them with a key that is already taken.
    conn.execute("UPDATE forerunner_jobs SET key = id WHERE id = ANY(%s)", [some[:10]])
    jobs = [Job(id=new_id(), type="bench", data=DATA, key=some[n] if n < 10 else None)
            for n in range(100)]  # fmt: skip
    from forerunner_postgres_store.rows import job_columns

    with conn.transaction(force_rollback=True):
        plan = conn.execute(
            f"EXPLAIN (ANALYZE, COSTS OFF, BUFFERS OFF) {queries['add_jobs']}",
            job_columns(jobs),
            prepare=False,
        ).fetchall()
    print("\n-- add_jobs (100 jobs, 10 of them with a key already stored)")
    for (line,) in plan:
        print(shorten(line))


def ids_in(conn: psycopg.Connection[Any], state: str) -> list[str]:
    query = "SELECT id FROM forerunner_jobs WHERE state = %s ORDER BY id LIMIT 100"
    return [row[0] for row in conn.execute(query, [state])]


def shorten(line: str) -> str:
    """A plan line with its long array literals cut, so that a plan fits a page."""
    return re.sub(r"'\{([^}]{60})[^}]*\}'", r"'{\1...}'", line)


if __name__ == "__main__":
    sys.exit(main())
