"""The manager's work for one poll, without HTTP: settle the reports, hand out new jobs.

:class:`~forerunner.manager.service.ManagerService` on the embedded pairing (SQLite store,
memory queue), as ``forerunner manager`` runs by default. The app runs exactly this pair
of calls in one trip to its thread pool for every poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from forerunner.backends.memory_queue import MemoryQueue
from forerunner.backends.sqlite_store import SQLiteStore
from forerunner.manager.events import Events
from forerunner.manager.service import ManagerService
from forerunner.model import Job, JobState
from forerunner.wire import JobSpec, PollRequest, ResultReport

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pytest_benchmark.fixture import BenchmarkFixture

pytestmark = pytest.mark.benchmark(group="manager")

WORKER = "micro-worker"
TYPES = ["micro.noop"]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ManagerService]:
    """A service on a new SQLite file and an empty memory queue, with no plugins."""
    store = SQLiteStore(str(tmp_path / "manager.db"))
    queue = MemoryQueue()
    yield ManagerService(store, queue, Events())
    queue.close()
    store.close()


def test_manager_settle_64_hand_out_64(
    benchmark: BenchmarkFixture, service: ManagerService, rounds: int
) -> None:
    """Manager, per busy worker's poll: 64 results recorded, 64 new jobs handed out.

    ``settle`` turns the poll's 64 ``succeeded`` reports into store reports and finishes
    them (fenced by attempt, one event each); ``hand_out`` pops 64 entries and claims
    their jobs (one event each). The untimed setup of each round submits 64 jobs and
    hands them out to make the attempts the reports are about, then submits 64 more for
    the timed ``hand_out`` to find. The poll renews no leases (``running`` is empty), as
    most polls of a busy worker do not: it renews at most once a second.
    """
    specs = [JobSpec(type=TYPES[0], data={"n": n}) for n in range(64)]

    def setup() -> tuple[tuple[PollRequest], dict[str, object]]:
        service.submit(specs, batch=True)
        started = service.hand_out(WORKER, TYPES, 64, 0.0)
        service.submit(specs, batch=True)
        request = PollRequest(
            worker=WORKER,
            types=TYPES,
            capacity=64,
            reports=[
                ResultReport(id=job.id, attempt=job.attempt, outcome="succeeded", result=None)
                for job in started
            ],
        )
        return (request,), {}

    def settle_then_hand_out(request: PollRequest) -> tuple[list[str], list[Job]]:
        abandon = service.settle(request)
        return abandon, service.hand_out(request.worker, request.types, request.capacity, 0.0)

    # pytest-benchmark ships py.typed but leaves pedantic() unannotated.
    abandon, handed_out = benchmark.pedantic(  # type: ignore[no-untyped-call]
        settle_then_hand_out, setup=setup, rounds=rounds, warmup_rounds=1
    )

    assert abandon == []
    assert len(handed_out) == 64
    assert all(job.state is JobState.RUNNING for job in handed_out)
