"""The production queue on Redis: one Lua script, one round trip, per push and per pop.

Runs on database 12 of the shared Redis under a prefix of its own, cleared afterwards;
see conftest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from forerunner.ids import new_id
from forerunner.model import QueueEntry

if TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

pytestmark = pytest.mark.benchmark(group="queue")


def test_redis_queue_push_64_pop_64(benchmark: BenchmarkFixture, redis_queue_url: str) -> None:
    """Manager, between submission and hand-out: 64 entries pushed, then popped.

    On the production pairing every job's entry goes through one ``push`` script (as
    part of a batch) and one ``pop`` script; the Python side (argument building,
    redis-py) is most of the cost at this batch size. Each round leaves the queue
    empty, so every round pushes the same 64 entries into an empty queue.
    """
    from forerunner_redis_queue import open_redis_queue

    queue = open_redis_queue(redis_queue_url)
    entries = [QueueEntry(job_id=new_id(), type="micro.noop") for _ in range(64)]

    def push_then_pop() -> list[QueueEntry]:
        queue.push(entries)
        return queue.pop(["micro.noop"], 64)

    try:
        popped = benchmark(push_then_pop)
        assert popped == entries
    finally:
        try:
            queue.clear()
        finally:
            queue.close()
