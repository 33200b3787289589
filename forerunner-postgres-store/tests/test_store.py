"""What the PostgreSQL store promises beyond the conformance suite.

The suite (``pytest --pyargs forerunner_store_tests --forerunner-store postgresql://...``)
certifies the Store contract; these tests cover what is particular to this store: the
plugin's two schemes, schemas as separate stores, values PostgreSQL cannot hold, whole
batches or nothing, errors that name the URL, and several managers reclaiming,
promoting and adding at once.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from forerunner.errors import BackendError, BackendUnavailable, ValidationError
from forerunner.ids import new_id
from forerunner.model import Job, JobState
from forerunner.plugins import get_registry, open_store
from forerunner_postgres_store.store import PostgresStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BASE = dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return BASE + dt.timedelta(seconds=seconds)


@pytest.fixture
def store(store_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(store_url)
    yield opened
    opened.close()


@pytest.fixture
def open_handle(store_url: str) -> Iterator[Callable[[], PostgresStore]]:
    """Open more handles on the test's store, as other managers would; closed after."""
    opened: list[PostgresStore] = []

    def make() -> PostgresStore:
        opened.append(PostgresStore(store_url))
        return opened[-1]

    yield make
    for handle in opened:
        handle.close()


def running(count: int, lease: float = 10.0) -> list[Job]:
    return [
        Job(
            id=new_id(),
            type="alpha",
            state=JobState.RUNNING,
            attempt=1,
            max_attempts=2,
            worker="worker-a",
            started_at=at(0),
            lease_until=at(lease),
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plugin_opens_both_schemes(store_url: str, scheme: str) -> None:
    url = store_url.replace("postgresql://", f"{scheme}://", 1)
    assert "forerunner_postgres_store" in get_registry().describe_backend("store", url)
    opened = open_store(url)
    try:
        assert isinstance(opened, PostgresStore)
        assert opened.counts() == {}
    finally:
        opened.close()


def test_closed_port_is_unavailable_naming_the_masked_url() -> None:
    # Given a loopback port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://someone:s3cret@127.0.0.1:{port}/test?schema=nowhere"
    # When a store is opened there, then it is unavailable, and says where and why
    with pytest.raises(BackendUnavailable) as raised:
        PostgresStore(url)
    message = str(raised.value)
    assert f"postgresql://someone:***@127.0.0.1:{port}/test?schema=nowhere" in message
    assert "s3cret" not in message
    assert "Connection refused" in message
    assert raised.value.__cause__ is not None


def test_closed_store_refuses_calls(store_url: str) -> None:
    opened = PostgresStore(store_url)
    opened.close()
    opened.close()
    with pytest.raises(BackendError, match="is closed"):
        opened.get(new_id())


def test_schemas_are_separate_stores(
    server_url: str, new_schema: Callable[[], str], store: PostgresStore
) -> None:
    # Given a second store in another schema of the same database
    other = PostgresStore(f"{server_url}?schema={new_schema()}")
    try:
        job = Job(id=new_id(), type="alpha", key="shared-key")
        store.add([job])
        # When the other store is used and cleared, then neither sees the other's jobs
        twin = Job(id=new_id(), type="alpha", key="shared-key")
        assert other.add([twin]) == [twin]
        assert other.get(job.id) is None
        other.clear()
        assert store.get(job.id) == job
        assert store.counts() == {("alpha", JobState.QUEUED): 1}
    finally:
        other.close()


@pytest.mark.parametrize(
    ("bad", "complaint"),
    [
        ({"type": "nul\x00type"}, "cannot hold NUL"),
        ({"key": "nul\x00key"}, "cannot hold NUL"),
        ({"priority": 2**70}, "bigint out of range"),
        ({"attempt": 2**40}, "out of range"),
        ({"data": float("nan")}, "data is not JSON"),
        ({"data": {"x": object()}}, "data is not JSON"),
        ({"type": "lone \ud800 surrogate"}, "without lone surrogates"),
    ],
)
def test_values_postgres_cannot_hold_fail_the_whole_batch(
    store: PostgresStore, bad: dict[str, object], complaint: str
) -> None:
    # Given a batch of good jobs and one that PostgreSQL or JSON cannot hold
    good = [Job(id=new_id(), type="alpha") for _ in range(3)]
    wrong = Job(id=new_id(), **{"type": "alpha", **bad})  # type: ignore[arg-type]
    # When it is added, then the caller is told what is wrong, and nothing is stored
    with pytest.raises(ValidationError, match=complaint):
        store.add([*good, wrong])
    assert store.counts() == {}


def test_a_stored_id_fails_the_whole_batch(store: PostgresStore) -> None:
    stored = Job(id=new_id(), type="alpha")
    store.add([stored])
    fresh = Job(id=new_id(), type="alpha")
    with pytest.raises(ValidationError, match="already stored") as raised:
        store.add([fresh, Job(id=stored.id, type="beta")])
    assert raised.value.field == "id"
    assert store.get(fresh.id) is None


def test_json_values_beyond_the_suite_round_trip(store: PostgresStore) -> None:
    # Lone surrogates cannot be UTF-8, so they travel as JSON escapes.
    values = ["lone \ud800 surrogate", {"\udfff": ["\x00", -0.0, 2**64]}, "日本\u0000"]
    jobs = [Job(id=new_id(), type="alpha", data=value) for value in values]
    store.add(jobs)
    for job, value in zip(jobs, values, strict=True):
        got = store.get(job.id)
        assert got is not None
        assert repr(got.data) == repr(value)


def test_concurrent_reclaims_take_each_job_once(
    store: PostgresStore, open_handle: Callable[[], PostgresStore]
) -> None:
    # Given expired leases, and four managers' handles on the store
    jobs = running(200)
    store.add(jobs)
    handles = [open_handle() for _ in range(4)]
    taken: list[list[str]] = [[] for _ in handles]
    start = threading.Barrier(len(handles))

    def reap(index: int) -> None:
        start.wait(30)
        while batch := handles[index].reclaim_expired(at(60), 7):
            taken[index].extend(job.id for job in batch)

    # When they all reclaim in small batches at once
    threads = [threading.Thread(target=reap, args=(i,)) for i in range(len(handles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then every job was reclaimed exactly once, and is queued again
    everything = [job_id for ids in taken for job_id in ids]
    assert sorted(everything) == sorted(job.id for job in jobs)
    assert store.counts() == {("alpha", JobState.QUEUED): 200}


def test_concurrent_promotions_take_each_job_once(
    store: PostgresStore, open_handle: Callable[[], PostgresStore]
) -> None:
    jobs = [
        Job(id=new_id(), type="alpha", state=JobState.SCHEDULED, run_at=at(i % 17))
        for i in range(150)
    ]
    store.add(jobs)
    handles = [open_handle() for _ in range(3)]
    taken: list[list[str]] = [[] for _ in handles]

    def promote(index: int) -> None:
        while batch := handles[index].promote_due(at(100), 5):
            taken[index].extend(job.id for job in batch)

    threads = [threading.Thread(target=promote, args=(i,)) for i in range(len(handles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = [job_id for ids in taken for job_id in ids]
    assert sorted(everything) == sorted(job.id for job in jobs)


def test_concurrent_adds_of_one_key_store_one_job(
    open_handle: Callable[[], PostgresStore],
) -> None:
    # Given many managers adding a job with the same key at once, each its own id
    handles = [open_handle() for _ in range(4)]
    attempts = [
        [Job(id=new_id(), type="alpha", key=f"key-{n}") for n in range(30)] for _ in handles
    ]
    results: list[list[Job]] = [[] for _ in handles]
    start = threading.Barrier(len(handles))

    def add(index: int) -> None:
        start.wait(30)
        for job in attempts[index]:
            results[index].extend(handles[index].add([job]))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(len(handles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then each key holds one job, and every manager was answered with that job
    for n in range(30):
        answers = {result[n].id for result in results}
        assert len(answers) == 1, f"key-{n} answered with {answers}"
    assert handles[0].counts() == {("alpha", JobState.QUEUED): 30}


def test_overlapping_renewals_in_opposite_orders_do_not_fail(
    store: PostgresStore, open_handle: Callable[[], PostgresStore]
) -> None:
    # Given running jobs that two managers renew in opposite orders
    jobs = running(60, lease=30)
    store.add(jobs)
    ids = [job.id for job in jobs]
    first, second = open_handle(), open_handle()
    errors: list[BaseException] = []

    def renew_all(handle: PostgresStore, order: list[str]) -> None:
        try:
            for _ in range(20):
                handle.renew("worker-a", order, at(40))
        except BaseException as error:
            errors.append(error)

    # When they renew at once, then neither fails, and every job is still running
    threads = [
        threading.Thread(target=renew_all, args=(first, ids)),
        threading.Thread(target=renew_all, args=(second, ids[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert store.counts() == {("alpha", JobState.RUNNING): 60}


def test_add_returns_a_key_holder_committed_while_it_waited(
    server_url: str, store_url: str, store: PostgresStore
) -> None:
    # Given another manager's transaction that inserted a job with a key, not committed
    schema = store_url.rsplit("=", 1)[1]
    theirs = Job(id=new_id(), type="alpha", key="contended", data="theirs")
    ours = Job(id=new_id(), type="alpha", key="contended", data="ours")
    outcome: list[object] = []
    other = psycopg.connect(server_url, autocommit=True)
    # pg_stat_activity is read once per transaction: watch from outside other's.
    watcher = psycopg.connect(server_url, autocommit=True)
    try:
        other.execute(f"SET search_path TO {schema}")
        other.execute("BEGIN")
        other.execute(
            "INSERT INTO forerunner_jobs (id, type, data, state, priority, attempt, "
            "max_attempts, key) VALUES (%s, 'alpha', '\"theirs\"', 'queued', 0, 0, 3, %s)",
            [theirs.id, theirs.key],
        )
        # When this store adds a job with the same key, it waits for that transaction
        adding = threading.Thread(target=lambda: outcome.append(store.add([ours])))
        adding.start()
        deadline = time.monotonic() + 30
        # (pg_stat_activity keeps a statement's first 1 kB: its leading comment)
        while not waiting_on_lock(watcher, "-- Inserts the batch"):
            assert time.monotonic() < deadline, "the add never waited for the other insert"
            time.sleep(0.02)
        # And the other transaction commits, after this statement's snapshot was taken
        other.execute("COMMIT")
        adding.join(30)
    finally:
        other.close()
        watcher.close()
    # Then the add returns the job the other manager committed, and inserted nothing
    assert outcome == [[theirs]]
    assert store.get(ours.id) is None


def waiting_on_lock(conn: psycopg.Connection[Any], query_part: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND position(%s in query) > 0",
        [query_part],
    ).fetchone()
    return bool(row and row[0])
