"""Job lifecycle events: the seed's per-type callbacks and the ``forerunner_job_event`` hook.

Both run after the store recorded the change, on the manager's thread pool. A callback
that raises is logged and dropped: one user's bug must not stop jobs moving.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from forerunner.model import Job
    from forerunner.plugins import Registry

__all__ = ["EVENTS", "Events"]

logger = logging.getLogger(__name__)

#: Every event name, as the ``forerunner_job_event`` hook receives it.
EVENTS: Final = ("created", "staged", "progress", "retrying", "succeeded", "failed", "cancelled")


class Events:
    """Dispatches one event to the matching callbacks, then to the plugins' hook."""

    def __init__(self, registry: Registry | None = None) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._callbacks: dict[str, list[tuple[frozenset[str] | None, Callable[[Job], object]]]] = {
            event: [] for event in EVENTS
        }
        self._listeners: list[Callable[[str, Job], None]] = []
        self._batch_listeners: list[Callable[[str, Sequence[Job]], None]] = []

    def on(self, event: str, types: str | Iterable[str], fn: Callable[[Job], object]) -> None:
        """Call ``fn(job)`` on ``event`` for jobs of ``types`` (``"*"``: every type)."""
        if event not in self._callbacks:
            raise ValueError(f"unknown event {event!r}; known events: {', '.join(EVENTS)}")
        if isinstance(types, str):
            wanted = None if types == "*" else frozenset({types})
        else:
            names = frozenset(types)
            wanted = None if "*" in names else names
        with self._lock:
            self._callbacks[event].append((wanted, fn))

    def listen(self, fn: Callable[[str, Job], None]) -> Callable[[], None]:
        """Call ``fn(event, job)`` on every event; return the function that stops it.

        For the manager's own waiters, which wake when a job they wait for changes.
        """
        with self._lock:
            self._listeners.append(fn)

        def stop() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return stop

    def listen_batches(self, fn: Callable[[str, Sequence[Job]], None]) -> Callable[[], None]:
        """Call ``fn(event, jobs)`` once per dispatched batch; return the function that stops it.

        For observers that do a little work per job, such as metrics and the job log: one
        call per batch lets them take their lock, or check their log level, once for the
        hundred jobs a busy poll reports, instead of once per job. They run before the
        callbacks and the per-job listeners, so a ``/wait`` that a job's end wakes finds
        the job already counted and logged.
        """
        with self._lock:
            self._batch_listeners.append(fn)

        def stop() -> None:
            with self._lock:
                if fn in self._batch_listeners:
                    self._batch_listeners.remove(fn)

        return stop

    def emit(self, event: str, job: Job) -> None:
        """Tell everyone interested that ``job`` went through ``event``; never raises."""
        self.emit_all(event, (job,))

    def emit_all(self, event: str, jobs: Sequence[Job]) -> None:
        """:meth:`emit` for each of ``jobs``, looking up who listens once for the batch.

        A poll reports and hands out jobs by the hundred, and most managers have no
        callback at all: then this costs one lock, not a lock and a hook lookup per job.
        """
        if not jobs:
            return
        with self._lock:
            callbacks = list(self._callbacks[event])
            listeners = list(self._listeners)
            batch_listeners = list(self._batch_listeners)
        for batch_listener in batch_listeners:
            try:
                batch_listener(event, jobs)
            except Exception:
                logger.exception(
                    "event listener %r raised for %d job(s)", batch_listener, len(jobs)
                )
        for wanted, fn in callbacks:
            for job in jobs:
                if wanted is None or job.type in wanted:
                    try:
                        fn(job)
                    except Exception:
                        logger.exception(
                            "%s callback %r raised for job %r",
                            event,
                            fn,
                            job.id,
                            extra={"action": "callback_error", "job_id": job.id, "event": event},
                        )
        for listener in listeners:
            for job in jobs:
                try:
                    listener(event, job)
                except Exception:
                    logger.exception("event listener %r raised for job %r", listener, job.id)
        if self._registry is not None:
            self._registry.emit_job_events(event, jobs)
