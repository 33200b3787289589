"""Correct queues written for the suite's own tests, and variants that each break one clause.

``LocalQueue`` (``ok://``, in-process, fifo), ``RandomLocalQueue`` (``ok+random://``)
and ``FileQueue`` (``ok+shared:///path``, a SQLite file that other processes open
too, so the shared, durable and multi-process clauses run) are correct: the suite
passes them. Each ``broken-*`` scheme maps to a subclass that overrides one thing and
so breaks the clause of :data:`BROKEN` it is listed under. The suite proves it can
fail only by failing each of them with that clause's id in the message.

This module is a forerunner plugin: the tests register it through a real entry point,
so child processes of the suite open these schemes with ``open_queue`` like any other.
"""

from __future__ import annotations

import itertools
import os
import random
import sqlite3
import threading
import time
from contextlib import closing
from typing import TYPE_CHECKING, ClassVar, Final

import attrs

from forerunner import hookimpl
from forerunner.model import QueueEntry

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

    from forerunner.queue import Ordering, Queue


@attrs.frozen
class _Waiting:
    entry: QueueEntry
    pushed: int


class LocalQueue:
    """A correct in-process fifo queue: a dict of waiting entries under one condition."""

    ordering: ClassVar[Ordering] = "fifo"
    durable: ClassVar[bool] = False
    shared: ClassVar[bool] = False

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.waiting: dict[Hashable, _Waiting] = {}
        self.clock = itertools.count()

    @classmethod
    def from_url(cls, url: str) -> LocalQueue:
        return cls()

    def push(self, entries: Sequence[QueueEntry]) -> None:
        with self.changed:
            for entry in self.accept(entries):
                pushed = next(self.clock)
                key = self.key(entry, pushed)
                if key not in self.waiting:
                    self.waiting[key] = _Waiting(entry, pushed)
            self.wake()

    def pop(self, types: Sequence[str], count: int = 1, timeout: float = 0.0) -> list[QueueEntry]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                chosen = self.choose(self.matching(types), types, count)
                if chosen:
                    self.take(chosen)
                    return [w.entry for w in chosen]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self.wait(remaining)

    def remove(self, job_ids: Sequence[str]) -> int:
        with self.changed:
            dropped = [k for k, w in self.waiting.items() if w.entry.job_id in set(job_ids)]
            for key in dropped:
                del self.waiting[key]
            return len(dropped)

    def size(self, types: Sequence[str] | None = None) -> int:
        with self.changed:
            if types is None:
                return len(self.waiting)
            return sum(1 for w in self.waiting.values() if w.entry.type in set(types))

    def clear(self) -> None:
        with self.changed:
            self.waiting.clear()

    def close(self) -> None:
        """Nothing to release."""

    # What the broken variants override.

    def accept(self, entries: Sequence[QueueEntry]) -> Sequence[QueueEntry]:
        return entries

    def key(self, entry: QueueEntry, pushed: int) -> Hashable:
        return entry.job_id

    def matching(self, types: Sequence[str]) -> list[_Waiting]:
        return [w for w in self.waiting.values() if w.entry.type in set(types)]

    def choose(self, matching: list[_Waiting], types: Sequence[str], count: int) -> list[_Waiting]:
        return sorted(matching, key=lambda w: (-w.entry.priority, w.pushed))[:count]

    def take(self, chosen: Iterable[_Waiting]) -> None:
        gone = {id(w) for w in chosen}
        for key in [k for k, w in self.waiting.items() if id(w) in gone]:
            del self.waiting[key]

    def wake(self) -> None:
        self.changed.notify_all()

    def wait(self, remaining: float) -> None:
        self.changed.wait(remaining)


class RandomLocalQueue(LocalQueue):
    """A correct ``random`` queue: any waiting entry of the types, uniformly."""

    ordering: ClassVar[Ordering] = "random"

    def choose(self, matching: list[_Waiting], types: Sequence[str], count: int) -> list[_Waiting]:
        return random.sample(matching, min(count, len(matching)))


_SCHEMA: Final = """
create table if not exists entries (
    pushed integer primary key autoincrement,
    job_id text not null unique,
    type text not null,
    priority integer not null
)
"""


