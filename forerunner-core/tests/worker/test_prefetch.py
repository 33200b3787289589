"""Prefetch and lease renewals of a real worker, against a scripted manager.

The manager here is a small HTTP server that speaks ``POST /v1/workers/poll`` and
nothing else: it hands out the jobs a test gave it (as many as the poll's capacity
asks for), holds a long poll open while it has none, answers ``abandon`` when told to,
and records every poll and report. The worker cannot tell it from a real manager, and
the test can read exactly what the worker asked for.

Covers: with short jobs the worker asks for more than its slots (prefetch), with jobs
of 0.15 s never more than its free slots, ``prefetch=0`` and ``prefetch=5`` bound what
it asks for, prefetched jobs never run more than ``concurrency`` at once; a prefetched
job the manager abandons is never run nor reported, and its place is asked for again;
a worker stopping with prefetched jobs runs and reports them within its grace period;
polls renew the running leases at most about once a second (or every third of a
shorter lease), however many polls a stream of short jobs causes; a negative prefetch
is refused by :class:`Worker` and, in one line, by ``forerunner worker``. Every poll
carries the worker's session secret, the same for one worker and another for the next;
a manager that refuses big polls (413) without saying its limit gets the same reports
in smaller polls; one that answers 429 (too many requests) is polled again after a
back-off, and the worker runs on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import http.server
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import msgspec
import pytest

from forerunner import cli
from forerunner.errors import ValidationError
from forerunner.model import Job, JobState
from forerunner.wire import PollRequest, PollResponse, ResultReport, job_to_wire
from forerunner.worker import Worker
from forerunner.worker.worker import PREFETCH_MAX

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: The task every job here has.
TASK = "t"


def make_job(job_id: str, data: Any = None) -> Job:
    """A job as a manager hands it out: claimed, first attempt."""
    now = dt.datetime.now(dt.UTC)
    return Job(
        id=job_id,
        type=TASK,
        data=data,
        state=JobState.RUNNING,
        attempt=1,
        created_at=now,
        started_at=now,
        worker="scripted",
        lease_until=now + dt.timedelta(seconds=30),
    )


@attrs.frozen
class Poll:
    """One poll as the manager received it, and when (monotonic)."""

    at: float
    request: PollRequest


class ScriptedManager(http.server.ThreadingHTTPServer):
    """Hands out the jobs it was given, records what the worker sends; see the docstring."""

    daemon_threads = True

    def __init__(self, *, lease: float = 30.0) -> None:
        super().__init__(("127.0.0.1", 0), _PollHandler)
        self.lease = lease
        self.changed = threading.Condition()
        self.pending: collections.deque[Job] = collections.deque()
        #: While set, and before this monotonic time, a new job is made for each asked.
        self.stream_until: float | None = None
        self.stream_data: Any = None
        self.handed_out: list[str] = []
        self.polls: list[Poll] = []
        self.reports: list[ResultReport] = []
        self.to_abandon: list[str] = []
        #: The index in ``polls`` of the poll whose answer carried ``abandon``.
        self.abandon_answered: int | None = None
        self.stopping = False
        #: Bodies longer than this are refused with 413, and the limit is never told.
        self.refuse_over: int | None = None
        self.refused_sizes: list[int] = []
        self.accepted_sizes: list[int] = []
        #: How many polls, from now, are answered 429 (too many requests) instead.
        self.busy_polls = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def add(self, jobs: list[Job]) -> None:
        with self.changed:
            self.pending.extend(jobs)
            self.changed.notify_all()

    def stream(self, seconds: float, data: Any) -> None:
        """Hand out new jobs with ``data``, as many as asked, for ``seconds`` from now."""
        with self.changed:
            self.stream_until = time.monotonic() + seconds
            self.stream_data = data

    def abandon(self, job_id: str) -> None:
        """Tell the worker to abandon ``job_id`` in the next answer."""
        with self.changed:
            self.to_abandon.append(job_id)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait (up to ``timeout``) for ``predicate``, checked as polls arrive."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def reported(self) -> list[str]:
        with self.changed:
            return [report.id for report in self.reports]

    def capacities(self) -> list[int]:
        """What each poll that asked for jobs asked for, in order."""
        with self.changed:
            return [poll.request.capacity for poll in self.polls if poll.request.capacity > 0]

    def answer(self, request: PollRequest) -> PollResponse:
        with self.changed:
            self.polls.append(Poll(time.monotonic(), request))
            self.reports.extend(request.reports)
            self.stopping = self.stopping or request.stopping
            self.changed.notify_all()
            jobs = self._take(request.capacity)
            if request.capacity > 0 and not jobs:
                # A long poll: held until there is work, the worker stops, or its wait ends.
                self.changed.wait_for(lambda: bool(self.pending) or self.stopping, request.wait)
                jobs = self._take(request.capacity)
            abandon, self.to_abandon = self.to_abandon, []
            if abandon:
                self.abandon_answered = len(self.polls) - 1
        return PollResponse(
            jobs=[job_to_wire(job) for job in jobs], abandon=abandon, lease_seconds=self.lease
        )

    def _take(self, capacity: int) -> list[Job]:
        if self.stream_until is not None and time.monotonic() < self.stream_until:
            start = len(self.handed_out)
            self.pending.extend(
                make_job(f"stream-{n:06d}", self.stream_data)
                for n in range(start, start + capacity - len(self.pending))
            )
        jobs = [self.pending.popleft() for _ in range(min(capacity, len(self.pending)))]
        self.handed_out.extend(job.id for job in jobs)
        return jobs


class _PollHandler(http.server.BaseHTTPRequestHandler):
    server: ScriptedManager
    #: Keep-alive, as a real manager: the worker's client reuses its connections.
    protocol_version = "HTTP/1.1"
    #: The head and the body are two writes; with Nagle's algorithm on, each answer on a
    #: kept-alive connection would wait for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        raw = self.rfile.read(length)
        limit = self.server.refuse_over
        if limit is not None and length > limit:
            self.server.refused_sizes.append(length)
            self._send(413, b'{"error":{"code":"too_large","message":"too large"}}')
            return
        if self.server.busy_polls > 0:
            self.server.busy_polls -= 1
            self._send(429, b'{"error":{"code":"too_many_requests","message":"busy"}}')
            return
        self.server.accepted_sizes.append(length)
        request = msgspec.json.decode(raw, type=PollRequest)
        self._send(200, msgspec.json.encode(self.server.answer(request)))

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read the recorded polls, not the access log."""


