"""The manager's Prometheus metrics: job counters and times, queue depth, backend latency.

Each :class:`Metrics` owns a ``CollectorRegistry``: tests and embedding programs run many
managers in one process, and prometheus-client's global registry would refuse the second
one's series (or mix them up). The job series are counted in plain dicts under one lock
taken once per event batch, and turned into metric families only when scraped: a job costs
the manager about 60 µs of CPU, and prometheus-client's own ``Histogram.observe`` (a lock
per bucket and per sum, 2 to 4 µs) would add a tenth to that. Gauges that ask the store or
the queue (depth, job counts) are read at scrape time, on the scrape's thread.

:class:`TimedStore` and :class:`TimedQueue` wrap the backends the manager uses and time
every call; they forward everything else (``durable``, ``shared``, ``migrate``, ...) to
the backend they wrap.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Literal, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from forerunner.errors import ForerunnerError

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from forerunner.manager.service import ManagerService
    from forerunner.model import JSON, Job, JobState, QueueEntry, Report
    from forerunner.queue import Ordering, Queue
    from forerunner.store import Store

__all__ = [
    "BACKEND_BUCKETS",
    "CONTENT_TYPE",
    "COUNTS_TTL",
    "JOB_BUCKETS",
    "Metrics",
    "TimedQueue",
    "TimedStore",
]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
B = TypeVar("B")

#: The media type of the text exposition format this module writes.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: Bucket bounds, in seconds, of the job wait and run time histograms: a no-op job waits
#: and runs for about a millisecond, a report or a crawl for minutes, a batch for hours.
JOB_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
)
#: Bucket bounds of the backend call latency histogram: an embedded call takes tens of
#: microseconds, a Redis or PostgreSQL round trip about a millisecond, a sick one seconds.
BACKEND_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Seconds the ``forerunner_jobs`` counts are reused: counting is a scan of the store.
COUNTS_TTL: Final = 30.0

#: Event name -> (counter name, help text), for the events that count jobs.
_COUNTERS: Final = {
    "created": ("forerunner_jobs_submitted", "Jobs created, by type."),
    "staged": ("forerunner_jobs_started", "Attempts handed to a worker, by type."),
    "succeeded": ("forerunner_jobs_succeeded", "Jobs that succeeded, by type."),
    "failed": ("forerunner_jobs_failed", "Jobs that failed for good, by type."),
    "retrying": (
        "forerunner_jobs_retried",
        "Attempts that failed or were lost with another attempt to come, by type.",
    ),
    "cancelled": ("forerunner_jobs_cancelled", "Jobs cancelled, by type."),
}


class _Histogram:
    """Bucket counts and a sum, cumulated only when scraped; the caller holds the lock."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        #: One count per bound, then one for +Inf; not cumulative.
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # bisect_left finds the first bound >= value: the bucket "le" that bound.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        cumulative: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            cumulative.append((_bound_text(bound), running))
        return cumulative


