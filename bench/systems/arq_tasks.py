"""The bench's arq tasks and worker settings: ``arq arq_tasks.WorkerSettings``.

The adapter and the workers it starts both import this module, so the configuration
that makes the comparison fair lives here, once:

* Redis database 4, for the queue, the job keys and the results.
* Every setting at arq's defaults, which are already its reliable mode: a job's key is
  deleted only in the same MULTI that writes its result, a worker that dies mid-job
  leaves the job in the queue for another try (``max_tries`` 5), and every outcome is
  kept as an ``arq:result:<id>`` key for ``keep_result`` (3600 s).
* ``max_jobs`` (jobs run at once in the worker's event loop; arq has no process or
  thread pool) comes from ``BENCH_ARQ_MAX_JOBS``, which the adapter sets from
  ``--concurrency``; unset, it is arq's default, 10.
* ``poll_delay`` (seconds between two looks at the queue) comes from
  ``BENCH_ARQ_POLL_DELAY``, set by the adapter's ``--variant``; unset, arq's 0.5 s.

``BENCH_REDIS_URL`` (server URL without a database) is set by the adapter for itself
and for the workers it starts.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, ClassVar

from arq.connections import RedisSettings

#: The Redis database that belongs to arq in the bench.
REDIS_DB = 4
#: arq's own default for ``Worker(max_jobs=...)``, used when the adapter asks for 0.
DEFAULT_MAX_JOBS = 10
#: arq's own default for ``Worker(poll_delay=...)``, in seconds.
DEFAULT_POLL_DELAY = 0.5

URL = f"{os.environ.get('BENCH_REDIS_URL', 'redis://127.0.0.1:6379').rstrip('/')}/{REDIS_DB}"


async def noop(ctx: dict[str, Any], index: int) -> None:
    """Nothing: what is left is the queue's own cost per job."""


async def sleep(ctx: dict[str, Any], index: int) -> None:
    """10 ms of waiting, as an I/O-bound task spends it (arq runs coroutines only)."""
    await asyncio.sleep(0.01)


async def stamp(ctx: dict[str, Any], index: int) -> float:
    """The wall-clock time the task started, for enqueue-to-start latency."""
    return time.time()


class WorkerSettings:
    """What ``arq arq_tasks.WorkerSettings`` reads; everything not set is arq's default."""

    functions: ClassVar[list[Any]] = [noop, sleep, stamp]
    redis_settings = RedisSettings.from_dsn(URL)
    max_jobs = int(os.environ.get("BENCH_ARQ_MAX_JOBS") or 0) or DEFAULT_MAX_JOBS
    poll_delay = float(os.environ.get("BENCH_ARQ_POLL_DELAY") or DEFAULT_POLL_DELAY)