@pytest.fixture
def managers() -> Iterator[Callable[..., ScriptedManager]]:
    """Start scripted managers (``lease`` as keyword); every one is shut down after."""
    started: list[ScriptedManager] = []

    def start(*, lease: float = 30.0) -> ScriptedManager:
        server = ScriptedManager(lease=lease)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def serving(worker: Worker, manager: ScriptedManager) -> Iterator[threading.Thread]:
    """Run ``worker`` against ``manager`` in a thread; stop it and wait for it after."""
    thread = threading.Thread(target=worker.start, args=(manager.url,), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        worker.stop()
        thread.join(15)
    assert not thread.is_alive(), "the worker did not stop"


class Recorder:
    """A task that records which jobs ran and how many ran at once.

    ``data`` is a number of seconds to sleep, or ``"gate"`` to block until
    :attr:`release` is set.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ran: list[str] = []
        self.active = 0
        self.most_at_once = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, job_id: str, data: Any) -> Any:
        with self.lock:
            self.ran.append(job_id)
            self.active += 1
            self.most_at_once = max(self.most_at_once, self.active)
        try:
            if data == "gate":
                self.started.set()
                self.release.wait(10)
            elif data:
                time.sleep(data)
            return job_id
        finally:
            with self.lock:
                self.active -= 1


def worker_with(recorder: Recorder, concurrency: int, **options: Any) -> Worker:
    worker = Worker(concurrency, **options)
    worker.register_job_handler(TASK, recorder)
    return worker


def run_all(
    manager: ScriptedManager, worker: Worker, jobs: list[Job], timeout: float = 10.0
) -> None:
    """Give the manager ``jobs``, run the worker until all are reported, stop it."""
    manager.add(jobs)
    with serving(worker, manager):
        assert manager.wait_until(lambda: len(manager.reports) >= len(jobs), timeout)
    # A set: the flush poll in flight as the worker stops is cut, and what it carried is
    # sent again (a report stays until a poll carrying it is answered; the manager fences
    # the second copy)
    assert set(manager.reported()) == {job.id for job in jobs}


# How much the worker asks for


def test_short_jobs_are_prefetched_beyond_the_free_slots(
    managers: Callable[..., ScriptedManager],
) -> None:
    # Given a worker of 2 slots and 300 jobs that return at once
    manager = managers()
    recorder = Recorder()
    jobs = [make_job(f"job-{n:03d}") for n in range(300)]
    # When it runs them
    run_all(manager, worker_with(recorder, 2), jobs)
    # Then its first poll asks for its 2 slots only (no run time known yet); once it
    # knows its jobs are short it asks for more, within the prefetch bound, while still
    # running no more than 2 at a time
    capacities = manager.capacities()
    assert capacities[0] == 2
    assert max(capacities) > 2, capacities
    assert max(capacities) <= 2 + PREFETCH_MAX
    assert recorder.most_at_once <= 2


def test_jobs_of_a_sixth_of_a_second_are_not_prefetched(
    managers: Callable[..., ScriptedManager],
) -> None:
    # Given jobs longer than the 0.1 s below which the worker prefetches
    manager = managers()
    recorder = Recorder()
    jobs = [make_job(f"job-{n}", 0.15) for n in range(6)]
    # When a worker of 2 slots runs them
    run_all(manager, worker_with(recorder, 2), jobs)
    # Then it never asks for more than its free slots: another worker may start them
    assert max(manager.capacities()) <= 2, manager.capacities()
    assert recorder.ran == [job.id for job in jobs]


@pytest.mark.parametrize("prefetch", [0, 5])
def test_prefetch_given_bounds_what_the_worker_asks_for(
    prefetch: int, managers: Callable[..., ScriptedManager]
) -> None:
    # Given short jobs, which the worker would prefetch far more of by itself
    manager = managers()
    recorder = Recorder()
    jobs = [make_job(f"job-{n:03d}") for n in range(100)]
    # When a worker of 2 slots told how many to prefetch runs them
    run_all(manager, worker_with(recorder, 2, prefetch=prefetch), jobs)
    # Then it asks for its free slots plus that many, never more
    capacities = manager.capacities()
    assert capacities[0] == 2 + prefetch
    assert max(capacities) == 2 + prefetch, capacities
    assert recorder.most_at_once <= 2


# Prefetched jobs: abandoned, or held when the worker stops


def test_prefetched_job_the_manager_abandons_is_never_run_nor_reported(
    managers: Callable[..., ScriptedManager],
) -> None:
    # Given a worker of 1 slot holding two more jobs: A runs (until released), B and C
    # wait for the slot; a short lease makes it renew every 0.2 s
    manager = managers(lease=0.6)
    recorder = Recorder()
    manager.add([make_job("A", "gate"), make_job("B"), make_job("C")])
    with serving(worker_with(recorder, 1, prefetch=2), manager):
        assert recorder.started.wait(10)
        # When the manager abandons B, which has not started
        manager.abandon("B")
        # Then the worker gives B's place up: it asks for one job again
        assert manager.wait_until(
            lambda: (
                manager.abandon_answered is not None
                and any(
                    poll.request.capacity > 0
                    for poll in manager.polls[manager.abandon_answered + 1 :]
                )
            )
        )
        recorder.release.set()
        assert manager.wait_until(lambda: len(manager.reports) >= 2)
    # ...and B never runs, is never reported, and its lease is no longer renewed
    assert recorder.ran == ["A", "C"]
    assert set(manager.reported()) == {"A", "C"}
    assert manager.abandon_answered is not None
    later = manager.polls[manager.abandon_answered + 1 :]
    assert not [poll for poll in later if any(ref.id == "B" for ref in poll.request.running)]


def test_stopping_worker_runs_and_reports_its_prefetched_jobs(
    managers: Callable[..., ScriptedManager], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="forerunner.worker.worker")
    # Given a worker of 1 slot running A (until released) and holding B, C and D
    manager = managers()
    recorder = Recorder()
    jobs = [make_job("A", "gate"), make_job("B"), make_job("C"), make_job("D")]
    manager.add(jobs)
    worker = worker_with(recorder, 1, prefetch=3, grace=10)
    with serving(worker, manager) as thread:
        assert recorder.started.wait(10)
        # When it is asked to stop while it holds all four
        worker.stop()
        assert wait_for_log(caplog, "stopping; 4 job(s) running")
        assert thread.is_alive()
        recorder.release.set()
        thread.join(15)
    # Then within its grace period it ran the held jobs too, and reported every one
    assert recorder.ran == ["A", "B", "C", "D"]
    assert set(manager.reported()) == {"A", "B", "C", "D"}
    assert {report.outcome for report in manager.reports} == {"succeeded"}
    # and it asked for no new work once stopping
    assert len(manager.handed_out) == 4


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in record.getMessage() for record in list(caplog.records)):
            return True
        time.sleep(0.01)
    return False


# Lease renewals


@pytest.mark.parametrize(
    ("lease", "seconds", "interval"),
    [(30.0, 2.5, 1.0), (0.6, 1.0, 0.2)],
    ids=["every-second", "every-third-of-a-short-lease"],
)
def test_polls_renew_leases_at_most_once_per_interval(
    lease: float, seconds: float, interval: float, managers: Callable[..., ScriptedManager]
) -> None:
    # Given a stream of 5 ms jobs for a few seconds, and a lease of ``lease`` seconds
    manager = managers(lease=lease)
    manager.stream(seconds, 0.005)
    recorder = Recorder()
    worker = worker_with(recorder, 4)
    began = time.monotonic()
    # When the worker runs them
    with serving(worker, manager):
        time.sleep(seconds)
        assert manager.wait_until(lambda: len(manager.reports) >= len(manager.handed_out))
    ran_for = time.monotonic() - began
    # Then polls are many, but those listing the running attempts (which renews their
    # leases, an UPDATE each in the store) come about once per interval: at most one per
    # interval for each of the worker's two polling loops, the fetcher and the flusher,
    # which may both be in flight when a renewal falls due (and one more as it stops)
    polls = manager.polls
    renewals = [poll for poll in polls if poll.request.running]
    due = int(ran_for / interval)
    assert len(polls) >= 25
    assert len(polls) >= 5 * len(renewals)
    assert len(renewals) >= min(3, due - 1), "leases must still be renewed"
    assert len(renewals) <= 2 * due + 1, f"{len(renewals)} renewals of {len(polls)} polls"
    # and a renewal lists attempts the worker was given
    handed_out = set(manager.handed_out)
    for poll in renewals:
        assert {(ref.id, ref.attempt) for ref in poll.request.running} <= {
            (job_id, 1) for job_id in handed_out
        }


# Refusing a negative prefetch


def test_negative_prefetch_is_refused() -> None:
    with pytest.raises(ValidationError, match="prefetch must be 0 or more") as raised:
        Worker(prefetch=-1)
    assert raised.value.field == "prefetch"
    assert Worker(prefetch=0).prefetch == 0


@pytest.mark.parametrize(("argv", "prefetch"), [([], None), (["--prefetch", "7"], 7)])
def test_prefetch_option_reaches_the_worker(
    argv: list[str], prefetch: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    given: list[int | None] = []
    monkeypatch.setattr(Worker, "start", lambda self, urls: given.append(self.prefetch))

    code = cli.main(["worker", "--tasks", "ping", "--manager", "http://127.0.0.1:9", *argv])

    assert (code, given) == (0, [prefetch])


def test_negative_prefetch_on_the_command_line_is_a_one_line_error() -> None:
    script = shutil.which("forerunner", path=str(Path(sys.executable).parent))
    assert script, f"the forerunner console script is not installed next to {sys.executable}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORERUNNER_")}

    done = subprocess.run(
        [
            script,
            "worker",
            "--tasks",
            "ping",
            "--manager",
            "http://127.0.0.1:9",
            "--prefetch",
            "-1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 2
    assert done.stderr.splitlines() == ["forerunner: error: prefetch must be 0 or more, got -1"]


# Who the worker is, and how much it sends


def test_every_poll_carries_the_workers_session_secret_and_each_worker_its_own(
    managers: Callable[..., ScriptedManager],
) -> None:
    one, other = managers(), managers()
    run_all(one, worker_with(Recorder(), 1), [make_job("a")])
    run_all(other, worker_with(Recorder(), 1), [make_job("b")])

    [first] = {poll.request.session for poll in one.polls}
    [second] = {poll.request.session for poll in other.polls}
    assert first is not None
    assert len(first) >= 32
    assert second is not None
    assert first != second


def test_a_manager_refusing_big_polls_without_saying_its_limit_gets_smaller_ones(
    managers: Callable[..., ScriptedManager],
) -> None:
    # Given a manager that refuses bodies over 4 KiB and never tells its limit
    manager = managers()
    manager.refuse_over = 4096
    # and 8 jobs whose 1,500-byte results all come back in the same loop turn
    started = 0
    gate: dict[str, asyncio.Event] = {}

    async def big(job_id: str, data: Any) -> str:
        nonlocal started
        event = gate.setdefault("open", asyncio.Event())
        started += 1
        if started == 8:
            event.set()
        await event.wait()
        return "x" * 1500

    worker = Worker(8)
    worker.register_job_handler(TASK, big)
    jobs = [make_job(f"job-{n}") for n in range(8)]
    manager.add(jobs)
    # When the worker runs them
    with serving(worker, manager):
        assert manager.wait_until(lambda: len(set(manager.reported())) >= 8, 15)
    # Then the poll carrying all 8 was refused, and later polls carried them in parts
    assert set(manager.reported()) == {job.id for job in jobs}
    assert manager.refused_sizes, "no poll was over the limit: the test proves nothing"
    assert max(manager.accepted_sizes) <= 4096


def test_a_manager_answering_too_many_requests_is_polled_again_and_the_worker_runs_on(
    managers: Callable[..., ScriptedManager],
) -> None:
    manager = managers()
    manager.busy_polls = 3
    jobs = [make_job(f"job-{n}") for n in range(4)]

    run_all(manager, worker_with(Recorder(), 2), jobs)

    assert manager.busy_polls == 0
