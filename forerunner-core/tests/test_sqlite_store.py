"""The embedded durable store ``sqlite://`` (SQLiteStore).

Covers what the store conformance suite does not: URL parsing (relative and absolute
paths, and the URLs refused with a message that says what to write), files that cannot
be used, the schema and WAL mode it sets up, how it encodes values in the file, a
second store on the same file, driver errors translated into forerunner's hierarchy,
strings the batch tables must carry exactly, id ordering at the edges of the listing
cursors, ``close()`` from another thread, and a real claim race between processes.
The Store contract itself is certified by
``pytest --pyargs forerunner_store_tests --forerunner-store sqlite:///...``.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import queue as queue_module
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.backends.sqlite_store import SCHEMA_VERSION, SQLiteStore
from forerunner.errors import BackendError, BackendUnavailable, ConfigurationError, ValidationError
from forerunner.ids import new_id
from forerunner.model import Job, JobError, JobState, Report
from forerunner.plugins import open_store
from forerunner.sqlfiles import load_queries
from forerunner.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator

NOW = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
LEASE = NOW + dt.timedelta(seconds=30)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteStore]:
    made = SQLiteStore.from_url(f"sqlite:///{db_path}")
    yield made
    made.close()


def make_job(**fields: Any) -> Job:
    values: dict[str, Any] = {"id": new_id(), "type": "alpha", "created_at": NOW}
    return Job(**(values | fields))


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to the store's file, to look at it from outside."""
    return sqlite3.connect(path, isolation_level=None)


def test_capabilities(store: SQLiteStore) -> None:
    assert (SQLiteStore.durable, SQLiteStore.shared) == (True, True)
    assert isinstance(store, Store)


def test_absolute_path_takes_four_slashes(db_path: Path) -> None:
    store = open_store(f"sqlite:///{db_path}")
    try:
        assert isinstance(store, SQLiteStore)
        assert store.path == str(db_path)
        assert db_path.is_file()
    finally:
        store.close()


def test_relative_path_is_resolved_once_at_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store opened by a relative path
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    store = SQLiteStore.from_url("sqlite:///data/jobs.db")
    try:
        assert store.path == str(tmp_path / "data" / "jobs.db")

        # When the process changes directory
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        job = make_job()
        store.add([job])
    finally:
        store.close()

    # Then the store kept using the file it opened first
    assert not (elsewhere / "data").exists()
    reopened = SQLiteStore(str(tmp_path / "data" / "jobs.db"))
    try:
        assert reopened.get(job.id) == job
    finally:
        reopened.close()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite://:memory:"]
)
def test_url_without_a_file_suggests_memory(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"names no database file.*use memory://"):
        SQLiteStore.from_url(url)


@pytest.mark.parametrize(
    "url", ["sqlite://host/jobs.db", "sqlite:///jobs.db?mode=ro", "sqlite:///jobs.db#x"]
)
def test_url_with_host_or_query_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"takes a file path and no host or query"):
        SQLiteStore.from_url(url)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"

    with pytest.raises(ConfigurationError, match=rf"the directory '{missing}' does not exist"):
        SQLiteStore.from_url(f"sqlite:///{missing}/jobs.db")
    assert not missing.exists()


def test_directory_instead_of_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=rf"'{tmp_path}' cannot be opened") as raised:
        SQLiteStore(str(tmp_path))
    assert isinstance(raised.value.__cause__, sqlite3.Error)


def test_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, " * 100, encoding="utf-8")

    with pytest.raises(ConfigurationError, match=rf"'{path}' cannot be opened: file is not a"):
        SQLiteStore(str(path))


def test_newer_schema_is_refused(db_path: Path) -> None:
    # Given a file whose schema a newer forerunner wrote
    SQLiteStore(str(db_path)).close()
    with raw(db_path) as conn:
        conn.execute("UPDATE forerunner_schema_version SET version = ?", (SCHEMA_VERSION + 1,))

    # When this forerunner opens it, then it refuses and says why
    with pytest.raises(ConfigurationError, match=r"schema is version 2.*upgrade forerunner-core"):
        SQLiteStore(str(db_path))


def test_wal_mode_and_schema_are_set_up(store: SQLiteStore, db_path: Path) -> None:
    conn = raw(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT version FROM forerunner_schema_version").fetchall() == [
            (SCHEMA_VERSION,)
        ]
        indexes = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                ("forerunner_jobs",),
            )
        }
    finally:
        conn.close()
    assert {
        "forerunner_jobs_key",
        "forerunner_jobs_state_id",
        "forerunner_jobs_running_lease",
        "forerunner_jobs_scheduled_run_at",
        "forerunner_jobs_type_state",
        "forerunner_jobs_finished",
    } <= indexes


