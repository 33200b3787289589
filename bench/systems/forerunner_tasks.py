"""The bench's three tasks for forerunner: ``forerunner worker --tasks forerunner_tasks``."""

from __future__ import annotations

import time
from typing import Any


def noop(job_id: str, data: Any) -> None:
    """Nothing: what is left is the queue's own cost per job."""


def sleep(job_id: str, data: Any) -> None:
    """10 ms of waiting, as an I/O-bound task spends it."""
    time.sleep(0.01)


def stamp(job_id: str, data: Any) -> float:
    """The wall-clock time the task started, for enqueue-to-start latency."""
    return time.time()


TASKS = {"noop": noop, "sleep": sleep, "stamp": stamp}
