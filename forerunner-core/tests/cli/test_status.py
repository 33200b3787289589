"""``forerunner status`` and ``forerunner workers``: a manager at a glance.

``status`` shows jobs per type and state with the queue depth beside, the oldest
waiting job, the last hour's throughput and the manager's store and queue; ``workers``
one row per worker that polls. ``--json`` prints the endpoints' documents unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forerunner import __version__
from forerunner.model import JobState

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Ran

    from forerunner.client import Client
    from forerunner.manager import Manager
    from forerunner.worker import Worker


def test_status_shows_counts_queue_throughput_and_backends(
    forerunner: Callable[..., Ran], client: Client, manager: Manager, worker: Worker
) -> None:
    # Given two pings that ran, one failure, and three word counts no worker takes
    for n in range(2):
        client.wait(client.submit("ping", n).id, 30)
    assert client.wait(client.submit("fail", max_attempts=1).id, 30).state is JobState.FAILED
    waiting = [client.submit("word_count", {"text": "a"}) for _ in range(3)]

    # When the status is shown
    ran = forerunner("status")

    # Then every part is there, in rows that split on blanks
    assert ran.code == 0
    rows = {tuple(row[:1]): row for row in ran.rows if row}
    assert rows[("manager",)] == ["manager", manager.url, "(forerunner", f"{__version__})"]
    assert rows[("store",)] == ["store", "memory://"]
    assert rows[("queue",)] == ["queue", "memory://"]
    assert rows[("workers",)] == ["workers", "1", "connected"]
    header = ["TYPE", "SCHEDULED", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
    assert [*header, "TOTAL", "IN", "QUEUE"] in ran.rows
    assert ["ping", "0", "0", "0", "2", "0", "0", "2", "0"] in ran.rows
    assert ["fail", "0", "0", "0", "0", "1", "0", "1", "0"] in ran.rows
    assert ["word_count", "0", "3", "0", "0", "0", "0", "3", "3"] in ran.rows
    assert ["all", "0", "3", "0", "2", "1", "0", "6", "3"] in ran.rows
    assert f"queue: 3 waiting; oldest {waiting[0].id} (word_count) waits for " in ran.out
    assert rows[("submitted",)][:2] == ["submitted", "6"]
    assert rows[("succeeded",)][:2] == ["succeeded", "2"]
    assert rows[("failed",)][:2] == ["failed", "1"]
    assert "\x1b[" not in ran.out


def test_status_json_is_the_overview_document(
    forerunner: Callable[..., Ran], client: Client
) -> None:
    job = client.submit("ping")

    ran = forerunner("status", "--json")

    assert ran.code == 0
    assert ran.json["counts"] == [{"type": "ping", "state": "queued", "count": 1}]
    assert ran.json["queue_total"] == 1
    assert ran.json["oldest_waiting"]["id"] == job.id
    assert len(ran.json["throughput"]["submitted"]) == 60
    assert (ran.json["store"], ran.json["queue_url"], ran.json["read_only"]) == (
        "memory://",
        "memory://",
        False,
    )


def test_status_of_an_idle_manager(forerunner: Callable[..., Ran]) -> None:
    ran = forerunner("status")

    assert ran.code == 0
    assert "jobs: none" in ran.out
    assert "queue: 0 waiting\n" in ran.out


def test_workers_lists_each_polling_worker(
    forerunner: Callable[..., Ran], client: Client, worker: Worker
) -> None:
    client.wait(client.submit("ping").id, 30)

    ran = forerunner("workers")

    assert ran.code == 0
    assert ran.rows[0] == [
        "ID", "HOST", "PID", "TYPES", "CONCURRENCY", "FREE", "RUNNING", "LAST", "POLL", "STATE",
    ]  # fmt: skip
    [row] = ran.rows[1:]
    assert row[0] == worker.worker_id
    assert row[3] == "fail,ping"
    assert row[4] == "2"
    assert row[-1] == "polling"


def test_workers_json_is_the_workers_document(
    forerunner: Callable[..., Ran], client: Client, worker: Worker
) -> None:
    client.wait(client.submit("ping").id, 30)

    ran = forerunner("workers", "--json")

    assert ran.code == 0
    [seen] = ran.json["workers"]
    assert (seen["id"], sorted(seen["types"]), seen["concurrency"]) == (
        worker.worker_id,
        ["fail", "ping"],
        2,
    )
    assert seen["stopping"] is False


def test_workers_without_any_says_so(forerunner: Callable[..., Ran]) -> None:
    assert forerunner("workers").out == "no workers connected\n"
    assert forerunner("workers", "--json").json == {"workers": []}