def test_a_file_made_with_the_old_full_indexes_gets_the_partial_ones(db_path: Path) -> None:
    SQLiteStore(str(db_path)).close()
    with raw(db_path) as conn:
        conn.executescript(
            "DROP INDEX forerunner_jobs_running_lease;"
            "DROP INDEX forerunner_jobs_scheduled_run_at;"
            "CREATE INDEX forerunner_jobs_state_lease ON forerunner_jobs (state, lease_until);"
            "CREATE INDEX forerunner_jobs_state_run_at ON forerunner_jobs (state, run_at);"
        )

    SQLiteStore(str(db_path)).close()

    with raw(db_path) as conn:
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "forerunner_jobs_state_lease" not in indexes
    assert "forerunner_jobs_state_run_at" not in indexes
    assert {"forerunner_jobs_running_lease", "forerunner_jobs_scheduled_run_at"} <= indexes


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("expired_leases", "forerunner_jobs_running_lease"),
        ("promote_jobs", "forerunner_jobs_scheduled_run_at"),
    ],
)
def test_the_reaper_finds_its_jobs_through_the_partial_indexes(
    store: SQLiteStore, db_path: Path, name: str, index: str
) -> None:
    queries = load_queries("forerunner.backends", "sql/sqlite/queries.sql")
    with raw(db_path) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {queries[name]}", {"now": 0, "limit": 10})
        plan = " ".join(row[-1] for row in rows)
    assert index in plan


