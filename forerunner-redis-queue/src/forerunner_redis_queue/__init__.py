"""The Redis queue backend for forerunner: ``redis://``, ``rediss://``, ``unix://``, clusters.

``pip install forerunner-redis-queue`` registers it; a manager opened with
``--queue redis://host:6379/0?prefix=myapp`` uses it. The README of the distribution has
the URL forms and options, and how the queue is laid out in Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["RandomRedisQueue", "RedisQueue", "__version__", "open_redis_queue"]

if TYPE_CHECKING:
    from forerunner_redis_queue.queue import RandomRedisQueue, RedisQueue, open_redis_queue


def __getattr__(name: str) -> object:
    """Import redis-py only when the queue is used, not when the plugin is discovered."""
    if name in {"RandomRedisQueue", "RedisQueue", "open_redis_queue"}:
        from forerunner_redis_queue import queue

        return getattr(queue, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
