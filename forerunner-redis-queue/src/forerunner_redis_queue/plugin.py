"""forerunner-redis-queue's plugin module, registered under the ``forerunner`` entry point.

Every forerunner process imports it, so it imports nothing heavy: redis-py loads only
when a Redis URL is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forerunner.hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from forerunner.queue import Queue


def open_queue(url: str) -> Queue:
    """Open the Redis queue a URL names (see the distribution's README for the forms)."""
    from forerunner_redis_queue.queue import open_redis_queue

    return open_redis_queue(url)


@hookimpl
def forerunner_queue_backends() -> Mapping[str, Callable[[str], Queue]]:
    from forerunner_redis_queue.url import SCHEMES

    return dict.fromkeys(SCHEMES, open_queue)
