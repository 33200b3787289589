"""Task handlers for the process pool's tests, importable by the spawned children.

They live in a module of their own because a child receives each handler by
reference: it imports this module by name, which it can do once the test has put
this directory on ``sys.path`` (the children inherit the parent's path).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from forerunner.context import report_progress


def whoami(job_id: str, data: Any) -> dict[str, Any]:
    return {"job_id": job_id, "data": data, "pid": os.getpid()}


async def whoami_async(job_id: str, data: Any) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"job_id": job_id, "pid": os.getpid(), "loop": True}


def _check(data: Any) -> None:
    raise ValueError(f"cannot use {data!r}")


def explode(job_id: str, data: Any) -> Any:
    _check(data)


def not_json(job_id: str, data: Any) -> Any:
    return threading.Lock()


def count_out_loud(job_id: str, data: Any) -> str:
    for step in range(data):
        report_progress(step)
    return "counted"


def odd_progress(job_id: str, data: Any) -> str:
    report_progress(threading.Lock())
    report_progress("after")
    return "done"


def spin(job_id: str, data: Any) -> Any:
    """Announce the process, then burn CPU forever: only a kill ends it."""
    report_progress({"pid": os.getpid()})
    while True:
        pass


def exit_with(job_id: str, data: Any) -> Any:
    os._exit(data)


def kill_myself(job_id: str, data: Any) -> Any:
    os.kill(os.getpid(), signal.SIGKILL)


def rendezvous(job_id: str, data: Any) -> dict[str, Any]:
    """Return once ``data["parties"]`` jobs are inside this function at the same time.

    Each arrival leaves a file named after its process in ``data["dir"]`` and waits for
    the others' files, so only jobs that really overlap can all get through.
    """
    meeting = Path(data["dir"])
    (meeting / str(os.getpid())).touch()
    deadline = time.monotonic() + data["patience"]
    while len(list(meeting.iterdir())) < data["parties"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(list(meeting.iterdir()))} arrived")
        time.sleep(0.01)
    return {"pid": os.getpid()}


class Counter:
    """A callable object whose state pickles: allowed as a handler."""

    def __init__(self, start: int) -> None:
        self.start = start

    def __call__(self, job_id: str, data: Any) -> int:
        return self.start + data


class Guarded:
    """Holds a lock, which no process can receive: its bound method cannot be a handler."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def handle(self, job_id: str, data: Any) -> Any:
        with self.lock:
            return data


not_by_reference = lambda job_id, data: data  # noqa: E731 - the point: a lambda
