"""What every system's bench adapter shares: the command line, the clock, the result line.

Each ``bench/systems/<name>.py`` runs in the system's own virtual environment (peers pin
libraries that conflict: arq wants redis-py 5, the others 8), so this module uses the
standard library only. An adapter subclasses :class:`System`, and its ``main`` calls
:func:`run`, which parses the command line, runs one workload once, and prints one JSON
line on stdout; ``bench/compare.py`` runs adapters, takes medians and writes the table.

The four workloads, the same for every system:

``noop``
    Enqueue ``--jobs`` no-op jobs with no worker running (batch API where the system has
    one; the time is ``enqueue_s``), then start ``--processes`` worker processes. The
    drain is timed from the first completed job the backend shows to the last, so worker
    start-up (one second for some peers) does not count; ``jobs_per_s`` is the jobs
    completed in that window over its length.
``sleep``
    The same with jobs that sleep 10 ms, at ``--concurrency`` (50) in one worker process.
``latency``
    One idle worker process; ``--jobs`` jobs submitted one at a time, ``--rate`` per
    second. Each job's result is the wall-clock time its function started; enqueue to
    start is that minus the wall-clock time just before the enqueue call. p50 and p99.
``backlog``
    ``noop`` again with ``--backlog`` (1,000,000) finished jobs already in the backend,
    written straight into the system's own storage format before the clock starts.

Completion is counted from the backend (a result, a registry entry, a row), never from
logs or from the worker's output, and every run ends with an exact count: a run that
does not complete every job it enqueued is an error, not a number.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

#: Seconds between two looks at the completed count while a drain runs.
POLL = 0.002
#: Seconds a run may last before it is abandoned as stuck.
STUCK = 900.0
#: Seconds a run waits for another run on the same Redis database to end.
LOCK_WAIT = 1800.0


class BenchError(Exception):
    """A run that cannot give a number: a job lost, a worker that would not start."""


class System:
    """One job queue under test. Subclasses fill in the backend-specific methods.

    ``mode`` says how the system is configured (reliability and pool), so the table
    states what was compared. Methods may use ``self.args`` (the parsed command line).
    """

    name = "?"
    mode = "?"

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    # To implement

    def reset(self) -> None:
        """Empty this system's own Redis database or PostgreSQL schema."""
        raise NotImplementedError

    def enqueue(self, count: int, task: str) -> None:
        """Enqueue ``count`` jobs of ``task`` (``noop``, ``sleep`` or ``stamp``)."""
        raise NotImplementedError

    def enqueue_one(self, task: str, index: int) -> Any:
        """Enqueue one job; return whatever :meth:`stamps` needs to find its result."""
        raise NotImplementedError

    def worker_command(self, concurrency: int) -> list[str]:
        """The command that starts one worker process of this system."""
        raise NotImplementedError

    def completed(self) -> int:
        """Jobs the backend shows as completed; cheap, called every few milliseconds."""
        raise NotImplementedError

    def verify(self) -> int:
        """The exact number of completed jobs, counted one by one from the backend."""
        raise NotImplementedError

    def stamps(self, handles: Sequence[Any]) -> list[float]:
        """Start times (``time.time()`` in the job) of the jobs behind ``handles``."""
        raise NotImplementedError

    def fill_backlog(self, rows: int) -> None:
        """Write ``rows`` finished jobs into the backend's own storage."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; called once at the end."""

    # Shared

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        here = os.path.dirname(os.path.abspath(__file__))
        env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def start_workers(self, processes: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
        log = open(os.devnull, "wb") if not self.args.verbose else None  # noqa: SIM115
        return [
            subprocess.Popen(
                self.worker_command(concurrency),
                env=self.env(),
                stdout=log,
                stderr=log,
                start_new_session=True,
                cwd=os.path.dirname(os.path.abspath(__file__)),
            )
            for _ in range(processes)
        ]


def claim_database(db: int, wait: float = LOCK_WAIT) -> IO[str]:
    """Hold Redis database ``db`` for this run: wait while another run holds it.

    Two runs on one database (``bench/compare.py`` beside a test run, say) would flush
    and count each other's jobs, and the error would surface only at the exact count.
    An advisory lock on a file named after the database makes the second run wait
    before it touches anything; closing the file (or the process ending) releases it.
    Worker processes do not inherit it (``Popen`` closes other descriptors).
    """
    path = os.path.join(tempfile.gettempdir(), f"bench-redis-db{db}.lock")
    lock = open(path, "a")  # noqa: SIM115
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                raise BenchError(f"another run held Redis database {db} for {wait:.0f} s") from None
            time.sleep(0.1)


def stop_workers(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    """Stop the workers and everything they started (prefork pools, child processes)."""
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for worker in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def drain(system: System, jobs: int, processes: int, concurrency: int) -> dict[str, Any]:
    """Start the workers on an enqueued backlog of ``jobs`` and time the drain."""
    workers = system.start_workers(processes, concurrency)
    try:
        started = time.monotonic()
        first_at = first_count = None
        done = 0
        while done < jobs:
            now = time.monotonic()
            if now - started > STUCK:
                raise BenchError(f"stuck: {done} of {jobs} jobs completed after {STUCK:.0f} s")
            for worker in workers:
                if worker.poll() is not None:
                    raise BenchError(f"a worker exited with {worker.returncode}")
            done = system.completed()
            if first_at is None and done > 0:
                first_at, first_count = time.monotonic(), done
            time.sleep(POLL)
        finished = time.monotonic()
    finally:
        stop_workers(workers)
    assert first_at is not None
    assert first_count is not None
    verified = system.verify()
    if verified != jobs:
        raise BenchError(f"the backend shows {verified} completed jobs, not {jobs}")
    window = max(finished - first_at, 1e-6)
    return {
        "completed": verified,
        "drain_s": round(window, 4),
        "jobs_per_s": round((jobs - first_count) / window, 1) if jobs > first_count else None,
    }


def latency(system: System, jobs: int, rate: float) -> dict[str, Any]:
    workers = system.start_workers(1, system.args.concurrency)
    try:
        warm = [system.enqueue_one("stamp", -1 - i) for i in range(5)]
        deadline = time.monotonic() + 60
        while system.completed() < len(warm):
            if time.monotonic() > deadline:
                raise BenchError("the worker did not complete the warm-up jobs in 60 s")
            time.sleep(0.01)
        handles, sent = [], []
        gap = 1.0 / rate
        next_at = time.monotonic()
        for index in range(jobs):
            next_at += gap
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sent.append(time.time())
            handles.append(system.enqueue_one("stamp", index))
        deadline = time.monotonic() + 60
        while system.completed() < jobs + len(warm):
            if time.monotonic() > deadline:
                raise BenchError("latency jobs did not complete within 60 s of the last")
            time.sleep(0.01)
        started = system.stamps(handles)
    finally:
        stop_workers(workers)
    waits = sorted((start - at) * 1000 for start, at in zip(started, sent, strict=True))
    return {
        "completed": system.verify() - len(warm),
        "p50_ms": round(statistics.median(waits), 3),
        "p99_ms": round(waits[min(len(waits) - 1, int(len(waits) * 0.99))], 3),
    }


def parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=name, description=f"Bench adapter for {name}.")
    parser.add_argument("workload", choices=["noop", "sleep", "latency", "backlog"])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--rate", type=float, default=50.0, help="latency: jobs per second")
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--pg-url", default="postgresql://root@127.0.0.1:5432/test")
    parser.add_argument("--variant", default="", help="a system-specific configuration")
    parser.add_argument("--verbose", action="store_true", help="show the workers' output")
    return parser


def run(make: type[System], argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run one workload once, print one JSON line."""
    args = parser(make.name).parse_args(argv)
    # Terminated (by compare.py's timeout, or a person), still stop the workers and
    # release the backend: SystemExit runs the finally blocks, a bare SIGTERM would not.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.concurrency is None:
        args.concurrency = 50 if args.workload == "sleep" else 0
    system = make(args)
    result: dict[str, Any] = {
        "system": system.name,
        "variant": args.variant,
        "mode": system.mode,
        "workload": args.workload,
        "jobs": args.jobs,
        "processes": args.processes,
        "concurrency": args.concurrency,
    }
    try:
        system.reset()
        if args.workload == "latency":
            result.update(latency(system, args.jobs, args.rate))
        else:
            if args.workload == "backlog":
                began = time.monotonic()
                system.fill_backlog(args.backlog)
                result["backlog"] = args.backlog
                result["backlog_fill_s"] = round(time.monotonic() - began, 2)
            task = "sleep" if args.workload == "sleep" else "noop"
            began = time.monotonic()
            system.enqueue(args.jobs, task)
            result["enqueue_s"] = round(time.monotonic() - began, 4)
            result["enqueue_per_s"] = round(args.jobs / max(result["enqueue_s"], 1e-6), 1)
            result.update(drain(system, args.jobs, args.processes, args.concurrency))
        system.reset()
    except BenchError as error:
        result["error"] = str(error)
        print(json.dumps(result), flush=True)
        return 1
    finally:
        system.close()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit("run an adapter, e.g. bench/systems/rq_system.py, not this module")
