"""The workers a manager has heard from: what the dashboard and ``forerunner workers`` list.

Nothing here decides anything about a job: leases in the store do that. This is the
operator's view, kept in memory from the polls, so it costs a dictionary update per
poll and nothing in the store. With several managers, each knows the workers that
poll it; a worker that fails over to another manager shows up there within one poll.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable

    from forerunner.wire import PollRequest

__all__ = ["SeenWorker", "WorkerRegistry"]


@attrs.frozen
class SeenWorker:
    """A worker as of its latest poll; ``running`` as of its latest renewal."""

    id: str
    types: tuple[str, ...]
    capacity: int
    running: tuple[str, ...]
    last_seen: dt.datetime
    seconds_since: float
    stopping: bool
    host: str | None = None
    pid: int | None = None
    concurrency: int | None = None


@attrs.define
class _Entry:
    types: tuple[str, ...]
    capacity: int
    running: tuple[str, ...]
    #: ``time.monotonic()`` of the latest poll; its wall-clock time is derived when asked.
    seen_at: float
    stopping: bool
    host: str | None
    pid: int | None
    concurrency: int | None


class WorkerRegistry:
    """Remembers each worker's latest poll for ``horizon()`` seconds.

    ``horizon`` is read on every look because it is the manager's lease: a worker silent
    for longer has lost every attempt it held, so it no longer counts as connected.
    """

    def __init__(self, clock: Callable[[], dt.datetime], horizon: Callable[[], float]) -> None:
        self._clock = clock
        self._horizon = horizon
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def saw(self, poll: PollRequest) -> None:
        """Record one poll. Its ``running`` list counts only when the poll renews.

        A worker lists its attempts about once a second, not in every poll, so an empty
        list in a poll that renews nothing says nothing about what runs; ``info`` comes
        with the renewing polls, and marks them even when nothing runs.
        """
        renewing = bool(poll.running) or poll.info is not None
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(poll.worker)
            if entry is None:
                entry = _Entry(
                    types=(),
                    capacity=0,
                    running=(),
                    seen_at=now,
                    stopping=False,
                    host=None,
                    pid=None,
                    concurrency=None,
                )
                self._entries[poll.worker] = entry
            if poll.types:
                entry.types = tuple(poll.types)
            entry.capacity = poll.capacity
            entry.seen_at = now
            entry.stopping = entry.stopping or poll.stopping
            if renewing:
                entry.running = tuple(ref.id for ref in poll.running)
            if poll.info is not None:
                entry.host = poll.info.host
                entry.pid = poll.info.pid
                entry.concurrency = poll.info.concurrency

    def snapshot(self) -> list[SeenWorker]:
        """The workers heard from within the horizon, by id; forgets the others."""
        now = time.monotonic()
        wall = self._clock()
        horizon = self._horizon()
        seen: list[SeenWorker] = []
        with self._lock:
            for worker_id in [w for w, e in self._entries.items() if now - e.seen_at > horizon]:
                del self._entries[worker_id]
            for worker_id, entry in sorted(self._entries.items()):
                seen.append(
                    SeenWorker(
                        id=worker_id,
                        types=entry.types,
                        capacity=entry.capacity,
                        running=entry.running,
                        last_seen=wall - dt.timedelta(seconds=now - entry.seen_at),
                        seconds_since=max(0.0, now - entry.seen_at),
                        stopping=entry.stopping,
                        host=entry.host,
                        pid=entry.pid,
                        concurrency=entry.concurrency,
                    )
                )
        return seen

    def types(self) -> set[str]:
        """Every task name a worker within the horizon polls for."""
        return {name for worker in self.snapshot() for name in worker.types}
