"""The manager's HTTP API, over real HTTP on 127.0.0.1 with a sqlite store.

Covers every ``/v1`` endpoint, the worker poll (hand-out, fencing, lease expiry), the
queue rebuild, two managers sharing a store, bad input, and the service endpoints.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from forerunner.hookspecs import hookimpl
from forerunner.plugins import PluginInfo, Registry

if TYPE_CHECKING:
    from collections.abc import Callable

    from forerunner.manager import Manager
    from forerunner.model import Job


def submit(http: httpx.Client, **spec: Any) -> dict[str, Any]:
    response = http.post("/v1/jobs", json={"type": "ping", **spec})
    assert response.status_code in (200, 201), response.text
    job: dict[str, Any] = response.json()["job"]
    return job


def poll(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = http.post("/v1/workers/poll", json={"worker": "w1", **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_submit_then_get(http: httpx.Client) -> None:
    response = http.post("/v1/jobs", json={"type": "ping", "data": {"foo": "bar"}, "priority": 5})

    assert response.status_code == 201
    assert response.json()["created"] is True
    job = response.json()["job"]
    assert (job["state"], job["data"], job["priority"]) == ("queued", {"foo": "bar"}, 5)
    assert http.get(f"/v1/jobs/{job['id']}").json()["job"] == job


def test_idempotency_key_returns_the_existing_job(http: httpx.Client) -> None:
    first = http.post("/v1/jobs", json={"type": "ping", "key": "once"})
    again = http.post("/v1/jobs", json={"type": "ping", "key": "once", "data": 1})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {"job": first.json()["job"], "created": False}


def test_batch_submit(http: httpx.Client) -> None:
    specs = [{"type": "ping", "data": n} for n in range(3)] + [{"type": "ping", "key": "k"}] * 2

    response = http.post("/v1/jobs/batch", json={"jobs": specs})

    assert response.status_code == 200
    body = response.json()
    assert body["created"] == [True, True, True, True, False]
    assert [job["data"] for job in body["jobs"][:3]] == [0, 1, 2]
    assert body["jobs"][3] == body["jobs"][4]


def test_list_filters_and_pages_with_the_cursor(http: httpx.Client) -> None:
    ids = [submit(http, type="a")["id"] for _ in range(5)]
    submit(http, type="b")

    first = http.get("/v1/jobs", params={"type": "a", "limit": 2}).json()
    second = http.get("/v1/jobs", params={"type": "a", "limit": 2, "before": first["next"]}).json()
    third = http.get("/v1/jobs", params={"type": "a", "limit": 2, "before": second["next"]}).json()

    listed = [job["id"] for page in (first, second, third) for job in page["jobs"]]
    assert listed == ids[::-1]
    assert third["next"] is None
    queued = http.get("/v1/jobs", params={"state": "queued"}).json()["jobs"]
    assert len(queued) == 6


def test_cancel_and_retry(http: httpx.Client) -> None:
    job = submit(http)

    cancelled = http.post(f"/v1/jobs/{job['id']}/cancel")
    cancel_again = http.post(f"/v1/jobs/{job['id']}/cancel")
    retried = http.post(f"/v1/jobs/{job['id']}/retry")
    retry_again = http.post(f"/v1/jobs/{job['id']}/retry")

    assert cancelled.json()["job"]["state"] == "cancelled"
    assert cancel_again.status_code == 409
    assert cancel_again.json()["error"]["code"] == "invalid_transition"
    assert retried.json()["job"]["state"] == "queued"
    assert retry_again.status_code == 409
    assert [j["id"] for j in poll(http, types=["ping"], capacity=1)["jobs"]] == [job["id"]]


def test_wait_answers_when_the_job_finishes(http: httpx.Client) -> None:
    job = submit(http)
    [running] = poll(http, types=["ping"], capacity=1)["jobs"]

    timed_out = http.get(f"/v1/jobs/{job['id']}/wait", params={"timeout": 0.2}).json()
    with httpx.Client(base_url=str(http.base_url)) as other:
        report = {"id": job["id"], "attempt": running["attempt"], "outcome": "succeeded"}
        started = time.monotonic()
        # Given a waiter, when the result arrives, then the waiter answers at once
        other.post("/v1/workers/poll", json={"worker": "w1", "reports": [{**report, "result": 7}]})
        done = http.get(f"/v1/jobs/{job['id']}/wait", params={"timeout": 10}).json()

    assert timed_out["done"] is False
    assert done["done"] is True
    assert done["job"]["result"] == 7
    assert time.monotonic() - started < 5


def test_wait_wakes_on_a_report_through_this_manager(http: httpx.Client, manager: Manager) -> None:
    job = submit(http)
    [running] = poll(http, types=["ping"], capacity=1)["jobs"]
    report = {"id": job["id"], "attempt": running["attempt"], "outcome": "succeeded"}

    def finish_soon() -> None:
        time.sleep(0.3)
        with httpx.Client(base_url=manager.url) as other:
            other.post("/v1/workers/poll", json={"worker": "w1", "reports": [report]})

    thread = threading.Thread(target=finish_soon)
    thread.start()
    started = time.monotonic()
    done = http.get(f"/v1/jobs/{job['id']}/wait", params={"timeout": 30}).json()
    thread.join()

    assert done["done"] is True
    assert time.monotonic() - started < 5


def test_poll_waits_for_work_and_answers_when_it_arrives(
    http: httpx.Client, manager: Manager
) -> None:
    def submit_soon() -> None:
        time.sleep(0.3)
        manager.assign_job("ping", {"late": True})

    thread = threading.Thread(target=submit_soon)
    thread.start()
    started = time.monotonic()
    body = poll(http, types=["ping"], capacity=1, wait=20)
    thread.join()

    assert [job["data"] for job in body["jobs"]] == [{"late": True}]
    assert time.monotonic() - started < 5


def test_scheduled_job_is_not_handed_out_before_its_time(http: httpx.Client) -> None:
    job = submit(http, delay=1.5)

    early = poll(http, types=["ping"], capacity=1)
    late = poll(http, types=["ping"], capacity=1, wait=10)

    assert job["state"] == "scheduled"
    assert early["jobs"] == []
    [handed] = late["jobs"]
    assert handed["id"] == job["id"]
    started_at = dt.datetime.fromisoformat(handed["started_at"])
    assert started_at >= dt.datetime.fromisoformat(job["run_at"])


def test_poll_fences_reports_and_renewals(http: httpx.Client) -> None:
    job = submit(http)
    other = submit(http)
    poll(http, types=["ping"], capacity=2)
    http.post(f"/v1/jobs/{other['id']}/cancel")

    body = poll(
        http,
        reports=[{"id": job["id"], "attempt": 2, "outcome": "succeeded"}],
        running=[{"id": job["id"], "attempt": 1}, {"id": other["id"], "attempt": 1}],
    )

    assert body["abandon"] == [job["id"], other["id"]]
    assert http.get(f"/v1/jobs/{job['id']}").json()["job"]["state"] == "running"


def test_failed_report_is_retried_then_failed_with_the_error(http: httpx.Client) -> None:
    job = submit(http, max_attempts=2)
    error = {"type": "ValueError", "message": "bad", "traceback": "Traceback (most recent...)"}

    [first] = poll(http, types=["ping"], capacity=1)["jobs"]
    poll(http, reports=[{"id": job["id"], "attempt": 1, "outcome": "failed", "error": error}])
    scheduled = http.get(f"/v1/jobs/{job['id']}").json()["job"]
    [second] = poll(http, types=["ping"], capacity=1, wait=10)["jobs"]
    poll(http, reports=[{"id": job["id"], "attempt": 2, "outcome": "failed", "error": error}])
    failed = http.get(f"/v1/jobs/{job['id']}").json()["job"]

    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert scheduled["state"] == "scheduled"
    assert scheduled["error"] == error
    assert failed["state"] == "failed"
    assert failed["error"] == error


def test_expired_lease_is_handed_out_again(start_manager: Callable[..., Manager]) -> None:
    manager = start_manager(lease=0.5)
    with httpx.Client(base_url=manager.url) as http:
        job = submit(http)
        [first] = poll(http, types=["ping"], capacity=1)["jobs"]

        body = http.post(
            "/v1/workers/poll", json={"worker": "w2", "types": ["ping"], "capacity": 1, "wait": 10}
        ).json()

    [again] = body["jobs"]
    assert body["lease_seconds"] == 0.5
    assert (first["attempt"], again["id"], again["attempt"]) == (1, job["id"], 2)
    assert again["worker"] == "w2"
    assert again["error"]["type"] == "LeaseExpired"


def test_queue_emptied_behind_the_managers_back_is_rebuilt(
    http: httpx.Client, manager: Manager
) -> None:
    ids = {submit(http)["id"] for _ in range(3)}
    manager.queue.clear()

    handed: set[str] = set()
    deadline = time.monotonic() + 10
    while handed != ids and time.monotonic() < deadline:
        handed |= {j["id"] for j in poll(http, types=["ping"], capacity=3, wait=2)["jobs"]}

    assert handed == ids


def test_two_managers_share_one_store(start_manager: Callable[..., Manager]) -> None:
    one, two = start_manager(), start_manager()
    with httpx.Client(base_url=one.url) as first, httpx.Client(base_url=two.url) as second:
        job = submit(first)
        seen = second.get(f"/v1/jobs/{job['id']}").json()["job"]
        [handed] = poll(second, types=["ping"], capacity=1, wait=10)["jobs"]
        poll(second, reports=[{"id": job["id"], "attempt": 1, "outcome": "succeeded"}])
        done = first.get(f"/v1/jobs/{job['id']}/wait", params={"timeout": 10}).json()
        again = poll(first, types=["ping"], capacity=1)

    assert seen == job
    assert handed["id"] == job["id"]
    assert done["done"] is True
    assert again["jobs"] == []


BAD_INPUT = [
    ("POST", "/v1/jobs", b"{nope", 400, None),
    ("POST", "/v1/jobs", {"data": 1}, 422, "$.type"),
    ("POST", "/v1/jobs", {"type": ""}, 422, "$.type"),
    ("POST", "/v1/jobs", {"type": "ping", "priority": "high"}, 422, "$.priority"),
    ("POST", "/v1/jobs", {"type": "ping", "colour": "red"}, 422, "$.colour"),
    (
        "POST",
        "/v1/jobs",
        {"type": "ping", "delay": 1, "run_at": "2030-01-01T00:00:00Z"},
        422,
        "$.delay",
    ),
    ("POST", "/v1/jobs", {"type": "ping", "run_at": "2030-01-01T00:00:00"}, 422, "$.run_at"),
    ("POST", "/v1/jobs", {"type": "ping", "max_attempts": 0}, 422, "$.max_attempts"),
    ("POST", "/v1/jobs/batch", {"jobs": []}, 422, "$.jobs"),
    ("POST", "/v1/jobs/batch", {"jobs": [{"type": "a"}, {"type": 1}]}, 422, "$.jobs[1].type"),
    ("POST", "/v1/jobs/batch", b"[", 400, None),
    ("GET", "/v1/jobs?limit=0", None, 422, "limit"),
    ("GET", "/v1/jobs?limit=x", None, 422, "limit"),
    ("GET", "/v1/jobs?state=done", None, 422, "state"),
    ("GET", "/v1/jobs/unknown", None, 404, None),
    ("POST", "/v1/jobs/unknown/cancel", None, 404, None),
    ("POST", "/v1/jobs/unknown/retry", None, 404, None),
    ("GET", "/v1/jobs/unknown/wait", None, 404, None),
    ("GET", "/v1/jobs/{id}/wait?timeout=61", None, 422, "timeout"),
    ("POST", "/v1/jobs/{id}/retry", None, 409, None),
    ("POST", "/v1/workers/poll", {}, 422, "$.worker"),
    ("POST", "/v1/workers/poll", {"worker": "w", "capacity": -1}, 422, "$.capacity"),
    ("POST", "/v1/workers/poll", {"worker": "w", "wait": 31}, 422, "$.wait"),
    (
        "POST",
        "/v1/workers/poll",
        {"worker": "w", "reports": [{"id": "x", "attempt": 0, "outcome": "succeeded"}]},
        422,
        "$.reports[0].attempt",
    ),
    (
        "POST",
        "/v1/workers/poll",
        {"worker": "w", "reports": [{"id": "x", "attempt": 1, "outcome": "won"}]},
        422,
        "$.reports[0].outcome",
    ),
    ("POST", "/v1/workers/poll", b"nope", 400, None),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), BAD_INPUT)
def test_bad_input_is_refused_with_the_field_and_changes_nothing(
    http: httpx.Client, *, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    # Given one queued job
    job = submit(http)
    before = http.get("/v1/jobs").json()

    # When a bad request arrives
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
    response = http.request(method, path.replace("{id}", job["id"]), content=content)

    # Then it is refused with a JSON error naming the field, and nothing changed
    assert response.status_code == status, response.text
    error = response.json()["error"]
    expected_code = {400: "malformed_json", 404: "not_found", 409: "invalid_transition"}
    assert error["code"] == expected_code.get(status, "validation_error")
    assert error["message"]
    assert error["field"] == field
    assert http.get("/v1/jobs").json() == before
    assert poll(http, types=["ping", "a"], capacity=10)["jobs"][0]["id"] == job["id"]


def test_healthz_metrics_and_openapi(http: httpx.Client) -> None:
    submit(http)
    submit(http, type="other", delay=60)

    health = http.get("/healthz")
    metrics = http.get("/metrics")
    openapi = http.get("/openapi.json")

    assert health.json() == {"status": "ok"}
    assert metrics.headers["content-type"].startswith("text/plain")
    jobs = {
        (sample.labels["type"], sample.labels["state"]): sample.value
        for family in text_string_to_metric_families(metrics.text)
        if family.name == "forerunner_jobs"
        for sample in family.samples
    }
    assert jobs == {("ping", "queued"): 1, ("other", "scheduled"): 1}
    document = openapi.json()
    assert document["openapi"].startswith("3.1")
    assert {"/v1/jobs", "/v1/jobs/batch", "/v1/workers/poll"} <= set(document["paths"])
    assert {"JobSpec", "PollRequest", "PollResponse", "ErrorBody"} <= set(
        document["components"]["schemas"]
    )


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def forerunner_job_event(self, event: str, job: Job) -> None:
        self.seen.append(event)


def test_callbacks_and_hook_events_fire(start_manager: Callable[..., Manager]) -> None:
    recorder = Recorder()
    registry = Registry.from_plugins([(PluginInfo(name="recorder", module="test"), recorder)])
    manager = start_manager(registry=registry)
    completed: list[Any] = []
    staged: list[str] = []
    manager.on_complete("ping", lambda job: completed.append(job.result))
    manager.on_staged("*", lambda job: staged.append(job.id))
    manager.on_complete("*", lambda job: 1 / 0)

    job = manager.assign_job("ping", {"foo": "bar"})
    with httpx.Client(base_url=manager.url) as http:
        poll(http, types=["ping"], capacity=1)
        poll(http, reports=[{"id": job.id, "attempt": 1, "outcome": "succeeded", "result": "pong"}])
        final = http.get(f"/v1/jobs/{job.id}").json()["job"]

    assert final["state"] == "succeeded"
    assert completed == ["pong"]
    assert staged == [job.id]
    assert recorder.seen == ["created", "staged", "succeeded"]


def test_stop_answers_a_pending_long_poll(start_manager: Callable[..., Manager]) -> None:
    manager = start_manager()
    answers: list[httpx.Response] = []

    def long_poll() -> None:
        with httpx.Client(base_url=manager.url, timeout=60) as http:
            body = {"worker": "w1", "types": ["ping"], "capacity": 1, "wait": 30}
            answers.append(http.post("/v1/workers/poll", json=body))

    # Given a worker waiting for work that never comes
    thread = threading.Thread(target=long_poll)
    thread.start()
    time.sleep(0.3)
    # When the manager stops
    started = time.monotonic()
    manager.stop()
    thread.join(30)

    # Then the poll is answered with no jobs, and the stop did not wait out the poll
    assert time.monotonic() - started < 10
    assert [answer.json()["jobs"] for answer in answers] == [[]]


def open_long_poll(manager: Manager) -> tuple[threading.Thread, list[dict[str, Any]]]:
    """Worker w1's long poll for ``ping``, waiting up to 30 s, in a thread; and its answers."""
    answers: list[dict[str, Any]] = []

    def long_poll() -> None:
        with httpx.Client(base_url=manager.url, timeout=60) as own:
            answers.append(poll(own, types=["ping"], capacity=1, wait=30))

    thread = threading.Thread(target=long_poll)
    thread.start()
    time.sleep(0.3)
    return thread, answers


def test_a_stopping_poll_ends_the_workers_open_long_poll(
    http: httpx.Client, manager: Manager
) -> None:
    # Given a worker's long poll waiting for work that does not come
    thread, answers = open_long_poll(manager)
    # When another poll of the same worker says it is stopping
    poll(http, stopping=True)
    thread.join(10)

    # Then the long poll is answered well before its wait is over, with no jobs
    assert not thread.is_alive()
    assert [answer["jobs"] for answer in answers] == [[]]


def test_a_stopping_poll_leaves_other_workers_long_polls_open(
    http: httpx.Client, manager: Manager
) -> None:
    thread, answers = open_long_poll(manager)
    # When a different worker says it is stopping
    http.post("/v1/workers/poll", json={"worker": "w2", "stopping": True}).raise_for_status()
    thread.join(2)
    # Then w1's long poll still waits, and gets the next job
    assert thread.is_alive()
    manager.assign_job("ping", {"n": 1})
    thread.join(10)
    assert [[job["data"] for job in answer["jobs"]] for answer in answers] == [[{"n": 1}]]
