"""The bench's Procrastinate app and its three tasks.

Workers run ``procrastinate --app procrastinate_tasks.app worker``. The adapter and the
workers both import this module, so the configuration that makes the comparison fair
lives here, once:

* PostgreSQL database ``bench_procrastinate`` (its own, created by the adapter), through
  the psycopg 3 connector with its default pool, as Procrastinate's docs set it up.
* Everything else at Procrastinate's defaults, which are its reliable mode: a job is a
  row whose status a worker moves from ``todo`` to ``doing`` to ``succeeded`` or
  ``failed`` in PostgreSQL transactions, rows are kept when a job ends (``delete_jobs``
  is ``never``), and every transition is also written to ``procrastinate_events``.

Procrastinate keeps no return values, so ``stamp`` cannot hand back its start time as
a result the way the other systems' do; it writes ``time.time()``, taken first thing,
into ``bench_stamps`` (a table of the bench's own in the same database, keyed by job
id) through the worker's own connection pool, and returns it as well.

``BENCH_PROCRASTINATE_DSN`` is set by the adapter for itself and for the workers.
"""

from __future__ import annotations

import asyncio
import os
import time

import procrastinate

#: The database that belongs to Procrastinate in the bench.
DATABASE = "bench_procrastinate"

DSN = os.environ.get("BENCH_PROCRASTINATE_DSN", f"postgresql://root@127.0.0.1:5432/{DATABASE}")

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=DSN))


@app.task(name="noop")
async def noop(index: int) -> None:
    """Nothing: what is left is the queue's own cost per job."""


@app.task(name="sleep")
async def sleep(index: int) -> None:
    """10 ms of waiting, as an I/O-bound task spends it (in the worker's event loop)."""
    await asyncio.sleep(0.01)


@app.task(name="stamp", pass_context=True)
async def stamp(context: procrastinate.JobContext, index: int) -> float:
    """The wall-clock time the task started, stored where the adapter can read it."""
    started = time.time()
    assert context.job.id is not None
    await context.app.connector.execute_query_async(
        "INSERT INTO bench_stamps (job_id, started) VALUES (%(job_id)s, %(started)s)",
        job_id=context.job.id,
        started=started,
    )
    return started


TASKS = {"noop": noop, "sleep": sleep, "stamp": stamp}
