"""The builtin tasks, registered by :mod:`forerunner.builtin`."""

from __future__ import annotations

from typing import Any

__all__ = ["ping"]


def ping(job_id: str, data: Any) -> dict[str, Any]:
    """Answer ``pong`` with the job's data: the smallest job that proves a worker is alive."""
    return {"pong": data, "job_id": job_id}
