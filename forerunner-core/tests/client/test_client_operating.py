"""The client's operator calls against a real manager: overview, workers, timeline,
bulk retry, purge, batch submit with ``created`` flags and listing by text.

Each answers with the wire Struct of docs/http-api.md (or a record holding a model
Job); a read-only manager's refusal is a ConfigurationError; a retry of a state other
than failed or cancelled is refused before anything is sent. The async twin of each
call answers the same.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING

import pytest

from forerunner.client import AsyncClient, Client, JobTimeline, Submitted
from forerunner.errors import ConfigurationError, JobNotFound, ValidationError
from forerunner.manager import Manager
from forerunner.model import JobState
from forerunner.wire import BulkRetryResponse, Overview, StateCount

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def read_only() -> Iterator[Manager]:
    running = Manager("memory://", "memory://", port=0, read_only=True).start()
    yield running
    running.stop()


def test_overview_counts_jobs_per_type_and_state(client: Client) -> None:
    client.submit("ping")
    client.cancel(client.submit("ping").id)
    client.submit("word_count", delay=600)

    overview = client.overview()

    assert isinstance(overview, Overview)
    assert sorted(overview.counts, key=lambda item: (item.type, item.state)) == [
        StateCount(type="ping", state=JobState.CANCELLED, count=1),
        StateCount(type="ping", state=JobState.QUEUED, count=1),
        StateCount(type="word_count", state=JobState.SCHEDULED, count=1),
    ]
    assert overview.queue_total == 1
    assert sum(overview.throughput.submitted) == 3
    assert overview.workers == 0


def test_workers_is_empty_until_a_worker_polls(client: Client) -> None:
    assert client.workers() == []


def test_timeline_has_the_job_and_its_events_oldest_first(client: Client) -> None:
    job = client.cancel(client.submit("ping").id)

    timeline = client.timeline(job.id)

    assert isinstance(timeline, JobTimeline)
    assert timeline.job == job
    assert [event.event for event in timeline.events] == ["submitted", "cancelled"]
    assert timeline.events[0].at <= timeline.events[1].at


def test_timeline_of_an_unknown_job_is_job_not_found(client: Client) -> None:
    with pytest.raises(JobNotFound):
        client.timeline("no-such-job")


def test_list_by_text_keeps_jobs_whose_id_or_key_contains_it(client: Client) -> None:
    keyed = client.submit("ping", key="invoice-42")
    other = client.submit("ping")

    assert [job.id for job in client.list(text="invoice-").jobs] == [keyed.id]
    assert [job.id for job in client.list(text=other.id[-12:]).jobs] == [other.id]


def test_submit_batch_says_which_jobs_it_created(client: Client) -> None:
    existing = client.submit("ping", key="once")

    submitted = client.submit_batch([{"type": "ping", "key": "once"}, {"type": "ping"}])

    assert [item.created for item in submitted] == [False, True]
    assert submitted[0] == Submitted(job=existing, created=False)


def test_retry_many_retries_cancelled_jobs_of_a_type(client: Client) -> None:
    pings = [client.cancel(client.submit("ping").id) for _ in range(2)]
    other = client.cancel(client.submit("word_count").id)

    answer = client.retry_many(state="cancelled", type="ping", limit=10)

    assert isinstance(answer, BulkRetryResponse)
    assert answer.retried == 2
    assert sorted(answer.ids) == sorted(job.id for job in pings)
    assert client.get(pings[0].id).state is JobState.QUEUED
    assert client.get(other.id).state is JobState.CANCELLED


def test_retry_many_of_a_state_that_cannot_be_retried_is_refused(client: Client) -> None:
    with pytest.raises(ValidationError, match="only failed or cancelled jobs"):
        client.retry_many(state=JobState.QUEUED)


def test_purge_deletes_finished_jobs_older_than_given(client: Client) -> None:
    ended = client.cancel(client.submit("ping").id)
    waiting = client.submit("ping")

    assert client.purge(older_than=3600) == 0
    assert client.purge(older_than=dt.timedelta(0)) == 1

    assert [job.id for job in client.list().jobs] == [waiting.id]
    with pytest.raises(JobNotFound):
        client.get(ended.id)


def test_read_only_manager_refusal_is_a_configuration_error(
    read_only: Manager, manager: Manager
) -> None:
    with Client(read_only.url) as client:
        job = client.submit("ping")
        with pytest.raises(ConfigurationError):
            client.cancel(job.id)
        with pytest.raises(ConfigurationError):
            client.purge(older_than=0)
        assert client.get(job.id).state is JobState.QUEUED


def test_async_client_has_the_same_operator_calls(manager: Manager) -> None:
    async def scenario() -> None:
        async with AsyncClient(manager.url) as client:
            [made] = await client.submit_batch([{"type": "ping"}])
            await client.cancel(made.job.id)
            overview = await client.overview()
            timeline = await client.timeline(made.job.id)
            retried = await client.retry_many(state="cancelled")
            listed = await client.list(text=made.job.id)
            workers = await client.workers()
            await client.cancel(made.job.id)
            purged = await client.purge(older_than=0)

        assert made.created
        assert overview.counts == [StateCount(type="ping", state=JobState.CANCELLED, count=1)]
        assert [event.event for event in timeline.events] == ["submitted", "cancelled"]
        assert retried.ids == [made.job.id]
        assert [job.id for job in listed.jobs] == [made.job.id]
        assert workers == []
        assert purged == 1

    asyncio.run(scenario())