class FileQueue:
    """A correct shared, durable fifo queue: one SQLite file that every process opens.

    A thread's push wakes the pops of its own process at once; other processes'
    pushes are noticed by polling every :attr:`poll` seconds.
    """

    ordering: ClassVar[Ordering] = "fifo"
    durable: ClassVar[bool] = True
    shared: ClassVar[bool] = True
    poll: ClassVar[float] = 0.05

    def __init__(self, path: str) -> None:
        self.path = path
        self.changed = threading.Condition()
        self.popping = threading.Lock()
        with closing(self.connect()) as db:
            db.execute("pragma journal_mode=wal")
            db.execute(_SCHEMA)

    @classmethod
    def from_url(cls, url: str) -> FileQueue:
        return cls(url.partition("://")[2])

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def push(self, entries: Sequence[QueueEntry]) -> None:
        with closing(self.connect()) as db:
            db.execute("begin immediate")
            db.executemany(
                "insert or ignore into entries (job_id, type, priority) values (?, ?, ?)",
                [(e.job_id, e.type, e.priority) for e in entries],
            )
            db.execute("commit")
        with self.changed:
            self.changed.notify_all()

    def pop(self, types: Sequence[str], count: int = 1, timeout: float = 0.0) -> list[QueueEntry]:
        deadline = time.monotonic() + timeout
        while True:
            with self.popping:
                got = self.take(types, count)
            remaining = deadline - time.monotonic()
            if got or remaining <= 0:
                return got
            with self.changed:
                self.changed.wait(min(self.poll, remaining))

    def take(self, types: Sequence[str], count: int) -> list[QueueEntry]:
        with closing(self.connect()) as db:
            db.execute("begin immediate")
            rows = self.select(db, types, count)
            db.executemany("delete from entries where pushed = ?", [(r[0],) for r in rows])
            db.execute("commit")
        return [QueueEntry(job_id=r[1], type=r[2], priority=r[3]) for r in rows]

    def select(
        self, db: sqlite3.Connection, types: Sequence[str], count: int
    ) -> list[tuple[int, str, str, int]]:
        marks = ", ".join("?" * len(types))
        return db.execute(
            "select pushed, job_id, type, priority from entries "
            f"where type in ({marks}) order by priority desc, pushed limit ?",
            [*types, count],
        ).fetchall()

    def remove(self, job_ids: Sequence[str]) -> int:
        with closing(self.connect()) as db:
            marks = ", ".join("?" * len(job_ids))
            return db.execute(f"delete from entries where job_id in ({marks})", job_ids).rowcount

    def size(self, types: Sequence[str] | None = None) -> int:
        sql, params = "select count(*) from entries", list(types or [])
        if types is not None:
            sql += f" where type in ({', '.join('?' * len(types))})"
        with closing(self.connect()) as db:
            row = db.execute(sql, params).fetchone()
        return int(row[0])

    def clear(self) -> None:
        with closing(self.connect()) as db:
            db.execute("delete from entries")

    def close(self) -> None:
        """Connections are per call; nothing stays open."""


# One subclass per clause, each overriding one thing.


class LaggingPush(LocalQueue):
    """Holds each push back until the next one, like a write buffer flushed too late."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[QueueEntry] = []

    def accept(self, entries: Sequence[QueueEntry]) -> Sequence[QueueEntry]:
        flushed, self.held = self.held, list(entries)
        return flushed


class ReversedBatch(LocalQueue):
    """Pushes a batch back to front, as LPUSH of a list would."""

    def accept(self, entries: Sequence[QueueEntry]) -> Sequence[QueueEntry]:
        return list(reversed(entries))


class NoDedupe(LocalQueue):
    """Keys waiting entries by push, not by job id, so a re-push adds a copy."""

    def key(self, entry: QueueEntry, pushed: int) -> Hashable:
        return (entry.job_id, pushed)


class AnyType(LocalQueue):
    """Pops whatever waits, of any type."""

    def matching(self, types: Sequence[str]) -> list[_Waiting]:
        return list(self.waiting.values())


class OneAtATime(LocalQueue):
    """Ignores ``count`` and pops one entry per call."""

    def choose(self, matching: list[_Waiting], types: Sequence[str], count: int) -> list[_Waiting]:
        return super().choose(matching, types, 1)


class StaleSize(LocalQueue):
    """Counts popped entries as still waiting, like a counter never decremented."""

    def __init__(self) -> None:
        super().__init__()
        self.popped = 0

    def take(self, chosen: Iterable[_Waiting]) -> None:
        chosen = list(chosen)
        self.popped += len(chosen)
        super().take(chosen)

    def size(self, types: Sequence[str] | None = None) -> int:
        return super().size(types) + (self.popped if types is None else 0)


class RemembersIds(LocalQueue):
    """Deduplicates against every id ever pushed, so a popped job cannot come back."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def accept(self, entries: Sequence[QueueEntry]) -> Sequence[QueueEntry]:
        fresh = [e for e in entries if e.job_id not in self.seen]
        self.seen.update(e.job_id for e in entries)
        return fresh


