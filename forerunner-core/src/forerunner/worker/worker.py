"""The worker: long-polls a manager for jobs, runs them, reports how they ended.

Sync handlers run in a thread pool, ``async def`` ones on the event loop, and with
``processes`` every job runs in a child process (:mod:`forerunner.worker.processes`).
One asyncio loop does all the talking (``POST /v1/workers/poll``, see
:mod:`forerunner.wire`). Two coroutines share it:

* the *fetcher* keeps one long poll outstanding while slots are free (capacity = free
  slots, so nothing is prefetched that could not start at once), and when every slot is
  busy it polls only to renew leases, every third of the lease;
* the *flusher* sends finished results and progress at once in short polls (capacity 0,
  wait 0) rather than holding them until the long poll returns.

Every poll lists every attempt the worker holds, which renews their leases. A report
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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
import httpx
import msgspec

from forerunner.errors import ConfigurationError, ForerunnerError, ValidationError
from forerunner.wire import (
    MAX_BATCH,
    AttemptRef,
    PollRequest,
    PollResponse,
    ProgressReport,
    ResultReport,
    job_from_wire,
)
from forerunner.worker.runner import execute, failure, is_async

if TYPE_CHECKING:
    from forerunner.handlers import Handler
    from forerunner.model import JSON, Job
    from forerunner.plugins import Registry
    from forerunner.worker.processes import ProcessPool

__all__ = ["Worker", "new_worker_id"]

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
#: Seconds progress waits for more progress (or a result) before it is sent alone.
PROGRESS_EVERY: Final = 0.2
#: Seconds the worker keeps trying to hand over its last reports after the grace period.
FINAL_FLUSH: Final = 10.0
#: Seconds the last reports may take after a forced stop.
FORCED_FLUSH: Final = 2.0
#: Seconds a stopping worker waits for its open long poll to come back.
LONG_POLL_END: Final = 5.0


def new_worker_id() -> str:
    """``host-pid-random``: stable for the process, unique across restarts and hosts."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@attrs.define
class _Held:
    """An attempt this worker runs, from hand-out until its slot is free."""

    job: Job
    task: asyncio.Task[None]
    #: Cancelling ``task`` stops the job (an async handler, or a job in a child
    #: process); a sync handler's thread runs on regardless.
    cancellable: bool
    #: Its outcome was handed to the report list; no longer renewed.
    delivered: bool = False
    #: The manager fenced this attempt out; its outcome is dropped.
    abandoned: bool = False


