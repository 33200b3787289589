"""What the suite's child processes run, and how the parent starts and hears from them.

Children are started with the ``spawn`` method on every platform, so they share nothing
with the parent but the URL: each opens the backend itself through the installed
plugins, as a second manager or worker would. ``spawn`` pickles targets by reference,
which is why they live in this importable module and not in the tests.

Every child sends exactly one message on its results queue: ``("ok", value)`` or
``("error", traceback text)``, so a child that fails shows its own traceback in the
parent's failure instead of a timeout.
"""

from __future__ import annotations

import queue as queue_module
import time
import traceback
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any, Final, Self

from forerunner_queue_tests.checks import check, fail

if TYPE_CHECKING:
    import multiprocessing.context
    import multiprocessing.process
    import multiprocessing.queues
    import multiprocessing.synchronize
    from collections.abc import Callable, Sequence
    from types import TracebackType

    from forerunner.model import QueueEntry
    from forerunner.queue import Queue

__all__ = ["Children", "pop_until_drained", "push_when_told", "visit"]

#: How long a child may take to start and open the backend: spawning a Python
#: interpreter on a loaded two-core machine takes seconds, not milliseconds.
START_SECONDS: Final = 60.0


def _open(url: str) -> Queue:
    from forerunner.plugins import open_queue

    return open_queue(url)


def _report(
    results: multiprocessing.queues.Queue[tuple[str, Any]], work: Callable[[], Any]
) -> None:
    try:
        value = work()
    except BaseException:
        results.put(("error", traceback.format_exc()))
    else:
        results.put(("ok", value))


def pop_until_drained(
    url: str,
    types: Sequence[str],
    count: int,
    start: multiprocessing.synchronize.Barrier,
    results: multiprocessing.queues.Queue[tuple[str, Any]],
) -> None:
    """Open the queue, wait for the others, then pop until a pop comes back empty.

    Sends the popped job ids in the order this process got them.
    """

    def work() -> list[str]:
        queue = _open(url)
        try:
            start.wait(START_SECONDS)
            got: list[str] = []
            while batch := queue.pop(types, count, 0.05):
                got.extend(entry.job_id for entry in batch)
            return got
        finally:
            queue.close()

    _report(results, work)


def push_when_told(
    url: str,
    entries: Sequence[QueueEntry],
    delay: float,
    handshake: tuple[multiprocessing.synchronize.Event, multiprocessing.synchronize.Event],
    results: multiprocessing.queues.Queue[tuple[str, Any]],
) -> None:
    """Open the queue, say so, and push ``delay`` seconds after being told to.

    ``handshake`` is ``(ready, go)``: this process sets ``ready`` once the queue is
    open and waits for the parent to set ``go``.

    Sends the wall-clock time at which the push began, so the parent can tell how long
    its blocked pop took to notice.
    """

    ready, go = handshake

    def work() -> float:
        queue = _open(url)
        try:
            ready.set()
            if not go.wait(START_SECONDS):
                raise TimeoutError(f"the parent did not say go within {START_SECONDS} s")
            time.sleep(delay)
            pushed_at = time.time()
            queue.push(entries)
            return pushed_at
        finally:
            queue.close()

    _report(results, work)


def visit(
    url: str,
    types: Sequence[str],
    entries: Sequence[QueueEntry],
    results: multiprocessing.queues.Queue[tuple[str, Any]],
) -> None:
    """Open the queue, count what waits, pop one entry, push ``entries``, close.

    Sends ``(size, popped)``.
    """

    def work() -> tuple[int, list[QueueEntry]]:
        queue = _open(url)
        try:
            seen = queue.size(types)
            popped = queue.pop(types, 1, 0.0)
            queue.push(entries)
            return seen, popped
        finally:
            queue.close()

    _report(results, work)


class Children:
    """Child processes of one test: started with ``spawn``, never left running.

    Leaving the ``with`` block joins every child and terminates those still running
    after a grace period, so a stuck child fails its test instead of outliving it.
    """

    def __init__(self, clause_id: str) -> None:
        self.clause_id = clause_id
        self.context: multiprocessing.context.SpawnContext = get_context("spawn")
        self.results: multiprocessing.queues.Queue[tuple[str, Any]] = self.context.Queue()
        self.processes: list[multiprocessing.process.BaseProcess] = []

    def start(self, target: Callable[..., None], *args: object) -> None:
        """Start ``target(*args, results)`` in a new process."""
        process = self.context.Process(target=target, args=(*args, self.results), daemon=True)
        process.start()
        self.processes.append(process)

    def wait_until(self, event: multiprocessing.synchronize.Event, what: str) -> None:
        """Wait for a child to set ``event``; fail at once, with its error, if one exits."""
        deadline = time.monotonic() + START_SECONDS
        while not event.wait(0.05):
            if any(p.exitcode is not None for p in self.processes):
                self.receive(1.0, what)
                fail(self.clause_id, f"{what}: a child exited without an error")
            if time.monotonic() > deadline:
                fail(self.clause_id, f"{what}: not done after {START_SECONDS} s")

    def receive(self, timeout: float, what: str) -> Any:
        """The next child's value; fail naming the clause if a child failed or fell silent."""
        try:
            status, value = self.results.get(timeout=timeout)
        except queue_module.Empty:
            fail(self.clause_id, f"{what}: no answer from a child within {timeout} s")
        check(self.clause_id, status == "ok", f"{what}: a child process failed:\n{value}")
        return value

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        self.results.close()
        self.results.join_thread()
