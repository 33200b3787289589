"""The main job: a manager, two worker processes and a batch of real jobs, in one command.

``./dev demo`` runs this with the repository's ``.venv``. Everything lives in a fresh
temporary directory on the embedded default (a sqlite store file and an in-memory
queue), so a second run starts clean. The manager serves on port 2718, or on a free
port when 2718 is taken; the two workers are ``forerunner worker`` processes, as they
would be on other machines. The batch has pings, word counts, a composed pipeline and
one task that always fails, so the run shows a retry with back-off and a failure with
its traceback kept in the store. Exit status 0 when every job ended as it should.

The worker processes import this file as the task module ``demo`` (``--tasks demo``),
which is why its tasks are module-level and the run is under ``__main__``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from forerunner import Client, ConfigurationError, Job, JobState, Manager
from forerunner.compose import compose

#: The port of the README; a free one is used when it is taken.
PORT: Final = 2718
WORKERS: Final = 2
#: Every job of the batch is done well within this; the demo fails past it.
DEADLINE_SECONDS: Final = 60.0

TEXTS: Final = {
    "seed": "Jobs go in, workers take them, results come out.",
    "lease": "A worker holds a job by lease; a lost lease gives the job to another worker.",
    "fence": "A late report from a stale attempt is fenced out: the store keeps one result.",
}

PAGE: Final = """
<html><body>
  <h2>Every fact lives in the store</h2>
  <h2>The queue may be lost and is rebuilt</h2>
</body></html>
"""


def headlines(job_id: str, plucked: dict[str, list[str]]) -> str:
    time.sleep(0.3)  # stands in for real work, long enough for the progress to show
    return "\n".join(plucked["headlines"])


def always_fails(job_id: str, data: Any) -> None:
    raise RuntimeError(f"the {data['service']} service is down")


#: The demo's own tasks, for ``forerunner worker --tasks demo``; the rest are builtin.
TASKS: Final = {
    "headline_words": compose(
        ["progress:plucking", "pluck_data", "progress:counting", headlines, "word_count"],
        name="headline_words",
    ),
    "always_fails": always_fails,
}


def batch() -> list[dict[str, Any]]:
    pings = [{"type": "ping", "data": {"n": n}} for n in range(6)]
    counts = [{"type": "word_count", "data": {"text": text}} for text in TEXTS.values()]
    composed = {
        "type": "headline_words",
        "data": {"html": PAGE, "selectors": {"headlines": "h2"}},
    }
    failing = {"type": "always_fails", "data": {"service": "billing"}, "max_attempts": 2}
    return [*pings, *counts, composed, failing]


def start_manager(store: str) -> Manager:
    """A manager on :data:`PORT`, or on a free port when something else holds it."""
    try:
        return Manager(store, "memory://", port=PORT).start()
    except ConfigurationError:
        print(f"port {PORT} is taken; using a free port")
        return Manager(store, "memory://", port=0).start()


def start_workers(url: str, logs: Path) -> list[subprocess.Popen[bytes]]:
    command = Path(sys.executable).with_name("forerunner")
    tasks = "ping,word_count,pluck_data,demo"
    env = {"PYTHONPATH": str(Path(__file__).resolve().parent)}
    workers = []
    for number in range(WORKERS):
        log = (logs / f"worker-{number}.log").open("wb")
        workers.append(
            subprocess.Popen(
                [command, "worker", "--manager", url, "--tasks", tasks, "--concurrency", "2"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )
        )
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=40)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def show_progress(client: Client, ids: list[str]) -> list[Job]:
    """Print a line whenever the batch's counts by state change; return the final jobs."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    last = ""
    while True:
        jobs = [client.get(job_id) for job_id in ids]
        counts = {state: sum(job.state == state for job in jobs) for state in JobState}
        line = "  ".join(f"{state.value} {n}" for state, n in counts.items() if n)
        if line != last:
            print(f"  [{time.strftime('%H:%M:%S')}] {line}", flush=True)
            last = line
        if all(job.state.terminal for job in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.2)


def summary(job: Job) -> str:
    if job.error is not None:
        return f"{job.error.type}: {job.error.message}"
    result = job.result
    if isinstance(result, dict) and "pong" in result:
        return f"pong {result['pong']}"
    if isinstance(result, dict) and "words" in result:
        top = ", ".join(list(result["counts"])[:3])
        return f"{result['words']} words, {result['unique']} unique; top: {top}"
    return str(result)


def print_table(jobs: list[Job]) -> None:
    print(f"\n{'job':<10} {'type':<15} {'state':<10} {'tries':>5}  result")
    for job in jobs:
        tries = f"{job.attempt}/{job.max_attempts}"
        line = f"{job.id[-8:]:<10} {job.type:<15} {job.state.value:<10} {tries:>5}  {summary(job)}"
        print(line[:110])
    for job in jobs:
        if job.error is not None and job.error.traceback:
            print(f"\nthe store keeps the traceback of {job.type} {job.id[-8:]}; it ends:")
            print("\n".join(job.error.traceback.rstrip().splitlines()[-3:]))


def as_expected(jobs: list[Job]) -> bool:
    """Every job succeeded but the one that always fails, which failed after two tries."""
    return all(
        (job.state == JobState.FAILED and job.attempt == 2)
        if job.type == "always_fails"
        else job.state == JobState.SUCCEEDED
        for job in jobs
    )


def on_retry(job: Job) -> None:
    error = f"{job.error.type}: {job.error.message}" if job.error else "lost"
    print(f"  {job.type} attempt {job.attempt} failed ({error}); retrying after back-off")


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    workdir = Path(tempfile.mkdtemp(prefix="forerunner-demo-"))
    store = f"sqlite:///{workdir}/demo.db"
    manager = start_manager(store)
    manager.on_progress("*", lambda job: print(f"  progress {job.type}: {job.progress}"))
    manager.on_retry("*", on_retry)
    print(f"manager: {manager.url} (store {store}, queue memory://)")
    print(f"API:     {manager.url}/v1/jobs   OpenAPI: {manager.url}/openapi.json")
    workers = start_workers(manager.url, workdir)
    jobs: list[Job] = []
    print(f"workers: {WORKERS} processes, {', '.join(str(w.pid) for w in workers)}")
    try:
        with Client(manager.url) as client:
            ids = [job.id for job in client.submit_many(batch())]
            print(f"submitted {len(ids)} jobs")
            jobs = show_progress(client, ids)
        print_table(jobs)
        print(f"\nAPI address: {manager.url}  (try: curl {manager.url}/v1/jobs)")
    finally:
        stop_workers(workers)
        manager.stop()
        ok = bool(jobs) and as_expected(jobs)
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"worker logs are in {workdir}")
    print("stopped the manager and the workers")
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
