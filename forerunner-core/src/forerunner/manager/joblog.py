"""The job log: one INFO record per lifecycle event, its facts as ``extra`` fields.

A job's data, result and traceback can hold anything a user put there (credentials, a
customer's address, a megabyte of text), and logs are copied far and kept long, so they
stay out unless the operator asks for them (``--log-job-data``). What is always logged is
what an operator needs to follow a job: its id, type, attempt, worker, state, how long it
waited or ran, and on a failure the error's class and message.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Final

from forerunner.logs import direct_handler, timestamp

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Sequence

    from forerunner.model import Job

__all__ = ["JobLog"]

logger = logging.getLogger(__name__)

#: Event -> the name the log gives it. "staged" is when a worker receives the attempt.
_NAMES: Final = {
    "created": "submitted",
    "staged": "started",
    "retrying": "retrying",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}


class JobLog:
    """Logs the jobs of each event batch it is given; an :meth:`Events.listen_batches` listener.

    ``duration`` is the wait on ``started`` (from ``run_at``, else ``created_at``, to
    the hand-out) and the attempt's run on ``succeeded``, ``failed`` and ``retrying``, in
    seconds. ``job_data`` adds ``data`` (submitted), ``result`` (succeeded) and
    ``traceback`` (failed, retrying).
    """

    def __init__(self, *, job_data: bool = False, clock: Callable[[], dt.datetime]) -> None:
        self.job_data = job_data
        self._clock = clock

    def __call__(self, event: str, jobs: Sequence[Job]) -> None:
        name = _NAMES.get(event)
        if name is None or not logger.isEnabledFor(logging.INFO):
            return
        now = self._clock() if event == "retrying" else None
        message = f"job {name}"
        action = f"job_{name}"
        # Straight to forerunner's own handler when nothing else would see the records;
        # each line then has exactly the fields a record would (logs.LineHandler).
        direct = direct_handler(logger)
        head = {
            "time": timestamp(time.time()),
            "level": "info",
            "logger": logger.name,
            "message": message,
        }
        lines: list[str] = []
        for job in jobs:
            fields: dict[str, Any] = {
                "action": action,
                "job_id": job.id,
                "type": job.type,
                "attempt": job.attempt,
                "worker": job.worker,
                "state": job.state.value,
                "duration": _duration(event, job, now),
            }
            if event == "retrying" and job.run_at is not None:
                fields["run_at"] = job.run_at
            if event in ("failed", "retrying") and job.error is not None:
                fields["error_type"] = job.error.type
                fields["error_message"] = job.error.message
                if self.job_data:
                    fields["traceback"] = job.error.traceback
            if self.job_data:
                if event == "created":
                    fields["data"] = job.data
                elif event == "succeeded":
                    fields["result"] = job.result
            if direct is None:
                logger.info(message, extra=fields)
            else:
                lines.append(direct.line({**head, **fields}))
        if direct is not None:
            direct.write_lines(lines)


def _duration(event: str, job: Job, now: dt.datetime | None) -> float | None:
    started = job.started_at
    if event == "staged":
        since = job.run_at or job.created_at
        if started is None or since is None:
            return None
        return round(max(0.0, (started - since).total_seconds()), 6)
    ended = now or job.finished_at
    if event not in ("succeeded", "failed", "retrying") or started is None or ended is None:
        return None
    return round(max(0.0, (ended - started).total_seconds()), 6)
