"""A pool of child processes for CPU-bound tasks (``forerunner worker --processes P``).

Why processes: a handler in a thread shares the interpreter lock with the worker's
event loop and every other job, so CPU-bound tasks use one core however many run at
once; and a thread cannot be stopped, so a job past its timeout keeps running until it
returns by itself. A child process runs on a core of its own, and SIGKILL really ends
a runaway job: the pool kills the child and starts a fresh one in its place.

Why ``spawn``: the worker runs an event loop and threads (the job executor's, asyncio's
for name lookups, a caller's). ``fork`` copies the whole memory, including locks those
threads hold at that instant, into a child where only the forking thread exists, so the
first such lock the child takes can block forever. A spawned child is a fresh
interpreter that imports what it needs, and nothing else of the parent's state.

What a handler must therefore be: something :mod:`pickle` sends *by reference*, the
name of something the child can import. That is a function (``def`` or ``async def``)
at module level of an importable module, as a ``--tasks`` module's and a plugin's tasks
are; a :func:`~forerunner.compose.compose` pipeline of task names and such functions;
or an instance of a module-level class whose state pickles. Lambdas, closures and
functions defined inside functions are refused when the pool is built; a task module
that cannot be imported in a fresh interpreter fails :meth:`ProcessPool.start`. Each
child imports the task modules itself, so their import-time work runs once per child.

Each child runs one attempt at a time and ends it in one
:class:`~forerunner.wire.ResultReport`, by the same rules as
:func:`forerunner.worker.runner.execute`; how the two sides talk is in
:mod:`forerunner.worker._child`. A child that dies is noticed when its socket closes,
and one that dies while idle is replaced before it is handed the next job.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import signal
import socket
from typing import TYPE_CHECKING, Final, final

import attrs

from forerunner.errors import ConfigurationError, ForerunnerError, ValidationError
from forerunner.wire import ResultReport, WireError
from forerunner.worker._child import HEADER, Broken, Done, FromChild, Progress, Ready, decode, serve
from forerunner.worker.runner import failure, timed_out

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from multiprocessing.context import SpawnProcess

    from forerunner.handlers import Handler
    from forerunner.model import JSON, Job

__all__ = ["PROCESS_DIED_ERROR", "READY_TIMEOUT", "ProcessPool"]

logger = logging.getLogger(__name__)

#: The error type of an attempt whose process died under it (``os._exit``, a crash,
#: a signal from outside).
PROCESS_DIED_ERROR: Final = "WorkerProcessDied"
#: Seconds a new child may take to import the task modules and say it is ready.
READY_TIMEOUT: Final = 60.0
#: Seconds between looks at whether a child has exited. Waiting on its pipe instead
#: would hang if the child had passed the pipe on to a process of its own.
_EXIT_POLL: Final = 0.01
#: Seconds a child that closed its socket, or was killed, gets to be reaped.
_EXIT_WAIT: Final = 5.0
_CLOSED_MEANWHILE: Final = "the process pool was closed; it runs no more jobs"


@final
class ProcessPool:
    """``size`` child processes, each running one attempt of a job at a time.

    Build it, :meth:`start` it on the event loop that will call :meth:`run`, and
    :meth:`close` it on the same loop. The caller keeps at most ``size`` calls of
    :meth:`run` outstanding; any more wait for a free child.
    """

    def __init__(self, size: int, handlers: Mapping[str, Handler]) -> None:
        if size < 1:
            raise ValidationError(
                f"the process pool needs at least 1 process, got {size}", field="processes"
            )
        for name, handler in handlers.items():
            try:
                pickle.dumps(handler)
            except Exception as error:
                raise ConfigurationError(
                    f"task {name!r} cannot run in a worker process: its handler {handler!r} "
                    f"does not pickle ({type(error).__name__}: {error}). A child process "
                    "receives each handler by reference, so define it with def at module "
                    "level of an importable module (not a lambda, a closure or a function "
                    "inside a function), or make it an instance of a module-level class "
                    "whose state pickles."
                ) from error
        self._size = size
        self._task_names = frozenset(handlers)
        self._handlers = pickle.dumps(dict(handlers))
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(index=index) for index in range(size)]
        self._idle: asyncio.Queue[_Slot] = asyncio.Queue()
        #: Every child started and not yet reaped, so that closing misses none.
        self._children: set[_Child] = set()
        self._started = False
        self._closed = False
        self._closing: asyncio.Future[None] | None = None

    @property
    def size(self) -> int:
        """How many child processes run jobs."""
        return self._size

    async def start(self) -> None:
        """Start the children and wait until each has imported the task handlers.

        A task module that fails to import in a fresh interpreter raises
        :class:`~forerunner.errors.ConfigurationError` carrying the child's traceback,
        here and once, rather than failing every job later; no child is left running.
        """
        if self._started or self._closed:
            raise ForerunnerError("a process pool can be started once, before it is closed")
        self._started = True
        spawning = [asyncio.create_task(self._spawn(slot.index)) for slot in self._slots]
        try:
            await asyncio.wait(spawning)
        finally:
            # Only when the caller was cancelled is any still starting; each cleans up.
            for task in spawning:
                task.cancel()
            await asyncio.wait(spawning)
            for slot, task in zip(self._slots, spawning, strict=True):
                if not task.cancelled() and task.exception() is None:
                    slot.child = task.result()
                self._idle.put_nowait(slot)
            if not all(slot.child for slot in self._slots):
                await self.close()
        for task in spawning:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
        logger.info(
            "process pool started: %d process(es), pids %s",
            self._size,
            ", ".join(str(slot.child.pid) for slot in self._slots if slot.child),
            extra={"action": "process_pool_started"},
        )

    async def run(self, job: Job, report_progress: Callable[[JSON], None]) -> ResultReport:
        """Run one attempt of ``job`` in a free child and return how it ended.

        ``report_progress`` receives, on this event loop's thread and in order, every
        value the handler reports, all before this returns. Past ``job.timeout`` the
        child is killed and replaced, and the attempt failed with error type
        ``Timeout``; a child that dies fails it with :data:`PROCESS_DIED_ERROR`.
        Cancelling the caller kills and replaces the child too.
        """
        if not self._started or self._closed:
            raise ForerunnerError("the process pool is not running; start() it, and not close()")
        if job.type not in self._task_names:
            return failure(job, ForerunnerError(f"the process pool has no task {job.type!r}"))
        slot = await self._idle.get()
        try:
            try:
                if self._closed:
                    raise ForerunnerError(_CLOSED_MEANWHILE)
                child = await self._ready(slot)
            except (ForerunnerError, OSError) as error:
                logger.error(
                    "job %r not run: %s",
                    job.id,
                    error,
                    extra={"action": "process_start_failed", "job_id": job.id},
                )
                return failure(job, error)
            return await self._attempt(slot, child, job, report_progress)
        finally:
            self._idle.put_nowait(slot)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop every child: idle ones at once, busy ones after their attempt.

        Children still running ``timeout`` seconds later are killed. Calling it again,
        or while it runs, waits for the same closing. Cancelling the caller does not
        stop the closing half-way.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(timeout))
        await asyncio.shield(self._closing)

    # Children

    async def _spawn(self, index: int) -> _Child:
        """Start a child, hand it the handlers and wait until it has loaded them."""
        parent_end, child_end = socket.socketpair()
        process = self._context.Process(
            target=serve, args=(child_end,), name=f"forerunner-process-{index}", daemon=True
        )
        try:
            try:
                process.start()
            finally:
                child_end.close()
            reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        except BaseException:
            parent_end.close()
            if process.pid is not None:
                process.kill()
                await _Child.reap_process(process)
            raise
        child = _Child(process=process, pid=process.pid or 0, reader=reader, writer=writer)
        self._children.add(child)
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                message = await child.receive() if await child.send(self._handlers) else None
        except TimeoutError:
            await self._discard(child)
            raise ConfigurationError(
                f"worker process {child.pid} did not load the task handlers within "
                f"{READY_TIMEOUT} s; a task module hangs on import"
            ) from None
        except BaseException:
            await self._discard(child)
            raise
        if isinstance(message, Ready) and self._closed:
            # Closing may have listed the children before this one existed.
            await self._discard(child)
            raise ForerunnerError(_CLOSED_MEANWHILE)
        if isinstance(message, Ready):
            logger.debug("worker process %d ready", child.pid, extra={"action": "process_started"})
            return child
        if message is None:
            # It is exiting by itself: let it, so that its own exit code is reported.
            await child.reap(_EXIT_WAIT)
        await self._discard(child)
        if isinstance(message, Broken):
            raise ConfigurationError(
                "a worker process could not load the task handlers: a task module fails "
                "to import (or unpickle) in a fresh interpreter; fix it and start again. "
                f"The process's error:\n{message.error}"
            )
        if message is None:
            raise ConfigurationError(
                f"worker process {child.pid} {_describe_exit(child.exitcode)} while loading "
                "the task handlers; its error, if any, is on standard error. A script that "
                "starts a worker with processes must do so under "
                "`if __name__ == '__main__':`, since each process imports the script again"
            )
        raise ForerunnerError(
            f"worker process {child.pid} sent {type(message).__name__} instead of ready"
        )

    async def _ready(self, slot: _Slot) -> _Child:
        """The slot's child, once its replacement (if one is starting) is up."""
        replacing = slot.replacing
        if replacing is not None:
            try:
                slot.child = await asyncio.shield(replacing)
            except asyncio.CancelledError:
                if replacing.cancelled() and not _being_cancelled():
                    raise ForerunnerError(_CLOSED_MEANWHILE) from None
                raise
            finally:
                if replacing.done():
                    slot.replacing = None
        child = slot.child
        if child is not None and child.poll() is not None:
            logger.warning(
                "worker process %d %s while idle; starting another",
                child.pid,
                _describe_exit(child.exitcode),
                extra={"action": "process_died"},
            )
            slot.child = None
            await self._discard(child)
        if slot.child is None:
            slot.child = await self._spawn(slot.index)
        return slot.child

    def _retire(self, slot: _Slot, child: _Child) -> None:
        """Kill ``child`` and, unless the pool is closing, start its replacement."""
        child.kill()
        slot.child = None
        if not self._closed:
            slot.replacing = asyncio.create_task(
                self._replace(slot.index, child), name=f"forerunner-process-{slot.index}"
            )

    async def _replace(self, index: int, old: _Child) -> _Child:
        await self._discard(old)
        return await self._spawn(index)

    async def _discard(self, child: _Child) -> None:
        """Kill ``child``, reap it and release what the parent held of it."""
        child.kill()
        try:
            await child.reap(_EXIT_WAIT)
        finally:
            if child.release():
                self._children.discard(child)

    async def _close(self, timeout: float) -> None:
        self._closed = True
        replacing = [slot.replacing for slot in self._slots if slot.replacing is not None]
        for task in replacing:
            task.cancel()
        await asyncio.gather(*replacing, return_exceptions=True)
        children = list(self._children)
        try:
            for child in children:
                child.stop()
            await asyncio.gather(*(child.reap(timeout) for child in children))
        finally:
            stubborn = [child for child in children if child.poll() is None]
            for child in stubborn:
                logger.warning(
                    "worker process %d did not stop within %s s; killing it",
                    child.pid,
                    timeout,
                    extra={"action": "process_killed"},
                )
            await asyncio.gather(*(self._discard(child) for child in children))
        logger.info("process pool closed", extra={"action": "process_pool_closed"})

    # Attempts

    async def _attempt(
        self, slot: _Slot, child: _Child, job: Job, report_progress: Callable[[JSON], None]
    ) -> ResultReport:
        scope = asyncio.timeout(job.timeout)
        try:
            async with scope:
                report = await self._exchange(child, job, report_progress)
            if report is None:
                report = await self._died(child, job)
                self._retire(slot, child)
        except BaseException as error:
            # Whatever interrupted the attempt, the child is in the middle of it.
            self._retire(slot, child)
            if isinstance(error, TimeoutError) and scope.expired():
                logger.warning(
                    "job %r ran past its timeout of %s s; killed worker process %d",
                    job.id,
                    job.timeout,
                    child.pid,
                    extra={"action": "process_timeout", "job_id": job.id},
                )
                return timed_out(job)
            raise
        return report

    async def _exchange(
        self, child: _Child, job: Job, report_progress: Callable[[JSON], None]
    ) -> ResultReport | None:
        """Send ``job`` and pass on its progress; ``None`` if the child died meanwhile."""
        if not await child.send(pickle.dumps(job)):
            return None
        while (message := await child.receive()) is not None:
            if isinstance(message, Progress):
                report_progress(message.value)
            elif isinstance(message, Done):
                return message.report
            else:
                raise ForerunnerError(
                    f"worker process {child.pid} sent {type(message).__name__} during job "
                    f"{job.id!r}"
                )
        return None

    async def _died(self, child: _Child, job: Job) -> ResultReport:
        if await child.reap(_EXIT_WAIT) is None:
            # It closed its socket but lives on: it can no longer be talked to.
            child.kill()
            await child.reap(_EXIT_WAIT)
        how = _describe_exit(child.exitcode)
        logger.warning(
            "worker process %d %s while running job %r",
            child.pid,
            how,
            job.id,
            extra={"action": "process_died", "job_id": job.id},
        )
        return ResultReport(
            id=job.id,
            attempt=job.attempt,
            outcome="failed",
            error=WireError(
                type=PROCESS_DIED_ERROR,
                message=f"the worker process (pid {child.pid}) running job {job.id!r} {how}",
            ),
        )


