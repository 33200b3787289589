"""What the suite's child processes run, and how the parent starts and hears from them.

Children are started with the ``spawn`` method on every platform, so they share nothing
with the parent but the URL: each opens the store itself through the installed
plugins, as a second manager would. ``spawn`` pickles targets by reference, which is
why they live in this importable module and not in the tests.

Every child sends exactly one message on its results queue: ``("ok", value)`` or
``("error", traceback text)``, so a child that fails shows its own traceback in the
parent's failure instead of a timeout.
"""

from __future__ import annotations

import queue as queue_module
import random
import traceback
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any, Final, Self

from forerunner_store_tests.checks import check, fail

if TYPE_CHECKING:
    import datetime as dt
    import multiprocessing.context
    import multiprocessing.process
    import multiprocessing.queues
    import multiprocessing.synchronize
    from collections.abc import Callable, Sequence
    from types import TracebackType

    from forerunner.model import Job
    from forerunner.store import Store

__all__ = ["Children", "claim_in_batches", "visit"]

#: How long a child may take to start and open the store: spawning a Python
#: interpreter on a loaded two-core machine takes seconds, not milliseconds.
START_SECONDS: Final = 60.0


def _open(url: str) -> Store:
    from forerunner.plugins import open_store

    return open_store(url)


def _report(
    results: multiprocessing.queues.Queue[tuple[str, Any]], work: Callable[[], Any]
) -> None:
    try:
        value = work()
    except BaseException:
        results.put(("error", traceback.format_exc()))
    else:
        results.put(("ok", value))


def claim_in_batches(
    url: str,
    claim: tuple[str, Sequence[str], dt.datetime, dt.datetime],
    start: multiprocessing.synchronize.Barrier,
    results: multiprocessing.queues.Queue[tuple[str, Any]],
) -> None:
    """Open the store, wait for the others, then claim every id in shuffled batches.

    ``claim`` is ``(worker, job ids, now, lease_until)``. Sends ``[(job id, attempt),
    ...]`` of the jobs this process won.
    """
    worker, job_ids, now, lease_until = claim

    def work() -> list[tuple[str, int]]:
        store = _open(url)
        try:
            order = list(job_ids)
            random.Random(worker).shuffle(order)
            start.wait(START_SECONDS)
            won: list[tuple[str, int]] = []
            for first in range(0, len(order), 10):
                batch = order[first : first + 10]
                won.extend(
                    (job.id, job.attempt) for job in store.claim(batch, worker, now, lease_until)
                )
            return won
        finally:
            store.close()

    _report(results, work)


def visit(
    url: str,
    seen_ids: Sequence[str],
    jobs: Sequence[Job],
    claim: tuple[str, str, dt.datetime, dt.datetime],
    results: multiprocessing.queues.Queue[tuple[str, Any]],
) -> None:
    """Open the store, get ``seen_ids``, add ``jobs``, claim one job, close.

    ``claim`` is ``(job id, worker, now, lease_until)``. Sends ``(jobs got, jobs
    claimed)``.
    """
    job_id, worker, now, lease_until = claim

    def work() -> tuple[list[Job | None], list[Job]]:
        store = _open(url)
        try:
            seen = [store.get(seen_id) for seen_id in seen_ids]
            store.add(jobs)
            return seen, store.claim([job_id], worker, now, lease_until)
        finally:
            store.close()

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
