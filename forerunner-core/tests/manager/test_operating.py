"""The operator's endpoints: overview, workers, timeline, search, bulk retry, purge, read-only.

Over real HTTP on 127.0.0.1 against a manager on a sqlite store; the workers endpoint
is fed by a real :class:`~forerunner.worker.Worker` in a thread.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from forerunner.model import JobError, JobState, Report
from forerunner.worker import Worker

if TYPE_CHECKING:
    from collections.abc import Callable

    from forerunner.manager import Manager


def submit(http: httpx.Client, **spec: Any) -> dict[str, Any]:
    response = http.post("/v1/jobs", json={"type": "ping", **spec})
    assert response.status_code in (200, 201), response.text
    job: dict[str, Any] = response.json()["job"]
    return job


def fail_job(manager: Manager, job_id: str) -> None:
    """Run the job's one attempt to failure through the store, as a worker's report would."""
    now = dt.datetime.now(dt.UTC)
    [claimed] = manager.store.claim([job_id], "w-test", now, now + dt.timedelta(seconds=30))
    manager.queue.remove([job_id])
    report = Report(
        job_id=job_id,
        attempt=claimed.attempt,
        state=JobState.FAILED,
        now=now,
        error=JobError(type="ValueError", message="bad input"),
    )
    assert manager.store.finish([report])[0] is not None


def test_overview_counts_queue_depth_oldest_waiting_and_throughput(
    http: httpx.Client, manager: Manager
) -> None:
    # Given two queued pings and one failed report
    first = submit(http)
    submit(http)
    failed = submit(http, type="report", max_attempts=1)
    fail_job(manager, failed["id"])

    overview = http.get("/v1/overview").json()

    counts = {(c["type"], c["state"]): c["count"] for c in overview["counts"]}
    assert counts == {("ping", "queued"): 2, ("report", "failed"): 1}
    assert {q["type"]: q["depth"] for q in overview["queue"]} == {"ping": 2, "report": 0}
    assert overview["queue_total"] == 2
    assert overview["oldest_waiting"]["id"] == first["id"]
    assert overview["oldest_waiting"]["age_seconds"] >= 0
    throughput = overview["throughput"]
    assert throughput["bucket_seconds"] == 60
    assert len(throughput["submitted"]) == len(throughput["failed"]) == 60
    assert throughput["submitted"][-1] == 3
    assert overview["read_only"] is False
    assert overview["store"].startswith("sqlite:///")
    assert overview["workers"] == 0


def test_list_finds_jobs_by_part_of_their_id_or_key(http: httpx.Client) -> None:
    wanted = submit(http, key="invoice-2026-0042")
    other = submit(http, key="invoice-2026-0043")
    submit(http)

    by_key = http.get("/v1/jobs", params={"text": "0042"}).json()["jobs"]
    by_id = http.get("/v1/jobs", params={"text": other["id"][-8:]}).json()["jobs"]
    both = http.get("/v1/jobs", params={"text": "invoice-", "state": "queued"}).json()["jobs"]

    assert [job["id"] for job in by_key] == [wanted["id"]]
    assert [job["id"] for job in by_id] == [other["id"]]
    assert [job["id"] for job in both] == [other["id"], wanted["id"]]


def test_timeline_shows_each_step_of_a_jobs_life(http: httpx.Client, manager: Manager) -> None:
    job = submit(http, max_attempts=1)
    response = http.post(
        "/v1/workers/poll", json={"worker": "w1", "types": ["ping"], "capacity": 1}
    )
    assert response.json()["jobs"][0]["id"] == job["id"]
    http.post(
        "/v1/workers/poll",
        json={
            "worker": "w1",
            "reports": [
                {
                    "id": job["id"],
                    "attempt": 1,
                    "outcome": "failed",
                    "error": {"type": "KeyError", "message": "'x'"},
                }
            ],
        },
    )
    assert http.post(f"/v1/jobs/{job['id']}/retry").status_code == 200

    timeline = http.get(f"/v1/jobs/{job['id']}/timeline").json()

    steps = [(event["event"], event["attempt"]) for event in timeline["events"]]
    assert steps == [("submitted", 0), ("started", 1), ("failed", 1), ("retried by hand", 1)]
    failure = timeline["events"][2]
    assert (failure["worker"], failure["detail"]) == ("w1", "KeyError: 'x'")
    assert timeline["job"]["state"] == "queued"
    assert http.get("/v1/jobs/nope/timeline").status_code == 404


def test_timeline_of_a_job_this_manager_never_saw_comes_from_its_record(
    start_manager: Callable[..., Manager],
) -> None:
    # Given a job that failed under an earlier manager
    first = start_manager()
    job = first.assign_job("ping", None, max_attempts=1)
    fail_job(first, job.id)
    first.stop()
    # When a new manager on the same store shows its timeline
    second = start_manager()
    timeline = httpx.get(f"{second.url}/v1/jobs/{job.id}/timeline").json()
    # Then the steps come from the stored times
    steps = [(event["event"], event["attempt"]) for event in timeline["events"]]
    assert steps == [("submitted", 0), ("started", 1), ("failed", 1)]
    assert timeline["events"][2]["detail"] == "ValueError: bad input"


def test_bulk_retry_queues_failed_jobs_of_one_type(http: httpx.Client, manager: Manager) -> None:
    reports = [submit(http, type="report", max_attempts=1) for _ in range(3)]
    ping = submit(http, max_attempts=1)
    for job in [*reports, ping]:
        fail_job(manager, job["id"])

    answer = http.post("/v1/jobs/retry", json={"type": "report", "limit": 2})

    assert answer.status_code == 200
    assert answer.json()["retried"] == 2
    assert answer.json()["ids"] == [reports[2]["id"], reports[1]["id"]]
    states = {
        job["id"]: http.get(f"/v1/jobs/{job['id']}").json()["job"]["state"]
        for job in [*reports, ping]
    }
    assert states == {
        reports[0]["id"]: "failed",
        reports[1]["id"]: "queued",
        reports[2]["id"]: "queued",
        ping["id"]: "failed",
    }
    assert manager.queue.size(["report"]) == 2
    rest = http.post("/v1/jobs/retry", json={}).json()
    assert sorted(rest["ids"]) == sorted([reports[0]["id"], ping["id"]])


def test_purge_deletes_only_jobs_finished_long_enough_ago(
    http: httpx.Client, manager: Manager
) -> None:
    old = submit(http, max_attempts=1)
    fail_job(manager, old["id"])
    waiting = submit(http)

    kept = http.post("/v1/jobs/purge", json={"older_than": 3600}).json()
    purged = http.post("/v1/jobs/purge", json={"older_than": 0}).json()

    assert (kept["purged"], purged["purged"]) == (0, 1)
    assert http.get(f"/v1/jobs/{old['id']}").status_code == 404
    assert http.get(f"/v1/jobs/{waiting['id']}").json()["job"]["state"] == "queued"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/jobs/retry", {"state": "succeeded"}),
        ("/v1/jobs/retry", {"limit": 0}),
        ("/v1/jobs/retry", {"limit": 10_001}),
        ("/v1/jobs/retry", {"typo": "x"}),
        ("/v1/jobs/purge", {}),
        ("/v1/jobs/purge", {"older_than": -1}),
        ("/v1/jobs/purge", {"older_than": "7d"}),
    ],
)
def test_bad_bulk_requests_are_refused_and_change_nothing(
    http: httpx.Client, manager: Manager, path: str, body: dict[str, Any]
) -> None:
    job = submit(http, max_attempts=1)
    fail_job(manager, job["id"])

    answer = http.post(path, json=body)

    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "validation_error"
    assert http.get(f"/v1/jobs/{job['id']}").json()["job"]["state"] == "failed"


def test_read_only_manager_refuses_every_change_but_submissions(
    start_manager: Callable[..., Manager],
) -> None:
    manager = start_manager(read_only=True)
    with httpx.Client(base_url=manager.url) as http:
        job = submit(http, max_attempts=1)
        fail_job(manager, job["id"])
        refused = [
            http.post(f"/v1/jobs/{job['id']}/cancel"),
            http.post(f"/v1/jobs/{job['id']}/retry"),
            http.post("/v1/jobs/retry", json={}),
            http.post("/v1/jobs/purge", json={"older_than": 0}),
        ]
        overview = http.get("/v1/overview").json()
        state = http.get(f"/v1/jobs/{job['id']}").json()["job"]["state"]

    assert [answer.status_code for answer in refused] == [403] * 4
    assert {answer.json()["error"]["code"] for answer in refused} == {"read_only"}
    assert "--read-only" in refused[0].json()["error"]["message"]
    assert overview["read_only"] is True
    assert state == "failed"


def test_workers_lists_each_polling_worker_with_what_it_runs(
    http: httpx.Client, manager: Manager
) -> None:
    started = threading.Event()
    release = threading.Event()

    def slow(job_id: str, data: Any) -> str:
        started.set()
        release.wait(30)
        return "done"

    worker = Worker(concurrency=3, worker_id="w-slow")
    worker.register_job_handler("slow", slow)
    thread = threading.Thread(target=worker.start, args=(manager.url,), daemon=True)
    thread.start()
    try:
        job = submit(http, type="slow")
        assert started.wait(30)
        deadline = time.monotonic() + 30
        while True:
            [seen] = http.get("/v1/workers").json()["workers"]
            if seen["running"] == [job["id"]] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        release.set()
        worker.stop()
        thread.join(30)

    assert seen["id"] == "w-slow"
    assert seen["types"] == ["slow"]
    assert seen["running"] == [job["id"]]
    assert (seen["host"], seen["pid"], seen["concurrency"]) == (
        socket.gethostname(),
        os.getpid(),
        3,
    )
    assert seen["seconds_since"] < 30
    assert http.get("/v1/overview").json()["workers"] == 1


def test_a_worker_silent_for_a_lease_is_no_longer_listed(
    start_manager: Callable[..., Manager],
) -> None:
    manager = start_manager(lease=0.5)
    with httpx.Client(base_url=manager.url) as http:
        http.post("/v1/workers/poll", json={"worker": "gone", "types": ["ping"]})
        listed = [w["id"] for w in http.get("/v1/workers").json()["workers"]]
        time.sleep(0.6)
        later = http.get("/v1/workers").json()["workers"]

    assert listed == ["gone"]
    assert later == []


def test_the_openapi_document_describes_the_operator_endpoints(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]

    for path in (
        "/v1/overview",
        "/v1/workers",
        "/v1/jobs/{job_id}/timeline",
        "/v1/jobs/retry",
        "/v1/jobs/purge",
    ):
        assert path in paths
    assert "text" in {p["name"] for p in paths["/v1/jobs"]["get"]["parameters"]}


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
def test_a_change_sent_by_another_sites_page_is_refused(
    http: httpx.Client, manager: Manager, headers: dict[str, str]
) -> None:
    job = submit(http, max_attempts=1)
    fail_job(manager, job["id"])

    answers = [
        http.post("/v1/jobs/purge", json={"older_than": 0}, headers=headers),
        http.post(f"/v1/jobs/{job['id']}/retry", headers=headers),
        http.post("/v1/jobs", json={"type": "ping"}, headers=headers),
    ]

    assert [answer.status_code for answer in answers] == [403] * 3
    assert {answer.json()["error"]["code"] for answer in answers} == {"cross_origin"}
    assert http.get(f"/v1/jobs/{job['id']}").json()["job"]["state"] == "failed"
    assert len(http.get("/v1/jobs").json()["jobs"]) == 1


def test_a_change_from_the_managers_own_page_is_accepted(
    http: httpx.Client, manager: Manager
) -> None:
    job = submit(http, max_attempts=1)
    fail_job(manager, job["id"])
    own = manager.url.partition("://")[2]

    by_fetch_metadata = http.post(
        f"/v1/jobs/{job['id']}/retry", headers={"Sec-Fetch-Site": "same-origin"}
    )
    by_origin = http.post(f"/v1/jobs/{job['id']}/cancel", headers={"Origin": f"http://{own}"})

    assert (by_fetch_metadata.status_code, by_origin.status_code) == (200, 200)
