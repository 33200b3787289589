"""The embedded queue, ``memory://``: the default manager's ordering of waiting jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from forerunner.backends.memory_queue import MemoryQueue
from forerunner.ids import new_id
from forerunner.model import QueueEntry

if TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

pytestmark = pytest.mark.benchmark(group="queue")


def test_memory_queue_push_64_pop_64(benchmark: BenchmarkFixture) -> None:
    """Manager, between submission and hand-out: 64 entries pushed, then popped.

    ``submit`` pushes each new job's entry and ``hand_out`` pops a worker's capacity of
    them; every job passes through both once (more after a retry). Each round leaves
    the queue empty, so every round pushes the same 64 entries into an empty queue.
    """
    queue = MemoryQueue()
    entries = [QueueEntry(job_id=new_id(), type="micro.noop") for _ in range(64)]

    def push_then_pop() -> list[QueueEntry]:
        queue.push(entries)
        return queue.pop(["micro.noop"], 64)

    popped = benchmark(push_then_pop)

    assert popped == entries
    queue.close()
