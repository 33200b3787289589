"""The bench's three actors for Dramatiq, and the broker they run on.

``dramatiq dramatiq_tasks`` imports this module in each worker process and the adapter
imports it to send messages, so both sides build the same broker: a ``RedisBroker`` with
the ``Results`` middleware on a ``RedisBackend`` in the same Redis database (the
adapter's own, number 3, passed in ``BENCH_DRAMATIQ_URL``). Every actor has
``store_results=True``: forerunner stores every job's outcome, so Dramatiq must too, and
the stored result is what the adapter counts as a completed job.
"""

from __future__ import annotations

import os
import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

#: The adapter sets this before importing the module and workers inherit it.
URL = os.environ.get("BENCH_DRAMATIQ_URL", "redis://127.0.0.1:6379/3")

broker = RedisBroker(url=URL)
backend = RedisBackend(url=URL)
broker.add_middleware(Results(backend=backend))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True)
def noop() -> None:
    """Nothing: what is left is the queue's own cost per job."""


@dramatiq.actor(store_results=True)
def sleep() -> None:
    """10 ms of blocking wait, as an I/O-bound task in a worker thread spends it."""
    time.sleep(0.01)


@dramatiq.actor(store_results=True)
def stamp() -> float:
    """The wall-clock time the actor started, for enqueue-to-start latency."""
    return time.time()


ACTORS: dict[str, Any] = {"noop": noop, "sleep": sleep, "stamp": stamp}
