"""The error the embedded stores record when a worker's lease runs out."""

from __future__ import annotations

from typing import Final

from forerunner.model import JobError

__all__ = ["LEASE_EXPIRED"]

#: Recorded by ``reclaim_expired`` on the lost attempt. The type is fixed by the Store
#: contract; the message is for the person who reads why a job was retried or failed.
LEASE_EXPIRED: Final = JobError(
    type="LeaseExpired",
    message="the worker did not renew its lease in time; the attempt is presumed lost",
)
