"""One-shot batch mode: an embedded manager, N worker processes, one batch of jobs.

The successor of the seed's forerunner-standalone. Everything runs on the same
machinery as a long-lived deployment (real HTTP on 127.0.0.1, real worker processes,
the sqlite store), so a batch that works here works on a cluster. Jobs are watched
through the embedded manager's store rather than over HTTP: the parent holds the
store already, and reading it costs no round trip per job.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import msgspec

from forerunner.client import Client
from forerunner.credentials import TOKEN_ENV
from forerunner.errors import ConfigurationError, ValidationError
from forerunner.manager.auth import Tokens
from forerunner.manager.server import Manager
from forerunner.model import JobState
from forerunner.wire import JobSpec

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from forerunner.model import Job

__all__ = ["BatchOptions", "load_specs", "result_rows", "run_batch", "write_results"]

#: Seconds between two looks at the store while jobs run.
_POLL: Final = 0.05
#: Seconds between two progress lines when stderr is not a terminal.
_PLAIN_EVERY: Final = 5.0
#: Seconds a worker gets to exit after SIGTERM before it is killed.
_STOP_GRACE: Final = 30.0


class BatchOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How to run a batch; ``store`` None means a sqlite file in a temporary directory."""

    tasks: str
    workers: int = 1
    concurrency: int = 4
    store: str | None = None


def load_specs(path: Path) -> list[JobSpec]:
    """Read JOBS.json, a JSON list of job specs, validated as the HTTP API would."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ValidationError(f"{path}: cannot read: {error.strerror or error}") from error
    try:
        items = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValidationError(f"{path}: not valid JSON: {error}") from error
    if not isinstance(items, list) or not items:
        raise ValidationError(f"{path}: expected a non-empty JSON list of job specs")
    specs = []
    for index, item in enumerate(items):
        try:
            specs.append(msgspec.convert(item, JobSpec))
        except msgspec.ValidationError as error:
            raise ValidationError(f"{path}: job {index}: {error}") from error
    return specs


def run_batch(specs: Sequence[JobSpec], options: BatchOptions, progress: TextIO) -> list[Job]:
    """Run every job to a terminal state; return them in the order of ``specs``."""
    with tempfile.TemporaryDirectory(prefix="forerunner-run-") as scratch:
        store = options.store or f"sqlite:///{Path(scratch) / 'jobs.db'}"
        # The batch's own tokens, made for this run and gone with it: the manager listens
        # on loopback, where any local user could otherwise take or report its jobs.
        client_token, worker_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        tokens = Tokens.from_mapping({"client": [client_token], "worker": [worker_token]})
        manager = Manager(store, "memory://", host="127.0.0.1", port=0, tokens=tokens).start()
        workers: list[subprocess.Popen[bytes]] = []
        try:
            workers = [
                _spawn_worker(manager.url, options, worker_token) for _ in range(options.workers)
            ]
            with Client(manager.url, token=client_token) as client:
                ids = [job.id for job in client.submit_many(specs)]
            return _watch(manager, ids, workers, _Progress(progress, len(ids)))
        finally:
            _stop(workers)
            manager.stop()


def result_rows(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """RESULTS.json: one row per job, aligned with JOBS.json."""
    return [
        {
            "id": job.id,
            "type": job.type,
            "state": str(job.state),
            "result": job.result,
            "error": _error_json(job),
            "attempt": job.attempt,
        }
        for job in jobs
    ]


def write_results(path: Path, jobs: Sequence[Job]) -> None:
    """Write RESULTS.json whole or not at all, so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result_rows(jobs), indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def _error_json(job: Job) -> dict[str, str | None] | None:
    if job.error is None:
        return None
    return {
        "type": job.error.type,
        "message": job.error.message,
        "traceback": job.error.traceback,
    }


def _spawn_worker(url: str, options: BatchOptions, token: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "forerunner",
        "worker",
        "--manager",
        url,
        "--tasks",
        options.tasks,
        "--concurrency",
        str(options.concurrency),
    ]
    # The token goes through the environment: the command line shows in `ps`.
    env = {**os.environ, TOKEN_ENV: token}
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, env=env)


def _watch(
    manager: Manager,
    ids: Sequence[str],
    workers: Sequence[subprocess.Popen[bytes]],
    progress: _Progress,
) -> list[Job]:
    """Wait until every job is terminal; fail rather than hang when no worker is left."""
    done: dict[str, Job] = {}
    pending = list(ids)
    while True:
        still = []
        for job_id in pending:
            job = manager.store.get(job_id)
            if job is not None and job.state.terminal:
                done[job_id] = job
            else:
                still.append(job_id)
        pending = still
        progress.show(done.values())
        if not pending:
            progress.close()
            return [done[job_id] for job_id in ids]
        if all(worker.poll() is not None for worker in workers):
            progress.close()
            codes = ", ".join(str(worker.returncode) for worker in workers)
            # Workers that all exit are nearly always misconfigured (a --tasks module
            # that does not import): exit 2 with the usage errors, not 3, which says the
            # manager could not be reached.
            raise ConfigurationError(
                f"every worker process exited (codes {codes}) with {len(pending)} jobs unfinished"
            )
        time.sleep(_POLL)


def _stop(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every worker, then wait; kill those that outlive the grace period."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE
    for worker in workers:
        try:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


class _Progress:
    """A counter on stderr: redrawn in place on a terminal, a line now and then otherwise."""

    def __init__(self, out: TextIO, total: int) -> None:
        self._out = out
        self._total = total
        self._tty = out.isatty()
        self._last = ""
        self._last_plain = float("-inf")

    def show(self, finished: Collection[Job]) -> None:
        failed = sum(1 for job in finished if job.state is not JobState.SUCCEEDED)
        line = f"forerunner run: {len(finished)}/{self._total} done, {failed} not succeeded"
        if line == self._last:
            return
        self._last = line
        if self._tty:
            self._out.write("\r" + line)
            self._out.flush()
        elif time.monotonic() - self._last_plain >= _PLAIN_EVERY or len(finished) == self._total:
            self._last_plain = time.monotonic()
            self._out.write(line + "\n")
            self._out.flush()

    def close(self) -> None:
        if self._tty:
            self._out.write("\n")
            self._out.flush()
