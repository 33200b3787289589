"""The manager's core without HTTP: submission, dispatch, fencing, retries and the reaper.

A controlled clock drives time, so back-off and lease expiry are exact; the store and
queue are the embedded memory backends.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.backends.memory_queue import MemoryQueue
from forerunner.errors import BackendUnavailable, InvalidTransition, JobNotFound, ValidationError
from forerunner.hookspecs import hookimpl
from forerunner.manager.events import Events
from forerunner.manager.service import ManagerService, backoff, spec_from_options
from forerunner.model import JobState, QueueEntry
from forerunner.plugins import PluginInfo, Registry
from forerunner.wire import (
    AttemptRef,
    JobSpec,
    PollRequest,
    ProgressReport,
    ResultReport,
    WireError,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from forerunner.model import Job

START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class Recorder:
    """A plugin that records every ``forerunner_job_event``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def forerunner_job_event(self, event: str, job: Job) -> None:
        self.seen.append((event, job.id))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def service(clock: Clock, recorder: Recorder) -> ManagerService:
    registry = Registry.from_plugins([(PluginInfo(name="recorder", module="test"), recorder)])
    return ManagerService(
        registry.open_store("memory://"),
        registry.open_queue("memory://"),
        Events(registry),
        lease=10.0,
        clock=clock,
        jitter=lambda: 1.0,
    )


def submit(service: ManagerService, type: str = "ping", **options: Any) -> Job:
    [(job, _)] = service.submit([spec_from_options(type, None, **options)])
    return job


def poll(service: ManagerService, worker: str = "w1", **fields: Any) -> tuple[list[Job], list[str]]:
    request = PollRequest(worker=worker, **fields)
    abandon = service.settle(request)
    return service.hand_out(worker, request.types, request.capacity, 0.0), abandon


def test_submit_queues_a_due_job_and_schedules_a_delayed_one(service: ManagerService) -> None:
    due = submit(service)
    later = submit(service, delay=60)

    assert due.state is JobState.QUEUED
    assert later.state is JobState.SCHEDULED
    assert later.run_at == START + dt.timedelta(seconds=60)
    assert service.queue.size() == 1


def test_idempotency_key_returns_the_existing_job(service: ManagerService) -> None:
    [(first, created_first)] = service.submit([JobSpec(type="ping", key="k")])
    [(again, created_again)] = service.submit([JobSpec(type="ping", key="k", data=2)])

    assert (created_first, created_again) == (True, False)
    assert again == first
    assert service.queue.size() == 1


