"""The bench's three tasks for RQ, enqueued by reference (``rq_tasks.noop``).

RQ's worker imports a job's function by its dotted name, so these live in a module of
their own on the workers' ``PYTHONPATH`` (the adapter's directory), not in the adapter.
"""

from __future__ import annotations

import time


def noop(index: int) -> None:
    """Nothing: what is left is the queue's own cost per job."""


def sleep(index: int) -> None:
    """10 ms of waiting, as an I/O-bound task spends it."""
    time.sleep(0.01)


def stamp(index: int) -> float:
    """The wall-clock time the task started, for enqueue-to-start latency."""
    return time.time()


TASKS = {"noop": noop, "sleep": sleep, "stamp": stamp}
