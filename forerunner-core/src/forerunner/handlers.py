"""The shape of a task handler.

A handler is ``def handler(job_id, data) -> result`` or ``async def``; raising fails the
attempt. Its return value must be JSON, because the store keeps it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

__all__ = ["Handler"]

Handler: TypeAlias = Callable[[str, Any], Any] | Callable[[str, Any], Awaitable[Any]]
