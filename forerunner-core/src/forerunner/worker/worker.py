"""The worker: long-polls a manager for jobs, runs them, reports how they ended.

Sync handlers run on a fixed set of threads (:mod:`forerunner.worker.threads`), ``async
def`` ones on the event loop, and with ``processes`` every job runs in a child process
(:mod:`forerunner.worker.processes`).
One asyncio loop does all the talking (``POST /v1/workers/poll``, see
:mod:`forerunner.wire`). Two coroutines share it:

* the *fetcher* keeps one long poll outstanding while it has room: the free slots, plus
  a prefetch buffer while jobs are short (see the ``prefetch`` parameter), so that a
  stream of short jobs arrives in batches while the slots are busy; when it has no room
  it polls only to renew leases, every third of the lease;
* the *flusher* sends finished results and progress at once in short polls (capacity 0,
  wait 0) rather than holding them until the long poll returns.

A poll lists every attempt the worker holds, which renews their leases, when the last
renewal is a second old or more (and at least every third of the lease). A report
stays in the worker until a manager acknowledged the poll that carried it; a poll that
fails puts its reports back, backs off exponentially (up to 5 s, with jitter) and tries
the next manager URL, forever. When the manager answers ``abandon`` for a job (its
attempt was fenced out: cancelled, or its lease expired), the worker cancels an async
handler and drops a sync handler's result, since a thread cannot be killed.

:meth:`Worker.stop` (or SIGTERM/SIGINT when started in the main thread) stops taking
work, lets running jobs finish for up to ``grace`` seconds while still renewing their
leases, reports them and returns. The open long poll is not cut: the worker tells the
manager it is stopping, which ends that poll at once, and runs whatever job the answer
still carries, since the manager may have claimed it for this worker in that instant.
Jobs still running after the grace period are left to their leases: the manager
re-queues them when the lease expires. A second signal (or ``stop(force=True)``) stops
waiting for running jobs: the worker hands over the reports it has and returns.

Every poll carries the worker's token (``Authorization: Bearer``) and a session secret
the worker makes when it is created. The manager binds the worker id to both at the
first poll, so no other caller can report, renew or take jobs under this id. A manager
that answers 401 (no or unknown token) or 403 (a token of another role, or the worker id
taken by another session) will answer so to every poll: the worker stops at once and
:meth:`Worker.start` raises :class:`~forerunner.errors.AuthenticationError` or
:class:`~forerunner.errors.PermissionDenied`. 429 (too many requests in flight) is
transient: the worker backs off and tries again.

The manager tells in every answer the largest request body it takes (``max_body``). A
poll whose reports and progress would weigh more carries only the oldest of them that
fit; the rest go in the polls right after. A single report too big for any poll is
replaced by a failure of type ``ResultTooLarge``, so the attempt ends (and is retried
by its job's rules) rather than being resent forever.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
import msgspec

from forerunner import credentials
from forerunner.context import JobContext, running
from forerunner.errors import (
    AuthenticationError,
    ConfigurationError,
    ForerunnerError,
    PermissionDenied,
    ValidationError,
)
from forerunner.wire import (
    MAX_BATCH,
    AttemptRef,
    ErrorBody,
    PollRequest,
    PollResponse,
    ProgressReport,
    ResultReport,
    WireError,
    WorkerInfo,
    job_from_wire,
)
from forerunner.worker.http import CertificateRejected, HTTPClient, RequestFailed
from forerunner.worker.runner import execute, failure, is_async, success, timed_out
from forerunner.worker.threads import ThreadRunner

if TYPE_CHECKING:
    import ssl

    from forerunner.handlers import Handler
    from forerunner.model import JSON, Job
    from forerunner.plugins import Registry
    from forerunner.worker.processes import ProcessPool
    from forerunner.worker.threads import Outcome

__all__ = ["RESULT_TOO_LARGE_ERROR", "Worker", "new_worker_id"]

logger = logging.getLogger(__name__)

H = TypeVar("H", bound=Callable[..., Any])

#: The longest long poll the worker asks for, in seconds.
MAX_LONG_POLL: Final = 20.0
#: The lease the worker assumes until a manager has told it the real one.
DEFAULT_LEASE: Final = 30.0
#: Back-off bounds after a failed poll, in seconds.
BACKOFF_FIRST: Final = 0.1
BACKOFF_MAX: Final = 5.0
#: Seconds a request may take beyond the wait it asks the manager for.
REQUEST_SLACK: Final = 10.0
#: Seconds between two renewals of the running attempts' leases, at the least. Renewing
#: is an UPDATE per attempt in the store, so a busy worker does not renew on every poll;
#: a job cancelled while it runs is abandoned at the next renewal.
RENEW_EVERY: Final = 1.0
#: Jobs are prefetched (see :meth:`_Session._prefetch`) while they take less than this
#: many seconds on average; the average weighs the latest job by :data:`RUN_WEIGHT`.
PREFETCH_BELOW: Final = 0.1
RUN_WEIGHT: Final = 0.1
#: Seconds of work the automatic prefetch aims to hold beyond the free slots.
PREFETCH_HORIZON: Final = 0.02
#: Most jobs held beyond the free slots by the automatic prefetch.
PREFETCH_MAX: Final = 256
#: Seconds progress waits for more progress (or a result) before it is sent alone.
PROGRESS_EVERY: Final = 0.2
#: Seconds the worker keeps trying to hand over its last reports after the grace period.
FINAL_FLUSH: Final = 10.0
#: Seconds the last reports may take after a forced stop.
FORCED_FLUSH: Final = 2.0
#: Seconds a stopping worker waits for its open long poll to come back.
LONG_POLL_END: Final = 5.0
#: The error type of an attempt whose report alone is bigger than the manager takes.
RESULT_TOO_LARGE_ERROR: Final = "ResultTooLarge"
#: The smallest body limit a 413 teaches the worker (the least a manager may set).
MIN_BODY: Final = 1024


_encode: Final = msgspec.json.Encoder().encode
_decode_answer: Final = msgspec.json.Decoder(PollResponse).decode
_decode_error: Final = msgspec.json.Decoder(ErrorBody).decode


def new_worker_id() -> str:
    """``host-pid-random``: stable for the process, unique across restarts and hosts."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@attrs.define
