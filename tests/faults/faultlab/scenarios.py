"""The scenarios of issue 6: what each one does to a running system.

A scenario is a record (:class:`Scenario`): the lab it needs (lease, managers, clocks),
the backends it applies to, and an ``inject`` function that submits the jobs and does
the fault while they run. :func:`run` builds everything, runs the scenario, lets the
system settle and counts (:mod:`faultlab.tally`); the tests and ``bench/chaos.py`` call
it with different job counts. Faults start at milestones of the run (a share of the jobs
done), not at fixed times, so a run on a slow machine still has jobs in flight when the
fault hits.
"""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import attrs
import httpx

from faultlab.lab import Lab
from faultlab.ledger import read_ledger
from faultlab.services import postgres_redis, sqlite_memory
from faultlab.tally import tally

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from faultlab.ledger import Execution
    from faultlab.services import Backends
    from faultlab.tally import Tally
    from forerunner.model import Job

__all__ = ["BACKENDS", "SCENARIOS", "Notes", "Outcome", "Scenario", "run"]

BACKENDS: Final = ("sqlite+memory", "postgresql+redis")
#: Seconds one job sleeps: long enough to be in flight when a fault hits.
JOB_SECONDS: Final = 0.02
#: Seconds a milestone may take to come, per thousand jobs (and at least a minute).
PER_THOUSAND: Final = 30.0


@attrs.define
class Notes:
    """What an ``inject`` function saw, for the scenario's own assertions."""

    #: Jobs meant to end failed (poison jobs).
    may_fail: set[str] = attrs.Factory(set)
    #: Anything else worth asserting on, by name.
    seen: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class Outcome:
    """A finished run: the counts, and what they were made from."""

    tally: Tally
    notes: Notes
    lab: Lab
    jobs: Mapping[str, Job]
    executions: Sequence[Execution]
    diagnostics: str

    def explain(self) -> str:
        """The broken promises and the ends of the logs, for an assertion message."""
        return f"{self.tally.verdict()}\n{self.diagnostics}"


@attrs.frozen(kw_only=True)
class Scenario:
    """One fault, on the backends it applies to."""

    #: Short name, used as the test id and the first column of the table.
    name: str
    inject: Callable[[Lab, int], Notes]
    backends: tuple[str, ...] = BACKENDS
    lease: float = 2.0
    managers: int = 1
    clock_offsets: tuple[float, ...] = ()
    #: Which manager URLs worker ``n`` is given, in order (default: all, first first).
    urls_for: Callable[[Lab, int], list[str]] | None = None
    private_redis: bool = False
    private_postgres: bool = False


def _patience(jobs: int) -> float:
    return max(60.0, PER_THOUSAND * jobs / 1000)


# 1. Workers killed at random


def _worker_sigkill(lab: Lab, jobs: int) -> Notes:
    lab.submit(jobs, seconds=JOB_SECONDS, max_attempts=20)
    lab.wait_done(0.1, _patience(jobs))
    deadline = time.monotonic() + _patience(jobs)
    kills = 0
    while lab.terminal() < 0.8 * jobs and time.monotonic() < deadline:
        lab.kill_worker()
        kills += 1
        time.sleep(random.uniform(0.2, 0.5))
    return Notes(seen={"kills": kills})


# 2. A worker frozen past its lease


def _worker_sigstop(lab: Lab, jobs: int) -> Notes:
    lab.submit(jobs, seconds=JOB_SECONDS)
    frozen = []
    for milestone in (0.2, 0.5):
        lab.wait_done(milestone, _patience(jobs))
        proc = lab.freeze_worker()
        frozen.append(proc.pid)
        time.sleep(lab.lease * 2.5)
        lab.thaw(proc)
    return Notes(seen={"frozen": frozen})


# 3. The manager killed and restarted; one of two managers killed


def _manager_sigkill(lab: Lab, jobs: int) -> Notes:
    lab.submit(jobs, seconds=JOB_SECONDS)
    for milestone in (0.3, 0.6):
        lab.wait_done(milestone, _patience(jobs))
        with lab.outage():
            lab.kill_manager(0)
            time.sleep(1.0)
            lab.start_manager(0)
    return Notes()


def _manager_failover(lab: Lab, jobs: int) -> Notes:
    lab.submit(jobs, seconds=JOB_SECONDS)
    lab.wait_done(0.3, _patience(jobs))
    with lab.outage():
        lab.kill_manager(0)
        # The workers notice at their next poll and turn to the other manager.
        time.sleep(lab.lease)
    return Notes()


# 4. Redis flushed, then restarted


def _redis_flush_restart(lab: Lab, jobs: int) -> Notes:
    redis = lab.backends.redis
    assert redis is not None, "the scenario needs a private Redis"
    lab.submit(jobs, seconds=JOB_SECONDS)
    lab.wait_done(0.25, _patience(jobs))
    with lab.outage():
        redis.flushdb()
    lab.wait_done(0.5, _patience(jobs))
    with lab.outage():
        redis.restart()
    return Notes()


# 5. PostgreSQL restarted


