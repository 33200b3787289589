"""The bench's Celery app and its three tasks: ``celery -A celery_tasks worker``.

The adapter and the workers it starts both import this module, so the configuration
that makes the comparison fair lives here, once:

* Redis (database 1) as broker and as result backend, so every job's outcome is a
  ``celery-task-meta-<id>`` key the adapter can count, as forerunner always stores one.
* ``task_acks_late=True`` with ``worker_prefetch_multiplier=1``: Celery's documented
  reliable mode ("Reserve one task at a time" in the Optimizing guide). A message is
  acknowledged only after its task has run, so a worker killed mid-task loses nothing,
  and each worker reserves only as many messages as it has pool slots.
* Everything else at Celery's defaults, results kept ``result_expires`` (one day).

``BENCH_REDIS_URL`` (server URL without a database) is set by the adapter for itself
and for the workers it starts.
"""

from __future__ import annotations

import os
import time

from celery import Celery

#: The Redis database that belongs to Celery in the bench (broker and results).
REDIS_DB = 1

URL = f"{os.environ.get('BENCH_REDIS_URL', 'redis://127.0.0.1:6379').rstrip('/')}/{REDIS_DB}"

app = Celery("bench", broker=URL, backend=URL)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


@app.task  # type: ignore[untyped-decorator]
def noop(index: int) -> None:
    """Nothing: what is left is the queue's own cost per job."""


@app.task  # type: ignore[untyped-decorator]
def sleep(index: int) -> None:
    """10 ms of waiting, as an I/O-bound task spends it."""
    time.sleep(0.01)


@app.task  # type: ignore[untyped-decorator]
def stamp(index: int) -> float:
    """The wall-clock time the task started, for enqueue-to-start latency."""
    return time.time()


TASKS = {"noop": noop, "sleep": sleep, "stamp": stamp}
