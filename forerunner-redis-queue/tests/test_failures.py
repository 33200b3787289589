"""When Redis is not there: the error callers see, and how the system recovers.

A queue that cannot reach Redis raises ``BackendUnavailable`` naming the URL, password
masked, with the driver's error as the cause; the manager answers such requests with
503. When Redis comes back, even empty, the queue works again without being reopened,
and the manager's rebuild puts every queued job of the store back into it.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

import httpx
import pytest
import redis

from forerunner.errors import BackendUnavailable
from forerunner.manager import Manager
from forerunner.model import JobState, QueueEntry
from forerunner_redis_queue import open_redis_queue

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import RedisServer

    from forerunner_redis_queue import RedisQueue

#: How long the manager's reaper (a step every 0.5 s) may take to rebuild the queue.
EVENTUALLY = 30.0


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + EVENTUALLY
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {EVENTUALLY} s: {what}", pytrace=False)
        time.sleep(0.05)


@pytest.mark.parametrize(
    "call",
    [
        lambda q: q.push([QueueEntry(job_id="j", type="alpha")]),
        lambda q: q.pop(["alpha"], 1, 5.0),
        lambda q: q.size(),
        lambda q: q.remove(["j"]),
        lambda q: q.clear(),
    ],
    ids=["push", "pop", "size", "remove", "clear"],
)
def test_a_server_that_does_not_answer_raises_backend_unavailable_naming_the_url(
    call: Callable[[RedisQueue], object],
) -> None:
    port = closed_port()
    queue = open_redis_queue(f"redis://app:s3cret@127.0.0.1:{port}/0?prefix=down")

    with pytest.raises(BackendUnavailable) as raised:
        call(queue)
    queue.close()

    message = raised.value.message
    assert f"redis://app:***@127.0.0.1:{port}/0?prefix=down" in message
    assert "s3cret" not in message
    assert "Connection refused" in message
    assert isinstance(raised.value.__cause__, redis.ConnectionError)


def test_a_cluster_that_does_not_answer_raises_backend_unavailable_on_first_use() -> None:
    port = closed_port()
    queue = open_redis_queue(f"redis+cluster://127.0.0.1:{port}?prefix=down")

    with pytest.raises(BackendUnavailable, match=f"redis\\+cluster://127.0.0.1:{port}"):
        queue.size()
    queue.close()


def test_the_queue_works_again_once_redis_is_back_without_reopening(
    start_redis: Callable[..., RedisServer], open_queue: Callable[[str], RedisQueue]
) -> None:
    # Given a queue in use (its connections pooled, a blocked pop's too), whose server stops
    server = start_redis()
    queue = open_queue(f"{server.url}?prefix=restart")
    assert queue.pop(["alpha"], 1, 0.1) == []
    queue.push([QueueEntry(job_id="before", type="alpha")])
    server.stop()
    with pytest.raises(BackendUnavailable):
        queue.size()

    # When the server starts again, empty, on the same port
    server.start()

    # Then the same queue object answers, and what it held is gone with the old server
    assert queue.size() == 0
    assert queue.pop(["alpha"], 1, 0.1) == []
    after = QueueEntry(job_id="after", type="alpha")
    queue.push([after])
    assert queue.pop(["alpha"], 10, 0.0) == [after]


def test_the_manager_answers_503_while_redis_is_down_and_rebuilds_the_queue_after(
    start_redis: Callable[..., RedisServer], tmp_path: Path
) -> None:
    # Given a manager on a sqlite store and a Redis queue, with jobs submitted
    server = start_redis()
    queue_url = f"{server.url}?prefix=manager"
    manager = Manager(f"sqlite:///{tmp_path / 'jobs.db'}", queue_url, port=0).start()
    try:
        with httpx.Client(base_url=manager.url, timeout=30.0) as http:
            submitted = [
                http.post("/v1/jobs", json={"type": "ping", "data": {"n": n}}).json()["job"]["id"]
                for n in range(5)
            ]
            assert manager.queue.size() == 5

            # When Redis stops: polling answers 503, naming the queue
            server.stop()
            polled = http.post(
                "/v1/workers/poll", json={"worker": "w1", "types": ["ping"], "capacity": 1}
            )
            assert polled.status_code == 503
            assert polled.json()["error"]["code"] == "unavailable"
            assert server.url in polled.json()["error"]["message"]
            # while a submission is stored and accepted (the store is the truth), since
            # answering 503 for a stored job would make a retrying client submit it twice
            accepted = http.post("/v1/jobs", json={"type": "ping", "data": {"n": 5}})
            assert accepted.status_code == 201

            # and when it comes back empty
            server.start()

            # Then the reaper rebuilds the queue with every queued job of the store
            queued = {job.id for job in manager.store.list(state=JobState.QUEUED, limit=100)}
            assert queued == {*submitted, accepted.json()["job"]["id"]}
            eventually(lambda: manager.queue.size() == len(queued), "the queue was rebuilt")
            popped = manager.queue.pop(["ping"], 100, 0.0)
            assert {entry.job_id for entry in popped} == queued
    finally:
        manager.stop()
