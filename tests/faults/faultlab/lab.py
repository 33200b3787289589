"""One fault run: manager and worker processes, the faults done to them, the waiting.

Every process is a real ``forerunner manager`` or ``forerunner worker`` started from the
console script, with its output in a log file of the run (a pipe nobody reads would
block a chatty process). A supervisor thread keeps the number of workers up: a worker
that dies, killed by the lab or by a poison job, is replaced at once, as systemd or
Kubernetes would. The lab remembers which processes a fault cut off (:attr:`Lab.harmed`)
and when the system as a whole was degraded (:attr:`Lab.outages`), because those are the
only excuses the checks accept for a job running more than once.

Every wait has a deadline, and :meth:`Lab.close` kills whatever is still running.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

import attrs
import httpx

from faultlab.ledger import LEDGER_ENV, TASK_MODULE, TASK_MODULE_NAME
from faultlab.services import free_port
from forerunner.client import Client
from forerunner.errors import BackendError, BackendUnavailable
from forerunner.model import JobState
from forerunner.plugins import open_store
from forerunner.wire import MAX_BATCH

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from faultlab.services import Backends
    from forerunner.model import Job
    from forerunner.store import Store

__all__ = ["Lab", "Proc", "RunTimeout"]

#: Seconds a manager may take to answer after it was started.
MANAGER_START: Final = 30.0
#: Seconds a request of the lab's own client keeps retrying a manager that is away.
CLIENT_RETRY: Final = 60.0


class RunTimeout(AssertionError):
    """A run did not reach a state it must reach within its deadline."""


def console_script() -> str:
    found = shutil.which("forerunner", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError(
            f"the forerunner console script is not installed next to {sys.executable}"
        )
    return found


@attrs.define
class Proc:
    """A process of the run and the log file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    urls: list[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


class Lab:
    """The processes of one run and the faults done to them.

    :param lease: the managers' ``--lease``; short, so that a cut-off attempt comes back
        within seconds.
    :param managers: how many managers share the store (and, for Redis, the queue).
    :param clock_offsets: seconds each manager's clock is moved (``--clock-offset``).
    """

    def __init__(
        self,
        root: Path,
        backends: Backends,
        *,
        lease: float = 2.0,
        workers: int = 3,
        concurrency: int = 4,
        grace: float = 10.0,
        managers: int = 1,
        clock_offsets: Sequence[float] = (),
    ) -> None:
        self.root = root
        self.backends = backends
        self.lease = lease
        self.concurrency = concurrency
        self.grace = grace
        self.worker_count = workers
        self.run_id = uuid.uuid4().hex[:8]
        self.ledger = root / "ledger"
        self.ledger.mkdir(parents=True, exist_ok=True)
        self.logs = root / "logs"
        self.logs.mkdir(exist_ok=True)
        (root / f"{TASK_MODULE_NAME}.py").write_text(TASK_MODULE, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORERUNNER_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        env[LEDGER_ENV] = str(self.ledger)
        self.env = env
        self.ports = [free_port() for _ in range(managers)]
        self.offsets = list(clock_offsets) or [0.0] * managers
        self.managers: list[Proc | None] = [None] * managers
        self.workers: list[Proc] = []
        #: Every process the lab started, for :meth:`close`.
        self.started: list[Proc] = []
        #: Pids of workers a fault cut off: killed, frozen, or crashed by a poison job.
        self.harmed: set[int] = set()
        #: Wall-clock windows in which a manager, the store or the queue was away.
        self.outages: list[tuple[float, float]] = []
        #: Workers stopped gracefully, with their exit codes.
        self.retired: list[tuple[Proc, int | None]] = []
        #: Ids of the jobs submitted, in order.
        self.submitted: list[str] = []
        self._keys = 0
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._log_files: list[IO[bytes]] = []
        self._store: Store | None = None

    # Processes

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def _spawn(self, name: str, command: list[str], urls: list[str]) -> Proc:
        log = self.logs / f"{name}.log"
        output = log.open("ab")
        self._log_files.append(output)
        process = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        proc = Proc(name=name, process=process, log=log, urls=urls)
        with self._lock:
            self.started.append(proc)
        return proc

    def start_manager(self, index: int = 0) -> Proc:
        """Start manager ``index`` on its port and wait until it answers."""
        command = [
            console_script(), "manager", "--store", self.backends.store_url,
            "--queue", self.backends.queue_url, "--port", str(self.ports[index]),
            "--lease", str(self.lease),
        ]  # fmt: skip
        if self.offsets[index]:
            command += ["--clock-offset", str(self.offsets[index])]
        proc = self._spawn(f"manager-{index}", command, [self.urls[index]])
        self.managers[index] = proc
        deadline = time.monotonic() + MANAGER_START
        while not _answers(self.urls[index]):
            if not proc.alive():
                raise RunTimeout(f"manager {index} exited:\n{tail(proc.log)}")
            if time.monotonic() > deadline:
                raise RunTimeout(f"manager {index} did not answer:\n{tail(proc.log)}")
            time.sleep(0.05)
        return proc

    def kill_manager(self, index: int = 0) -> None:
        proc = self.managers[index]
        if proc is not None:
            proc.process.kill()
            proc.process.wait(30)
            self.managers[index] = None

    def start_worker(self, urls: Sequence[str] | None = None) -> Proc:
        chosen = list(urls) if urls is not None else self.urls
        command = [console_script(), "worker"]
        for url in chosen:
            command += ["--manager", url]
        command += [
            "--tasks", TASK_MODULE_NAME, "--concurrency", str(self.concurrency),
            "--grace", str(self.grace),
        ]  # fmt: skip
        with self._lock:
            proc = self._spawn(f"worker-{len(self.started)}", command, chosen)
            self.workers.append(proc)
        return proc

    def start_workers(self, urls_for: Callable[[int], Sequence[str]] | None = None) -> None:
        """Start the run's workers, and a supervisor that replaces any that dies."""
        for n in range(self.worker_count):
            self.start_worker(urls_for(n) if urls_for is not None else None)
        self._supervisor = threading.Thread(
            target=self._supervise, name="faultlab-supervisor", daemon=True
        )
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self._closing.wait(0.05):
            with self._lock:
                for proc in list(self.workers):
                    if proc.alive():
                        continue
                    # Died without being retired: whatever it ran was cut off.
                    self.harmed.add(proc.pid)
                    self.workers.remove(proc)
                    if not self._closing.is_set():
                        self.start_worker(proc.urls)

    def _pick(self) -> Proc:
        """A random live worker; the caller holds the lock."""
        alive = [proc for proc in self.workers if proc.alive()]
        if not alive:
            raise RunTimeout(f"no worker is alive:\n{self.diagnostics()}")
        return random.choice(alive)

    def kill_worker(self) -> int:
        """SIGKILL a random worker (the supervisor replaces it); return its pid."""
        with self._lock:
            proc = self._pick()
            self.harmed.add(proc.pid)
            proc.process.kill()
        return proc.pid

    def freeze_worker(self) -> Proc:
        """SIGSTOP a random worker: it holds its jobs, and its leases run out."""
        with self._lock:
            proc = self._pick()
            self.harmed.add(proc.pid)
            proc.process.send_signal(signal.SIGSTOP)
        return proc

    def thaw(self, proc: Proc) -> None:
        proc.process.send_signal(signal.SIGCONT)

    def retire_worker(self) -> tuple[Proc, int | None]:
        """SIGTERM a random worker, wait for it to drain and exit, and start another."""
        with self._lock:
            proc = self._pick()
            self.workers.remove(proc)
        proc.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = proc.process.wait(self.grace + 20)
        except subprocess.TimeoutExpired:
            code = None
        self.retired.append((proc, code))
        self.start_worker(proc.urls)
        return proc, code

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Mark the time inside the block as one in which the system was degraded."""
        began = time.time()
        try:
            yield
        finally:
            self.outages.append((began, time.time()))

    # Jobs

    def client(self, index: int = 0, *, retry_for: float = CLIENT_RETRY) -> Client:
        return Client(self.urls[index], timeout=30.0, retry_for=retry_for)

    def submit(
        self,
        count: int,
        *,
        seconds: float,
        task: str = "work",
        max_attempts: int = 3,
        manager: int = 0,
    ) -> list[str]:
        """Submit ``count`` jobs in batches; each has an idempotency key, so retries are safe."""
        ids: list[str] = []
        with self._lock:
            base, self._keys = self._keys, self._keys + count
        with self.client(manager) as client:
            for first in range(0, count, MAX_BATCH):
                specs = [
                    {
                        "type": task,
                        "data": {"seconds": seconds},
                        "max_attempts": max_attempts,
                        "key": f"{self.run_id}-{base + n}",
                    }
                    for n in range(first, min(count, first + MAX_BATCH))
                ]
                ids += [job.id for job in client.submit_many(specs)]
        with self._lock:
            self.submitted += ids
        return ids

    def counts(self) -> dict[JobState, int]:
        """Jobs by state, read from the store itself; empty while the store is away.

        Straight from the store, not through a manager: the faults take managers away,
        and what a manager reports (``/metrics``, the overview) is cached for seconds,
        which would let a run reach its next fault later than it means to.
        """
        try:
            if self._store is None:
                self._store = open_store(self.backends.store_url)
            found = self._store.counts()
        except BackendError:
            return {}
        counts = dict.fromkeys(JobState, 0)
        for (_, state), number in found.items():
            counts[state] += number
        return counts

    def terminal(self) -> int:
        counts = self.counts()
        return sum(number for state, number in counts.items() if state.terminal)

    def wait_done(self, fraction: float, seconds: float) -> None:
        """Wait until ``fraction`` of the submitted jobs are terminal."""
        goal = fraction * len(self.submitted)
        deadline = time.monotonic() + seconds
        while self.terminal() < goal:
            if time.monotonic() > deadline:
                raise RunTimeout(
                    f"{fraction:.0%} of {len(self.submitted)} jobs were not done within "
                    f"{seconds} s: {self.counts()}"
                )
            time.sleep(0.05)

    def settle(self, seconds: float) -> bool:
        """Wait until every submitted job is terminal; False if some are not in time."""
        deadline = time.monotonic() + seconds
        while self.terminal() < len(self.submitted):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def jobs(self) -> dict[str, Job]:
        """Every job of the store, read through a manager's listing, by id."""
        for index, proc in enumerate(self.managers):
            if proc is None or not proc.alive():
                continue
            found: dict[str, Job] = {}
            with self.client(index) as client:
                before: str | None = None
                while True:
                    page = client.list(limit=MAX_BATCH, before=before)
                    found.update((job.id, job) for job in page.jobs)
                    if page.next is None:
                        return found
                    before = page.next
        raise BackendUnavailable("no manager of the run is alive to list the jobs")

    # Ending

    def close(self) -> None:
        """Kill every process the run started and close their logs."""
        self._closing.set()
        if self._supervisor is not None:
            self._supervisor.join(10)
        with self._lock:
            procs = list(self.started)
        for proc in procs:
            if proc.alive():
                with contextlib.suppress(ProcessLookupError):
                    proc.process.send_signal(signal.SIGCONT)
                    proc.process.kill()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.process.wait(30)
        for output in self._log_files:
            output.close()
        if self._store is not None:
            with contextlib.suppress(BackendError):
                self._store.close()

    def diagnostics(self) -> str:
        """The end of every manager log and of the last worker logs, for a failure message."""
        logs = sorted(self.logs.glob("manager-*.log")) + sorted(self.logs.glob("worker-*.log"))[-3:]
        return "\n".join(f"--- {log.name}\n{tail(log)}" for log in logs)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