@attrs.define(kw_only=True, eq=False)
class _Slot:
    """One of the pool's ``size`` places: a child, or the replacement being started."""

    index: int
    child: _Child | None = None
    replacing: asyncio.Task[_Child] | None = None


@attrs.define(kw_only=True, eq=False)
class _Child:
    """The parent's handle on one child: its process and the two ends of its socket."""

    process: SpawnProcess
    #: Kept apart from ``process``, whose attributes are gone once it is released.
    pid: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    #: The exit code once reaped: negative for the signal that ended it.
    exitcode: int | None = None
    released: bool = False

    async def send(self, payload: bytes) -> bool:
        """Send one frame; ``False`` if the child's end is gone."""
        if self.writer.is_closing():
            return False
        try:
            self.writer.write(HEADER.pack(len(payload)) + payload)
            await self.writer.drain()
        except ConnectionError:
            return False
        return True

    async def receive(self) -> FromChild | None:
        """The child's next message, or ``None`` once its end is closed."""
        try:
            header = await self.reader.readexactly(HEADER.size)
            (size,) = HEADER.unpack(header)
            return decode(await self.reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    def stop(self) -> None:
        """Ask politely: end-of-file ends the child's loop once its attempt is done."""
        if not self.writer.is_closing() and self.writer.can_write_eof():
            try:
                self.writer.write_eof()
            except OSError:
                self.writer.close()

    def kill(self) -> None:
        if self.poll() is None:
            self.process.kill()
        self.writer.close()

    def poll(self) -> int | None:
        """The exit code if the child has exited (and reap it), else ``None``."""
        if self.exitcode is None and not self.released:
            self.exitcode = self.process.exitcode
        return self.exitcode

    async def reap(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the child to exit; its exit code, if it did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.poll() is None and loop.time() < deadline:
            await asyncio.sleep(_EXIT_POLL)
        return self.exitcode

    def release(self) -> bool:
        """Free the process's handles once it is reaped; ``False`` while it still runs."""
        if self.poll() is None:
            return False
        self.writer.close()
        if not self.released:
            self.process.close()
            self.released = True
        return True

    @staticmethod
    async def reap_process(process: SpawnProcess) -> None:
        """Reap a killed process that never became a :class:`_Child`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _EXIT_WAIT
        while process.exitcode is None and loop.time() < deadline:
            await asyncio.sleep(_EXIT_POLL)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with code {exitcode}"