def _postgres_restart(lab: Lab, jobs: int) -> Notes:
    postgres = lab.backends.postgres
    assert postgres is not None, "the scenario needs a private PostgreSQL"
    first = jobs // 2
    lab.submit(first, seconds=JOB_SECONDS)
    lab.wait_done(0.3 * first / jobs, _patience(jobs))
    notes = Notes()
    with lab.outage():
        postgres.stop()
        # A submit during the outage answers 503 with a body saying why.
        answer = httpx.post(
            f"{lab.urls[0]}/v1/jobs",
            json={"type": "work", "data": {"seconds": JOB_SECONDS}, "key": "outage-probe"},
            timeout=30.0,
        )
        notes.seen["outage_answer"] = (answer.status_code, answer.json())
        # The rest is submitted by a client that retries with back-off.
        late = threading.Thread(
            target=lab.submit, args=(jobs - first,), kwargs={"seconds": JOB_SECONDS}
        )
        late.start()
        time.sleep(3.0)
        postgres.start()
    late.join(_patience(jobs))
    notes.seen["late_submit_done"] = not late.is_alive()
    return notes


# 6. Graceful shutdown under load


def _graceful_sigterm(lab: Lab, jobs: int) -> Notes:
    lab.submit(jobs, seconds=JOB_SECONDS * 2.5)
    for milestone in (0.2, 0.4, 0.6):
        lab.wait_done(milestone, _patience(jobs))
        lab.retire_worker()
    return Notes()


# 7. A poison job


POISON: Final = 3


def _poison(lab: Lab, jobs: int) -> Notes:
    """Poison jobs spread through the stream, among jobs with attempts to spare.

    A worker that dies takes every attempt it held, not only the poison's: the jobs
    beside it lose one too, so they get five attempts to the poison's three.
    """
    notes = Notes()
    chunk = (jobs - POISON) // (POISON + 1)
    for _ in range(POISON):
        lab.submit(chunk, seconds=JOB_SECONDS, max_attempts=5)
        notes.may_fail.update(lab.submit(1, seconds=0, task="poison", max_attempts=3))
    lab.submit(jobs - POISON - POISON * chunk, seconds=JOB_SECONDS, max_attempts=5)
    return notes


# 8. Managers whose clocks disagree


def _clock_skew(lab: Lab, jobs: int) -> Notes:
    half = jobs // 2
    lab.submit(half, seconds=JOB_SECONDS, manager=0)
    lab.submit(jobs - half, seconds=JOB_SECONDS, manager=1)
    return Notes()


def _alternate(lab: Lab, n: int) -> list[str]:
    """Worker ``n`` polls manager ``n % 2`` first: both managers hand out work."""
    urls = lab.urls
    return urls[n % len(urls) :] + urls[: n % len(urls)]


SCENARIOS: Final = (
    Scenario(name="worker-sigkill", inject=_worker_sigkill),
    Scenario(name="worker-sigstop", inject=_worker_sigstop),
    Scenario(name="manager-sigkill", inject=_manager_sigkill),
    Scenario(name="manager-failover", inject=_manager_failover, managers=2),
    Scenario(
        name="redis-flush-restart",
        inject=_redis_flush_restart,
        backends=("postgresql+redis",),
        private_redis=True,
    ),
    Scenario(
        name="postgres-restart",
        inject=_postgres_restart,
        backends=("postgresql+redis",),
        private_postgres=True,
    ),
    # Nothing is cut off here, so nothing waits for a lease: a long one keeps a slow
    # poll on a loaded machine from passing for a wasted attempt.
    Scenario(name="graceful-sigterm", inject=_graceful_sigterm, lease=10.0),
    Scenario(name="poison-job", inject=_poison),
    # Leases are judged by the clock of the manager that reaps; with clocks 4 s apart a
    # lease must outlast the renewal interval (a third of it) plus 4 s: 10 s does.
    Scenario(
        name="clock-skew",
        inject=_clock_skew,
        managers=2,
        clock_offsets=(2.0, -2.0),
        lease=10.0,
        urls_for=_alternate,
    ),
)


def backends_for(scenario: Scenario, label: str, root: Path) -> Backends:
    if label == "sqlite+memory":
        return sqlite_memory(root)
    return postgres_redis(
        root, private_redis=scenario.private_redis, private_postgres=scenario.private_postgres
    )


def run(scenario: Scenario, label: str, root: Path, jobs: int) -> Outcome:
    """Run ``scenario`` on the backends ``label`` with ``jobs`` jobs, in directory ``root``.

    Raises :class:`~faultlab.services.ServiceMissing` when a service is not there.
    """
    backends = backends_for(scenario, label, root)
    try:
        lab = Lab(
            root,
            backends,
            lease=scenario.lease,
            managers=scenario.managers,
            clock_offsets=scenario.clock_offsets,
        )
        try:
            began = time.monotonic()
            for index in range(scenario.managers):
                lab.start_manager(index)
            urls_for = scenario.urls_for
            lab.start_workers(None if urls_for is None else (lambda n: urls_for(lab, n)))
            notes = scenario.inject(lab, jobs)
            lab.settle(_patience(len(lab.submitted)))
            seconds = time.monotonic() - began
            jobs_now = lab.jobs()
            executions = read_ledger(lab.ledger)
            counted = tally(
                lab, scenario.name, jobs_now, executions, seconds=seconds, may_fail=notes.may_fail
            )
            return Outcome(
                tally=counted,
                notes=notes,
                lab=lab,
                jobs=jobs_now,
                executions=executions,
                diagnostics=lab.diagnostics() if counted.problems else "",
            )
        finally:
            lab.close()
    finally:
        backends.close()
