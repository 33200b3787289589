"""ExampleQueue: a fifo queue inside one process, for ``example://`` URLs."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import TYPE_CHECKING, ClassVar

from forerunner.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from forerunner.model import QueueEntry
    from forerunner.queue import Ordering

#: ``(-priority, push number, entry)``: the smallest item pops first, and push numbers
#: are unique, so two items never compare their entries.
_Item = tuple[int, int, "QueueEntry"]


class ExampleQueue:
    """One heap per type; a pop takes the best head among the requested types.

    An entry that is removed stays in its heap as a stale item (its push number no
    longer matches ``_waiting``) and is dropped when it reaches the top.
    """

    ordering: ClassVar[Ordering] = "fifo"
    durable: ClassVar[bool] = False
    shared: ClassVar[bool] = False

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._heaps: dict[str, list[_Item]] = {}
        self._waiting: dict[str, tuple[int, str]] = {}  # job_id -> (push number, type)
        self._pushes = itertools.count()

    @classmethod
    def from_url(cls, url: str) -> ExampleQueue:
        if url.lower() != "example://":
            raise ConfigurationError(
                f"queue URL {url!r} is not accepted: write exactly example://, "
                "since an example queue lives in one process"
            )
        return cls()

    def push(self, entries: Sequence[QueueEntry]) -> None:
        with self._changed:
            for entry in entries:
                if entry.job_id in self._waiting:
                    continue
                number = next(self._pushes)
                self._waiting[entry.job_id] = (number, entry.type)
                heap = self._heaps.setdefault(entry.type, [])
                heapq.heappush(heap, (-entry.priority, number, entry))
            self._changed.notify_all()

    def pop(self, types: Sequence[str], count: int = 1, timeout: float = 0.0) -> list[QueueEntry]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while count > 0:
                taken = self._take(set(types), count)
                left = deadline - time.monotonic()
                if taken or left <= 0:
                    return taken
                self._changed.wait(left)
            return []

    def _take(self, types: set[str], count: int) -> list[QueueEntry]:
        taken: list[QueueEntry] = []
        while len(taken) < count:
            best: list[_Item] | None = None
            for job_type in types:
                heap = self._heaps.get(job_type, [])
                while heap and self._waiting.get(heap[0][2].job_id, (-1, ""))[0] != heap[0][1]:
                    heapq.heappop(heap)
                if heap and (best is None or heap[0] < best[0]):
                    best = heap
            if best is None:
                break
            entry = heapq.heappop(best)[2]
            del self._waiting[entry.job_id]
            taken.append(entry)
        return taken

    def remove(self, job_ids: Sequence[str]) -> int:
        with self._changed:
            return sum(self._waiting.pop(job_id, None) is not None for job_id in set(job_ids))

    def size(self, types: Sequence[str] | None = None) -> int:
        with self._changed:
            if types is None:
                return len(self._waiting)
            wanted = set(types)
            return sum(job_type in wanted for _, job_type in self._waiting.values())

    def clear(self) -> None:
        with self._changed:
            self._heaps.clear()
            self._waiting.clear()

    def close(self) -> None:
        self.clear()
