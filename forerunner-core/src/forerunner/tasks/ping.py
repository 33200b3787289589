"""``ping``: the smallest job, proving a worker is alive."""

from __future__ import annotations

from typing import Any

__all__ = ["ping"]


def ping(job_id: str, data: Any) -> dict[str, Any]:
    """Answer ``pong`` with the job's data and id, so a caller sees its own job came back."""
    return {"pong": data, "job_id": job_id}
