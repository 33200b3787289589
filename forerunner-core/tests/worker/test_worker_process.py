"""``forerunner worker`` as a real process: crashes, graceful stops, manager restarts.

Covers: a worker killed with SIGKILL mid-job -> the job runs again on another worker
after its lease and succeeds exactly once; a worker frozen with SIGSTOP past its lease
and resumed -> its late report is fenced out and the re-run's outcome stands; the
manager process killed with SIGKILL mid-run and restarted on its SQLite store -> no job
lost; SIGTERM -> the running job finishes, is reported, and the process exits 0; a
second SIGINT -> it exits without waiting; ``--processes`` runs jobs in child processes
and kills one past its timeout; the manager restarted on the same store while the
worker runs -> the worker reconnects and runs new jobs. ``--tasks`` names a module
with a ``TASKS`` mapping, written into a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from forerunner.client import Client
from forerunner.manager import Manager
from forerunner.model import JobState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    Spawn = Callable[..., subprocess.Popen[str]]

TASKS = '''
import os, time
from pathlib import Path

def once_slow(job_id, data):
    """The first run announces itself and hangs; later runs return at once."""
    runs = Path(data["runs"])
    with runs.open("a") as out:
        out.write(f"{os.getpid()}\\n")
    if len(runs.read_text().split()) == 1:
        time.sleep(60)
    return {"pid": os.getpid()}

def nap(job_id, data):
    Path(data["started"]).write_text("yes")
    time.sleep(data["seconds"])
    return "rested"

def frozen_once(job_id, data):
    """The first run takes a while, long enough to be frozen past its lease."""
    runs = Path(data["runs"])
    with runs.open("a") as out:
        out.write(f"start {os.getpid()}\\n")
    if runs.read_text().count("start") == 1:
        time.sleep(data["seconds"])
    with runs.open("a") as out:
        out.write(f"end {os.getpid()}\\n")
    return {"pid": os.getpid()}

def ping(job_id, data):
    return data

def short_nap(job_id, data):
    time.sleep(data)
    return job_id

def whoami(job_id, data):
    return os.getpid()

def spin(job_id, data):
    while True:
        pass

TASKS = {
    "whoami": whoami,
    "spin": spin,
    "once_slow": once_slow,
    "frozen_once": frozen_once,
    "nap": nap,
    "ping": ping,
    "short_nap": short_nap,
}
'''


def console_script() -> str:
    found = shutil.which("forerunner", path=str(Path(sys.executable).parent))
    assert found, f"the forerunner console script is not installed next to {sys.executable}"
    return found


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start ``forerunner worker`` processes serving the test task module; kill leftovers."""
    (tmp_path / "proc_tasks.py").write_text(textwrap.dedent(TASKS), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORERUNNER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    processes: list[subprocess.Popen[str]] = []

    def start(url: str, *extra: str) -> subprocess.Popen[str]:
        command = [console_script(), "worker", "--manager", url]
        process = subprocess.Popen(
            [*command, "--tasks", "proc_tasks", "--concurrency", "2", *extra],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_job_of_a_killed_worker_runs_again_after_its_lease_and_succeeds_once(
    tmp_path: Path, spawn: Spawn
) -> None:
    runs = tmp_path / "runs.txt"
    with (
        Manager("memory://", "memory://", port=0, lease=1.0) as manager,
        Client(manager.url) as client,
    ):
        # Given a job running on a worker process
        first = spawn(manager.url)
        job = client.submit("once_slow", {"runs": str(runs)})
        wait_for(lambda: runs.exists() and len(runs.read_text().split()) == 1)
        # When that process is killed mid-job and another worker starts
        first.kill()
        first.wait(10)
        second = spawn(manager.url)
        # Then the job runs again after its lease and succeeds, on the second worker
        done = client.wait(job.id, 20)
        assert done.state is JobState.SUCCEEDED
        assert done.attempt == 2
        assert done.result == {"pid": second.pid}
        assert runs.read_text().split() == [str(first.pid), str(second.pid)]
        stored = manager.store.get(job.id)
        assert stored is not None
        assert (stored.state, stored.attempt) == (JobState.SUCCEEDED, 2)


def test_sigterm_finishes_the_running_job_then_exits(tmp_path: Path, spawn: Spawn) -> None:
    started = tmp_path / "started"
    with Manager("memory://", "memory://", port=0) as manager, Client(manager.url) as client:
        worker = spawn(manager.url, "--grace", "10")
        job = client.submit("nap", {"started": str(started), "seconds": 0.5})
        wait_for(started.exists)

        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=15)

        assert worker.returncode == 0, stderr
        done = client.get(job.id)
        assert (done.state, done.result) == (JobState.SUCCEEDED, "rested")


def test_worker_reconnects_after_the_manager_restarts(tmp_path: Path, spawn: Spawn) -> None:
    store = f"sqlite:///{tmp_path / 'jobs.db'}"
    manager = Manager(store, "memory://", port=0).start()
    port = manager.port
    try:
        spawn(manager.url)
        with Client(manager.url) as client:
            assert client.wait(client.submit("ping", 1).id, 10).state is JobState.SUCCEEDED
        # When the manager goes away and comes back on the same port and store
        manager.stop()
        time.sleep(0.5)
        manager = Manager(store, "memory://", port=port).start()
        # Then the worker finds it again and runs the next job
        with Client(manager.url) as client:
            done = client.wait(client.submit("ping", 2).id, 20)
            assert (done.state, done.result) == (JobState.SUCCEEDED, 2)
    finally:
        manager.stop()


def test_sigterm_exits_after_the_grace_period_leaving_a_stuck_job_to_its_lease(
    tmp_path: Path, spawn: Spawn
) -> None:
    started = tmp_path / "started"
    with Manager("memory://", "memory://", port=0) as manager, Client(manager.url) as client:
        worker = spawn(manager.url, "--grace", "0.2")
        job = client.submit("nap", {"started": str(started), "seconds": 60})
        wait_for(started.exists)

        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=15)

        assert worker.returncode == 0, stderr
        assert "grace period" in stderr
        assert client.get(job.id).state is JobState.RUNNING