class _PollFailed(Exception):
    """A poll got no usable answer; its reports were put back."""


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
    """

    def __init__(
        self,
        concurrency: int | None = None,
        *,
        worker_id: str | None = None,
        registry: Registry | None = None,
        grace: float = 30.0,
        processes: int | None = None,
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
        self.concurrency = concurrency
        self.processes = processes
        self.worker_id = worker_id or new_worker_id()
        self.grace = grace
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
        executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="forerunner-job")
        try:
            async with httpx.AsyncClient() as http:
                session = _Session(
                    self,
                    urls,
                    http,
                    executor=executor,
                    pool=pool,
                    stopping=stopping,
                    forced=forced,
                )
                self._state = session
                await session.run()
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            executor.shutdown(wait=False, cancel_futures=True)
            if pool is not None:
                await pool.close()
            with self._lock:
                self._loop = self._stopping = self._forced = None
                self._state = None
                self._stop_requested = self._force_requested = False

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
        http: httpx.AsyncClient,
        *,
        executor: ThreadPoolExecutor,
        pool: ProcessPool | None,
        stopping: asyncio.Event,
        forced: asyncio.Event,
    ) -> None:
        self.worker = worker
        self.urls = urls
        self.url_index = 0
        self.http = http
        self.executor = executor
        self.pool = pool
        self.stopping = stopping
        self.forced = forced
        #: Set while no long poll (capacity > 0) is outstanding.
        self.long_poll_idle = asyncio.Event()
        self.long_poll_idle.set()
        self.held: dict[str, _Held] = {}
        #: Results not yet acknowledged by a manager, oldest first.
        self.reports: list[ResultReport] = []
        #: The latest unsent progress per job id.
        self.progress: dict[str, ProgressReport] = {}
        self.flush_needed = asyncio.Event()
        self.report_ready = asyncio.Event()
        self.slot_freed = asyncio.Event()
        self.lease = DEFAULT_LEASE
        self.last_renewed = time.monotonic()
        self.failures = 0

    async def run(self) -> None:
        fetcher = asyncio.create_task(self._fetch_loop(), name="forerunner-fetch")
        flusher = asyncio.create_task(self._flush_loop(), name="forerunner-flush")
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({stop, fetcher, flusher}, return_when="FIRST_COMPLETED")
        stop.cancel()
        crashed = next((task for task in (fetcher, flusher) if task.done()), None)
        if crashed is not None:
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

    async def _fetch_loop(self) -> None:
        while True:
            free = 0 if self.stopping.is_set() else self.worker.concurrency - len(self.held)
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
        while True:
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
        try:
            await self._poll(capacity, wait, stopping=stopping)
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
        running = [
            AttemptRef(id=held.job.id, attempt=held.job.attempt)
            for held in self.held.values()
            if not held.abandoned and not held.delivered
        ][:MAX_BATCH]
        request = PollRequest(
            worker=self.worker.worker_id,
            types=self.worker.types,
            capacity=capacity,
            running=running,
            progress=progress,
            reports=reports,
            wait=wait,
            stopping=stopping,
        )
        url = self.urls[self.url_index]
        answer: PollResponse | None = None
        try:
            answer = await self._send(url, request)
        finally:
            if answer is None:
                self.reports[:0] = reports
                for item in progress:
                    self.progress.setdefault(item.id, item)
        self.lease = answer.lease_seconds
        self.last_renewed = time.monotonic()
        for job_id in answer.abandon:
            self._abandon(job_id)
        for body in answer.jobs:
            self._start(job_from_wire(body))

    async def _send(self, url: str, request: PollRequest) -> PollResponse:
        """POST one poll and decode the answer."""
        try:
            response = await self.http.post(
                f"{url}/v1/workers/poll",
                content=msgspec.json.encode(request),
                headers={"content-type": "application/json"},
                timeout=request.wait + REQUEST_SLACK,
            )
        except httpx.HTTPError as error:
            logger.warning(
                "poll of %s failed: %s: %s",
                url,
                type(error).__name__,
                error,
                extra={"action": "poll_failed"},
            )
            raise _PollFailed(str(error)) from error
        if response.status_code != 200:
            logger.warning(
                "poll of %s answered %d: %s",
                url,
                response.status_code,
                response.text[:300],
                extra={"action": "poll_failed"},
            )
            raise _PollFailed(f"status {response.status_code}")
        try:
            return msgspec.json.decode(response.content, type=PollResponse)
        except msgspec.DecodeError as error:
            raise _PollFailed(f"bad poll answer: {error}") from error

    # Jobs

    def _start(self, job: Job) -> None:
        if job.id in self.held:
            return
        handler = self.worker.handler_for(job.type)
        if handler is None:
            error = ForerunnerError(f"worker {self.worker.worker_id!r} has no task {job.type!r}")
            self._deliver_report(failure(job, error))
            return
        task = asyncio.create_task(self._run_job(handler, job), name=f"forerunner-job-{job.id}")
        cancellable = self.pool is not None or is_async(handler)
        self.held[job.id] = _Held(job=job, task=task, cancellable=cancellable)

    async def _run_job(self, handler: Handler, job: Job) -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def report_progress(value: JSON) -> None:
            # From the loop itself record at once, so that progress reported just before
            # an async handler returns is in place when its result is delivered.
            if threading.get_ident() == loop_thread:
                self._record_progress(job, value)
            else:
                loop.call_soon_threadsafe(self._record_progress, job, value)

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
                await execute(
                    handler,
                    job,
                    executor=self.executor,
                    report_progress=report_progress,
                    deliver=deliver,
                )
        finally:
            self.held.pop(job.id, None)
            self.slot_freed.set()

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
            logger.warning(
                "job %r reported progress %r, which is not JSON; dropped",
                job.id,
                value,
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
        if held.cancellable and not held.delivered:
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
        tasks = [held.task for held in self.held.values()]
        if tasks and not self.forced.is_set():
            finished = asyncio.ensure_future(asyncio.wait(tasks))
            forced = asyncio.ensure_future(self.forced.wait())
            await asyncio.wait(
                {finished, forced}, timeout=self.worker.grace, return_when="FIRST_COMPLETED"
            )
            finished.cancel()
            forced.cancel()
        left = list(self.held.values())
        self.worker.lingering = sum(not held.cancellable for held in left)
        for held in left:
            logger.warning(
                "job %r still running %s; left to its lease",
                held.job.id,
                "at a forced stop"
                if self.forced.is_set()
                else f"after the {self.worker.grace} s grace period",
                extra={"action": "grace_expired", "job_id": held.job.id},
            )
            held.abandoned = True
            if held.cancellable:
                held.task.cancel()

    async def _final_flush(self) -> None:
        deadline = time.monotonic() + (FORCED_FLUSH if self.forced.is_set() else FINAL_FLUSH)
        while (self.reports or self.progress) and time.monotonic() < deadline:
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
