"""The worker: runs the jobs a manager hands out (see :class:`Worker`)."""

from __future__ import annotations

from forerunner.worker.worker import Worker, new_worker_id

__all__ = ["Worker", "new_worker_id"]
