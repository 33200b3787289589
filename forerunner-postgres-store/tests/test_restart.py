"""A server that restarts or stops under a running store: clear errors, then recovery.

The shared server must never be restarted by a test, so these start a private
PostgreSQL of their own: ``initdb`` in a temporary directory, ``pg_ctl`` on a free
loopback port, run as the ``postgres`` user when the tests run as root (``initdb``
refuses root). Without the PostgreSQL binaries the tests skip, except under ``CI``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

import attrs
import psycopg
import pytest

from forerunner.errors import BackendUnavailable
from forerunner.ids import new_id
from forerunner.model import Job, JobState, Report
from forerunner_postgres_store.store import PostgresStore

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Iterator

T = TypeVar("T")

#: Seconds to wait for the server to start, stop, or reach a state the test waits for.
WAIT_SECONDS: Final = 60.0
PASSWORD: Final = "s3cret"


def require(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}, and CI is set: the restart tests need it", pytrace=False)
    pytest.skip(why)


@attrs.define
class PrivateServer:
    """A PostgreSQL cluster in a temporary directory, for this module alone."""

    bin: Path
    data: Path
    port: int
    run_as: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        run(self.run_as, [str(self.bin / "pg_ctl"), "-D", str(self.data), "-w",
                          "-t", str(int(WAIT_SECONDS)), *args])  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        self.pg_ctl("-l", str(self.data / "server.log"), "-o", options, "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    def restart(self) -> None:
        """Stop (ending every session, as a restart does) and start again.

        Not ``pg_ctl restart``: it would start the server without the log file, writing
        to whatever pg_ctl's output is.
        """
        self.stop()
        self.start()

    def crash_and_restart(self) -> None:
        """Stop as a crash would (every process ends at once, nothing is cleaned up),
        then start, recovering from the write-ahead log."""
        self.pg_ctl("-m", "immediate", "stop")
        self.start()


def run(run_as: list[str], command: list[str]) -> None:
    """Run a PostgreSQL tool; its output goes to a file, never a pipe.

    The server that ``pg_ctl start`` leaves running inherits pg_ctl's output: a pipe
    would stay open, and waiting for its end would wait for the server to stop.
    """
    with tempfile.TemporaryFile() as output:
        done = subprocess.run([*run_as, *command], stdout=output, stderr=output, check=False)
        if done.returncode != 0:
            output.seek(0)
            text = output.read().decode(errors="replace")[-1000:]
            raise subprocess.CalledProcessError(done.returncode, command, text)


def find_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    found = candidates[0] if candidates else shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateServer]:
    bin_dir = find_bin()
    if bin_dir is None:
        require("no PostgreSQL server binaries (initdb, pg_ctl) are installed")
        raise AssertionError("unreachable")
    root = Path(tempfile.mkdtemp(prefix="forerunner-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    server = PrivateServer(bin=bin_dir, data=data, port=free_port(), run_as=run_as)
    try:
        run(run_as, [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                     "-A", "trust", "--no-sync", "-E", "UTF8"])  # fmt: skip
        server.start()
    except (OSError, subprocess.CalledProcessError) as error:
        shutil.rmtree(root, ignore_errors=True)
        require(
            f"a private PostgreSQL could not be started: {error} {getattr(error, 'output', '')}"
        )
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run(run_as, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def store(server: PrivateServer) -> Iterator[PostgresStore]:
    opened = PostgresStore(f"{server.url}?schema=restart&pool_size=4&pool_timeout=2")
    opened.clear()
    yield opened
    opened.close()


def at(seconds: float) -> dt.datetime:
    import datetime as dt

    return dt.datetime(2024, 1, 2, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def queued(count: int) -> list[Job]:
    return [Job(id=new_id(), type="alpha", data={"n": n}) for n in range(count)]


def wait_until(condition: str, check: object) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {condition}")


def test_a_restart_costs_at_most_one_failed_write(
    server: PrivateServer, store: PostgresStore
) -> None:
    # Given stored jobs, some running
    jobs = queued(20)
    store.add(jobs)
    store.claim([job.id for job in jobs[:5]], "worker-a", at(1), at(30))
    # When the server restarts under the store
    server.restart()
    # Then reads recover at once: the pool drops its dead connections and reconnects
    assert store.get(jobs[0].id) is not None
    assert store.counts() == {("alpha", JobState.RUNNING): 5, ("alpha", JobState.QUEUED): 15}
    # And a write either works or fails whole, naming the store, and the next one works
    batch = [job.id for job in jobs[5:15]]
    outcome = attempt(lambda: store.claim(batch, "worker-b", at(2), at(40)))
    states = {job.id: job.state for job in store.list(limit=100)}
    if isinstance(outcome, BackendUnavailable):
        assert "postgresql://postgres:***@127.0.0.1" in str(outcome)
        assert {states[job_id] for job_id in batch} == {JobState.QUEUED}
        outcome = store.claim(batch, "worker-b", at(2), at(40))
    else:
        assert {states[job_id] for job_id in batch} == {JobState.RUNNING}
    assert [job.id for job in outcome] == batch


def attempt(call: Callable[[], T]) -> T | BackendUnavailable:
    """What ``call`` returned, or the BackendUnavailable it raised."""
    try:
        return call()
    except BackendUnavailable as error:
        return error


def test_a_stopped_server_is_unavailable_until_it_is_back(
    server: PrivateServer, store: PostgresStore
) -> None:
    # Given stored jobs
    jobs = queued(10)
    store.add(jobs)
    # When the server stops
    server.stop()
    try:
        # Then every call fails as unavailable, naming the store (password masked) and
        # the cause
        for call in (lambda: store.get(jobs[0].id), lambda: store.add(queued(3))):
            with pytest.raises(BackendUnavailable) as raised:
                call()
            message = str(raised.value)
            assert f"postgresql://postgres:***@127.0.0.1:{server.port}/postgres" in message
            assert PASSWORD not in message
            assert raised.value.__cause__ is not None
    finally:
        server.start()
    # When it is back, then the same store works again, as soon as its pool has
    # reconnected, and lost nothing
    wait_until("the store to answer again", lambda: answers(store))
    assert [job.id for job in store.queued(100)] == [job.id for job in jobs]


def answers(store: PostgresStore) -> bool:
    try:
        store.counts()
    except BackendUnavailable:
        return False
    return True


def test_a_batch_cut_by_a_server_crash_is_not_half_applied(
    server: PrivateServer, store: PostgresStore
) -> None:
    # Given ten running jobs, the last of which another session holds locked, so that
    # a finish of all ten updates nine and waits for the tenth
    jobs = queued(10)
    store.add(jobs)
    ids = [job.id for job in jobs]
    store.claim(ids, "worker-a", at(1), at(30))
    reports = [
        Report(job_id=job_id, attempt=1, state=JobState.SUCCEEDED, now=at(5), result=n)
        for n, job_id in enumerate(ids)
    ]
    outcome: list[object] = []
    blocker = psycopg.connect(server.url, autocommit=True)
    # pg_stat_activity is read once per transaction: watch from outside the blocker's.
    watcher = psycopg.connect(server.url, autocommit=True)
    try:
        blocker.execute("SET search_path TO restart")
        blocker.execute("BEGIN")
        blocker.execute("SELECT 1 FROM forerunner_jobs WHERE id = %s FOR UPDATE", [ids[-1]])

        def finish() -> None:
            try:
                outcome.append(store.finish(reports))
            except BaseException as error:
                outcome.append(error)

        worker = threading.Thread(target=finish)
        worker.start()

        def finish_waits() -> bool:
            assert not outcome, f"the finish returned before the row was free: {outcome}"
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%%report%%'"
            ).fetchone()
            return bool(row and row[0])

        wait_until("the finish to wait for the locked row", finish_waits)
        # When the server crashes in the middle of that statement, and starts again.
        # (A crash, not a clean restart: a clean one may end the session holding the
        # row first, and let the finish commit before its own session is ended.)
        server.crash_and_restart()
        worker.join(WAIT_SECONDS)
    finally:
        blocker.close()
        watcher.close()
    # Then the finish failed as unavailable, and not one of the ten jobs finished
    assert len(outcome) == 1
    assert isinstance(outcome[0], BackendUnavailable), outcome
    assert store.counts() == {("alpha", JobState.RUNNING): 10}
    # And the same reports apply whole once the server is back
    assert all(job is not None for job in store.finish(reports))
    assert store.counts() == {("alpha", JobState.SUCCEEDED): 10}
