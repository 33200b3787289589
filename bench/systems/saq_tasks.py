"""The bench's three jobs for SAQ, and the worker settings ``saq saq_tasks.settings`` reads.

SAQ is asyncio-only, so ``sleep`` awaits ``asyncio.sleep``. The queue lives in the
adapter's own Redis database (number 6, ``BENCH_SAQ_URL``). SAQ's command line has no
concurrency flag: the adapter passes it in ``BENCH_SAQ_CONCURRENCY``, and 0 (or nothing)
leaves SAQ's own default (``Worker(concurrency=10)``).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from saq import Queue

#: The adapter sets these for each worker it starts.
URL = os.environ.get("BENCH_SAQ_URL", "redis://127.0.0.1:6379/6")
CONCURRENCY = int(os.environ.get("BENCH_SAQ_CONCURRENCY") or 0)


async def noop(ctx: dict[str, Any]) -> None:
    """Nothing: what is left is the queue's own cost per job."""


async def sleep(ctx: dict[str, Any]) -> None:
    """10 ms of waiting, as an I/O-bound coroutine spends it."""
    await asyncio.sleep(0.01)


async def stamp(ctx: dict[str, Any]) -> float:
    """The wall-clock time the job started, for enqueue-to-start latency."""
    return time.time()


settings: dict[str, Any] = {
    "queue": Queue.from_url(URL),
    "functions": [noop, sleep, stamp],
}
if CONCURRENCY:
    settings["concurrency"] = CONCURRENCY