def test_reopening_applies_the_schema_once(store: SQLiteStore, db_path: Path) -> None:
    SQLiteStore(str(db_path)).close()
    SQLiteStore(str(db_path)).close()

    with raw(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM forerunner_schema_version").fetchone() == (1,)


def test_values_are_stored_as_integer_microseconds_and_json_text(
    store: SQLiteStore, db_path: Path
) -> None:
    # Given a failed job with every kind of field set
    job = make_job(
        data={"big": 2**80, "x": -0.0, "ü": "🎉"},
        state=JobState.FAILED,
        attempt=1,
        run_at=NOW,
        finished_at=NOW + dt.timedelta(microseconds=1),
        timeout=1.5,
        error=JobError(type="ValueError", message="bad", traceback=None),
    )
    store.add([job])

    # Then the file holds integers for times, ASCII JSON text, and the error in columns
    with raw(db_path) as conn:
        row = conn.execute(
            "SELECT typeof(created_at), created_at, finished_at - created_at, data, "
            "typeof(timeout), error_type, error_message, error_traceback "
            "FROM forerunner_jobs"
        ).fetchone()
    micros = (NOW - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    assert row[:3] == ("integer", micros, 1)
    assert row[3].isascii()
    assert json.loads(row[3]) == job.data
    assert row[4:] == ("real", "ValueError", "bad", None)


def test_times_in_other_zones_come_back_as_the_same_instant_in_utc(store: SQLiteStore) -> None:
    east = dt.timezone(dt.timedelta(hours=9))
    job = make_job(created_at=dt.datetime(2024, 5, 6, 16, 8, 9, 123456, tzinfo=east))

    store.add([job])

    got = store.get(job.id)
    assert got is not None
    assert got.created_at == NOW
    assert got.created_at.tzinfo is dt.UTC


def test_a_second_store_on_the_same_file_sees_the_same_jobs(
    store: SQLiteStore, db_path: Path
) -> None:
    other = SQLiteStore(str(db_path))
    try:
        # Given a job added through one store, which the other sees
        job = make_job()
        store.add([job])
        assert other.get(job.id) == job

        # When the other store claims it
        (claimed,) = other.claim([job.id], "w", NOW, LEASE)

        # Then the first store sees the claim, and cannot claim the job again
        assert store.get(job.id) == claimed
        assert store.claim([job.id], "w2", NOW, LEASE) == []
    finally:
        other.close()


def test_strings_with_nul_and_astral_characters_travel_through_batches_exactly(
    store: SQLiteStore,
) -> None:
    """Ids, keys, workers and error texts reach SQL bound, never through SQLite's JSON."""
    # Given ids that differ only after a NUL character, and keys that do too
    plain, with_nul = make_job(id="a", key="k"), make_job(id="a\x00b", key="k\x00z")
    astral = make_job(id="\U0001f389\U0010ffff", key="\U0001f389")
    store.add([plain, with_nul, astral])

    # When they are claimed, renewed, reported on and re-added by key
    claimed = store.claim(["a\x00b", astral.id], "w\x00x", NOW, LEASE)
    renewed = store.renew("w\x00x", ["a\x00b", "a", astral.id], LEASE)
    error = JobError(type="Err\x00or", message="m\x00\U0001f389", traceback="t\x00")
    (failed,) = store.finish(
        [Report(job_id="a\x00b", attempt=1, state=JobState.FAILED, now=NOW, error=error)]
    )
    again = store.add([make_job(key="k\x00z"), make_job(key="\U0001f389")])

    # Then every one matched exactly the job it names, and nothing else
    assert [job.id for job in claimed] == ["a\x00b", astral.id]
    assert renewed == ["a\x00b", astral.id]
    assert failed is not None
    assert failed.error == error
    assert [job.id for job in again] == ["a\x00b", astral.id]
    unclaimed = store.get("a")
    assert unclaimed is not None
    assert unclaimed.state is JobState.QUEUED


def test_cursors_cover_ids_at_the_edges_of_unicode(store: SQLiteStore) -> None:
    """``list`` starts above every id and ``queued`` below every id, whatever they hold."""
    ids = ["\x01", "0", "Z", "a", "é", "中", "\U0001f389", "\U0010ffff", "\U0010ffff\U0010ffff"]
    store.add([make_job(id=job_id) for job_id in ids])

    assert [job.id for job in store.list(limit=100)] == sorted(ids, reverse=True)
    assert [job.id for job in store.queued(100)] == sorted(ids)
    assert [job.id for job in store.list(limit=3, before="\U0001f389")] == ["中", "é", "a"]
    assert [job.id for job in store.queued(2, after="é")] == ["中", "\U0001f389"]


def test_a_reused_id_is_refused_and_nothing_stored(store: SQLiteStore) -> None:
    stored = make_job()
    store.add([stored])
    fresh = make_job()

    with pytest.raises(ValidationError, match=rf"job id '{stored.id}' is already stored") as raised:
        store.add([fresh, make_job(id=stored.id)])

    assert raised.value.field == "id"
    assert store.get(fresh.id) is None
    assert isinstance(raised.value.__cause__, sqlite3.IntegrityError)


def test_an_id_repeated_in_a_batch_is_refused(store: SQLiteStore) -> None:
    job = make_job()

    with pytest.raises(ValidationError, match="repeated in the batch"):
        store.add([job, job])
    assert store.counts() == {}


def test_integers_beyond_64_bits_outside_json_are_refused(store: SQLiteStore) -> None:
    with pytest.raises(ValidationError, match="Integers must fit in 64 bits"):
        store.add([make_job(priority=2**70)])
    assert store.counts() == {}


def test_data_that_is_not_json_is_refused(store: SQLiteStore) -> None:
    with pytest.raises(ValidationError, match="data is not JSON"):
        store.add([make_job(data=object())])


def test_a_held_write_lock_is_backend_unavailable(db_path: Path) -> None:
    # Given a store that waits 0.1 s for locks, and another connection holding the lock
    store = SQLiteStore(str(db_path), busy_timeout=0.1)
    blocker = raw(db_path)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        # When the store needs the lock, then it gives up as unavailable, cause chained
        with pytest.raises(BackendUnavailable, match="is busy") as raised:
            store.add([make_job()])
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)

        # And reading still works while the lock is held (WAL)
        assert store.counts() == {}
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        store.close()


def test_other_driver_errors_are_backend_errors(store: SQLiteStore, db_path: Path) -> None:
    with raw(db_path) as conn:
        conn.execute("DROP TABLE forerunner_jobs")

    with pytest.raises(BackendError, match="no such table") as raised:
        store.get("x")
    assert not isinstance(raised.value, BackendUnavailable)
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)


def test_a_failed_batch_is_rolled_back_and_the_store_goes_on(store: SQLiteStore) -> None:
    job = make_job()
    with pytest.raises(ValidationError):
        store.add([job, make_job(priority=2**70)])

    assert store.get(job.id) is None
    store.add([job])
    assert store.get(job.id) == job