class SlowEmpty(LocalQueue):
    """Waits two seconds before saying there is nothing, even with timeout 0."""

    def pop(self, types: Sequence[str], count: int = 1, timeout: float = 0.0) -> list[QueueEntry]:
        got = super().pop(types, count, timeout)
        if not got and timeout == 0:
            time.sleep(2.0)
        return got


class NoTimeout(LocalQueue):
    """Waits for a match however long it takes, ignoring the timeout."""

    def pop(self, types: Sequence[str], count: int = 1, timeout: float = 0.0) -> list[QueueEntry]:
        if timeout == 0:
            return super().pop(types, count, timeout)
        with self.changed:
            self.changed.wait_for(lambda: self.matching(types))
        return super().pop(types, count, 0.0)


class NoWake(LocalQueue):
    """Never wakes a blocked pop; the pop looks again every 2.5 s."""

    def wake(self) -> None:
        pass

    def wait(self, remaining: float) -> None:
        self.changed.wait(min(2.5, remaining))


class IgnoresPriority(LocalQueue):
    """Pops in push order only."""

    def choose(self, matching: list[_Waiting], types: Sequence[str], count: int) -> list[_Waiting]:
        return sorted(matching, key=lambda w: w.pushed)[:count]


class PerType(LocalQueue):
    """Drains the requested types one after the other, as one list per type would."""

    def choose(self, matching: list[_Waiting], types: Sequence[str], count: int) -> list[_Waiting]:
        rank = {t: n for n, t in enumerate(types)}
        in_order = sorted(matching, key=lambda w: (rank[w.entry.type], -w.entry.priority, w.pushed))
        return in_order[:count]


class NewestFirst(RandomLocalQueue):
    """Declares ``random`` but pops the newest entry, so an old one can wait forever."""

    def choose(self, matching: list[_Waiting], types: Sequence[str], count: int) -> list[_Waiting]:
        return sorted(matching, key=lambda w: -w.pushed)[:count]


class RacyPop(LocalQueue):
    """Reads the head and removes it in two steps without holding the lock between them."""

    def pop(self, types: Sequence[str], count: int = 1, timeout: float = 0.0) -> list[QueueEntry]:
        deadline = time.monotonic() + timeout
        while True:
            with self.changed:
                chosen = self.choose(self.matching(types), types, count)
            if chosen:
                time.sleep(0.001)
                with self.changed:
                    self.take(chosen)
                return [w.entry for w in chosen]
            if time.monotonic() >= deadline:
                return []
            time.sleep(0.01)


class Int32Priority(LocalQueue):
    """Stores priorities in a 32-bit column, clamping the rest."""

    def accept(self, entries: Sequence[QueueEntry]) -> Sequence[QueueEntry]:
        return [
            attrs.evolve(e, priority=max(-(2**31), min(2**31 - 1, e.priority))) for e in entries
        ]


class SizeIgnoresTypes(LocalQueue):
    """Counts every waiting entry whatever types were asked for."""

    def size(self, types: Sequence[str] | None = None) -> int:
        return super().size(None)


class ClearsOneType(LocalQueue):
    """Clears only the type of the oldest waiting entry, as if it forgot the other lists."""

    def clear(self) -> None:
        with self.changed:
            if self.waiting:
                oldest = min(self.waiting.values(), key=lambda w: w.pushed).entry.type
                for key in [k for k, w in self.waiting.items() if w.entry.type == oldest]:
                    del self.waiting[key]


