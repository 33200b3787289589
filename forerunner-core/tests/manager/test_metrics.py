"""``/metrics``: what a Prometheus scrape of a real manager shows while real workers run jobs.

Covers the job counters and the wait and run time histograms (by type), the queue
depth while jobs wait, the workers connected, the backend call latency and errors, the
cached store counts, one registry per manager, and the timed backends keeping the
capabilities of the backends they wrap.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from forerunner.client import Client
from forerunner.queue import Queue
from forerunner.store import Store
from forerunner.worker import Worker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from forerunner.manager import Manager

#: (sample name, sorted label pairs) -> value.
Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(manager: Manager) -> Scrape:
    response = httpx.get(f"{manager.url}/metrics", timeout=30.0)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Scrape = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Scrape, name: str, **labels: str) -> float:
    """The sample's value; a series not (yet) exposed counts as 0, as Prometheus treats it."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def eventually(condition: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


class Tasks:
    """Handlers whose outcome the test chooses: ``ok`` returns, ``boom`` raises, ``flaky``
    raises on its first attempt only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.flaky_runs = 0

    def ok(self, job_id: str, data: Any) -> Any:
        return data

    def boom(self, job_id: str, data: Any) -> Any:
        raise RuntimeError("boom")

    def flaky(self, job_id: str, data: Any) -> Any:
        with self._lock:
            self.flaky_runs += 1
            first = self.flaky_runs == 1
        if first:
            raise RuntimeError("first attempt fails")
        return "second time lucky"


@pytest.fixture
def worker(manager: Manager) -> Iterator[Worker]:
    """A real worker, in a thread of this process, running the three :class:`Tasks`."""
    tasks = Tasks()
    running = Worker(4)
    running.register_job_handler("ok", tasks.ok)
    running.register_job_handler("boom", tasks.boom)
    running.register_job_handler("flaky", tasks.flaky)
    thread = threading.Thread(target=running.start, args=(manager.url,), daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(15)
    assert not thread.is_alive()


@pytest.fixture
def client(manager: Manager) -> Iterator[Client]:
    with Client(manager.url) as opened:
        yield opened


def test_job_counters_and_histograms_count_every_event_by_type(
    manager: Manager, worker: Worker, client: Client
) -> None:
    # Given a scrape before anything ran
    before = scrape(manager)
    # When three jobs succeed, two fail for good and one fails once then succeeds
    jobs = [client.submit("ok", n) for n in range(3)]
    jobs += [client.submit("boom", n, max_attempts=1) for n in range(2)]
    jobs.append(client.submit("flaky", max_attempts=2))
    ended = [client.wait(job.id, timeout=30) for job in jobs]
    assert [job.state.value for job in ended] == ["succeeded"] * 3 + ["failed"] * 2 + ["succeeded"]
    after = scrape(manager)

    # Then each counter moved by its jobs, per type
    expected = {
        "forerunner_jobs_submitted_total": {"ok": 3, "boom": 2, "flaky": 1},
        "forerunner_jobs_started_total": {"ok": 3, "boom": 2, "flaky": 2},
        "forerunner_jobs_succeeded_total": {"ok": 3, "boom": 0, "flaky": 1},
        "forerunner_jobs_failed_total": {"ok": 0, "boom": 2, "flaky": 0},
        "forerunner_jobs_retried_total": {"ok": 0, "boom": 0, "flaky": 1},
        "forerunner_jobs_cancelled_total": {"ok": 0, "boom": 0, "flaky": 0},
        # a wait per attempt handed out, a run per attempt ended
        "forerunner_job_wait_seconds_count": {"ok": 3, "boom": 2, "flaky": 2},
        "forerunner_job_run_seconds_count": {"ok": 3, "boom": 2, "flaky": 2},
    }
    moved = {
        name: {kind: delta(before, after, name, type=kind) for kind in counts}
        for name, counts in expected.items()
    }
    assert moved == expected
    # And a histogram's +Inf bucket holds every observation, its sum their total
    for name in ("forerunner_job_wait_seconds", "forerunner_job_run_seconds"):
        for kind in ("ok", "boom", "flaky"):
            count = value(after, f"{name}_count", type=kind)
            assert value(after, f"{name}_bucket", type=kind, le="+Inf") == count
            assert value(after, f"{name}_sum", type=kind) >= 0


def test_a_cancelled_job_is_counted(manager: Manager, client: Client) -> None:
    before = scrape(manager)

    job = client.submit("later", delay=3600)
    client.cancel(job.id)

    after = scrape(manager)
    assert delta(before, after, "forerunner_jobs_cancelled_total", type="later") == 1
    assert delta(before, after, "forerunner_jobs_submitted_total", type="later") == 1
    # and every counter shows the type, at 0 where nothing happened yet
    assert after["forerunner_jobs_failed_total", (("type", "later"),)] == 0


def test_queue_depth_shows_the_jobs_waiting_per_type_and_in_all(
    manager: Manager, client: Client
) -> None:
    # Given no worker for "waits", and one that polls only for "idle"
    for n in range(4):
        client.submit("waits", n)
    client.submit("other")
    answer = httpx.post(
        f"{manager.url}/v1/workers/poll",
        json={"worker": "w-idle", "types": ["idle"], "capacity": 1, "wait": 0},
    )
    assert answer.status_code == 200

    # When scraped
    samples = scrape(manager)

    # Then the depth is there for every type seen in events or polled for
    assert value(samples, "forerunner_queue_depth", type="waits") == 4
    assert value(samples, "forerunner_queue_depth", type="other") == 1
    assert ("forerunner_queue_depth", (("type", "idle"),)) in samples
    assert value(samples, "forerunner_queue_depth", type="idle") == 0
    assert value(samples, "forerunner_queue_depth_all_types") == 5
    assert value(samples, "forerunner_workers_connected") == 1


def test_workers_connected_counts_polling_workers(
    manager: Manager, worker: Worker, client: Client
) -> None:
    client.wait(client.submit("ok").id, timeout=30)

    assert value(scrape(manager), "forerunner_workers_connected") == 1


def test_backend_calls_are_timed_by_backend_and_method(
    manager: Manager, worker: Worker, client: Client
) -> None:
    before = scrape(manager)

    client.wait(client.submit("ok").id, timeout=30)

    after = scrape(manager)
    for backend, operation in [
        ("store", "add"),
        ("store", "claim"),
        ("store", "finish"),
        ("queue", "push"),
        ("queue", "pop_blocking"),
    ]:
        labels = {"backend": backend, "operation": operation}
        count = delta(before, after, "forerunner_backend_call_seconds_count", **labels)
        assert count >= 1, (backend, operation)
        assert value(after, "forerunner_backend_call_seconds_bucket", le="+Inf", **labels) == value(
            after, "forerunner_backend_call_seconds_count", **labels
        )


def test_a_failing_backend_call_is_counted_with_its_error_class(
    manager: Manager, client: Client
) -> None:
    # Given a manager whose store was closed behind its back
    client.submit("ok")
    before = scrape(manager)
    manager.store.close()

    # When a submission reaches the store
    answer = httpx.post(f"{manager.url}/v1/jobs", json={"type": "ok"})

    # Then it is refused and the error counted against store.add, by class
    assert answer.status_code == 503
    after = scrape(manager)
    labels = {"backend": "store", "operation": "add", "error": "BackendError"}
    assert delta(before, after, "forerunner_backend_errors_total", **labels) == 1
    # and the counts cached before the failure are still served
    assert value(after, "forerunner_jobs", type="ok", state="queued") == 1


def test_store_counts_are_served_from_a_cache(manager: Manager, client: Client) -> None:
    client.submit("ok")
    first = scrape(manager)
    client.submit("ok")

    second = scrape(manager)

    # One count of the store serves scrapes within COUNTS_TTL, however many there are;
    # a scrape shows the calls made before it, so the third shows what the second did.
    third = scrape(manager)
    assert value(first, "forerunner_jobs", type="ok", state="queued") == 1
    assert value(second, "forerunner_jobs", type="ok", state="queued") == 1
    assert value(second, "forerunner_queue_depth", type="ok") == 2
    labels = {"backend": "store", "operation": "counts"}
    assert delta(second, third, "forerunner_backend_call_seconds_count", **labels) == 0


def test_each_manager_counts_only_its_own_jobs(
    start_manager: Callable[..., Manager], tmp_path: Path
) -> None:
    first = start_manager(f"sqlite:///{tmp_path / 'first.db'}")
    second = start_manager(f"sqlite:///{tmp_path / 'second.db'}")

    first.assign_job("ok")

    assert value(scrape(first), "forerunner_jobs_submitted_total", type="ok") == 1
    assert value(scrape(second), "forerunner_jobs_submitted_total", type="ok") == 0


def test_timed_backends_keep_the_wrapped_backends_capabilities(
    manager: Manager, tmp_path: Path
) -> None:
    assert isinstance(manager.store, Store)
    assert isinstance(manager.queue, Queue)
    assert (manager.store.durable, manager.store.shared) == (True, True)
    assert (manager.queue.ordering, manager.queue.durable) == ("fifo", False)
    assert type(manager.store).durable is True
    # what is not part of the Store protocol reaches the backend itself
    extras: Any = manager.store
    assert extras.path == str(tmp_path / "jobs.db")
