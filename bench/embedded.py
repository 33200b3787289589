"""Throughput and latency of forerunner on the embedded default, as issue 3 asks to record.

Starts ``forerunner manager`` (SQLite store in a temporary directory, ``memory://`` queue)
and one ``forerunner worker`` process running the builtin ``ping`` task, then measures:

- throughput: N no-op jobs submitted in batches of 1,000, until the last one is done;
- latency: jobs submitted one at a time to the idle system, ``started_at - created_at``
  as the store recorded them (enqueue to start), p50 and p99.

Run: ``.venv/bin/python bench/embedded.py [--jobs 10000] [--concurrency 16]``. This is a
measurement, never a test: the numbers are printed, not asserted. The side-by-side
comparison with peer job queues is issue 7's ``bench/``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from forerunner.client import Client
from forerunner.model import JobState


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_healthy(client: Client, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            client.list(limit=1)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-samples", type=int, default=200)
    args = parser.parse_args()

    script = shutil.which("forerunner", path=str(Path(sys.executable).parent)) or "forerunner"
    workdir = Path(tempfile.mkdtemp(prefix="forerunner-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    manager = subprocess.Popen(
        [script, "manager", "--store", f"sqlite:///{workdir / 'jobs.db'}", "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            script,
            "worker",
            "--manager",
            url,
            "--tasks",
            "ping",
            "--concurrency",
            str(args.concurrency),
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        with Client(url) as client:
            wait_healthy(client)
            started = time.perf_counter()
            for first in range(0, args.jobs, 1000):
                batch = [
                    {"type": "ping", "data": i} for i in range(first, min(args.jobs, first + 1000))
                ]
                client.submit_many(batch)
            submitted = time.perf_counter() - started
            # Done when no job is left queued or running.
            while any(
                client.list(state=state, limit=1).jobs
                for state in (JobState.QUEUED, JobState.RUNNING)
            ):
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
            print(
                f"throughput: {args.jobs} ping jobs, 1 worker process (concurrency "
                f"{args.concurrency}), sqlite+memory: {args.jobs / elapsed:,.0f} jobs/s "
                f"({elapsed:.2f} s; submitting took {submitted:.2f} s)"
            )

            latencies = []
            for i in range(args.latency_samples):
                job = client.wait(client.submit("ping", i).id, 10)
                assert job.started_at is not None
                assert job.created_at is not None
                latencies.append((job.started_at - job.created_at).total_seconds() * 1000)
                time.sleep(0.01)
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(
                f"latency (enqueue -> start, idle, {len(latencies)} jobs): "
                f"p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms"
            )
    finally:
        for process in (worker, manager):
            process.terminate()
        for process in (worker, manager):
            process.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