def test_close_from_another_thread_closes_every_connection(
    store: SQLiteStore, db_path: Path
) -> None:
    # Given connections opened by calls from several threads at once
    job_ids = [job.id for job in store.add([make_job() for _ in range(40)])]
    start = threading.Barrier(6)

    def work(n: int) -> None:
        start.wait(10)
        for job_id in job_ids[n::6]:
            store.claim([job_id], f"w{n}", NOW, LEASE)
            store.get(job_id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(store.list(state=JobState.RUNNING)) == 40
    assert Path(f"{db_path}-wal").exists()

    # When a thread that never used the store closes it
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(10)

    # Then no connection is left: SQLite removes the WAL file with the last one
    assert not Path(f"{db_path}-wal").exists()
    with pytest.raises(BackendError, match="is closed"):
        store.get(job_ids[0])
    store.close()


def test_a_forked_child_opens_connections_of_its_own(store: SQLiteStore) -> None:
    """SQLite forbids using a connection across fork; the child must not reuse the pool.

    Reusing one often seems to work, so the child also reports, from the pool's inside,
    whether the connection it pooled after the call is a new one of its own.
    """
    # Given a store whose pool holds connections made in this process
    job = make_job()
    store.add([job])
    inherited = list(store._idle)
    assert inherited
    context = multiprocessing.get_context("fork")
    results: Any = context.Queue()

    def child() -> None:
        try:
            claimed = store.claim([job.id], "forked", NOW, LEASE)
            pool = list(store._idle)
            own = len(pool) == 1 and pool[0] not in inherited
            results.put(([j.id for j in claimed], own))
        except BaseException as error:
            results.put(f"{type(error).__name__}: {error}")

    # When a forked child uses the store it inherited
    process = context.Process(target=child, daemon=True)
    process.start()
    outcome = results.get(timeout=60)
    process.join(10)

    # Then its call worked on a connection of its own, and this process sees the claim
    assert outcome == ([job.id], True)
    claimed = store.get(job.id)
    assert claimed is not None
    assert claimed.worker == "forked"


def test_claim_race_between_processes_has_one_winner_per_job(
    store: SQLiteStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 300 queued jobs, and 8 processes that each try to claim all of them
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import _sqlite_claim_race

    job_ids = [job.id for job in store.add([make_job() for _ in range(300)])]
    processes = 8
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue()
    start = context.Barrier(processes)
    children = [
        context.Process(
            target=_sqlite_claim_race.claim_all,
            args=(f"sqlite:///{db_path}", f"worker-{n}", job_ids),
            kwargs={"times": (NOW, LEASE), "start": start, "results": results},
            daemon=True,
        )
        for n in range(processes)
    ]
    for child in children:
        child.start()

    # When they race, claiming in shuffled batches
    won: dict[str, list[str]] = {}
    try:
        for _ in children:
            worker, outcome = results.get(timeout=120)
            assert isinstance(outcome, list), f"{worker} failed:\n{outcome}"
            won[worker] = outcome
    except queue_module.Empty:
        pytest.fail(f"only {len(won)} of {processes} processes answered within 120 s")
    finally:
        for child in children:
            child.join(10)
            if child.is_alive():
                child.terminate()

    # Then every job was won exactly once, and the store agrees on who won it
    all_won = [job_id for ids in won.values() for job_id in ids]
    assert sorted(all_won) == sorted(job_ids)
    winner = {job_id: worker for worker, ids in won.items() for job_id in ids}
    for job in store.list(limit=1000):
        assert (job.state, job.attempt, job.worker) == (JobState.RUNNING, 1, winner[job.id])


@pytest.mark.parametrize("name", ["claim_jobs", "finish_jobs", "renew_leases"])
def test_batch_statements_look_jobs_up_by_id_once_the_table_has_statistics(
    store: SQLiteStore, db_path: Path, name: str
) -> None:
    # ANALYZE (or PRAGMA optimize, which SQLite advises applications to run) gives the
    # jobs table statistics; the batch tables have none unless the store provides them,
    # and SQLite then planned finish_jobs with a Bloom filter over every job.
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    store.add([Job(id=new_id(), type="t", created_at=now) for _ in range(2000)])
    with raw(db_path) as conn:
        conn.execute("ANALYZE")
    queries = load_queries("forerunner.backends", "sql/sqlite/queries.sql")
    conn = raw(db_path)
    try:
        conn.executescript(queries["configure_connection"])
        params = {"worker": "w", "now": 0, "lease_until": 0}
        plan = [row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {queries[name]}", params)]
    finally:
        conn.close()
    assert not any("BLOOM" in step or step.startswith("SCAN job") for step in plan), plan
    assert not any(step.startswith("SCAN forerunner_jobs") for step in plan), plan


def test_threads_of_one_process_take_turns_to_write_instead_of_failing_busy(
    db_path: Path,
) -> None:
    # SQLite's own busy handler sleeps between tries and gives up at the timeout; with
    # eight threads writing at once it gave up. The store queues its own threads on a
    # lock, so each waits only for the writes ahead of it.
    store = SQLiteStore(str(db_path), busy_timeout=0.2)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(40):
                store.add([Job(id=new_id(), type="t", created_at=now) for _ in range(20)])
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()

    assert failures == []
    with raw(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM forerunner_jobs").fetchone() == (8 * 40 * 20,)
