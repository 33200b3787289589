"""The reference queue: design §4 as plain Python, the oracle of the stateful test.

It is written from the design alone and shares no code with any backend, so that a
bug copied from one implementation cannot hide in the model too. It is deliberately
slow and obvious: a dict of waiting entries, each stamped with the order of its push.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from forerunner.model import QueueEntry

__all__ = ["ReferenceQueue"]


@attrs.frozen
class _Waiting:
    entry: QueueEntry
    #: Position of the push that made the entry wait; smaller pushed earlier.
    pushed: int


class ReferenceQueue:
    """What a ``fifo`` queue must answer; for ``random`` it says which answers are allowed."""

    def __init__(self) -> None:
        self._waiting: dict[str, _Waiting] = {}
        self._clock = itertools.count()

    def push(self, entries: Sequence[QueueEntry]) -> None:
        """Entries wait in batch order; an id already waiting keeps its place and priority."""
        for entry in entries:
            if entry.job_id not in self._waiting:
                self._waiting[entry.job_id] = _Waiting(entry, next(self._clock))

    def candidates(self, types: Iterable[str]) -> list[QueueEntry]:
        """Every waiting entry of ``types``, in the order a ``fifo`` queue pops them."""
        wanted = set(types)
        matching = [w for w in self._waiting.values() if w.entry.type in wanted]
        matching.sort(key=lambda w: (-w.entry.priority, w.pushed))
        return [w.entry for w in matching]

    def pop(self, types: Sequence[str], count: int = 1) -> list[QueueEntry]:
        """Remove and return what a ``fifo`` queue's ``pop(types, count)`` returns."""
        chosen = self.candidates(types)[:count]
        self.take(entry.job_id for entry in chosen)
        return chosen

    def take(self, job_ids: Iterable[str]) -> None:
        """Forget entries a ``random`` queue chose to pop."""
        for job_id in job_ids:
            del self._waiting[job_id]

    def remove(self, job_ids: Sequence[str]) -> int:
        """Drop the waiting ones among ``job_ids``; an id listed twice is dropped once."""
        dropped = {job_id for job_id in job_ids if job_id in self._waiting}
        self.take(dropped)
        return len(dropped)

    def size(self, types: Sequence[str] | None = None) -> int:
        if types is None:
            return len(self._waiting)
        wanted = set(types)
        return sum(1 for w in self._waiting.values() if w.entry.type in wanted)

    def clear(self) -> None:
        self._waiting.clear()