NAIVE = dt.datetime(2030, 1, 1)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"delay": 1.0, "run_at": START}, "$.delay"),
        ({"run_at": NAIVE}, "$.run_at"),
        ({"priority": "high"}, "$.priority"),
        ({"max_attempts": 0}, "$.max_attempts"),
    ],
)
def test_bad_submission_names_the_field_and_stores_nothing(
    service: ManagerService, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        service.submit([spec_from_options("ping", None, **options)])

    assert raised.value.field == field
    assert service.store.counts() == {}


def test_batch_error_names_the_job_in_the_batch(service: ManagerService) -> None:
    specs = [JobSpec(type="ping"), JobSpec(type="ping", delay=1.0, run_at=START)]

    with pytest.raises(ValidationError) as raised:
        service.submit(specs, batch=True)

    assert raised.value.field == "$.jobs[1].delay"
    assert service.store.counts() == {}


def test_hand_out_claims_with_a_lease(service: ManagerService, recorder: Recorder) -> None:
    job = submit(service)

    jobs, abandon = poll(service, types=["ping"], capacity=5)

    assert [j.id for j in jobs] == [job.id]
    assert jobs[0].state is JobState.RUNNING
    assert jobs[0].lease_until == START + dt.timedelta(seconds=10)
    assert abandon == []
    assert recorder.seen == [("created", job.id), ("staged", job.id)]


def test_a_cancelled_entry_is_not_handed_out(service: ManagerService) -> None:
    # Given a cancelled job whose entry is still (or again) in the queue
    job = submit(service)
    service.cancel(job.id)
    service.queue.push([QueueEntry(job_id=job.id, type="ping")])

    # When a worker polls
    jobs, _ = poll(service, types=["ping"], capacity=1)

    # Then the claim fails and the entry is dropped
    assert jobs == []
    assert service.queue.size() == 0


def test_report_of_a_wrong_attempt_is_fenced_out(service: ManagerService) -> None:
    job = submit(service)
    poll(service, types=["ping"], capacity=1)

    report = ResultReport(id=job.id, attempt=2, outcome="succeeded", result=1)
    _, abandon = poll(service, reports=[report])

    assert abandon == [job.id]
    assert service.get(job.id).state is JobState.RUNNING


def test_renewing_a_cancelled_job_abandons_it(service: ManagerService, clock: Clock) -> None:
    job = submit(service)
    poll(service, types=["ping"], capacity=1)
    service.cancel(job.id)

    clock.advance(5)
    _, abandon = poll(service, running=[AttemptRef(id=job.id, attempt=1)])

    assert abandon == [job.id]


def test_renewal_extends_the_lease(service: ManagerService, clock: Clock) -> None:
    job = submit(service)
    poll(service, types=["ping"], capacity=1)

    clock.advance(5)
    _, abandon = poll(service, running=[AttemptRef(id=job.id, attempt=1)])

    assert abandon == []
    assert service.get(job.id).lease_until == clock.now + dt.timedelta(seconds=10)


def test_progress_is_recorded_and_fenced(service: ManagerService, recorder: Recorder) -> None:
    job = submit(service)
    poll(service, types=["ping"], capacity=1)

    _, abandon = poll(
        service,
        progress=[
            ProgressReport(id=job.id, attempt=1, value="half"),
            ProgressReport(id=job.id, attempt=7, value="stale"),
        ],
    )

    assert abandon == [job.id]
    assert service.get(job.id).progress == "half"
    assert ("progress", job.id) in recorder.seen


def test_failed_attempts_back_off_then_fail_with_the_error(
    service: ManagerService, clock: Clock, recorder: Recorder
) -> None:
    job = submit(service, max_attempts=3)
    error = WireError(type="KeyError", message="'x'", traceback="Traceback ...")

    for attempt, pause in ((1, 1.0), (2, 2.0)):
        # Given the job handed out for this attempt
        [running], _ = poll(service, types=["ping"], capacity=1)
        assert running.attempt == attempt
        # When the worker reports a failure
        poll(
            service,
            reports=[ResultReport(id=job.id, attempt=attempt, outcome="failed", error=error)],
        )
        # Then it is scheduled after the back-off, and handed out only once that passed
        scheduled = service.get(job.id)
        assert scheduled.state is JobState.SCHEDULED
        assert scheduled.run_at == clock.now + dt.timedelta(seconds=pause)
        service.reap()
        assert poll(service, types=["ping"], capacity=1)[0] == []
        clock.advance(pause)
        service.reap()

    poll(service, types=["ping"], capacity=1)
    poll(service, reports=[ResultReport(id=job.id, attempt=3, outcome="failed", error=error)])

    failed = service.get(job.id)
    assert failed.state is JobState.FAILED
    assert failed.error is not None
    assert (failed.error.type, failed.error.traceback) == ("KeyError", "Traceback ...")
    assert [event for event, _ in recorder.seen].count("retrying") == 2
    assert recorder.seen[-1] == ("failed", job.id)


def test_backoff_doubles_from_one_second_up_to_five_minutes() -> None:
    assert [backoff(attempt, 1.0) for attempt in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(30, 1.0) == 300.0
    assert backoff(3, 0.5) == 2.0


def test_reaper_requeues_an_expired_lease(service: ManagerService, clock: Clock) -> None:
    job = submit(service)
    poll(service, types=["ping"], capacity=1)

    clock.advance(11)
    service.reap()
    [again], _ = poll(service, worker="w2", types=["ping"], capacity=1)

    assert (again.id, again.attempt, again.worker) == (job.id, 2, "w2")
    assert again.error is not None
    assert again.error.type == "LeaseExpired"


def test_reaper_rebuilds_a_lost_queue(service: ManagerService) -> None:
    jobs = [submit(service) for _ in range(3)]
    service.queue.clear()

    service.reap()

    assert service.queue.size() == 3
    handed, _ = poll(service, types=["ping"], capacity=10)
    assert sorted(j.id for j in handed) == sorted(j.id for j in jobs)


def test_cancel_and_retry_check_the_state(service: ManagerService) -> None:
    job = submit(service)

    cancelled = service.cancel(job.id)
    with pytest.raises(InvalidTransition):
        service.cancel(job.id)
    queued = service.retry(job.id)
    with pytest.raises(InvalidTransition):
        service.retry(job.id)
    with pytest.raises(JobNotFound):
        service.cancel("nope")

    assert cancelled.state is JobState.CANCELLED
    assert queued.state is JobState.QUEUED
    assert service.queue.size() == 1


def test_callbacks_filter_by_type_and_a_raising_one_is_logged(
    service: ManagerService, caplog: pytest.LogCaptureFixture
) -> None:
    seen: dict[str, list[str]] = {"ping": [], "any": [], "list": []}

    def broken(job: Job) -> None:
        raise RuntimeError("callback bug")

    service.events.on("created", "ping", lambda job: seen["ping"].append(job.type))
    service.events.on("created", "*", lambda job: seen["any"].append(job.type))
    service.events.on("created", ["a", "b"], lambda job: seen["list"].append(job.type))
    service.events.on("created", "*", broken)

    with caplog.at_level(logging.ERROR):
        for job_type in ("ping", "a", "c"):
            submit(service, job_type)

    assert seen == {"ping": ["ping"], "any": ["ping", "a", "c"], "list": ["a"]}
    assert "callback bug" in caplog.text
    assert service.store.counts()[("c", JobState.QUEUED)] == 1


class UnreachableQueue(MemoryQueue):
    """A memory queue whose pushes fail while ``down`` is set, as a Redis that went away."""

    down = True

    def push(self, entries: Sequence[QueueEntry]) -> None:
        if self.down:
            raise BackendUnavailable("the queue does not answer")
        super().push(entries)


def test_a_submit_whose_push_fails_is_stored_and_queued_by_the_next_rebuild(
    clock: Clock, recorder: Recorder
) -> None:
    registry = Registry.from_plugins([(PluginInfo(name="recorder", module="test"), recorder)])
    queue = UnreachableQueue()
    service = ManagerService(
        registry.open_store("memory://"), queue, Events(registry), lease=10.0, clock=clock
    )
    # When the queue fails the push of a submitted job
    [(job, created)] = service.submit([JobSpec(type="ping")])
    # Then the submit still succeeds, because the job is stored (a 503 would make a
    # retrying client submit it twice)
    assert created
    assert service.get(job.id).state is JobState.QUEUED
    # And once the queue answers again, the reaper's rebuild queues the job
    queue.down = False
    service.reap()
    assert [entry.job_id for entry in queue.pop(["ping"], 10)] == [job.id]
