"""The side table: every execution of every job, written by the task itself.

The workers run :data:`TASK_MODULE` (written into the run's directory and put on their
``PYTHONPATH``). Each execution appends a ``start`` line when the handler begins and an
``end`` line when it returns, to a file of its own process, with one ``os.write`` on a
descriptor opened with ``O_APPEND``: a line is in the kernel's page cache once the call
returns, so a worker killed with SIGKILL a moment later loses none, and lines from
concurrent threads never interleave. The attempt comes from
:func:`forerunner.context.current_job`, since a handler only receives ``(job_id, data)``.

Counting from this table rather than from logs or from the store is the point: the store
records one outcome per job, the table records every run, so a duplicate or a lost run
is counted, not guessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["LEDGER_ENV", "TASK_MODULE", "TASK_MODULE_NAME", "Execution", "read_ledger"]

#: The environment variable naming the directory the task module writes to.
LEDGER_ENV: Final = "FAULTLAB_LEDGER"
#: The module name workers get as ``--tasks``.
TASK_MODULE_NAME: Final = "fault_tasks"

TASK_MODULE: Final = '''\
"""Tasks of the fault runs: each records its start and end in the side table."""

import os
import signal
import time

from forerunner.context import current_job

_LEDGER = os.environ["FAULTLAB_LEDGER"]
_FILES = {}


def _record(kind, job_id):
    pid = os.getpid()
    fd = _FILES.get(pid)
    if fd is None:
        path = os.path.join(_LEDGER, f"{pid}.log")
        fd = _FILES.setdefault(pid, os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    job = current_job()
    attempt = job.attempt if job is not None else 0
    os.write(fd, f"{kind} {job_id} {attempt} {pid} {time.time():.6f}\\n".encode())
    return attempt


def work(job_id, data):
    """Sleep a while, as a job doing I/O does; return which attempt and process ran it."""
    attempt = _record("start", job_id)
    time.sleep(data["seconds"])
    _record("end", job_id)
    return {"attempt": attempt, "pid": os.getpid()}


def poison(job_id, data):
    """Take the whole worker process down, every time."""
    _record("start", job_id)
    os.kill(os.getpid(), signal.SIGKILL)


TASKS = {"work": work, "poison": poison}
'''


@attrs.frozen(kw_only=True)
class Execution:
    """One run of a handler: an attempt of a job in one process."""

    job_id: str
    attempt: int
    pid: int
    #: Wall-clock time the handler began (every process of a run shares the machine's clock).
    started: float
    #: When the handler returned; None when its process died or froze first.
    ended: float | None


def read_ledger(directory: Path) -> list[Execution]:
    """Every execution the task module recorded under ``directory``, in start order."""
    starts: dict[tuple[str, int, int], list[float]] = {}
    ends: dict[tuple[str, int, int], list[float]] = {}
    for path in sorted(directory.glob("*.log")):
        for line in path.read_text(encoding="utf-8").splitlines():
            kind, job_id, attempt, pid, when = line.split()
            key = (job_id, int(attempt), int(pid))
            (starts if kind == "start" else ends).setdefault(key, []).append(float(when))
    executions: list[Execution] = []
    for key, times in starts.items():
        finished = sorted(ends.get(key, []))
        for index, started in enumerate(sorted(times)):
            executions.append(
                Execution(
                    job_id=key[0],
                    attempt=key[1],
                    pid=key[2],
                    started=started,
                    ended=finished[index] if index < len(finished) else None,
                )
            )
    executions.sort(key=lambda execution: execution.started)
    return executions