class _Held:
    """An attempt this worker runs, from hand-out until its slot is free."""

    job: Job
    handler: Handler
    #: Done when the job no longer takes a slot (or a place in the prefetch buffer).
    done: asyncio.Future[None]
    #: Runs an async handler, or a job in a child process: cancelling it stops the job.
    #: None for a sync handler, whose thread runs on regardless, and before the start.
    task: asyncio.Task[None] | None = None
    #: False while the job waits in the prefetch buffer for a slot.
    started: bool = False
    #: When it started (monotonic), for the run times that decide on prefetching.
    began: float = 0.0
    #: A sync handler's timeout, cancelled when its thread returns in time.
    timer: asyncio.TimerHandle | None = None
    #: Its outcome was handed to the report list; no longer renewed.
    delivered: bool = False
    #: The manager fenced this attempt out; its outcome is dropped.
    abandoned: bool = False


class _PollFailed(Exception):
    """A poll got no usable answer; its reports were put back."""


class _TooLarge(_PollFailed):
    """The manager refused the poll's body as too large (413)."""


class _Refused(Exception):
    """The manager refused the worker (401, 403), or its certificate did not verify:
    every poll would fail so."""

    def __init__(self, error: ForerunnerError) -> None:
        super().__init__(str(error))
        self.error = error


