"""The in-process queues: ``memory://`` (fifo) and ``memory+random://`` (random).

Both keep the waiting entries in a dict by job id, which makes push idempotent and
remove cheap, and hand the choice of what to pop to a picker: :class:`_FifoPicker`
keeps one heap per type, :class:`_RandomPicker` one array per type. Per-type
structures keep a pop of a few types fast however many other types wait, and no pop
scans the waiting entries.

A blocked pop waits on a condition variable that every push notifies, so it wakes as
soon as work arrives and costs nothing while it waits.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import random
import threading
import time
from typing import TYPE_CHECKING, ClassVar, Final, Protocol, final

from forerunner.backends.urls import check_memory_url
from forerunner.errors import BackendError

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from forerunner.model import QueueEntry
    from forerunner.queue import Ordering

__all__ = ["MemoryQueue", "RandomMemoryQueue"]

#: A type's heap is rebuilt once its stale items outnumber its live ones and exceed this
#: many; fewer stale items are cheaper to skip than to collect.
_MIN_STALE_TO_COMPACT: Final = 64


class _Picker(Protocol):
    """Chooses which waiting entries a pop returns; the queue's lock is held on every call."""

    def add(self, entry: QueueEntry) -> None: ...

    def discard(self, entry: QueueEntry) -> None: ...

    def take(self, types: Collection[str], count: int) -> list[QueueEntry]: ...

    def clear(self) -> None: ...


class _FifoPicker:
    """Highest priority first, then earliest push, across the requested types.

    One heap per type of ``(-priority, push number, entry)``. Removing an entry only
    forgets its push number in ``_live``; its heap item turns stale and is skipped when
    it reaches the top, or collected when stale items outnumber live ones. A repushed
    id gets a new push number, so its old item stays stale.
    """

    def __init__(self) -> None:
        self._heaps: dict[str, list[tuple[int, int, QueueEntry]]] = {}
        self._live: dict[str, int] = {}
        self._stale: collections.Counter[str] = collections.Counter()
        self._pushes = itertools.count()

    def add(self, entry: QueueEntry) -> None:
        number = next(self._pushes)
        self._live[entry.job_id] = number
        heapq.heappush(self._heaps.setdefault(entry.type, []), (-entry.priority, number, entry))

    def discard(self, entry: QueueEntry) -> None:
        del self._live[entry.job_id]
        self._stale[entry.type] += 1
        heap = self._heaps[entry.type]
        stale = self._stale[entry.type]
        if stale > _MIN_STALE_TO_COMPACT and stale > len(heap) - stale:
            heap[:] = [item for item in heap if self._live.get(item[2].job_id) == item[1]]
            heapq.heapify(heap)
            self._stale[entry.type] = 0

    def take(self, types: Collection[str], count: int) -> list[QueueEntry]:
        taken: list[QueueEntry] = []
        heaps = [self._heaps[t] for t in types if t in self._heaps]
        while len(taken) < count:
            best: list[tuple[int, int, QueueEntry]] | None = None
            for heap in heaps:
                self._drop_stale_top(heap)
                if heap and (best is None or heap[0] < best[0]):
                    best = heap
            if best is None:
                break
            _, _, entry = heapq.heappop(best)
            del self._live[entry.job_id]
            taken.append(entry)
        for job_type in types:
            if not self._heaps.get(job_type, True):
                del self._heaps[job_type]
                self._stale.pop(job_type, None)
        return taken

    def clear(self) -> None:
        self._heaps.clear()
        self._live.clear()
        self._stale.clear()

    def _drop_stale_top(self, heap: list[tuple[int, int, QueueEntry]]) -> None:
        while heap and self._live.get(heap[0][2].job_id) != heap[0][1]:
            _, _, entry = heapq.heappop(heap)
            self._stale[entry.type] -= 1


