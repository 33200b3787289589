"""A worker acts only on the attempts leased to it (issue 9, "Ownership").

Attempt numbers are small and easy to guess, so fencing by attempt alone would let any
worker finish, report on or keep alive another worker's job. Each poll names its
worker, and the manager passes it to the store, which applies reports, progress and
renewals only to attempts that worker holds.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


def submit(http: httpx.Client) -> dict[str, Any]:
    response = http.post("/v1/jobs", json={"type": "ping", "data": {"n": 1}})
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()["job"]
    return job


def poll(http: httpx.Client, worker: str, **fields: Any) -> dict[str, Any]:
    response = http.post("/v1/workers/poll", json={"worker": worker, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def lease_until(http: httpx.Client, job_id: str) -> dt.datetime:
    return dt.datetime.fromisoformat(get(http, job_id)["lease_until"])


def get(http: httpx.Client, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()["job"]
    return job


def test_another_workers_report_and_progress_change_nothing_and_it_is_told_to_abandon(
    http: httpx.Client,
) -> None:
    # Given worker A running a job
    job = submit(http)
    [leased] = poll(http, "worker-a", types=["ping"], capacity=1)["jobs"]
    before = get(http, job["id"])
    assert (before["state"], before["worker"]) == ("running", "worker-a")
    attempt = leased["attempt"]

    # When worker B reports success and progress for A's job and attempt
    stolen = poll(
        http,
        "worker-b",
        progress=[{"id": job["id"], "attempt": attempt, "value": "stolen"}],
        reports=[{"id": job["id"], "attempt": attempt, "outcome": "succeeded", "result": "B"}],
    )
    # And then reports it failed
    failed = poll(
        http,
        "worker-b",
        reports=[
            {
                "id": job["id"],
                "attempt": attempt,
                "outcome": "failed",
                "error": {"type": "ValueError", "message": "B says no"},
            }
        ],
    )

    # Then B is told to abandon the job, and the job is exactly as it was
    assert stolen["abandon"] == [job["id"]]
    assert failed["abandon"] == [job["id"]]
    assert get(http, job["id"]) == before

    # When A reports its progress and result, they apply
    done = poll(
        http,
        "worker-a",
        progress=[{"id": job["id"], "attempt": attempt, "value": "half"}],
        reports=[{"id": job["id"], "attempt": attempt, "outcome": "succeeded", "result": "A"}],
    )
    assert done["abandon"] == []
    after = get(http, job["id"])
    assert (after["state"], after["result"], after["progress"]) == ("succeeded", "A", "half")
    assert after["error"] is None


def test_another_workers_renewal_does_not_extend_the_lease(http: httpx.Client) -> None:
    # Given worker A running a job
    job = submit(http)
    [leased] = poll(http, "worker-a", types=["ping"], capacity=1)["jobs"]
    running = [{"id": job["id"], "attempt": leased["attempt"]}]
    before = lease_until(http, job["id"])
    time.sleep(0.05)

    # When worker B claims to be running it
    answer = poll(http, "worker-b", running=running)

    # Then B is told to abandon it and A's lease did not move
    assert answer["abandon"] == [job["id"]]
    assert lease_until(http, job["id"]) == before

    # While A's own renewal extends it
    assert poll(http, "worker-a", running=running)["abandon"] == []
    assert lease_until(http, job["id"]) > before