class CountsAsked(LocalQueue):
    """Returns how many ids it was asked to remove, not how many it dropped."""

    def remove(self, job_ids: Sequence[str]) -> int:
        super().remove(job_ids)
        return len(job_ids)


class RemoveLeavesTombstones(LocalQueue):
    """Remembers removed ids until the next clear and ignores pushes of them.

    A cancelled job that is retried is never handed out again. Every single-clause
    test passes; only a sequence (push, remove, push the same id) shows it, which is
    what the stateful test is for.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tombstones: set[str] = set()

    def remove(self, job_ids: Sequence[str]) -> int:
        with self.changed:
            self.tombstones.update(job_ids)
            return super().remove(job_ids)

    def clear(self) -> None:
        with self.changed:
            self.tombstones.clear()
            super().clear()

    def accept(self, entries: Sequence[QueueEntry]) -> Sequence[QueueEntry]:
        return [e for e in entries if e.job_id not in self.tombstones]


class SlowCrossProcessWake(FileQueue):
    """Wakes its own threads, but notices other processes' pushes only every 3 s."""

    poll: ClassVar[float] = 3.0


class RacyAcrossProcesses(FileQueue):
    """Selects and deletes in two transactions: safe among its threads, not across processes."""

    def take(self, types: Sequence[str], count: int) -> list[QueueEntry]:
        with closing(self.connect()) as db:
            rows = self.select(db, types, count)
            time.sleep(0.005)
            db.executemany("delete from entries where pushed = ?", [(r[0],) for r in rows])
        return [QueueEntry(job_id=r[1], type=r[2], priority=r[3]) for r in rows]


class PerProcessFile(FileQueue):
    """Declares ``shared`` but gives each process a file of its own."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}.{os.getpid()}")


class WipesOnOpen(FileQueue):
    """Declares ``durable`` but empties the file whenever it is opened."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.clear()


#: The correct backends, by scheme.
CORRECT: Final[Mapping[str, Callable[[str], Queue]]] = {
    "ok": LocalQueue.from_url,
    "ok+random": RandomLocalQueue.from_url,
    "ok+shared": FileQueue.from_url,
}

#: For each clause, the factory of the variant that breaks it, registered as
#: :func:`broken_scheme` of the clause.
BROKEN: Final[Mapping[str, Callable[[str], Queue]]] = {
    "queue.push.waits": LaggingPush.from_url,
    "queue.push.batch": ReversedBatch.from_url,
    "queue.push.idempotent": NoDedupe.from_url,
    "queue.pop.types": AnyType.from_url,
    "queue.pop.count": OneAtATime.from_url,
    "queue.pop.removes": StaleSize.from_url,
    "queue.pop.repush": RemembersIds.from_url,
    "queue.pop.empty": SlowEmpty.from_url,
    "queue.pop.timeout": NoTimeout.from_url,
    "queue.pop.wake.thread": NoWake.from_url,
    "queue.pop.wake.process": SlowCrossProcessWake.from_url,
    "queue.pop.fifo.priority": IgnoresPriority.from_url,
    "queue.pop.fifo.order": PerType.from_url,
    "queue.pop.random.no_starvation": NewestFirst.from_url,
    "queue.pop.once.threads": RacyPop.from_url,
    "queue.pop.once.processes": RacyAcrossProcesses.from_url,
    "queue.remove.drops": CountsAsked.from_url,
    "queue.size.types": SizeIgnoresTypes.from_url,
    "queue.clear.empties": ClearsOneType.from_url,
    "queue.entry.roundtrip": Int32Priority.from_url,
    "queue.shared.visible": PerProcessFile.from_url,
    "queue.durable.reopen": WipesOnOpen.from_url,
    "queue.model.reference": RemoveLeavesTombstones.from_url,
}


def broken_scheme(clause_id: str) -> str:
    """``queue.pop.fifo.order`` -> ``broken-pop-fifo-order``; test_broken_backends.py agrees."""
    return "broken-" + clause_id.removeprefix("queue.").replace(".", "-").replace("_", "-")


@hookimpl
def forerunner_queue_backends() -> Mapping[str, Callable[[str], Queue]]:
    return {**CORRECT, **{broken_scheme(c): factory for c, factory in BROKEN.items()}}