def _bound_text(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class Metrics:
    """Everything one manager exposes on ``/metrics``, in a registry of its own.

    :meth:`observe` is the event batch listener (:meth:`Events.listen_batches`);
    :meth:`call_histogram` and :meth:`count_error` are what the timed backends report
    to; :meth:`bind` gives the service whose queue, store and workers the scrape-time
    gauges read.
    """

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self._clock = clock
        #: Guards every count; taken once per event batch and once per backend call.
        self.lock = threading.Lock()
        #: Event -> job type -> jobs counted.
        self._events: dict[str, dict[str, int]] = {event: {} for event in _COUNTERS}
        self._wait: dict[str, _Histogram] = {}
        self._run: dict[str, _Histogram] = {}
        #: (backend, operation) -> latency.
        self._calls: dict[tuple[str, str], _Histogram] = {}
        #: (backend, operation, error class) -> errors.
        self._errors: dict[tuple[str, str, str], int] = {}
        self._service: ManagerService | None = None
        self._counts_lock = threading.Lock()
        self._counts: dict[tuple[str, JobState], int] | None = None
        self._counts_at = -float("inf")
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(self)

    def bind(self, service: ManagerService) -> None:
        """Read queue depth, job counts and workers from ``service`` when scraped."""
        self._service = service
        service.events.listen_batches(self.observe)

    def render(self) -> bytes:
        """The text exposition of every series.

        It asks the queue for its depths and, at most every :data:`COUNTS_TTL` seconds,
        the store for its counts: call it off the event loop.
        """
        return generate_latest(self.registry)

    # Recording

    def observe(self, event: str, jobs: Sequence[Job]) -> None:
        """Count a batch of jobs that went through ``event``, and time their waits and runs."""
        counter = self._events.get(event)
        if counter is None:
            return
        # A retried attempt keeps no finished_at: it ended now, when the event is sent.
        now = self._clock() if event == "retrying" else None
        with self.lock:
            for job in jobs:
                counter[job.type] = counter.get(job.type, 0) + 1
            if event == "staged":
                for job in jobs:
                    since = job.run_at or job.created_at
                    if job.started_at is not None and since is not None:
                        waited = (job.started_at - since).total_seconds()
                        self._histogram(self._wait, job.type).observe(max(0.0, waited))
            elif event in ("succeeded", "failed", "retrying"):
                for job in jobs:
                    ended = now or job.finished_at
                    if job.started_at is not None and ended is not None:
                        ran = (ended - job.started_at).total_seconds()
                        self._histogram(self._run, job.type).observe(max(0.0, ran))

    def call_histogram(self, backend: str, operation: str) -> _Histogram:
        """The latency histogram of one backend method; observe it under :attr:`lock`."""
        with self.lock:
            histogram = self._calls.get((backend, operation))
            if histogram is None:
                histogram = self._calls[backend, operation] = _Histogram(BACKEND_BUCKETS)
            return histogram

    def count_error(self, backend: str, operation: str, error: BaseException) -> None:
        """Count one backend call that raised ``error``."""
        key = (backend, operation, type(error).__name__)
        with self.lock:
            self._errors[key] = self._errors.get(key, 0) + 1

    @staticmethod
    def _histogram(table: dict[str, _Histogram], job_type: str) -> _Histogram:
        histogram = table.get(job_type)
        if histogram is None:
            histogram = table[job_type] = _Histogram(JOB_BUCKETS)
        return histogram

    # Scraping: prometheus-client calls collect() on the scrape's thread.

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            events = {event: dict(counts) for event, counts in self._events.items()}
            wait = {key: (h.buckets(), h.total) for key, h in self._wait.items()}
            run = {key: (h.buckets(), h.total) for key, h in self._run.items()}
            calls = {key: (h.buckets(), h.total) for key, h in self._calls.items()}
            errors = dict(self._errors)
        # Every counter has every type seen, at 0 where nothing happened yet, so that a
        # ratio such as failed / (failed + succeeded) exists for each type from the start.
        seen: set[str] = set().union(*events.values())
        for event, (name, text) in _COUNTERS.items():
            counter = CounterMetricFamily(name, text, labels=["type"])
            counts = events[event]
            for job_type in sorted(seen):
                counter.add_metric([job_type], counts.get(job_type, 0))
            yield counter
        yield _histograms(
            "forerunner_job_wait_seconds",
            "Seconds from when a job could start (run_at, else created_at) to when a "
            "worker was handed its attempt, by type.",
            ["type"],
            {(job_type,): value for job_type, value in wait.items()},
        )
        yield _histograms(
            "forerunner_job_run_seconds",
            "Seconds an attempt ran, from its hand-out to its report (or to the reaper "
            "taking back its lease), by type.",
            ["type"],
            {(job_type,): value for job_type, value in run.items()},
        )
        yield _histograms(
            "forerunner_backend_call_seconds",
            "Seconds a store or queue call took, by backend and method. pop_blocking is a "
            "pop that may wait for work: its time includes the wait.",
            ["backend", "operation"],
            dict(calls.items()),
        )
        failures = CounterMetricFamily(
            "forerunner_backend_errors",
            "Store and queue calls that raised, by backend, method and error class.",
            labels=["backend", "operation", "error"],
        )
        for labels, count in sorted(errors.items()):
            failures.add_metric(list(labels), count)
        yield failures
        service = self._service
        if service is not None:
            yield from self._collect_service(service, seen)

    def _collect_service(self, service: ManagerService, seen: set[str]) -> Iterator[Metric]:
        workers = service.workers.snapshot()
        connected = GaugeMetricFamily(
            "forerunner_workers_connected", "Workers that polled this manager within a lease."
        )
        connected.add_metric([], len(workers))
        yield connected
        types = seen.union(*(worker.types for worker in workers))
        try:
            depths = {job_type: service.queue.size([job_type]) for job_type in sorted(types)}
            total = service.queue.size()
        except ForerunnerError as error:
            # Counted in forerunner_backend_errors; the other series still serve.
            logger.warning("queue depth not scraped: %s", error, extra={"action": "metrics_error"})
        else:
            depth = GaugeMetricFamily(
                "forerunner_queue_depth",
                "Entries waiting in the queue, by type (types seen in events or polled for).",
                labels=["type"],
            )
            for job_type, size in depths.items():
                depth.add_metric([job_type], size)
            yield depth
            everything = GaugeMetricFamily(
                "forerunner_queue_depth_all_types", "Entries waiting in the queue, of any type."
            )
            everything.add_metric([], total)
            yield everything
        counts = self._store_counts(service)
        if counts is not None:
            jobs = GaugeMetricFamily(
                "forerunner_jobs",
                f"Jobs in the store by type and state, counted at most every {COUNTS_TTL:g} s.",
                labels=["type", "state"],
            )
            for (job_type, state), count in sorted(counts.items()):
                jobs.add_metric([job_type, state.value], count)
            yield jobs

    def _store_counts(self, service: ManagerService) -> dict[tuple[str, JobState], int] | None:
        with self._counts_lock:
            if time.monotonic() - self._counts_at >= COUNTS_TTL:
                try:
                    self._counts = service.store.counts()
                except ForerunnerError as error:
                    logger.warning(
                        "job counts not scraped: %s", error, extra={"action": "metrics_error"}
                    )
                    return self._counts
                self._counts_at = time.monotonic()
            return self._counts


def _histograms(
    name: str,
    text: str,
    labels: list[str],
    values: dict[tuple[str, ...], tuple[list[tuple[str, float]], float]],
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, text, labels=labels)
    for key, (buckets, total) in sorted(values.items()):
        family.add_metric(list(key), buckets, total)
    return family


class _Timed(Generic[B]):
    """Times calls into one backend and forwards every other attribute to it."""

    _kind: ClassVar[Literal["store", "queue"]]

    def __init__(self, inner: B, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._lock = metrics.lock
        #: Operation -> its histogram, so that a call costs one dict lookup and one lock.
        self._histograms: dict[str, _Histogram] = {}

    def __getattr__(self, name: str) -> Any:
        # Only reached for what the proxy does not define: a backend's own extras.
        if name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._inner!r})"

    def _call(self, operation: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            self._metrics.count_error(self._kind, operation, error)
            raise
        finally:
            seconds = time.perf_counter() - start
            histogram = self._histograms.get(operation)
            if histogram is None:
                histogram = self._histograms[operation] = self._metrics.call_histogram(
                    self._kind, operation
                )
            with self._lock:
                histogram.observe(seconds)


def _with_capabilities(
    base: type[_Timed[Any]], inner: object, names: Iterable[str], cache: dict[Any, type[Any]]
) -> type[Any]:
    """A subclass of ``base`` whose class attributes ``names`` are those of ``inner``.

    The Store and Queue protocols declare their capabilities as class variables, so a
    proxy must carry them on its class, not on the instance, to be a Store for mypy
    and for the conformance checks alike.
    """
    values = tuple((name, getattr(inner, name)) for name in names)
    key = (type(inner), values)
    made = cache.get(key)
    if made is None:
        made = cache[key] = type(f"{base.__name__}[{type(inner).__name__}]", (base,), dict(values))
    return made


class TimedStore(_Timed["Store"]):
    """A :class:`~forerunner.store.Store` that times each call into the one it wraps."""

    _kind = "store"
    _classes: ClassVar[dict[Any, type[Any]]] = {}
    durable: ClassVar[bool] = False
    shared: ClassVar[bool] = False

    @classmethod
    def wrap(cls, store: Store, metrics: Metrics) -> TimedStore:
        made: type[TimedStore] = _with_capabilities(cls, store, ("durable", "shared"), cls._classes)
        return made(store, metrics)

    def add(self, jobs: Sequence[Job]) -> list[Job]:
        return self._call("add", self._inner.add, jobs)

    def get(self, job_id: str) -> Job | None:
        return self._call("get", self._inner.get, job_id)

    def claim(
        self, job_ids: Sequence[str], worker: str, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Job]:
        return self._call("claim", self._inner.claim, job_ids, worker, now, lease_until)

    def renew(self, worker: str, job_ids: Sequence[str], lease_until: dt.datetime) -> list[str]:
        return self._call("renew", self._inner.renew, worker, job_ids, lease_until)

    def progress(self, job_id: str, attempt: int, value: JSON, worker: str | None = None) -> bool:
        return self._call("progress", self._inner.progress, job_id, attempt, value, worker)

    def finish(self, reports: Sequence[Report]) -> list[Job | None]:
        return self._call("finish", self._inner.finish, reports)

    def reclaim_expired(self, now: dt.datetime, limit: int) -> list[Job]:
        return self._call("reclaim_expired", self._inner.reclaim_expired, now, limit)

    def promote_due(self, now: dt.datetime, limit: int) -> list[Job]:
        return self._call("promote_due", self._inner.promote_due, now, limit)

    def cancel(self, job_id: str, now: dt.datetime) -> Job | None:
        return self._call("cancel", self._inner.cancel, job_id, now)

    def retry(self, job_id: str, now: dt.datetime) -> Job | None:
        return self._call("retry", self._inner.retry, job_id, now)

    def queued(self, limit: int, after: str | None = None) -> list[Job]:
        return self._call("queued", self._inner.queued, limit, after)

    def list(
        self,
        state: JobState | None = None,
        type: str | None = None,
        limit: int = 100,
        before: str | None = None,
        text: str | None = None,
    ) -> list[Job]:
        if text is None:
            # Without ``text``, so that a store written before it existed still lists.
            return self._call(
                "list", self._inner.list, state=state, type=type, limit=limit, before=before
            )
        return self._call(
            "list", self._inner.list, state=state, type=type, limit=limit, before=before, text=text
        )

    def counts(self) -> dict[tuple[str, JobState], int]:
        return self._call("counts", self._inner.counts)

    def purge(self, finished_before: dt.datetime, limit: int) -> int:
        return self._call("purge", self._inner.purge, finished_before, limit)

    def clear(self) -> None:
        self._call("clear", self._inner.clear)

    def close(self) -> None:
        self._call("close", self._inner.close)


class TimedQueue(_Timed["Queue"]):
    """A :class:`~forerunner.queue.Queue` that times each call into the one it wraps.

    A pop with a timeout is labelled ``pop_blocking``: it waits for work when there is
    none, so its time says how idle the workers are, not how fast the queue answers.
    """

    _kind = "queue"
    _classes: ClassVar[dict[Any, type[Any]]] = {}
    ordering: ClassVar[Ordering] = "fifo"
    durable: ClassVar[bool] = False
    shared: ClassVar[bool] = False

    @classmethod
    def wrap(cls, queue: Queue, metrics: Metrics) -> TimedQueue:
        made: type[TimedQueue] = _with_capabilities(
            cls, queue, ("ordering", "durable", "shared"), cls._classes
        )
        return made(queue, metrics)

    def push(self, entries: Sequence[QueueEntry]) -> None:
        self._call("push", self._inner.push, entries)

    def pop(self, types: Sequence[str], count: int = 1, timeout: float = 0.0) -> list[QueueEntry]:
        operation = "pop_blocking" if timeout > 0 else "pop"
        return self._call(operation, self._inner.pop, types, count, timeout)

    def remove(self, job_ids: Sequence[str]) -> int:
        return self._call("remove", self._inner.remove, job_ids)

    def size(self, types: Sequence[str] | None = None) -> int:
        return self._call("size", self._inner.size, types)

    def clear(self) -> None:
        self._call("clear", self._inner.clear)

    def close(self) -> None:
        self._call("close", self._inner.close)
