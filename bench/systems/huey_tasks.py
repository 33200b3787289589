"""The bench's three tasks for Huey, and the ``RedisHuey`` instance they belong to.

``huey_consumer huey_tasks.huey`` imports this module and the adapter imports it to
enqueue, so both sides use the same instance, in the adapter's own Redis database
(number 5, passed in ``BENCH_HUEY_URL``). Results are on (Huey's default) and
``store_none=True``: Huey by default drops a ``None`` result, but forerunner stores
every job's outcome, and the stored result is what the adapter counts as a completed job.
"""

from __future__ import annotations

import os
import time
from typing import Any

from huey import RedisHuey

#: The adapter sets this before importing the module and the consumer inherits it.
URL = os.environ.get("BENCH_HUEY_URL", "redis://127.0.0.1:6379/5")

huey = RedisHuey("bench", url=URL, results=True, store_none=True)


@huey.task()
def noop() -> None:
    """Nothing: what is left is the queue's own cost per job."""


@huey.task()
def sleep() -> None:
    """10 ms of blocking wait, as an I/O-bound task in a worker thread spends it."""
    time.sleep(0.01)


@huey.task()
def stamp() -> float:
    """The wall-clock time the task started, for enqueue-to-start latency."""
    return time.time()


TASKS: dict[str, Any] = {"noop": noop, "sleep": sleep, "stamp": stamp}
