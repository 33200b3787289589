"""``Client`` and ``AsyncClient`` against a real manager: calls and error mapping.

Every HTTP error becomes the forerunner error of the same meaning with the server's
message: 404 -> JobNotFound, 409 -> InvalidTransition, 400/422 -> ValidationError with
the field, no answer -> BackendUnavailable. Also: idempotency keys, batch submit,
listing with a cursor, a wait that times out, the async twin of each call, and a client
with ``retry_for`` that waits for a manager that is not up yet.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from forerunner.client import AsyncClient, Client
from forerunner.errors import BackendUnavailable, InvalidTransition, JobNotFound, ValidationError
from forerunner.manager import Manager
from forerunner.model import JobState


def test_submit_then_get_returns_the_queued_job(client: Client) -> None:
    job = client.submit("ping", {"a": 1}, priority=5, max_attempts=2, timeout=3.0)

    fetched = client.get(job.id)

    assert fetched == job
    assert (job.type, job.data, job.state) == ("ping", {"a": 1}, JobState.QUEUED)
    assert (job.priority, job.max_attempts, job.timeout) == (5, 2, 3.0)


def test_submit_with_delay_is_scheduled(client: Client) -> None:
    job = client.submit("ping", delay=60)

    assert job.state is JobState.SCHEDULED
    assert job.run_at is not None


def test_submit_with_an_existing_key_returns_the_existing_job(client: Client) -> None:
    first = client.submit("ping", 1, key="only-once")
    second = client.submit("ping", 2, key="only-once")

    assert second.id == first.id
    assert second.data == 1


def test_submit_many_and_list_pages_newest_first(client: Client) -> None:
    jobs = client.submit_many([{"type": "ping", "data": n} for n in range(5)])

    first = client.list(limit=3)
    rest = client.list(limit=3, before=first.next)

    assert [job.id for job in first.jobs + rest.jobs] == [job.id for job in reversed(jobs)]
    assert first.next == first.jobs[-1].id
    assert rest.next is None


def test_list_filters_by_state_and_type(client: Client) -> None:
    ping = client.submit("ping")
    client.submit("other")
    cancelled = client.cancel(client.submit("ping").id)

    assert [j.id for j in client.list(type="ping", state="queued").jobs] == [ping.id]
    assert [j.id for j in client.list(state=JobState.CANCELLED).jobs] == [cancelled.id]


def test_wait_returns_the_job_unfinished_when_the_timeout_passes(client: Client) -> None:
    job = client.submit("nobody-runs-this")

    waited = client.wait(job.id, 0.1)

    assert waited.state is JobState.QUEUED


def test_unknown_id_raises_job_not_found(client: Client) -> None:
    with pytest.raises(JobNotFound, match="no-such-job"):
        client.get("no-such-job")
    with pytest.raises(JobNotFound):
        client.cancel("no-such-job")


def test_cancel_of_a_terminal_job_raises_invalid_transition(client: Client) -> None:
    job = client.cancel(client.submit("ping").id)
    assert job.state is JobState.CANCELLED

    with pytest.raises(InvalidTransition):
        client.cancel(job.id)


def test_retry_of_a_queued_job_raises_invalid_transition(client: Client) -> None:
    job = client.submit("ping")

    with pytest.raises(InvalidTransition):
        client.retry(job.id)


def test_retry_of_a_cancelled_job_queues_it_again(client: Client) -> None:
    job = client.cancel(client.submit("ping").id)

    assert client.retry(job.id).state is JobState.QUEUED


def test_invalid_submission_raises_validation_error_naming_the_field(client: Client) -> None:
    with pytest.raises(ValidationError) as raised:
        client.submit("ping", max_attempts=0)

    assert raised.value.field is not None
    assert "max_attempts" in raised.value.field
    assert client.list().jobs == []


def test_invalid_batch_entry_is_refused_before_sending(client: Client) -> None:
    with pytest.raises(ValidationError, match="priority"):
        client.submit_many([{"type": "ping", "priority": "high"}])


def test_manager_not_answering_raises_backend_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        Client(f"http://127.0.0.1:{port}", timeout=2) as client,
        pytest.raises(BackendUnavailable, match=str(port)),
    ):
        client.get("any")


def test_a_retrying_client_gets_through_once_the_manager_answers() -> None:
    # Given a port where the manager is not listening yet, but will be soon
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late = Manager("memory://", "memory://", port=port)
    starter = threading.Timer(0.3, late.start)
    starter.start()
    try:
        # When a client that retries for a while submits a job
        with Client(f"http://127.0.0.1:{port}", retry_for=30.0) as client:
            job = client.submit("ping", {"late": True})
            # Then the submit got through, once
            assert client.list().jobs == [job]
    finally:
        starter.join()
        late.stop()


def test_async_client_mirrors_the_sync_client(manager: Manager) -> None:
    async def scenario() -> None:
        async with AsyncClient(manager.url) as client:
            job = await client.submit("ping", {"x": 1}, key="k")
            assert (await client.get(job.id)) == job
            [other] = await client.submit_many([{"type": "ping"}])
            page = await client.list(type="ping")
            assert [j.id for j in page.jobs] == [other.id, job.id]
            assert (await client.cancel(job.id)).state is JobState.CANCELLED
            assert (await client.retry(job.id)).state is JobState.QUEUED
            assert (await client.wait(other.id, 0.05)).state is JobState.QUEUED
            with pytest.raises(JobNotFound):
                await client.get("missing")

    asyncio.run(scenario())