class _RandomPicker:
    """Uniformly at random among the waiting entries of the requested types.

    One array per type, with each id's index, so that removing an entry is a swap with
    the last one. A pop draws a position among all matching entries, which picks the
    type in proportion to how many of its entries wait: no entry is favoured, so none
    is starved.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._slots: dict[str, list[QueueEntry]] = {}
        self._index: dict[str, int] = {}

    def add(self, entry: QueueEntry) -> None:
        slots = self._slots.setdefault(entry.type, [])
        self._index[entry.job_id] = len(slots)
        slots.append(entry)

    def discard(self, entry: QueueEntry) -> None:
        slots = self._slots[entry.type]
        index = self._index.pop(entry.job_id)
        last = slots.pop()
        if last.job_id != entry.job_id:
            slots[index] = last
            self._index[last.job_id] = index
        if not slots:
            del self._slots[entry.type]

    def take(self, types: Collection[str], count: int) -> list[QueueEntry]:
        taken: list[QueueEntry] = []
        arrays = [self._slots[t] for t in types if t in self._slots]
        while len(taken) < count:
            total = sum(len(slots) for slots in arrays)
            if total == 0:
                break
            position = self._rng.randrange(total)
            for slots in arrays:
                if position < len(slots):
                    entry = slots[position]
                    self.discard(entry)
                    taken.append(entry)
                    break
                position -= len(slots)
        return taken

    def clear(self) -> None:
        self._slots.clear()
        self._index.clear()


class _MemoryQueueBase:
    """The queue of one process; the picker decides the order."""

    durable: ClassVar[bool] = False
    shared: ClassVar[bool] = False
    scheme: ClassVar[str]

    def __init__(self, picker: _Picker) -> None:
        self._picker = picker
        self._waiting: dict[str, QueueEntry] = {}
        self._per_type: collections.Counter[str] = collections.Counter()
        self._changed = threading.Condition(threading.Lock())
        self._closed = False

    def push(self, entries: Sequence[QueueEntry]) -> None:
        with self._changed:
            self._check_open()
            added = False
            for entry in entries:
                if entry.job_id in self._waiting:
                    continue
                self._waiting[entry.job_id] = entry
                self._per_type[entry.type] += 1
                self._picker.add(entry)
                added = True
            if added:
                self._changed.notify_all()

    def pop(self, types: Sequence[str], count: int = 1, timeout: float = 0.0) -> list[QueueEntry]:
        wanted = set(types)
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._changed:
            self._check_open()
            if count < 1:
                return []
            while True:
                taken = self._picker.take(wanted, count)
                if taken:
                    for entry in taken:
                        del self._waiting[entry.job_id]
                        self._forget_type(entry.type)
                    return taken
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return []
                self._changed.wait(left)

    def remove(self, job_ids: Sequence[str]) -> int:
        with self._changed:
            self._check_open()
            removed = 0
            for job_id in job_ids:
                entry = self._waiting.pop(job_id, None)
                if entry is not None:
                    self._forget_type(entry.type)
                    self._picker.discard(entry)
                    removed += 1
            return removed

    def size(self, types: Sequence[str] | None = None) -> int:
        with self._changed:
            self._check_open()
            if types is None:
                return len(self._waiting)
            return sum(self._per_type[t] for t in set(types))

    def clear(self) -> None:
        with self._changed:
            self._check_open()
            self._waiting.clear()
            self._per_type.clear()
            self._picker.clear()

    def close(self) -> None:
        """Drop every entry and wake blocked pops, which return ``[]``; closing twice is fine."""
        with self._changed:
            self._closed = True
            self._waiting.clear()
            self._per_type.clear()
            self._picker.clear()
            self._changed.notify_all()

    def _forget_type(self, job_type: str) -> None:
        self._per_type[job_type] -= 1
        if not self._per_type[job_type]:
            del self._per_type[job_type]

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError(
                f"this {self.scheme}:// queue is closed; open a new one with {self.scheme}://"
            )


@final
class MemoryQueue(_MemoryQueueBase):
    """``memory://``: a fifo queue inside this process, for one manager and for tests."""

    ordering: ClassVar[Ordering] = "fifo"
    scheme: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__(_FifoPicker())

    @classmethod
    def from_url(cls, url: str) -> MemoryQueue:
        """A new, empty queue for ``memory://``; each call makes another one."""
        check_memory_url(url, cls.scheme, "queue")
        return cls()


@final
class RandomMemoryQueue(_MemoryQueueBase):
    """``memory+random://``: pops uniformly at random, to find code that assumes an order."""

    ordering: ClassVar[Ordering] = "random"
    scheme: ClassVar[str] = "memory+random"

    def __init__(self, rng: random.Random | None = None) -> None:
        """``rng`` makes the order reproducible in tests; by default it is seeded afresh."""
        super().__init__(_RandomPicker(rng if rng is not None else random.Random()))

    @classmethod
    def from_url(cls, url: str) -> RandomMemoryQueue:
        """A new, empty queue for ``memory+random://``; each call makes another one."""
        check_memory_url(url, cls.scheme, "queue")
        return cls()
