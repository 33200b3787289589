"""forerunner-core's own plugin: the embedded backends and the builtin tasks.

Registered through the ``forerunner`` entry point like any third party's plugin, so the
hooks are exercised by every forerunner process, not only by strangers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forerunner.hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from forerunner.handlers import Handler
    from forerunner.queue import Queue
    from forerunner.store import Store


@hookimpl
def forerunner_store_backends() -> Mapping[str, Callable[[str], Store]]:
    from forerunner.backends.memory_store import MemoryStore
    from forerunner.backends.sqlite_store import SQLiteStore

    return {"memory": MemoryStore.from_url, "sqlite": SQLiteStore.from_url}


@hookimpl
def forerunner_queue_backends() -> Mapping[str, Callable[[str], Queue]]:
    from forerunner.backends.memory_queue import MemoryQueue, RandomMemoryQueue

    return {"memory": MemoryQueue.from_url, "memory+random": RandomMemoryQueue.from_url}


@hookimpl
def forerunner_tasks() -> Mapping[str, Handler]:
    from forerunner import tasks

    return {
        "ping": tasks.ping,
        "fetch": tasks.fetch,
        "targz": tasks.targz,
        "word_count": tasks.word_count,
        "key_map": tasks.key_map,
        "get_hrefs": tasks.get_hrefs,
        "pluck_data": tasks.pluck_data,
    }
