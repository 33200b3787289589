"""The task of ``bench/scaling.py``'s payload workload: ``--tasks scaling_tasks``.

A separate module, on the worker's ``PYTHONPATH`` (``bench/``), so that the payload
handler is an ordinary importable mapping like ``bench/systems/forerunner_tasks.py``,
which the bench adapters own and this script does not change.
"""

from __future__ import annotations

from typing import Any


def echo(job_id: str, data: Any) -> Any:
    """Return the job's data unchanged, so the result is as large as the payload.

    The payload then crosses the system twice (submitted data to the worker, result back
    to the store) and the measured cost is that of moving it, not of computing anything.
    """
    return data


TASKS = {"echo": echo}