class Worker:
    """Runs jobs handed out by one or more managers.

    :param concurrency: how many jobs run at once (sync handlers each take a thread);
        by default 4, or ``processes`` when that is given.
    :param worker_id: the id the manager records on every attempt; by default
        :func:`new_worker_id`.
    :param registry: where task names given to :meth:`add_plugin_tasks` are looked up;
        by default the process's plugin registry.
    :param grace: seconds running jobs may take to finish after :meth:`stop`.
    :param processes: run every job in one of this many child processes instead
        (CPU-bound tasks; see :mod:`forerunner.worker.processes`). Each process runs one
        job at a time, so ``concurrency`` is ``processes``; a job past its timeout, or
        abandoned, really stops, because its process is killed.
    :param prefetch: how many jobs to hold beyond the free slots, waiting for one. By
        default, while jobs take under 0.1 s on average, enough for about 20 ms of work
        (at least ``concurrency``, at most 256), and none for longer jobs: short jobs
        then come in batches large enough to keep every slot busy while the next poll
        is on its way, and a long job is never held back where another worker could
        start it. A held job's attempt has begun: it is leased,
        and counted, from the moment the manager hands it out.
    :param token: the worker token sent to the managers; by default
        :func:`forerunner.credentials.load_token` (``$FORERUNNER_TOKEN``). Never logged.
    :param ca_file: a PEM file of CAs to trust, beside the system's, for ``https://``
        managers; by default ``$FORERUNNER_CA_FILE``. Certificates are always verified.
    """

    def __init__(
        self,
        concurrency: int | None = None,
        *,
        worker_id: str | None = None,
        registry: Registry | None = None,
        grace: float = 30.0,
        processes: int | None = None,
        prefetch: int | None = None,
        token: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        if processes is not None:
            if processes < 1:
                raise ValidationError(
                    f"processes must be at least 1, got {processes}", field="processes"
                )
            if concurrency is not None and concurrency != processes:
                raise ValidationError(
                    f"concurrency {concurrency} with {processes} processes: each process runs "
                    "one job at a time, so concurrency is the number of processes; give one",
                    field="concurrency",
                )
            concurrency = processes
        concurrency = 4 if concurrency is None else concurrency
        if concurrency < 1:
            raise ValidationError(
                f"concurrency must be at least 1, got {concurrency}", field="concurrency"
            )
        if prefetch is not None and prefetch < 0:
            raise ValidationError(f"prefetch must be 0 or more, got {prefetch}", field="prefetch")
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.processes = processes
        self.worker_id = worker_id or new_worker_id()
        self.grace = grace
        self._token = credentials.load_token() if token is None else token
        if self._token is not None and not credentials.header_safe(self._token):
            raise ValidationError(
                "the token holds spaces or characters a header cannot carry", field="token"
            )
        self._ca_file = ca_file
        #: Built now when a CA file is named, so that a wrong path fails here, not later.
        self._ssl: ssl.SSLContext | None = (
            credentials.ssl_context(ca_file) if ca_file is not None else None
        )
        #: Proves to the manager that a poll under this worker id comes from this worker;
        #: made once per worker, so a worker started again keeps its binding.
        self._session = secrets.token_urlsafe(32)
        self._registry = registry
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._stop_requested = False
        self._force_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._forced: asyncio.Event | None = None
        self._state: _Session | None = None
        #: Sync handlers still running in their threads when the last :meth:`start`
        #: returned (past the grace period); they keep the process alive until they end.
        self.lingering = 0

    # Registering handlers

    def register_job_handler(self, name: str, handler: Handler) -> None:
        """Run ``handler(job_id, data)`` for jobs of type ``name``."""
        if not name:
            raise ValidationError("a task name must be a non-empty string", field="name")
        if not callable(handler):
            raise ValidationError(
                f"the handler for {name!r} is {type(handler).__name__}, not callable",
                field="handler",
            )
        self._handlers[name] = handler

    def task(self, name: str) -> Callable[[H], H]:
        """Decorator form of :meth:`register_job_handler`; returns the function unchanged."""

        def register(handler: H) -> H:
            self.register_job_handler(name, handler)
            return handler

        return register

    def add_plugin_tasks(self, names: Iterable[str]) -> None:
        """Also run the tasks that installed plugins provide under ``names``.

        Handlers registered by name on this worker win over plugin tasks of the same
        name. An unknown name raises :class:`~forerunner.errors.UnknownBackendError`
        listing the task names installed.
        """
        registry = self._registry
        if registry is None:
            from forerunner.plugins import get_registry

            registry = get_registry()
        for name in names:
            handler = registry.task(name)
            self._handlers.setdefault(name, handler)

    @property
    def types(self) -> list[str]:
        """The task names this worker asks the manager for."""
        return sorted(self._handlers)

    # Running

    def start(self, manager_url: str | Sequence[str]) -> None:
        """Run jobs from ``manager_url`` (or several, tried in turn) until :meth:`stop`.

        Blocks. Started in the main thread, SIGTERM and SIGINT stop it gracefully.
        Raises :class:`~forerunner.errors.AuthenticationError` when a manager does not
        know the token, :class:`~forerunner.errors.PermissionDenied` when it is not a
        worker token or the worker id is taken, and
        :class:`~forerunner.errors.ConfigurationError` when a manager's certificate does
        not verify: no retry would change those, so the worker stops at once.
        """
        urls = [manager_url] if isinstance(manager_url, str) else list(manager_url)
        if not urls:
            raise ConfigurationError("a worker needs at least one manager URL")
        if not self._handlers:
            raise ConfigurationError(
                "this worker has no task handlers; register some with register_job_handler "
                "or @worker.task, or name plugin tasks with --tasks"
            )
        asyncio.run(self._serve([url.rstrip("/") for url in urls]))

    def stop(self, *, force: bool = False) -> None:
        """Stop taking work and return from :meth:`start` once running jobs are done.

        ``force`` does not wait for running jobs: their results, if they come, are
        dropped, and the manager hands the jobs out again when their leases expire.
        Safe to call from any thread, and before :meth:`start`.
        """
        with self._lock:
            self._stop_requested = True
            self._force_requested = self._force_requested or force
            loop, stopping, forced = self._loop, self._stopping, self._forced
        if loop is not None and stopping is not None and forced is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
                if force:
                    loop.call_soon_threadsafe(forced.set)

    async def _serve(self, urls: list[str]) -> None:
        loop = asyncio.get_running_loop()
        stopping, forced = asyncio.Event(), asyncio.Event()
        with self._lock:
            self._loop, self._stopping, self._forced = loop, stopping, forced
            if self._stop_requested:
                stopping.set()
            if self._force_requested:
                forced.set()
        pool: ProcessPool | None = None
        if self.processes is not None:
            from forerunner.worker.processes import ProcessPool

            pool = ProcessPool(self.processes, dict(self._handlers))
            await pool.start()
        signals = self._install_signal_handlers(loop)
        session: _Session | None = None
        try:
            http = HTTPClient(ssl_context=self._ssl_context(urls), token=self._token)
            try:
                session = _Session(self, urls, http, pool=pool, stopping=stopping, forced=forced)
                self._state = session
                await session.run()
            finally:
                await http.aclose()
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            if session is not None:
                session.close()
            if pool is not None:
                await pool.close()
            with self._lock:
                self._loop = self._stopping = self._forced = None
                self._state = None
                self._stop_requested = self._force_requested = False
        if session is not None and session.refused is not None:
            raise session.refused

    def _ssl_context(self, urls: list[str]) -> ssl.SSLContext | None:
        if self._ssl is None and any(url.startswith("https:") for url in urls):
            self._ssl = credentials.ssl_context(self._ca_file)
        return self._ssl

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        if threading.current_thread() is not threading.main_thread():
            return []
        installed = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._on_signal, signum)
                installed.append(signum)
        return installed

    def _on_signal(self, signum: signal.Signals) -> None:
        """The first signal stops gracefully; a second one stops now."""
        with self._lock:
            again = self._stop_requested
        if again:
            logger.warning(
                "worker %r: %s again; not waiting for running jobs (they run again after "
                "their leases)",
                self.worker_id,
                signum.name,
                extra={"action": "worker_forced_stop"},
            )
        else:
            logger.info(
                "worker %r: %s; finishing running jobs (send it again to stop now)",
                self.worker_id,
                signum.name,
                extra={"action": "worker_signalled"},
            )
        self.stop(force=again)

    def handler_for(self, job_type: str) -> Handler | None:
        """The handler this worker runs for ``job_type``, if it has one."""
        return self._handlers.get(job_type)


