"""``Events.listen_batches``: one call per dispatched batch, ahead of the per-job listeners."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from forerunner.manager.events import Events
from forerunner.model import Job

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pytest


def jobs(count: int) -> list[Job]:
    return [Job(id=f"job-{n}", type="ping") for n in range(count)]


def test_a_batch_listener_gets_each_batch_whole_before_the_per_job_listeners() -> None:
    events = Events()
    calls: list[tuple[str, object]] = []
    events.listen_batches(lambda event, batch: calls.append((event, [j.id for j in batch])))
    events.listen(lambda event, job: calls.append((event, job.id)))

    events.emit_all("staged", jobs(3))

    assert calls == [
        ("staged", ["job-0", "job-1", "job-2"]),
        ("staged", "job-0"),
        ("staged", "job-1"),
        ("staged", "job-2"),
    ]


def test_an_empty_batch_calls_no_one_and_stop_unsubscribes() -> None:
    events = Events()
    batches: list[int] = []
    stop = events.listen_batches(lambda event, batch: batches.append(len(batch)))

    events.emit_all("created", [])
    events.emit("created", jobs(1)[0])
    stop()
    events.emit("created", jobs(1)[0])

    assert batches == [1]


def test_a_batch_listener_that_raises_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = Events()
    seen: list[int] = []

    def broken(event: str, batch: Sequence[Job]) -> None:
        raise RuntimeError("listener bug")

    events.listen_batches(broken)
    events.listen_batches(lambda event, batch: seen.append(len(batch)))

    with caplog.at_level(logging.ERROR, logger="forerunner.manager.events"):
        events.emit_all("succeeded", jobs(2))

    assert seen == [2]
    assert "listener bug" in caplog.text
