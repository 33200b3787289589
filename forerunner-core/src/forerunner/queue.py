"""The Queue interface (design §4): how a backend orders pending work.

The queue is ephemeral by design. It holds only :class:`~forerunner.model.QueueEntry`
records, never the truth about a job; losing it loses no job, because the manager
rebuilds it from :meth:`Store.queued`. That is why the contract asks so little of it
and so much of how it orders and hands out what it has.

Each rule below carries a clause id in brackets. The conformance suite
``forerunner-queue-tests`` has one test per clause, named for it, and every failure
message starts with the id: docs/conformance.md is the catalogue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from forerunner.model import QueueEntry

__all__ = ["Ordering", "Queue"]

Ordering = Literal["fifo", "random"]


@runtime_checkable
class Queue(Protocol):
    """Orders waiting :class:`QueueEntry` records and hands each out once.

    Implementations must be safe to call from many threads at once.
    """

    #: ``"fifo"``: highest priority first, then earliest push, across the requested
    #: types. ``"random"``: any order, but none starved.
    ordering: ClassVar[Ordering]
    #: True when entries survive :meth:`close` and reopening the same URL [queue.durable.reopen].
    durable: ClassVar[bool]
    #: True when another process that opens the same URL sees the same entries
    #: [queue.shared.visible]; the suite's multi-process clauses run only then.
    shared: ClassVar[bool]

    def push(self, entries: Sequence[QueueEntry]) -> None:
        """Make every entry wait, in the order given [queue.push.waits, queue.push.batch].

        Idempotent per ``job_id``: pushing an id that is already waiting changes nothing,
        neither adding a copy nor moving it [queue.push.idempotent]. The manager relies on
        this to re-push the store's queued jobs whenever it suspects the queue is behind.
        """
        ...

    def pop(self, types: Sequence[str], count: int = 1, timeout: float = 0.0) -> list[QueueEntry]:
        """Remove and return up to ``count`` waiting entries whose type is in ``types``.

        Only those types [queue.pop.types]; ``min(count, matching)`` of them
        [queue.pop.count]; each equal to what was pushed [queue.entry.roundtrip]. An entry
        popped is gone [queue.pop.removes] until pushed again [queue.pop.repush].

        ``fifo`` ordering: highest priority first [queue.pop.fifo.priority], then earliest
        push, across the types rather than per type [queue.pop.fifo.order]. ``random``:
        any order, but an entry is not starved by entries pushed after it
        [queue.pop.random.no_starvation].

        With nothing to return it blocks up to ``timeout`` seconds [queue.pop.empty,
        queue.pop.timeout] and returns well under a second after another thread
        [queue.pop.wake.thread] or process [queue.pop.wake.process] pushes a matching entry.

        Each pushed entry is returned by at most one pop, also under concurrent pops from
        many threads [queue.pop.once.threads] and processes [queue.pop.once.processes].
        """
        ...

    def remove(self, job_ids: Sequence[str]) -> int:
        """Drop these waiting entries and return how many were dropped [queue.remove.drops].

        The manager calls it on cancellation so a cancelled job is not handed out.
        """
        ...

    def size(self, types: Sequence[str] | None = None) -> int:
        """Count waiting entries, of ``types`` only when given [queue.size.types]."""
        ...

    def clear(self) -> None:
        """Drop every waiting entry of this queue, and nothing outside it [queue.clear.empties]."""
        ...

    def close(self) -> None:
        """Release connections; the queue is not used afterwards."""
        ...