class _Session:
    """One run of :meth:`Worker.start`: the jobs held, the reports owed, the connection."""

    def __init__(
        self,
        worker: Worker,
        urls: list[str],
        http: HTTPClient,
        *,
        pool: ProcessPool | None,
        stopping: asyncio.Event,
        forced: asyncio.Event,
    ) -> None:
        self.worker = worker
        self.urls = urls
        self.url_index = 0
        self.http = http
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        #: Runs sync handlers; started with the first one (a worker of async tasks or
        #: processes never needs its threads).
        self.threads: ThreadRunner | None = None
        #: Handler -> whether it is ``async def``, asked once per handler, not per job.
        self.is_async: dict[Handler, bool] = {}
        self.awaiting: set[asyncio.Task[None]] = set()
        self.stopping = stopping
        self.forced = forced
        #: Set while no long poll (capacity > 0) is outstanding.
        self.long_poll_idle = asyncio.Event()
        self.long_poll_idle.set()
        self.held: dict[str, _Held] = {}
        #: Held jobs waiting for a slot, in the order they were handed out.
        self.waiting: collections.deque[_Held] = collections.deque()
        #: Held jobs that took a slot and have not freed it.
        self.active = 0
        #: Moving average of how long jobs take, in seconds; None before the first.
        self.mean_run: float | None = None
        #: Results not yet acknowledged by a manager, oldest first.
        self.reports: list[ResultReport] = []
        #: The latest unsent progress per job id.
        self.progress: dict[str, ProgressReport] = {}
        self.flush_needed = asyncio.Event()
        self.report_ready = asyncio.Event()
        self.slot_freed = asyncio.Event()
        self.lease = DEFAULT_LEASE
        #: As if a renewal just fell due, so the first poll introduces the worker.
        self.last_renewed = time.monotonic() - RENEW_EVERY
        self.failures = 0
        #: The largest poll body the manager takes, as its last answer said (None: no
        #: limit known), and the least a 413 answer taught (proxies may take less).
        self.max_body: int | None = None
        self.learned_max_body: int | None = None
        #: Why the manager refused this worker; set once, and the worker stops.
        self.refused: ForerunnerError | None = None
        self.info = WorkerInfo(
            host=socket.gethostname()[:255], pid=os.getpid(), concurrency=worker.concurrency
        )

    async def run(self) -> None:
        fetcher = asyncio.create_task(self._fetch_loop(), name="forerunner-fetch")
        flusher = asyncio.create_task(self._flush_loop(), name="forerunner-flush")
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({stop, fetcher, flusher}, return_when="FIRST_COMPLETED")
        stop.cancel()
        crashed = next((task for task in (fetcher, flusher) if task.done()), None)
        if crashed is not None and self.refused is None:
            # Only a bug ends a loop; stop as if asked, so running jobs still report.
            logger.error(
                "worker %r: %s ended unexpectedly; stopping",
                self.worker.worker_id,
                crashed.get_name(),
                exc_info=crashed.exception(),
                extra={"action": "worker_crashed"},
            )
            self.stopping.set()
        logger.info(
            "worker %r stopping; %d job(s) running",
            self.worker.worker_id,
            len(self.held),
            extra={"action": "worker_stopping"},
        )
        await self._end_long_poll()
        await self._drain()
        for task in (fetcher, flusher):
            task.cancel()
        await asyncio.gather(fetcher, flusher, return_exceptions=True)
        await self._final_flush()

    # Polling

    def _renew_interval(self) -> float:
        return self.lease / 3

    def _prefetch(self) -> int:
        """Jobs to hold beyond the free slots, so that short jobs come in larger batches.

        Automatic unless the worker was given a number: while jobs take less than
        :data:`PREFETCH_BELOW` on average, enough to keep the slots busy for about
        :data:`PREFETCH_HORIZON` (several poll round trips; at least ``concurrency``, at
        most :data:`PREFETCH_MAX`), and none for longer jobs, which another worker could
        start sooner.
        """
        if self.worker.prefetch is not None:
            return self.worker.prefetch
        mean = self.mean_run
        if mean is None or mean >= PREFETCH_BELOW:
            return 0
        concurrency = self.worker.concurrency
        wanted = concurrency * PREFETCH_HORIZON / max(mean, 1e-6)
        return int(min(PREFETCH_MAX, max(concurrency, wanted)))

    async def _fetch_loop(self) -> None:
        while self.refused is None:
            free = (
                0
                if self.stopping.is_set()
                else self.worker.concurrency + self._prefetch() - len(self.held)
            )
            if free > 0:
                self.long_poll_idle.clear()
                try:
                    await self._poll_or_back_off(free, min(MAX_LONG_POLL, self._renew_interval()))
                finally:
                    self.long_poll_idle.set()
                continue
            self.slot_freed.clear()
            due = self.last_renewed + self._renew_interval() - time.monotonic()
            if due > 0:
                waiters = {asyncio.create_task(self.slot_freed.wait())}
                if not self.stopping.is_set():
                    waiters.add(asyncio.create_task(self.stopping.wait()))
                await asyncio.wait(waiters, timeout=due, return_when="FIRST_COMPLETED")
                for waiter in waiters:
                    waiter.cancel()
            if time.monotonic() >= self.last_renewed + self._renew_interval():
                await self._poll_or_back_off(0, 0.0)

    async def _flush_loop(self) -> None:
        while self.refused is None:
            await self.flush_needed.wait()
            self.flush_needed.clear()
            if not self.reports:
                # Progress alone waits a moment for more: a task reporting in a tight loop
                # costs a few requests a second, not one per call. A result cuts it short.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(PROGRESS_EVERY):
                        await self.report_ready.wait()
            self.report_ready.clear()
            if (self.reports or self.progress) and not await self._poll_or_back_off(0, 0.0):
                # What the failed poll carried is back in the lists; try again.
                self.flush_needed.set()
                self.report_ready.set()

    async def _poll_or_back_off(
        self, capacity: int, wait: float, *, stopping: bool = False
    ) -> bool:
        if self.refused is not None:
            return False
        try:
            await self._poll(capacity, wait, stopping=stopping)
        except _Refused as refused:
            self._refuse(refused.error)
            return False
        except _PollFailed:
            if self.stopping.is_set() and (capacity > 0 or stopping):
                return False
            self.failures += 1
            self.url_index = (self.url_index + 1) % len(self.urls)
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            return False
        self.failures = 0
        return True

    async def _poll(self, capacity: int, wait: float, *, stopping: bool = False) -> None:
        reports, self.reports = self.reports[:MAX_BATCH], self.reports[MAX_BATCH:]
        progress = list(self.progress.values())[:MAX_BATCH]
        for item in progress:
            del self.progress[item.id]
        sent_at = time.monotonic()
        renewing = sent_at - self.last_renewed >= min(RENEW_EVERY, self._renew_interval())
        renewed_before = self.last_renewed
        if renewing:
            # Counted from the sending, so that the fetcher and the flusher, polling at
            # the same moment, do not both renew.
            self.last_renewed = sent_at
        running = (
            [
                AttemptRef(id=held.job.id, attempt=held.job.attempt)
                for held in self.held.values()
                if not held.abandoned and not held.delivered
            ][:MAX_BATCH]
            if renewing
            else []
        )
        request = PollRequest(
            worker=self.worker.worker_id,
            types=self.worker.types,
            capacity=capacity,
            running=running,
            progress=progress,
            reports=reports,
            wait=wait,
            stopping=stopping,
            # Who this worker is rides with the renewals, about once a second, so the
            # operator's view survives a manager restart without costing every poll.
            info=self.info if renewing else None,
            session=self.worker._session,
        )
        encoded = _encode(request)
        limit = self._body_limit()
        if limit is not None and len(encoded) > limit and (reports or progress):
            request, reports, progress = self._fit(request, limit)
            encoded = _encode(request)
        url = self.urls[self.url_index]
        answer: PollResponse | None = None
        try:
            answer = await self._send(url, encoded, wait)
        except _TooLarge:
            if reports or progress:
                self.learned_max_body = max(MIN_BODY, len(encoded) // 2)
            raise
        finally:
            if answer is None:
                self.reports[:0] = reports
                for item in progress:
                    self.progress.setdefault(item.id, item)
                if renewing:
                    self.last_renewed = renewed_before
        self.lease = answer.lease_seconds
        self.max_body = answer.max_body
        for job_id in answer.abandon:
            self._abandon(job_id)
        for body in answer.jobs:
            self._start(job_from_wire(body))

    async def _send(self, url: str, body: bytes, wait: float) -> PollResponse:
        """POST one poll and decode the answer."""
        try:
            answer = await self.http.post_json(
                f"{url}/v1/workers/poll", body, timeout=wait + REQUEST_SLACK
            )
        except CertificateRejected as error:
            raise _Refused(
                ConfigurationError(
                    f"cannot poll {url}: {error}. If the manager's certificate comes from a "
                    "private CA, name the CA's PEM file with --ca-file or FORERUNNER_CA_FILE"
                )
            ) from error
        except RequestFailed as error:
            logger.warning("poll of %s failed: %s", url, error, extra={"action": "poll_failed"})
            raise _PollFailed(str(error)) from error
        if answer.status == 200:
            try:
                return _decode_answer(answer.body)
            except msgspec.DecodeError as error:
                raise _PollFailed(f"bad poll answer: {error}") from error
        if answer.status in (401, 403):
            raise _Refused(self._refusal(url, answer.status, answer.body))
        logger.warning(
            "poll of %s answered %d: %s",
            url,
            answer.status,
            answer.body[:300].decode("utf-8", "replace"),
            extra={"action": "poll_failed"},
        )
        if answer.status == 413:
            raise _TooLarge(f"a body of {len(body)} bytes is too large")
        raise _PollFailed(f"status {answer.status}")

    def _refusal(
        self, url: str, status: int, body: bytes
    ) -> AuthenticationError | PermissionDenied:
        """The error :meth:`Worker.start` raises for a 401 or 403 answer to a poll."""
        code, message = "", ""
        with contextlib.suppress(msgspec.DecodeError):
            detail = _decode_error(body).error
            code, message = detail.code, detail.message
        worker_id = self.worker.worker_id
        if status == 401:
            sent = "no token" if self.worker._token is None else "a token it does not know"
            return AuthenticationError(
                f"the manager at {url} refused worker {worker_id!r}: it sent {sent}. Give the "
                "worker a worker token in FORERUNNER_TOKEN or in a file named by --token-file"
            )
        if code == "worker_taken":
            return PermissionDenied(
                f"the manager at {url} refused worker {worker_id!r}: another worker (another "
                "token or session) is polling under that id. Give each worker its own "
                "--worker-id, or leave the default; the manager frees an id once it has not "
                f"polled for twice the lease. The manager said: {message}"
            )
        if code == "forbidden":
            return PermissionDenied(
                f"the manager at {url} refused worker {worker_id!r}: its token is not a worker "
                "token, and only a worker token may poll for jobs. Give the worker a worker "
                "token in FORERUNNER_TOKEN or in a file named by --token-file"
            )
        return PermissionDenied(
            f"the manager at {url} refused worker {worker_id!r} (403 {code or 'forbidden'}): "
            f"{message or body[:300].decode('utf-8', 'replace')}"
        )

    def _refuse(self, error: ForerunnerError) -> None:
        """Stop now: the manager will refuse every poll, so no report can be handed over."""
        if self.refused is None:
            self.refused = error
            logger.error(
                "worker %r stops: %s",
                self.worker.worker_id,
                error,
                extra={"action": "worker_refused"},
            )
        self.stopping.set()
        self.forced.set()

    # Fitting a poll under the manager's body limit

    def _body_limit(self) -> int | None:
        told, learned = self.max_body, self.learned_max_body
        if told is None:
            return learned
        return told if learned is None else min(told, learned)

    def _fit(
        self, request: PollRequest, limit: int
    ) -> tuple[PollRequest, list[ResultReport], list[ProgressReport]]:
        """The poll cut to the reports and progress that fit in ``limit`` bytes.

        Reports go first and oldest first, then progress; what does not fit goes back to
        the lists for the polls right after. A report (or progress value) that would not
        fit even alone in a poll that carries nothing else is replaced by a
        ``ResultTooLarge`` failure (progress: dropped), so it is not resent forever.
        """
        bare = msgspec.structs.replace(request, reports=[], progress=[])
        alone = msgspec.structs.replace(
            bare, running=[], info=None, capacity=0, wait=0.0, stopping=False
        )
        # Each item adds its own bytes and a comma.
        room = limit - len(_encode(bare))
        room_alone = limit - len(_encode(alone))
        reports: list[ResultReport] = []
        deferred: list[ResultReport] = []
        for original in request.reports:
            report = original
            size = len(_encode(report)) + 1
            if size > room_alone:
                report = self._too_large(report, size - 1, limit)
                size = len(_encode(report)) + 1
            if size <= room:
                reports.append(report)
                room -= size
            else:
                deferred.append(report)
        progress: list[ProgressReport] = []
        for item in request.progress:
            size = len(_encode(item)) + 1
            if size > room_alone:
                logger.warning(
                    "job %r reported progress of %d bytes as JSON, more than the manager takes "
                    "in a request (%d bytes); dropped",
                    item.id,
                    size - 1,
                    limit,
                    extra={"action": "progress_dropped", "job_id": item.id},
                )
            elif size <= room:
                progress.append(item)
                room -= size
            else:
                self.progress.setdefault(item.id, item)
        self.reports[:0] = deferred
        if deferred or self.progress:
            self.flush_needed.set()
            self.report_ready.set()
        return msgspec.structs.replace(bare, reports=reports, progress=progress), reports, progress

    def _too_large(self, report: ResultReport, size: int, limit: int) -> ResultReport:
        logger.warning(
            "the report of job %r attempt %d is %d bytes as JSON, more than the manager takes "
            "in a request (%d bytes); reported as %s instead",
            report.id,
            report.attempt,
            size,
            limit,
            RESULT_TOO_LARGE_ERROR,
            extra={"action": "result_too_large", "job_id": report.id},
        )
        return ResultReport(
            id=report.id,
            attempt=report.attempt,
            outcome="failed",
            error=WireError(
                type=RESULT_TOO_LARGE_ERROR,
                message=(
                    f"the {'result' if report.outcome == 'succeeded' else 'error report'} of "
                    f"job {report.id!r} attempt {report.attempt} is {size} bytes as JSON, more "
                    f"than the manager takes in one request ({limit} bytes)"
                ),
            ),
        )

    # Jobs

    def close(self) -> None:
        if self.threads is not None:
            self.threads.close()

    def _start(self, job: Job) -> None:
        if job.id in self.held:
            return
        handler = self.worker.handler_for(job.type)
        if handler is None:
            error = ForerunnerError(f"worker {self.worker.worker_id!r} has no task {job.type!r}")
            self._deliver_report(failure(job, error))
            return
        held = _Held(job=job, handler=handler, done=self.loop.create_future())
        self.held[job.id] = held
        self.waiting.append(held)
        self._launch()

    def _launch(self) -> None:
        """Start waiting jobs while slots are free."""
        while self.waiting and self.active < self.worker.concurrency:
            held = self.waiting.popleft()
            if held.abandoned:
                self._free(held)
                continue
            held.started = True
            held.began = time.monotonic()
            self.active += 1
            asynchronous = self.is_async.get(held.handler)
            if asynchronous is None:
                asynchronous = self.is_async[held.handler] = is_async(held.handler)
            if self.pool is None and not asynchronous:
                self._start_in_thread(held)
            else:
                held.task = asyncio.create_task(
                    self._run_job(held), name=f"forerunner-job-{held.job.id}"
                )

    def _start_in_thread(self, held: _Held) -> None:
        if self.threads is None:
            self.threads = ThreadRunner(self.worker.concurrency, self.loop, self._thread_done)
        job = held.job
        if job.timeout is not None:
            held.timer = self.loop.call_later(job.timeout, self._thread_timed_out, held)
        context = JobContext(
            job_id=job.id, attempt=job.attempt, report_progress=self._progress_sink(job)
        )
        with running(context):
            copied = contextvars.copy_context()
        self.threads.submit(job, held.handler, copied)

    def _thread_timed_out(self, held: _Held) -> None:
        # Reported now; the slot stays taken until the thread really returns, so the
        # worker never runs more threads than the capacity it promised the manager.
        self._deliver_once(held.job, timed_out(held.job))

    def _thread_done(self, outcome: Outcome) -> None:
        job = outcome.job
        held = self.held.get(job.id)
        if held is None:
            return
        if outcome.awaitable is not None:
            # A sync handler returned an awaitable: await it here, within what is left
            # of the timeout, and free the slot when it ends.
            task = self.loop.create_task(self._await_returned(held, outcome.awaitable))
            # The loop holds tasks weakly; the set keeps this one until it ends.
            self.awaiting.add(task)
            task.add_done_callback(self.awaiting.discard)
            return
        if held.timer is not None:
            held.timer.cancel()
        if outcome.report is not None:
            self._deliver_once(job, outcome.report)
        self._free(held)

    async def _await_returned(self, held: _Held, awaitable: Any) -> None:
        job = held.job
        left = None
        if held.timer is not None:
            left = max(0.0, held.timer.when() - self.loop.time())
            held.timer.cancel()
        context = JobContext(
            job_id=job.id, attempt=job.attempt, report_progress=self._progress_sink(job)
        )
        try:
            async with asyncio.timeout(left) as scope:
                with running(context):
                    result = await awaitable
        except Exception as error:
            expired = isinstance(error, TimeoutError) and scope.expired()
            self._deliver_once(job, timed_out(job) if expired else failure(job, error))
        else:
            self._deliver_once(job, success(job, result))
        finally:
            self._free(held)

    def _free(self, held: _Held) -> None:
        if self.held.get(held.job.id) is held:
            del self.held[held.job.id]
        if held.done.done():
            return
        held.done.set_result(None)
        if held.started:
            self.active -= 1
            took = time.monotonic() - held.began
            mean = self.mean_run
            self.mean_run = took if mean is None else mean + RUN_WEIGHT * (took - mean)
        self.slot_freed.set()
        self._launch()

    def _deliver_once(self, job: Job, report: ResultReport) -> None:
        """Deliver the attempt's first outcome, unless the manager fenced it out."""
        held = self.held.get(job.id)
        if held is not None:
            if held.delivered:
                return
            held.delivered = True
            if held.abandoned:
                return
        self._deliver_report(report)

    def _progress_sink(self, job: Job) -> Callable[[JSON], None]:
        loop_thread = threading.get_ident()

        def report_progress(value: JSON) -> None:
            # From the loop itself record at once, so that progress reported just before
            # an async handler returns is in place when its result is delivered.
            if threading.get_ident() == loop_thread:
                self._record_progress(job, value)
            else:
                self.loop.call_soon_threadsafe(self._record_progress, job, value)

        return report_progress

    async def _run_job(self, held: _Held) -> None:
        """Run an async handler on the loop, or any handler in a child process."""
        job, handler = held.job, held.handler
        report_progress = self._progress_sink(job)

        def deliver(report: ResultReport) -> None:
            held = self.held.get(job.id)
            if held is not None:
                held.delivered = True
                if held.abandoned:
                    return
            self._deliver_report(report)

        try:
            if self.pool is not None:
                deliver(await self.pool.run(job, report_progress))
            else:
                await execute(handler, job, report_progress=report_progress, deliver=deliver)
        finally:
            self._free(held)

    def _deliver_report(self, report: ResultReport) -> None:
        # The job's pending progress stays: it travels in the same poll, and the manager
        # records progress before results.
        self.reports.append(report)
        self.flush_needed.set()
        self.report_ready.set()

    def _record_progress(self, job: Job, value: JSON) -> None:
        held = self.held.get(job.id)
        if held is None or held.abandoned or held.delivered:
            return
        try:
            msgspec.json.encode(value)
        except (TypeError, msgspec.EncodeError):
            # The type, not the value: a job's progress is its data, kept out of logs.
            logger.warning(
                "job %r reported progress of type %s, which is not JSON; dropped",
                job.id,
                type(value).__name__,
                extra={"action": "progress_dropped", "job_id": job.id},
            )
            return
        self.progress[job.id] = ProgressReport(id=job.id, attempt=job.attempt, value=value)
        self.flush_needed.set()

    def _abandon(self, job_id: str) -> None:
        held = self.held.get(job_id)
        if held is None or held.abandoned:
            return
        held.abandoned = True
        self.progress.pop(job_id, None)
        logger.info(
            "abandoning job %r: the manager fenced out attempt %d",
            job_id,
            held.job.attempt,
            extra={"action": "abandon", "job_id": job_id},
        )
        if not held.started:
            self.waiting.remove(held)
            self._free(held)
        elif held.task is not None and not held.delivered:
            held.task.cancel()

    # Stopping

    async def _end_long_poll(self) -> None:
        """Ask the manager to end the open long poll, and wait for its answer.

        Cutting the request instead could drop a job the manager claimed for this worker
        in that instant, which would then wait out its lease before running anywhere.
        """
        if self.long_poll_idle.is_set() or self.forced.is_set():
            return
        await self._poll_or_back_off(0, 0.0, stopping=True)
        ended = asyncio.create_task(self.long_poll_idle.wait())
        forced = asyncio.create_task(self.forced.wait())
        done, _ = await asyncio.wait(
            {ended, forced}, timeout=LONG_POLL_END, return_when="FIRST_COMPLETED"
        )
        ended.cancel()
        forced.cancel()
        if not done:
            logger.warning(
                "worker %r: the open long poll did not end within %s s; a job it hands out "
                "now runs again after its lease",
                self.worker.worker_id,
                LONG_POLL_END,
                extra={"action": "long_poll_abandoned"},
            )

    async def _drain(self) -> None:
        tasks = [held.done for held in self.held.values()]
        if tasks and not self.forced.is_set():
            finished = asyncio.ensure_future(asyncio.wait(tasks))
            forced = asyncio.ensure_future(self.forced.wait())
            await asyncio.wait(
                {finished, forced}, timeout=self.worker.grace, return_when="FIRST_COMPLETED"
            )
            finished.cancel()
            forced.cancel()
        left = list(self.held.values())
        self.worker.lingering = sum(held.started and held.task is None for held in left)
        for held in left:
            logger.warning(
                "job %r still %s %s; left to its lease",
                held.job.id,
                "running" if held.started else "waiting for a slot",
                "at a forced stop"
                if self.forced.is_set()
                else f"after the {self.worker.grace} s grace period",
                extra={"action": "grace_expired", "job_id": held.job.id},
            )
            held.abandoned = True
            if held.task is not None:
                held.task.cancel()

    async def _final_flush(self) -> None:
        deadline = time.monotonic() + (FORCED_FLUSH if self.forced.is_set() else FINAL_FLUSH)
        while (
            (self.reports or self.progress) and self.refused is None and time.monotonic() < deadline
        ):
            await self._poll_or_back_off(0, 0.0)
        for report in self.reports:
            logger.error(
                "worker %r exits without a manager acknowledging the report of job %r "
                "attempt %d; the job runs again after its lease",
                self.worker.worker_id,
                report.id,
                report.attempt,
                extra={"action": "report_lost", "job_id": report.id},
            )
