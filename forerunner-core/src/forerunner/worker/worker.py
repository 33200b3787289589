"""The worker: long-polls a manager for jobs, runs them, reports how they ended.

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
leases, reports them and returns. Jobs still running after the grace period are left to
their leases: the manager re-queues them when the lease expires.
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


def new_worker_id() -> str:
    """``host-pid-random``: stable for the process, unique across restarts and hosts."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@attrs.define
class _Held:
    """An attempt this worker runs, from hand-out until its slot is free."""

    job: Job
    task: asyncio.Task[None]
    asynchronous: bool
    #: Its outcome was handed to the report list; no longer renewed.
    delivered: bool = False
    #: The manager fenced this attempt out; its outcome is dropped.
    abandoned: bool = False


class _PollFailed(Exception):
    """A poll got no usable answer; its reports were put back."""


class Worker:
    """Runs jobs handed out by one or more managers.

    :param concurrency: how many jobs run at once (sync handlers each take a thread).
    :param worker_id: the id the manager records on every attempt; by default
        :func:`new_worker_id`.
    :param registry: where task names given to :meth:`add_plugin_tasks` are looked up;
        by default the process's plugin registry.
    :param grace: seconds running jobs may take to finish after :meth:`stop`.
    """

    def __init__(
        self,
        concurrency: int = 4,
        *,
        worker_id: str | None = None,
        registry: Registry | None = None,
        grace: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise ValidationError(
                f"concurrency must be at least 1, got {concurrency}", field="concurrency"
            )
        self.concurrency = concurrency
        self.worker_id = worker_id or new_worker_id()
        self.grace = grace
        self._registry = registry
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
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

    def stop(self) -> None:
        """Stop taking work and return from :meth:`start` once running jobs are done.

        Safe to call from any thread, and before :meth:`start`.
        """
        with self._lock:
            self._stop_requested = True
            loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)

    async def _serve(self, urls: list[str]) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        with self._lock:
            self._loop, self._stopping = loop, stopping
            if self._stop_requested:
                stopping.set()
        signals = self._install_signal_handlers(loop, stopping)
        executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="forerunner-job")
        try:
            async with httpx.AsyncClient() as http:
                session = _Session(self, urls, http, executor, stopping)
                self._state = session
                await session.run()
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            executor.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                self._loop = self._stopping = None
                self._state = None
                self._stop_requested = False

    @staticmethod
    def _install_signal_handlers(
        loop: asyncio.AbstractEventLoop, stopping: asyncio.Event
    ) -> list[signal.Signals]:
        if threading.current_thread() is not threading.main_thread():
            return []
        installed = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stopping.set)
                installed.append(signum)
        return installed

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
        executor: ThreadPoolExecutor,
        stopping: asyncio.Event,
    ) -> None:
        self.worker = worker
        self.urls = urls
        self.url_index = 0
        self.http = http
        self.executor = executor
        self.stopping = stopping
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
                await self._poll_or_back_off(free, min(MAX_LONG_POLL, self._renew_interval()))
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

    async def _poll_or_back_off(self, capacity: int, wait: float) -> bool:
        try:
            await self._poll(capacity, wait)
        except _PollFailed:
            if capacity > 0 and self.stopping.is_set():
                return False
            self.failures += 1
            self.url_index = (self.url_index + 1) % len(self.urls)
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            return False
        self.failures = 0
        return True

    async def _poll(self, capacity: int, wait: float) -> None:
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
        )
        url = self.urls[self.url_index]
        answer: PollResponse | None = None
        try:
            answer = await self._send(url, request, capacity > 0)
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

    async def _send(self, url: str, request: PollRequest, interruptible: bool) -> PollResponse:
        """POST one poll; a long poll gives up when the worker starts stopping."""
        post = self.http.post(
            f"{url}/v1/workers/poll",
            content=msgspec.json.encode(request),
            headers={"content-type": "application/json"},
            timeout=request.wait + REQUEST_SLACK,
        )
        try:
            if interruptible:
                sending = asyncio.ensure_future(post)
                stop = asyncio.ensure_future(self.stopping.wait())
                try:
                    await asyncio.wait({sending, stop}, return_when="FIRST_COMPLETED")
                finally:
                    stop.cancel()
                if not sending.done():
                    sending.cancel()
                    await asyncio.gather(sending, return_exceptions=True)
                    raise _PollFailed("stopping")
                response = sending.result()
            else:
                response = await post
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
        self.held[job.id] = _Held(job=job, task=task, asynchronous=is_async(handler))

    async def _run_job(self, handler: Handler, job: Job) -> None:
        loop = asyncio.get_running_loop()

        def report_progress(value: JSON) -> None:
            loop.call_soon_threadsafe(self._record_progress, job, value)

        def deliver(report: ResultReport) -> None:
            held = self.held.get(job.id)
            if held is not None:
                held.delivered = True
                if held.abandoned:
                    return
            self._deliver_report(report)

        try:
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
        self.reports.append(report)
        self.progress.pop(report.id, None)
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
        if held.asynchronous and not held.delivered:
            held.task.cancel()

    # Stopping

    async def _drain(self) -> None:
        tasks = [held.task for held in self.held.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=self.worker.grace)
        left = list(self.held.values())
        self.worker.lingering = sum(not held.asynchronous for held in left)
        for held in left:
            logger.warning(
                "job %r still running after the %s s grace period; left to its lease",
                held.job.id,
                self.worker.grace,
                extra={"action": "grace_expired", "job_id": held.job.id},
            )
            held.abandoned = True
            if held.asynchronous:
                held.task.cancel()

    async def _final_flush(self) -> None:
        deadline = time.monotonic() + FINAL_FLUSH
        while (self.reports or self.progress) and time.monotonic() < deadline:
            await self._poll_or_back_off(0, 0.0)
        if self.reports:
            logger.error(
                "worker %r exits with %d unacknowledged report(s); their jobs run again "
                "after their leases",
                self.worker.worker_id,
                len(self.reports),
                extra={"action": "reports_lost"},
            )
