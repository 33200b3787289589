"""A stopping worker and its open long poll, against a scripted manager.

A real manager cannot be made to hand out a job at the exact instant a worker stops,
so this manager is a small HTTP server that does it on purpose: it holds the worker's
long poll open until the worker says it is stopping, then answers it with a job it has
"just claimed". A worker that cut its long poll would never see that job, which would
then wait out its lease; ours must run it and report it before it exits.
"""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from forerunner.model import Job, JobState
from forerunner.wire import PollRequest, PollResponse, ResultReport, job_to_wire
from forerunner.worker import Worker

if TYPE_CHECKING:
    from collections.abc import Iterator


class ScriptedManager(http.server.ThreadingHTTPServer):
    """Answers ``/v1/workers/poll`` as the script in the module docstring says."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PollHandler)
        self.long_poll_open = threading.Event()
        self.stopping = threading.Event()
        self.reports: list[ResultReport] = []
        self.handed_out = False
        self.lock = threading.Lock()
        now = dt.datetime.now(dt.UTC)
        self.job = Job(
            id="job-claimed-at-the-last-moment",
            type="echo",
            data={"hello": "world"},
            state=JobState.RUNNING,
            attempt=1,
            created_at=now,
            started_at=now,
            worker="scripted",
            lease_until=now + dt.timedelta(seconds=30),
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, request: PollRequest) -> PollResponse:
        with self.lock:
            self.reports.extend(request.reports)
        if request.stopping:
            self.stopping.set()
        jobs = []
        if request.capacity > 0 and not self.handed_out:
            self.long_poll_open.set()
            # The long poll stays open until the worker says it is stopping: then the
            # manager has, in that same instant, claimed a job for it.
            if self.stopping.wait(30):
                self.handed_out = True
                jobs = [job_to_wire(self.job)]
        return PollResponse(jobs=jobs, abandon=[], lease_seconds=30.0)


class _PollHandler(http.server.BaseHTTPRequestHandler):
    server: ScriptedManager

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        request = msgspec.json.decode(self.rfile.read(length), type=PollRequest)
        body = msgspec.json.encode(self.server.answer(request))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads the reports, not the access log."""


@pytest.fixture
def scripted() -> Iterator[ScriptedManager]:
    server = ScriptedManager()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_job_handed_out_as_the_worker_stops_is_run_and_reported(
    scripted: ScriptedManager,
) -> None:
    # Given a worker whose long poll is open
    worker = Worker(1, grace=10)
    worker.register_job_handler("echo", lambda job_id, data: data)
    thread = threading.Thread(target=worker.start, args=(scripted.url,), daemon=True)
    thread.start()
    assert scripted.long_poll_open.wait(10)

    # When it stops, and the manager answers that poll with a job it just claimed
    worker.stop()
    thread.join(15)

    # Then the worker told the manager it was stopping, ran the job and reported it
    assert not thread.is_alive()
    assert scripted.stopping.is_set()
    assert [(r.id, r.attempt, r.outcome, r.result) for r in scripted.reports] == [
        (scripted.job.id, 1, "succeeded", {"hello": "world"})
    ]