def test_second_sigint_exits_without_waiting_for_the_running_job(
    tmp_path: Path, spawn: Spawn
) -> None:
    started = tmp_path / "started"
    with Manager("memory://", "memory://", port=0) as manager, Client(manager.url) as client:
        # Given a worker with a long grace period running a job that takes a minute
        worker = spawn(manager.url, "--grace", "60")
        job = client.submit("nap", {"started": str(started), "seconds": 60})
        wait_for(started.exists)
        # When Ctrl-C is pressed once, the worker waits for the job
        worker.send_signal(signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):
            worker.wait(1)
        # And when it is pressed again, the worker exits at once
        worker.send_signal(signal.SIGINT)
        _, stderr = worker.communicate(timeout=15)

        assert worker.returncode == 0, stderr
        assert "again" in stderr
        assert client.get(job.id).state is JobState.RUNNING


def test_processes_run_jobs_in_children_and_kill_one_past_its_timeout(spawn: Spawn) -> None:
    with Manager("memory://", "memory://", port=0) as manager, Client(manager.url) as client:
        # Given a worker running its jobs in two child processes
        worker = spawn(manager.url, "--processes", "2", "--concurrency", "2")
        # When a CPU-bound job runs past its timeout
        spun = client.submit("spin", timeout=1.0, max_attempts=1)
        # Then its child is killed and the job fails with Timeout
        failed = client.wait(spun.id, 30)
        assert failed.state is JobState.FAILED
        assert failed.error is not None
        assert failed.error.type == "Timeout"
        # And the worker goes on, running jobs in processes other than its own
        pids = {client.wait(client.submit("whoami").id, 30).result for _ in range(4)}
        assert worker.pid not in pids
        assert all(isinstance(pid, int) for pid in pids)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=15)
        assert worker.returncode == 0, stderr


def test_late_report_of_a_resumed_worker_is_fenced_out(tmp_path: Path, spawn: Spawn) -> None:
    runs = tmp_path / "runs.txt"
    with (
        Manager("memory://", "memory://", port=0, lease=1.0) as manager,
        Client(manager.url) as client,
    ):
        # Given a job whose first run is frozen (SIGSTOP) past its lease
        frozen = spawn(manager.url)
        job = client.submit("frozen_once", {"runs": str(runs), "seconds": 3})
        wait_for(lambda: runs.exists() and runs.read_text().count("start") == 1)
        frozen.send_signal(signal.SIGSTOP)
        # When another worker re-runs it after the lease, and the frozen one resumes
        second = spawn(manager.url)
        done = client.wait(job.id, 20)
        frozen.send_signal(signal.SIGCONT)
        wait_for(lambda: runs.read_text().count(f"end {frozen.pid}") == 1, seconds=15)
        # Then the late report of attempt 1 changed nothing: the re-run's outcome stands
        time.sleep(1.0)
        stored = manager.store.get(job.id)
        assert stored is not None
        assert (done.state, done.attempt, done.result) == (
            JobState.SUCCEEDED,
            2,
            {"pid": second.pid},
        )
        assert (stored.state, stored.attempt, stored.result) == (
            done.state,
            done.attempt,
            done.result,
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_manager_killed_mid_run_and_restarted_loses_no_job(tmp_path: Path, spawn: Spawn) -> None:
    store = f"sqlite:///{tmp_path / 'jobs.db'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def start_manager() -> subprocess.Popen[str]:
        command = [console_script(), "manager", "--store", store, "--port", str(port)]
        # The manager logs a line per job event: into a file, since a pipe nobody reads
        # would fill and stall it.
        with (tmp_path / "manager.log").open("a") as log:
            process = subprocess.Popen(
                [*command, "--lease", "1"], stdout=subprocess.DEVNULL, stderr=log, text=True
            )
        wait_for(lambda: _answers(url), seconds=20)
        return process

    manager = start_manager()
    try:
        spawn(url)
        spawn(url)
        with Client(url) as client:
            # Given 200 jobs under way
            jobs = client.submit_many([{"type": "short_nap", "data": 0.02} for _ in range(200)])
            wait_for(lambda: client.list(state=JobState.SUCCEEDED, limit=1000).jobs != [])
            # When the manager is killed with SIGKILL and started again on the same store
            manager.kill()
            manager.communicate(timeout=10)
            manager = start_manager()
            # Then every job succeeds: the queue is rebuilt and lost leases come back
            for job in jobs:
                done = client.wait(job.id, 60)
                assert (done.state, done.result) == (JobState.SUCCEEDED, job.id)
    finally:
        manager.kill()
        manager.communicate(timeout=10)


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
