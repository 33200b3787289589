"""The poll's JSON bodies, both ways: the manager decodes reports and encodes new jobs.

Every poll of every worker goes through these three, so their cost per job is paid once
per job on each side whatever the backends are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import pytest

from forerunner.wire import (
    PollRequest,
    PollResponse,
    ResultReport,
    job_from_wire,
    job_to_wire,
)

if TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

    from forerunner.model import Job

pytestmark = pytest.mark.benchmark(group="wire")

_encode = msgspec.json.Encoder().encode
_decode_response = msgspec.json.Decoder(PollResponse).decode


def test_decode_poll_request_64_reports(
    benchmark: BenchmarkFixture, running_jobs: list[Job]
) -> None:
    """Manager, on receiving a poll: a worker hands back 64 finished attempts.

    ``POST /v1/workers/poll`` decodes and validates its body in one msgspec pass
    (``msgspec.json.decode(raw, type=PollRequest)``, as the app does) before any report
    reaches the store; for short jobs the reports are most of what a manager receives.
    """
    request = PollRequest(
        worker="micro-worker",
        types=["micro.noop"],
        capacity=64,
        reports=[
            ResultReport(id=job.id, attempt=job.attempt, outcome="succeeded", result={"ok": n})
            for n, job in enumerate(running_jobs)
        ],
    )
    raw = _encode(request)

    decoded = benchmark(msgspec.json.decode, raw, type=PollRequest)

    assert len(decoded.reports) == 64


def test_encode_poll_response_64_jobs(benchmark: BenchmarkFixture, running_jobs: list[Job]) -> None:
    """Manager, answering a poll: 64 claimed jobs turned into the JSON a worker reads.

    ``job_to_wire`` per job, then one encode of the ``PollResponse``: what the app's
    poll handler does with every batch the store claimed.
    """

    def encode() -> bytes:
        body = PollResponse(
            jobs=[job_to_wire(job) for job in running_jobs], abandon=[], lease_seconds=30.0
        )
        return _encode(body)

    raw = benchmark(encode)

    assert len(_decode_response(raw).jobs) == 64


def test_decode_poll_response_64_jobs(benchmark: BenchmarkFixture, running_jobs: list[Job]) -> None:
    """Worker, on the poll's answer: 64 jobs decoded and turned into model records.

    The worker decodes the ``PollResponse`` and builds a :class:`~forerunner.model.Job`
    with ``job_from_wire`` for each before it can start any of them.
    """
    raw = _encode(
        PollResponse(jobs=[job_to_wire(job) for job in running_jobs], abandon=[], lease_seconds=30)
    )

    def decode() -> list[Job]:
        return [job_from_wire(body) for body in _decode_response(raw).jobs]

    jobs = benchmark(decode)

    assert jobs == running_jobs
