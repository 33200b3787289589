"""The store contract as tests: one test per clause of :mod:`forerunner_store_tests.clauses`.

``StoreContract`` has no ``Test`` prefix, so pytest collects it only through a subclass:
this package's ``test_contract.py`` (which runs it against ``--forerunner-store URL``)
or a backend author's own ``class TestMyStore(StoreContract)`` that overrides the
``forerunner_store_factory`` fixture. The class and test names are public API: a test
is named for its clause (``store.claim.skips`` is ``test_claim_skips``), so ``pytest
-k`` selects a clause and renaming one breaks every subclasser.

Every time is an offset from a fixed base (:data:`~forerunner_store_tests.checks.BASE`),
never the clock; ids come from :func:`forerunner.ids.new_id`, so they are valid UUIDv7
text that sorts in the order the test made them. Tests set jobs up by adding them in
the state they need, since ``add`` stores a job as given. They skip only for a
capability the store declares it lacks (``durable``, ``shared``), or, for the clauses
that start processes, when there is no URL to hand them; never because a service does
not answer.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import TYPE_CHECKING, Final, cast

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from forerunner.ids import new_id
from forerunner.model import TERMINAL_STATES, Job, JobError, JobState, Report
from forerunner_store_tests import _processes
from forerunner_store_tests.checks import (
    LEASE_EXPIRED,
    at,
    check,
    check_job,
    check_jobs,
    check_same_jobs,
    diff_json,
    make_job,
    make_jobs,
    present,
    show,
    show_counts,
    show_ids,
)
from forerunner_store_tests.stateful import StoreMachine

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from forerunner.model import JSON
    from forerunner.store import Store

__all__ = ["EDGE_VALUES", "StoreContract"]


def _nested(depth: int) -> JSON:
    value: JSON = "bottom"
    for _ in range(depth):
        value = {"d": [value]}
    return value


#: JSON values every store must hand back exactly, by what they probe. A string with
#: NUL is included on purpose: JSON allows ``"\u0000"``, so a store must keep it
#: (PostgreSQL's ``jsonb`` cannot; store JSON as ``json`` or text there).
EDGE_VALUES: Final[dict[str, JSON]] = {
    "empty string": "",
    "accented": "héllo wörld",
    "emoji": "emoji 🎉🧪 and a family 👩\u200d👩\u200d👧",
    "CJK": "漢字 かな カナ 한국어",
    "right to left": "עברית العربية",
    "NUL inside a string": "before\u0000after",
    "escapes": 'quote " backslash \\ slash / newline \n tab \t',
    "control characters": "\x01\x1f\x7f",
    "the string null": "null",
    "max int64": 2**63 - 1,
    "min int64": -(2**63),
    "int beyond 64 bits": 2**100,
    "negative int beyond 64 bits": -(2**100),
    "zero": 0,
    "float 0.1": 0.1,
    "float 1e308": 1e308,
    "negative zero": -0.0,
    "smallest subnormal": 5e-324,
    "float that looks whole": 2.0,
    "true": True,
    "false": False,
    "null": None,
    "empty list": [],
    "empty object": {},
    "mixed list": [1, 1.0, "1", True, None, [], {}],
    "nested": {"a": [1, {"b": [None, True, {"c": "d"}]}], "": "empty key", "ключ": ["ü", 1.5]},
    "32 levels deep": _nested(32),
    "1 MiB string": ("0123456789abcdé漢🎉" * (2**20 // 16 + 1))[: 2**20],
}

#: Jobs for the concurrency clauses: enough for claims to overlap on two cores.
THREAD_JOBS: Final = 200
THREADS: Final = 8
PROCESS_JOBS: Final = 100
PROCESSES: Final = 4
#: How long to wait for a child process or thread: seconds on a loaded machine.
CHILD_SECONDS: Final = 120.0

_EAST: Final = dt.timezone(dt.timedelta(hours=9), "UTC+9")
_WEST: Final = dt.timezone(-dt.timedelta(hours=5, minutes=30), "UTC-5:30")


def _require_shared(store: Store, url: str | None) -> str:
    if not type(store).shared:
        pytest.skip(
            f"{type(store).__qualname__}.shared is False: other processes do not see its jobs"
        )
    if url is None:
        pytest.skip(
            "no store URL for child processes to open: pass --forerunner-store URL, or "
            "override the forerunner_store_url fixture along with forerunner_store_factory"
        )
    return url


def _unchanged(clause: str, store: Store, jobs: Sequence[Job], context: str) -> None:
    for job in jobs:
        check_job(clause, store.get(job.id), job, f"{context}: get({job.id}) afterwards")


class StoreContract:
    """Every clause of the store contract; subclass it to certify a store.

    Tests use the ``forerunner_store`` fixture (the store under test, empty) and, where
    a second handle is needed, ``forerunner_store_factory``; a subclass overrides only
    the factory (and ``forerunner_store_url`` for the multi-process clauses).
    """

    def test_add_returns(self, forerunner_store: Store) -> None:
        clause = "store.add.returns"
        # Given jobs of several types and states, not in id order
        jobs = [
            make_job(JobState.QUEUED, type="alpha", data=[1, 2]),
            make_job(JobState.SCHEDULED, type="beta", priority=-7),
            make_job(JobState.RUNNING, type="gamma"),
            make_job(JobState.SUCCEEDED, type="alpha", data=None),
        ][::-1]
        # When they are added in one batch, then one more alone
        got = forerunner_store.add(jobs)
        single = make_job(type="delta")
        got_single = forerunner_store.add([single])
        # Then each comes back as given, in input order
        check_jobs(clause, got, jobs, "add(4 jobs)")
        check_jobs(clause, got_single, [single], "add(1 job)")

    def test_add_get(self, forerunner_store: Store) -> None:
        clause = "store.add.get"
        # Given a job with every field set, a job with every optional field unset, and
        # one job in each state
        full = make_job(
            JobState.RUNNING,
            type="every.field",
            data={"x": [1, "two", 3.5]},
            priority=2**31,
            attempt=2,
            max_attempts=5,
            key="ключ-full",
            run_at=at(-20, microseconds=3),
            timeout=12.5,
            created_at=at(-30, microseconds=1),
            progress={"done": 3, "of": 7},
            result=["partial"],
            error=JobError(type="OSError", message="disk full", traceback="Traceback\n  ..."),
        )
        bare = Job(id=new_id(), type="bare")
        each_state = [make_job(state, type=f"state-{state.value}") for state in JobState]
        jobs = [full, bare, *each_state]
        # When they are added
        forerunner_store.add(jobs)
        # Then get returns each exactly as added
        for job in jobs:
            check_job(clause, forerunner_store.get(job.id), job, f"get({job.id}) after add")

    def test_add_key(self, forerunner_store: Store) -> None:
        clause = "store.add.key"
        # Given stored jobs with keys, one of them already finished
        first = make_job(key="k-1", data="first")
        second = make_job(key="k-2", data="second")
        done = make_job(JobState.SUCCEEDED, key="k-done")
        forerunner_store.add([first, second, done])
        # When a batch repeats stored keys and repeats a new key within itself
        again = make_job(key="k-1", data="again", type="other")
        unkeyed = make_job(data="no key")
        new = make_job(key="k-3", data="new")
        new_again = make_job(key="k-3", data="new again")
        other_state = make_job(JobState.SCHEDULED, key="k-2")
        done_again = make_job(key="k-done")
        got = forerunner_store.add([again, unkeyed, new, new_again, other_state, done_again])
        # Then the existing job stands in for each repeat, and no repeat is inserted
        check_jobs(
            clause,
            got,
            [first, unkeyed, new, new, second, done],
            "add([k-1 again, no key, k-3, k-3 again, k-2 again, k-done again])",
        )
        for repeat in (again, new_again, other_state, done_again):
            check(
                clause,
                forerunner_store.get(repeat.id) is None,
                f"the repeat of key {repeat.key!r} was inserted as {repeat.id}",
            )
        total = sum(forerunner_store.counts().values())
        check(clause, total == 5, f"counts() totals {total} jobs, expected 5")

    def test_get_unknown(self, forerunner_store: Store) -> None:
        clause = "store.get.unknown"
        # Given an empty store, then one with a job
        missing = new_id()
        check(clause, forerunner_store.get(missing) is None, f"get({missing}) on an empty store")
        forerunner_store.add([make_job()])
        # When an id that was never added is asked for, then the answer is None
        missing = new_id()
        got = forerunner_store.get(missing)
        check(clause, got is None, f"get({missing}) returned {show(got)}")

    def test_data_roundtrip(self, forerunner_store: Store) -> None:
        clause = "store.data.roundtrip"
        # Given one job per edge value, carried in data
        jobs = {name: make_job(data=value, type="edge") for name, value in EDGE_VALUES.items()}
        added = forerunner_store.add(list(jobs.values()))
        for (name, value), job in zip(EDGE_VALUES.items(), added, strict=True):
            _check_json(clause, job.data, value, f"{name}: data returned by add")
        ids = [job.id for job in jobs.values()]
        claimed = forerunner_store.claim(ids, "worker-a", at(1), at(60))
        check(clause, len(claimed) == len(ids), f"claim returned {len(claimed)} of {len(ids)}")
        # When the value is also reported as progress, read, then reported as the result
        for name, value in EDGE_VALUES.items():
            job = jobs[name]
            recorded = forerunner_store.progress(job.id, 1, value)
            check(clause, recorded, f"{name}: progress(attempt 1) of a running job returned False")
            running = present(clause, forerunner_store.get(job.id), f"{name}: get({job.id})")
            _check_json(clause, running.data, value, f"{name}: data")
            _check_json(clause, running.progress, value, f"{name}: progress")
        reports = [
            Report(job_id=job.id, attempt=1, state=JobState.SUCCEEDED, now=at(2), result=value)
            for job, value in zip(jobs.values(), EDGE_VALUES.values(), strict=True)
        ]
        finished = forerunner_store.finish(reports)
        # Then data, progress and result come back exactly
        for (name, value), job, done in zip(
            EDGE_VALUES.items(), jobs.values(), finished, strict=True
        ):
            returned = present(clause, done, f"{name}: finish of a running job")
            _check_json(clause, returned.result, value, f"{name}: result returned by finish")
            stored = present(clause, forerunner_store.get(job.id), f"{name}: get({job.id})")
            _check_json(clause, stored.result, value, f"{name}: result")
            _check_json(clause, stored.data, value, f"{name}: data after finish")
        # And error texts come back exactly, with and without a traceback
        texts = {name: value for name, value in EDGE_VALUES.items() if isinstance(value, str)}
        failing = make_jobs(len(texts), JobState.RUNNING, type="edge-error")
        forerunner_store.add(failing)
        errors = [
            JobError(type=f"Error{i}", message=text, traceback=text if i % 2 else None)
            for i, text in enumerate(texts.values())
        ]
        forerunner_store.finish(
            [
                Report(job_id=job.id, attempt=1, state=JobState.FAILED, now=at(3), error=error)
                for job, error in zip(failing, errors, strict=True)
            ]
        )
        for name, job, error in zip(texts, failing, errors, strict=True):
            failed = attrs.evolve(
                job, state=JobState.FAILED, error=error, finished_at=at(3), lease_until=None
            )
            check_job(clause, forerunner_store.get(job.id), failed, f"{name} as error texts")

    def test_times_utc(self, forerunner_store: Store) -> None:
        clause = "store.times.utc"
        # Given jobs whose times use every microsecond digit
        job = make_job(created_at=at(0, microseconds=999_999))
        other = make_job(created_at=at(0, microseconds=1))
        run_at = at(5, microseconds=123_456)
        scheduled = make_job(JobState.SCHEDULED, run_at=run_at)
        forerunner_store.add([job, other, scheduled])
        # When operations are given times in other timezones than UTC
        started, lease = at(1, microseconds=7), at(30, microseconds=3)
        claimed = forerunner_store.claim(
            [job.id, other.id], "worker-a", started.astimezone(_EAST), lease.astimezone(_WEST)
        )
        expected = [
            attrs.evolve(
                each,
                state=JobState.RUNNING,
                attempt=1,
                worker="worker-a",
                started_at=started,
                lease_until=lease,
            )
            for each in (job, other)
        ]
        # Then they come back as the same instants, in UTC, to the microsecond
        check_jobs(clause, claimed, expected, "claim(now in UTC+9, lease_until in UTC-5:30)")
        for each in expected:
            check_job(clause, forerunner_store.get(each.id), each, "get after claim")
        renewed_lease = at(40, microseconds=9)
        forerunner_store.renew("worker-a", [job.id, other.id], renewed_lease.astimezone(_EAST))
        check_job(
            clause,
            forerunner_store.get(job.id),
            attrs.evolve(expected[0], lease_until=renewed_lease),
            "get after renew(lease_until in UTC+9)",
        )
        # And the store compares instants, not clock readings of different zones
        live = forerunner_store.reclaim_expired(renewed_lease.astimezone(_WEST), 10)
        check(
            clause, live == [], f"reclaim_expired(now == the lease, in UTC-5:30) took {_ids(live)}"
        )
        lost = forerunner_store.reclaim_expired(
            (renewed_lease + dt.timedelta(microseconds=1)).astimezone(_WEST), 10
        )
        check(
            clause,
            sorted(j.id for j in lost) == sorted([job.id, other.id]),
            f"reclaim_expired(now 1 µs after the lease, in UTC-5:30) took {_ids(lost)}",
        )
        not_yet = forerunner_store.promote_due(
            (run_at - dt.timedelta(microseconds=1)).astimezone(_EAST), 10
        )
        check(
            clause,
            not_yet == [],
            f"promote_due(now 1 µs before run_at, UTC+9) took {_ids(not_yet)}",
        )
        due = forerunner_store.promote_due(run_at.astimezone(_WEST), 10)
        check(
            clause, [j.id for j in due] == [scheduled.id], f"promote_due(run_at) took {_ids(due)}"
        )
        cancelled_at = at(50, microseconds=500_001)
        got = forerunner_store.cancel(scheduled.id, cancelled_at.astimezone(_WEST))
        check_job(
            clause,
            got,
            attrs.evolve(scheduled, state=JobState.CANCELLED, finished_at=cancelled_at),
            "cancel(now in UTC-5:30)",
        )
        purged = forerunner_store.purge(cancelled_at.astimezone(_EAST), 10)
        check(clause, purged == 0, f"purge(finished_before == finished_at) deleted {purged}")
        purged = forerunner_store.purge(
            (cancelled_at + dt.timedelta(microseconds=1)).astimezone(_EAST), 10
        )
        check(clause, purged == 1, f"purge(1 µs after finished_at, UTC+9) deleted {purged}")

    def test_batch_empty(self, forerunner_store: Store) -> None:
        clause = "store.batch.empty"
        # Given an empty store, then one holding a queued and a running job
        for setting, jobs in (
            ("an empty store", []),
            ("a store with jobs", [make_job(), make_job(JobState.RUNNING)]),
        ):
            forerunner_store.add(jobs)
            # When each batch method is given an empty batch
            answers: dict[str, Sequence[object]] = {
                "add([])": forerunner_store.add([]),
                "claim([])": forerunner_store.claim([], "worker-a", at(1), at(30)),
                "renew([])": forerunner_store.renew("worker-a", [], at(30)),
                "finish([])": forerunner_store.finish([]),
            }
            # Then each returns an empty list and changes nothing
            for call, answer in answers.items():
                check(clause, list(answer) == [], f"{call} on {setting} returned {answer!r}")
            _unchanged(clause, forerunner_store, jobs, f"empty batches on {setting}")

    def test_claim_queued(self, forerunner_store: Store) -> None:
        clause = "store.claim.queued"
        # Given queued jobs, one of them back after a failed attempt that had reported
        # progress
        fresh, other = make_jobs(2)
        again = make_job(
            attempt=1,
            worker="worker-a",
            started_at=at(-50),
            progress={"step": 3},
            error=JobError(type="ValueError", message="first attempt failed"),
        )
        forerunner_store.add([fresh, other, again])
        # When they are claimed in an order that is not id order
        now, lease = at(100), at(130)
        got = forerunner_store.claim([again.id, fresh.id, other.id], "worker-b", now, lease)
        # Then each is running the next attempt for the worker, returned in that order
        expected = [
            attrs.evolve(
                job,
                state=JobState.RUNNING,
                attempt=job.attempt + 1,
                worker="worker-b",
                started_at=now,
                lease_until=lease,
                progress=None,
            )
            for job in (again, fresh, other)
        ]
        check_jobs(clause, got, expected, "claim([again, fresh, other])")
        _unchanged(clause, forerunner_store, expected, "claim")

    def test_claim_skips(self, forerunner_store: Store) -> None:
        clause = "store.claim.skips"
        # Given one job in each state, a running one held by another worker
        jobs = {state: make_job(state, type=f"state-{state.value}") for state in JobState}
        forerunner_store.add(list(jobs.values()))
        # When every id and an unknown one are claimed
        unknown = new_id()
        got = forerunner_store.claim(
            [unknown, *(job.id for job in jobs.values())], "worker-b", at(100), at(130)
        )
        # Then only the queued job is claimed, and the others are unchanged
        queued = jobs[JobState.QUEUED]
        check(
            clause,
            [job.id for job in got] == [queued.id],
            f"claim returned {_ids(got)}, expected only the queued {queued.id}",
        )
        others = [job for state, job in jobs.items() if state is not JobState.QUEUED]
        _unchanged(clause, forerunner_store, others, "claim of jobs that are not queued")
        check(clause, forerunner_store.get(unknown) is None, "claim of an unknown id created it")

    def test_claim_once_threads(self, forerunner_store: Store) -> None:
        clause = "store.claim.once.threads"
        # Given many queued jobs
        jobs = make_jobs(THREAD_JOBS)
        forerunner_store.add(jobs)
        ids = [job.id for job in jobs]
        start = threading.Barrier(THREADS)
        won: dict[str, list[tuple[str, int]]] = {}
        failures: list[BaseException] = []

        def claim_all(worker: str) -> None:
            order = random.Random(worker).sample(ids, len(ids))
            try:
                start.wait(CHILD_SECONDS)
                for first in range(0, len(order), 25):
                    batch = order[first : first + 25]
                    claimed = forerunner_store.claim(batch, worker, at(1), at(60))
                    won.setdefault(worker, []).extend((job.id, job.attempt) for job in claimed)
            except BaseException as error:
                failures.append(error)

        # When threads claim all of them at once, each in its own shuffled order
        threads = [
            threading.Thread(target=claim_all, args=(f"worker-{n}",), name=f"claim-{n}")
            for n in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(CHILD_SECONDS)
        check(clause, not any(t.is_alive() for t in threads), "a claiming thread never returned")
        if failures:
            raise failures[0]
        # Then every job is won by exactly one claim, as its first attempt
        _check_one_winner(clause, forerunner_store, ids, won, "threads")

    def test_claim_once_processes(
        self, forerunner_store: Store, forerunner_store_url: str | None
    ) -> None:
        clause = "store.claim.once.processes"
        url = _require_shared(forerunner_store, forerunner_store_url)
        # Given queued jobs in a store other processes can open
        jobs = make_jobs(PROCESS_JOBS)
        forerunner_store.add(jobs)
        ids = [job.id for job in jobs]
        won: dict[str, list[tuple[str, int]]] = {}
        # When processes open the store and claim all of them at once
        with _processes.Children(clause) as children:
            start = children.context.Barrier(PROCESSES)
            for n in range(PROCESSES):
                children.start(
                    _processes.claim_in_batches, url, (f"worker-{n}", ids, at(1), at(60)), start
                )
            for n in range(PROCESSES):
                claimed: list[tuple[str, int]] = children.receive(CHILD_SECONDS, "claiming")
                won[f"process {n}"] = claimed
        # Then every job is won by exactly one claim, as its first attempt
        _check_one_winner(clause, forerunner_store, ids, won, "processes")

    def test_renew_own(self, forerunner_store: Store) -> None:
        clause = "store.renew.own"
        # Given jobs running for a worker, one whose lease has passed but was not reclaimed
        first, second = make_jobs(2, JobState.RUNNING)
        overdue = make_job(JobState.RUNNING, lease_until=at(-100))
        not_asked = make_job(JobState.RUNNING)
        forerunner_store.add([first, second, overdue, not_asked])
        # When the worker renews them
        renewed = forerunner_store.renew("worker-a", [overdue.id, first.id, second.id], at(90))
        # Then they are returned and their leases extended, and nothing else changes
        asked = {first.id, second.id, overdue.id}
        check(
            clause,
            sorted(renewed) == sorted(asked),
            f"renew returned {show_ids(renewed)}, expected {show_ids(sorted(asked))}",
        )
        expected = [attrs.evolve(job, lease_until=at(90)) for job in (first, second, overdue)]
        _unchanged(clause, forerunner_store, [*expected, not_asked], "renew")

    def test_renew_others(self, forerunner_store: Store) -> None:
        clause = "store.renew.others"
        # Given jobs the worker does not hold: running for another worker, or finished,
        # cancelled or queued after the worker held them
        jobs = [
            make_job(JobState.RUNNING, worker="worker-b"),
            make_job(JobState.QUEUED, attempt=1, worker="worker-a", started_at=at(1)),
            make_job(JobState.SCHEDULED),
            make_job(JobState.SUCCEEDED),
            make_job(JobState.FAILED),
            make_job(JobState.CANCELLED, attempt=1, worker="worker-a", started_at=at(1)),
        ]
        forerunner_store.add(jobs)
        # When the worker renews them and an unknown id
        renewed = forerunner_store.renew("worker-a", [new_id(), *(j.id for j in jobs)], at(90))
        # Then none is returned or changed
        check(clause, renewed == [], f"renew returned {show_ids(renewed)}, expected none")
        _unchanged(clause, forerunner_store, jobs, "renew of jobs the worker does not hold")

    def test_progress_fenced(self, forerunner_store: Store) -> None:
        clause = "store.progress.fenced"
        # Given a job running its second attempt, and jobs that are not running
        running = make_job(JobState.RUNNING, attempt=2, progress={"pct": 10})
        requeued = make_job(JobState.QUEUED, attempt=1, progress={"pct": 99})
        finished = make_job(JobState.SUCCEEDED)
        forerunner_store.add([running, requeued, finished])
        # When the current attempt reports progress, it is recorded, the latest winning
        for value in ({"pct": 50}, {"pct": 75}, None, "done soon"):
            recorded = forerunner_store.progress(running.id, 2, value)
            check(clause, recorded is True, f"progress(attempt 2, {value!r}) returned {recorded!r}")
            running = attrs.evolve(running, progress=value)
            check_job(clause, forerunner_store.get(running.id), running, f"after {value!r}")
        # When other attempts, other jobs and unknown ids report, nothing is recorded
        for job, attempt in (
            (running, 1),
            (running, 3),
            (requeued, 1),
            (requeued, 2),
            (finished, 1),
        ):
            recorded = forerunner_store.progress(job.id, attempt, {"pct": -1})
            check(
                clause,
                recorded is False,
                f"progress({job.state.value} job at attempt {job.attempt}, attempt={attempt}) "
                f"returned {recorded!r}",
            )
        missing = forerunner_store.progress(new_id(), 1, {"pct": -1})
        check(clause, missing is False, f"progress(unknown id) returned {missing!r}")
        _unchanged(clause, forerunner_store, [running, requeued, finished], "fenced progress")

    def test_progress_owner(self, forerunner_store: Store) -> None:
        clause = "store.progress.owner"
        # Given a job running its second attempt for worker-a
        job = make_job(JobState.RUNNING, attempt=2, worker="worker-a", progress={"pct": 10})
        forerunner_store.add([job])
        # When other workers report progress on that very attempt, nothing is recorded
        for intruder in ("worker-b", "worker-a ", "WORKER-A", ""):
            recorded = forerunner_store.progress(job.id, 2, {"pct": -1}, worker=intruder)
            check(
                clause,
                recorded is False,
                f"progress(attempt 2, worker={intruder!r}) on a job running for 'worker-a' "
                f"returned {recorded!r}",
            )
        _unchanged(clause, forerunner_store, [job], "progress from other workers")
        # When the holder reports, and then a caller that names no worker, both are recorded
        for worker, value in (("worker-a", {"pct": 50}), (None, {"pct": 60})):
            recorded = forerunner_store.progress(job.id, 2, value, worker=worker)
            check(
                clause,
                recorded is True,
                f"progress(attempt 2, worker={worker!r}) on a job running for 'worker-a' "
                f"returned {recorded!r}",
            )
            job = attrs.evolve(job, progress=value)
            check_job(clause, forerunner_store.get(job.id), job, f"after worker={worker!r}")

    def test_finish_succeeded(self, forerunner_store: Store) -> None:
        clause = "store.finish.succeeded"
        # Given a job running its second attempt after the first failed
        job = make_job(
            JobState.RUNNING,
            attempt=2,
            error=JobError(type="ValueError", message="attempt 1 failed"),
        )
        forerunner_store.add([job])
        # When the attempt reports success
        report = Report(
            job_id=job.id, attempt=2, state=JobState.SUCCEEDED, now=at(20), result={"answer": 42}
        )
        got = forerunner_store.finish([report])
        # Then the job succeeded with the result, and keeps the attempt's worker and start
        expected = attrs.evolve(
            job,
            state=JobState.SUCCEEDED,
            result={"answer": 42},
            finished_at=at(20),
            lease_until=None,
            error=None,
        )
        check_jobs(clause, got, [expected], "finish([succeeded])")
        _unchanged(clause, forerunner_store, [expected], "finish([succeeded])")

    def test_finish_failed(self, forerunner_store: Store) -> None:
        clause = "store.finish.failed"
        # Given a running job
        job = make_job(JobState.RUNNING, attempt=3, max_attempts=3)
        forerunner_store.add([job])
        # When the attempt reports failure
        error = JobError(type="KeyError", message="'missing'", traceback="Traceback\n  KeyError")
        got = forerunner_store.finish(
            [Report(job_id=job.id, attempt=3, state=JobState.FAILED, now=at(20), error=error)]
        )
        # Then the job failed with the error, and keeps the attempt's worker and start
        expected = attrs.evolve(
            job, state=JobState.FAILED, error=error, finished_at=at(20), lease_until=None
        )
        check_jobs(clause, got, [expected], "finish([failed])")
        _unchanged(clause, forerunner_store, [expected], "finish([failed])")

    def test_finish_retry(self, forerunner_store: Store) -> None:
        clause = "store.finish.retry"
        # Given two running jobs, the second after a failed first attempt
        now_job = make_job(JobState.RUNNING)
        earlier = JobError(type="ValueError", message="attempt 1 failed")
        later_job = make_job(JobState.RUNNING, attempt=2, error=earlier)
        forerunner_store.add([now_job, later_job])
        # When one attempt asks to run again now with its error, the other later without
        error = JobError(type="TimeoutError", message="took too long")
        got = forerunner_store.finish(
            [
                Report(
                    job_id=now_job.id, attempt=1, state=JobState.QUEUED, now=at(20), error=error
                ),
                Report(
                    job_id=later_job.id,
                    attempt=2,
                    state=JobState.SCHEDULED,
                    now=at(20),
                    run_at=at(300),
                ),
            ]
        )
        # Then one is queued, the other scheduled at run_at; both keep an error and drop
        # the lease
        expected = [
            attrs.evolve(now_job, state=JobState.QUEUED, error=error, lease_until=None),
            attrs.evolve(
                later_job, state=JobState.SCHEDULED, run_at=at(300), error=earlier, lease_until=None
            ),
        ]
        check_jobs(clause, got, expected, "finish([queued with error, scheduled without])")
        _unchanged(clause, forerunner_store, expected, "finish([queued, scheduled])")

    def test_finish_fenced(self, forerunner_store: Store) -> None:
        clause = "store.finish.fenced"
        # Given a job running its second attempt, jobs no longer running, and a job
        # cancelled while it ran
        running = make_job(JobState.RUNNING, attempt=2)
        requeued = make_job(JobState.QUEUED, attempt=1, worker="worker-a", started_at=at(1))
        finished = make_job(JobState.SUCCEEDED)
        cancelled = make_job(JobState.RUNNING)
        forerunner_store.add([running, requeued, finished, cancelled])
        cancelled_now = present(
            clause, forerunner_store.cancel(cancelled.id, at(5)), "cancel of a running job"
        )
        # When reports arrive for attempts that are not running
        reports = [
            Report(job_id=running.id, attempt=1, state=JobState.SUCCEEDED, now=at(20)),
            Report(job_id=running.id, attempt=3, state=JobState.FAILED, now=at(20)),
            Report(job_id=requeued.id, attempt=1, state=JobState.SUCCEEDED, now=at(20)),
            Report(job_id=finished.id, attempt=1, state=JobState.FAILED, now=at(20)),
            Report(job_id=cancelled.id, attempt=1, state=JobState.SUCCEEDED, now=at(20)),
            Report(job_id=new_id(), attempt=1, state=JobState.SUCCEEDED, now=at(20)),
        ]
        for report in reports:
            got = forerunner_store.finish([report])
            check(
                clause,
                got == [None],
                f"finish([{report.state.value} for attempt {report.attempt} of {report.job_id}]) "
                f"returned [{', '.join(map(show, got))}], expected [None]",
            )
        _unchanged(
            clause, forerunner_store, [running, requeued, finished, cancelled_now], "fenced reports"
        )
        # When a batch mixes current and stale reports, then only the current apply
        current = Report(job_id=running.id, attempt=2, state=JobState.SUCCEEDED, now=at(30))
        got = forerunner_store.finish([reports[0], current, reports[3]])
        done = attrs.evolve(running, state=JobState.SUCCEEDED, finished_at=at(30), lease_until=None)
        check_jobs(clause, got, [None, done, None], "finish([stale, current, stale])")
        # And a second report for the attempt that already finished is fenced out
        repeat = forerunner_store.finish([attrs.evolve(current, state=JobState.FAILED)])
        check(
            clause, repeat == [None], f"a repeated report returned [{', '.join(map(show, repeat))}]"
        )
        _unchanged(clause, forerunner_store, [done], "a repeated report")

    def test_finish_owner(self, forerunner_store: Store) -> None:
        clause = "store.finish.owner"
        # Given jobs running their second attempt for worker-a
        first, second, third = make_jobs(3, JobState.RUNNING, attempt=2, worker="worker-a")
        forerunner_store.add([first, second, third])
        # When other workers report on those very attempts, in every outcome
        for intruder in ("worker-b", "worker-a ", ""):
            for state in (JobState.SUCCEEDED, JobState.FAILED, JobState.QUEUED):
                stray = Report(job_id=first.id, attempt=2, state=state, now=at(20), worker=intruder)
                got = forerunner_store.finish([stray])
                check(
                    clause,
                    got == [None],
                    f"finish([{state.value} for attempt 2 from {intruder!r}]) of a job running "
                    f"for 'worker-a' returned [{', '.join(map(show, got))}], expected [None]",
                )
        # Then nothing changed
        _unchanged(clause, forerunner_store, [first, second, third], "reports from other workers")

        # When another worker's report comes first in a batch, the holder's still applies
        def done(job: Job, result: JSON) -> Job:
            return attrs.evolve(
                job, state=JobState.SUCCEEDED, result=result, finished_at=at(30), lease_until=None
            )

        def success(job: Job, worker: str | None, result: JSON) -> Report:
            return Report(
                job_id=job.id,
                attempt=2,
                state=JobState.SUCCEEDED,
                now=at(30),
                result=result,
                worker=worker,
            )

        got = forerunner_store.finish(
            [success(first, "worker-b", "b"), success(first, "worker-a", "a")]
        )
        check_jobs(clause, got, [None, done(first, "a")], "finish([from worker-b, from worker-a])")
        # And a report naming no worker applies after another worker's, not after the holder's
        got = forerunner_store.finish(
            [success(second, "worker-b", "b"), success(second, None, "-")]
        )
        check_jobs(clause, got, [None, done(second, "-")], "finish([from worker-b, unnamed])")
        got = forerunner_store.finish([success(third, "worker-a", "a"), success(third, None, "-")])
        check_jobs(clause, got, [done(third, "a"), None], "finish([from worker-a, unnamed])")
        _unchanged(
            clause,
            forerunner_store,
            [done(first, "a"), done(second, "-"), done(third, "a")],
            "mixed batches",
        )

    def test_reclaim_requeue(self, forerunner_store: Store) -> None:
        clause = "store.reclaim.requeue"
        # Given running jobs with attempts left, whose leases passed
        first = make_job(JobState.RUNNING, attempt=1, max_attempts=3, lease_until=at(10))
        second = make_job(
            JobState.RUNNING,
            attempt=2,
            max_attempts=3,
            lease_until=at(10),
            error=JobError(type="ValueError", message="attempt 1 failed"),
        )
        forerunner_store.add([first, second])
        # When expired leases are reclaimed
        got = forerunner_store.reclaim_expired(at(11), 10)
        # Then both are queued again with a LeaseExpired error and no lease
        lost = JobError(type=LEASE_EXPIRED, message="any message")
        expected = [
            attrs.evolve(job, state=JobState.QUEUED, error=lost, lease_until=None)
            for job in (first, second)
        ]
        check_same_jobs(clause, got, expected, "reclaim_expired(now after the leases)")
        _unchanged(clause, forerunner_store, expected, "reclaim_expired")

    def test_reclaim_fail(self, forerunner_store: Store) -> None:
        clause = "store.reclaim.fail"
        # Given running jobs on their last attempt, whose leases passed
        last = make_job(JobState.RUNNING, attempt=3, max_attempts=3, lease_until=at(10))
        only = make_job(JobState.RUNNING, attempt=1, max_attempts=1, lease_until=at(10))
        forerunner_store.add([last, only])
        # When expired leases are reclaimed
        got = forerunner_store.reclaim_expired(at(11), 10)
        # Then both failed at that time with a LeaseExpired error
        lost = JobError(type=LEASE_EXPIRED, message="any message")
        expected = [
            attrs.evolve(
                job, state=JobState.FAILED, error=lost, finished_at=at(11), lease_until=None
            )
            for job in (last, only)
        ]
        check_same_jobs(clause, got, expected, "reclaim_expired(now after the leases)")
        _unchanged(clause, forerunner_store, expected, "reclaim_expired")

    def test_reclaim_live(self, forerunner_store: Store) -> None:
        clause = "store.reclaim.live"
        # Given running jobs whose leases end exactly now and a microsecond later
        now = at(10)
        ending = make_job(JobState.RUNNING, lease_until=now)
        later = make_job(JobState.RUNNING, lease_until=now + dt.timedelta(microseconds=1))
        queued = make_job(JobState.QUEUED)
        forerunner_store.add([ending, later, queued])
        # When expired leases are reclaimed now
        got = forerunner_store.reclaim_expired(now, 10)
        # Then none is taken
        check(clause, got == [], f"reclaim_expired took {_ids(got)}")
        _unchanged(clause, forerunner_store, [ending, later, queued], "reclaim_expired")

    def test_reclaim_limit(self, forerunner_store: Store) -> None:
        clause = "store.reclaim.limit"
        # Given expired jobs whose lease order is not their id order
        jobs = [make_job(JobState.RUNNING, lease_until=at(seconds)) for seconds in (4, 1, 5, 2, 3)]
        forerunner_store.add(jobs)
        by_lease = sorted(jobs, key=lambda job: job.lease_until or at())
        # When they are reclaimed in small batches
        taken = [forerunner_store.reclaim_expired(at(100), limit) for limit in (2, 2, 2, 2)]
        # Then each batch holds the earliest leases left, at most limit
        for index, (got, want) in enumerate(
            zip(taken, [by_lease[0:2], by_lease[2:4], by_lease[4:], []], strict=True)
        ):
            check(
                clause,
                sorted(j.id for j in got) == sorted(j.id for j in want),
                f"reclaim_expired(limit=2) call {index + 1} took {_ids(got)}, "
                f"expected {_ids(want)}",
            )

    def test_promote_due(self, forerunner_store: Store) -> None:
        clause = "store.promote.due"
        # Given scheduled jobs due before now, exactly now and a microsecond later, not
        # in id order, and a queued job with an old run_at
        now = at(0)
        offsets = (-1.0, -2.0, 0.0, 0.000001)
        jobs = [make_job(JobState.SCHEDULED, run_at=now + dt.timedelta(seconds=s)) for s in offsets]
        queued = make_job(JobState.QUEUED, run_at=at(-10))
        forerunner_store.add([*jobs, queued])
        # When due jobs are promoted, two at a time
        first = forerunner_store.promote_due(now, 2)
        second = forerunner_store.promote_due(now, 2)
        third = forerunner_store.promote_due(now, 2)
        # Then the earliest come first, each queued and otherwise unchanged
        promoted = {job.id: attrs.evolve(job, state=JobState.QUEUED) for job in jobs}
        minus_two, minus_one, exactly, later = jobs[1], jobs[0], jobs[2], jobs[3]
        check_same_jobs(
            clause, first, [promoted[minus_two.id], promoted[minus_one.id]], "first promote_due"
        )
        check_same_jobs(clause, second, [promoted[exactly.id]], "second promote_due")
        check_same_jobs(clause, third, [], "third promote_due")
        _unchanged(clause, forerunner_store, [later, queued], "promote_due")

    def test_cancel_active(self, forerunner_store: Store) -> None:
        clause = "store.cancel.active"
        # Given a scheduled, a queued and a running job
        jobs = [
            make_job(state) for state in (JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING)
        ]
        forerunner_store.add(jobs)
        # When each is cancelled
        for job in jobs:
            got = forerunner_store.cancel(job.id, at(20))
            # Then it is cancelled at that time, without a lease
            expected = attrs.evolve(
                job, state=JobState.CANCELLED, finished_at=at(20), lease_until=None
            )
            check_job(clause, got, expected, f"cancel of a {job.state.value} job")
            check_job(clause, forerunner_store.get(job.id), expected, "get after cancel")

    def test_cancel_terminal(self, forerunner_store: Store) -> None:
        clause = "store.cancel.terminal"
        # Given one job in each terminal state
        jobs = [make_job(state) for state in sorted(TERMINAL_STATES)]
        forerunner_store.add(jobs)
        # When each is cancelled, then it comes back unchanged
        for job in jobs:
            got = forerunner_store.cancel(job.id, at(20))
            check_job(clause, got, job, f"cancel of a {job.state.value} job")
        _unchanged(clause, forerunner_store, jobs, "cancel of terminal jobs")
        # And an unknown id gives None
        missing = forerunner_store.cancel(new_id(), at(20))
        check(clause, missing is None, f"cancel(unknown id) returned {show(missing)}")

    def test_retry_requeues(self, forerunner_store: Store) -> None:
        clause = "store.retry.requeues"
        # Given a job that failed its last attempt, and jobs cancelled while running and
        # while queued
        error = JobError(type="ValueError", message="attempt 3 failed")
        used_up = make_job(JobState.FAILED, attempt=3, max_attempts=3, error=error, run_at=at(-100))
        while_running = make_job(
            JobState.CANCELLED,
            attempt=1,
            max_attempts=3,
            worker="worker-a",
            started_at=at(1),
            result={"partial": True},
        )
        while_queued = make_job(JobState.CANCELLED, max_attempts=1)
        forerunner_store.add([used_up, while_running, while_queued])
        # When each is retried
        got = [
            forerunner_store.retry(job.id, at(20)) for job in (used_up, while_running, while_queued)
        ]
        # Then each is queued without finish time, result or run_at, with an attempt left
        expected = [
            attrs.evolve(
                job,
                state=JobState.QUEUED,
                finished_at=None,
                result=None,
                run_at=None,
                max_attempts=max(job.max_attempts, job.attempt + 1),
            )
            for job in (used_up, while_running, while_queued)
        ]
        check_jobs(clause, got, expected, "retry of failed and cancelled jobs")
        _unchanged(clause, forerunner_store, expected, "retry")

    def test_retry_others(self, forerunner_store: Store) -> None:
        clause = "store.retry.others"
        # Given a scheduled, a queued, a running and a succeeded job
        states = (JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED)
        jobs = [make_job(state) for state in states]
        forerunner_store.add(jobs)
        # When each is retried, then it comes back unchanged
        for job in jobs:
            check_job(clause, forerunner_store.retry(job.id, at(20)), job, f"retry({job.state})")
        _unchanged(clause, forerunner_store, jobs, "retry of jobs neither failed nor cancelled")
        # And an unknown id gives None
        missing = forerunner_store.retry(new_id(), at(20))
        check(clause, missing is None, f"retry(unknown id) returned {show(missing)}")

    def test_queued_order(self, forerunner_store: Store) -> None:
        clause = "store.queued.order"
        # Given queued jobs among others, added out of id order
        states = [JobState.QUEUED, JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING]
        states += [JobState.QUEUED, JobState.SUCCEEDED, JobState.QUEUED, JobState.QUEUED]
        jobs = [make_job(state, priority=index % 3) for index, state in enumerate(states)]
        forerunner_store.add(random.Random(7).sample(jobs, len(jobs)))
        queued = [job for job in jobs if job.state is JobState.QUEUED]
        # When they are paged through two at a time, then pages follow id order
        after: str | None = None
        for page in range(3):
            got = forerunner_store.queued(2, after)
            check_jobs(clause, got, queued[page * 2 : page * 2 + 2], f"queued(2, after={after})")
            after = got[-1].id if got else after
        check_jobs(clause, forerunner_store.queued(100), queued, "queued(100)")
        # And the cursor may be an id that is not queued
        cursor = jobs[3].id
        check_jobs(
            clause,
            forerunner_store.queued(100, cursor),
            [job for job in queued if job.id > cursor],
            "queued(100, after=a running job's id)",
        )

    def test_list_order(self, forerunner_store: Store) -> None:
        clause = "store.list.order"
        # Given jobs of several states and types, added out of id order
        jobs = [make_job(state, type=f"t{index % 2}") for index, state in enumerate(JobState)]
        forerunner_store.add(random.Random(3).sample(jobs, len(jobs)))
        newest_first = jobs[::-1]
        # When they are listed, then newest come first
        check_jobs(clause, forerunner_store.list(), newest_first, "list()")
        # And paging with before walks through all of them
        before: str | None = None
        for page in range(4):
            got = forerunner_store.list(limit=2, before=before)
            want = newest_first[page * 2 : page * 2 + 2]
            check_jobs(clause, got, want, f"list(limit=2, before={before})")
            before = got[-1].id if got else before

    def test_list_filter(self, forerunner_store: Store) -> None:
        clause = "store.list.filter"
        # Given jobs of two types in several states
        jobs = [
            make_job(state, type=kind)
            for kind in ("alpha", "beta")
            for state in (JobState.QUEUED, JobState.SUCCEEDED, JobState.QUEUED, JobState.FAILED)
        ]
        forerunner_store.add(jobs)
        newest_first = jobs[::-1]
        # When listed by state, by type, or both, then only matching jobs come back
        cases: list[tuple[JobState | None, str | None]] = [
            (JobState.QUEUED, None),
            (None, "beta"),
            (JobState.QUEUED, "alpha"),
            (JobState.FAILED, "beta"),
            (JobState.RUNNING, None),
            (None, "gamma"),
        ]
        for state, kind in cases:
            want = [
                job
                for job in newest_first
                if (state is None or job.state is state) and (kind is None or job.type == kind)
            ]
            got = forerunner_store.list(state=state, type=kind)
            check_jobs(clause, got, want, f"list(state={state}, type={kind!r})")
        # And filters combine with limit and before
        queued_alpha = [j for j in newest_first if j.state is JobState.QUEUED and j.type == "alpha"]
        got = forerunner_store.list(
            state=JobState.QUEUED, type="alpha", limit=1, before=queued_alpha[0].id
        )
        check_jobs(clause, got, queued_alpha[1:2], "list(queued, 'alpha', limit=1, before=...)")

    def test_list_text(self, forerunner_store: Store) -> None:
        clause = "store.list.text"
        # Given jobs with and without keys, keys holding LIKE's wildcards and mixed case
        keys = ["order-17", "Order-18", "invoice-17", None, "50%_off", None]
        jobs = [
            make_job(state, key=key, type=kind)
            for key, state, kind in zip(
                keys, [JobState.QUEUED, JobState.FAILED] * 3, ["alpha", "beta"] * 3, strict=True
            )
        ]
        forerunner_store.add(jobs)
        newest_first = jobs[::-1]
        # When listed by part of a key or an id, then only jobs containing it come back
        cases: list[tuple[str, JobState | None, str | None]] = [
            ("order", None, None),
            ("-17", None, None),
            ("%_", None, None),
            ("_", None, None),
            (jobs[3].id[-6:], None, None),
            (jobs[2].id, None, None),
            ("17", JobState.QUEUED, None),
            ("der", None, "beta"),
            ("nothing-has-this", None, None),
        ]
        for text, state, kind in cases:
            want = [
                job
                for job in newest_first
                if (text in job.id or text in (job.key or ""))
                and (state is None or job.state is state)
                and (kind is None or job.type == kind)
            ]
            got = forerunner_store.list(state=state, type=kind, text=text)
            check_jobs(clause, got, want, f"list(state={state}, type={kind!r}, text={text!r})")
        # And the text search pages with limit and before
        got = forerunner_store.list(text="-1", limit=1, before=jobs[2].id)
        check_jobs(clause, got, [jobs[1]], "list(text='-1', limit=1, before=the third job)")

    def test_counts(self, forerunner_store: Store) -> None:
        clause = "store.counts"
        # Given an empty store, counts are empty
        empty = forerunner_store.counts()
        check(clause, empty == {}, f"counts() of an empty store is {show_counts(empty)}")
        # Given jobs of several types and states
        running = make_job(JobState.RUNNING, type="alpha")
        jobs = [
            *make_jobs(2, JobState.QUEUED, type="alpha"),
            running,
            make_job(JobState.SUCCEEDED, type="beta"),
            make_job(JobState.FAILED, type="γάμμα"),
        ]
        forerunner_store.add(jobs)
        _check_counts(
            clause,
            forerunner_store,
            {
                ("alpha", JobState.QUEUED): 2,
                ("alpha", JobState.RUNNING): 1,
                ("beta", JobState.SUCCEEDED): 1,
                ("γάμμα", JobState.FAILED): 1,
            },
            "after add",
        )
        # When the only running job is cancelled, its count disappears, not becomes 0
        forerunner_store.cancel(running.id, at(20))
        _check_counts(
            clause,
            forerunner_store,
            {
                ("alpha", JobState.QUEUED): 2,
                ("alpha", JobState.CANCELLED): 1,
                ("beta", JobState.SUCCEEDED): 1,
                ("γάμμα", JobState.FAILED): 1,
            },
            "after cancelling the running job",
        )

    def test_purge_terminal(self, forerunner_store: Store) -> None:
        clause = "store.purge.terminal"
        # Given terminal jobs finished at different times, not in id order, and jobs
        # that are not terminal
        old = [
            make_job(JobState.FAILED, finished_at=at(2)),
            make_job(JobState.SUCCEEDED, finished_at=at(1), key="k-purged"),
            make_job(JobState.CANCELLED, finished_at=at(3)),
        ]
        kept = [
            make_job(JobState.SUCCEEDED, finished_at=at(4)),
            make_job(JobState.CANCELLED, finished_at=at(5)),
            make_job(JobState.RUNNING),
            make_job(JobState.QUEUED, finished_at=at(0)),
            make_job(JobState.SCHEDULED),
        ]
        forerunner_store.add([*old, *kept])
        # When jobs finished before at(4) are purged, two at most, then again
        counts = [forerunner_store.purge(at(4), 2) for _ in range(3)]
        # Then the oldest finished go first, and only terminal jobs finished before
        check(clause, counts == [2, 1, 0], f"purge(limit=2) three times returned {counts}")
        oldest_two = [old[1], old[0]]
        for job in oldest_two:
            check(clause, forerunner_store.get(job.id) is None, f"{job.id} was not purged first")
        check(clause, forerunner_store.get(old[2].id) is None, f"{old[2].id} was not purged")
        _unchanged(clause, forerunner_store, kept, "purge")
        # And a purged job's key no longer blocks a new job
        reused = make_job(key="k-purged")
        got = forerunner_store.add([reused])
        check_jobs(clause, got, [reused], "add with the key of a purged job")

    def test_clear_empties(self, forerunner_store: Store) -> None:
        clause = "store.clear.empties"
        # Given jobs in every state, with keys
        jobs = [make_job(state, key=f"k-{state.value}") for state in JobState]
        forerunner_store.add(jobs)
        # When the store is cleared
        forerunner_store.clear()
        # Then no job is left by any way of looking, and keys are free again
        for job in jobs:
            check(clause, forerunner_store.get(job.id) is None, f"get({job.id}) after clear")
        check(clause, forerunner_store.counts() == {}, f"counts() is {forerunner_store.counts()}")
        check(clause, forerunner_store.list() == [], "list() after clear is not empty")
        check(clause, forerunner_store.queued(10) == [], "queued(10) after clear is not empty")
        fresh = make_job(key="k-queued")
        check_jobs(clause, forerunner_store.add([fresh]), [fresh], "add with a key from before")

    def test_shared_visible(
        self, forerunner_store: Store, forerunner_store_url: str | None
    ) -> None:
        clause = "store.shared.visible"
        url = _require_shared(forerunner_store, forerunner_store_url)
        # Given jobs added here
        ours = [make_job(type="ours"), make_job(JobState.SUCCEEDED, type="ours")]
        forerunner_store.add(ours)
        theirs = [make_job(type="theirs"), make_job(JobState.SCHEDULED, type="theirs")]
        # When another process opens the URL, reads ours, adds its own and claims one
        with _processes.Children(clause) as children:
            children.start(
                _processes.visit,
                url,
                [job.id for job in ours],
                theirs,
                (ours[0].id, "worker-z", at(1), at(60)),
            )
            seen, claimed = children.receive(CHILD_SECONDS, "visiting")
        # Then it saw our jobs, and we see its jobs and its claim
        check_jobs(clause, seen, ours, "the other process's get of our jobs")
        check(
            clause,
            len(claimed) == 1,
            f"the other process claimed {_ids(claimed)}",
        )
        for job in theirs:
            check_job(clause, forerunner_store.get(job.id), job, "our get of its jobs")
        claim = attrs.evolve(
            ours[0],
            state=JobState.RUNNING,
            attempt=1,
            worker="worker-z",
            started_at=at(1),
            lease_until=at(60),
        )
        check_job(clause, forerunner_store.get(ours[0].id), claim, "our get of its claim")

    def test_durable_reopen(
        self, forerunner_store: Store, forerunner_store_factory: Callable[[], Store]
    ) -> None:
        clause = "store.durable.reopen"
        if not type(forerunner_store).durable:
            pytest.skip(f"{type(forerunner_store).__qualname__}.durable is False")
        # Given jobs in every state, with keys and edge values, added through one handle
        jobs = [
            make_job(state, key=f"k-{state.value}", data=value, progress=value)
            for state, value in zip(
                JobState,
                ["", 2**100, -0.0, "before\u0000after", {"ключ": [None]}, 5e-324],
                strict=True,
            )
        ]
        first = forerunner_store_factory()
        first.add(jobs)
        counts = first.counts()
        # When it is closed and the same URL opened again
        first.close()
        second = forerunner_store_factory()
        # Then every job, count and key is still there
        for job in jobs:
            check_job(clause, second.get(job.id), job, "get after reopening")
        check_jobs(clause, second.list(limit=100), jobs[::-1], "list() after reopening")
        check(clause, second.counts() == counts, f"counts() {second.counts()}, before {counts}")
        repeat = make_job(key=jobs[0].key)
        check_jobs(clause, second.add([repeat]), [jobs[0]], "add of a stored key after reopening")

    def test_model_reference(self, forerunner_store: Store, pytestconfig: pytest.Config) -> None:
        examples: int = pytestconfig.getoption("forerunner_store_examples")
        # Hypothesis accepts any zero-argument callable here, though it annotates a class.
        machine = cast("type[StoreMachine]", lambda: StoreMachine(forerunner_store))
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=35,
                deadline=None,
                # The explain phase replays the failure under a tracer: minutes on a
                # SQL store, for a report the minimal program already gives.
                phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                suppress_health_check=[
                    HealthCheck.too_slow,
                    HealthCheck.filter_too_much,
                    HealthCheck.data_too_large,
                ],
            ),
        )


def _ids(jobs: Sequence[Job]) -> str:
    return show_ids(job.id for job in jobs)


def _check_json(clause: str, actual: JSON, expected: JSON, context: str) -> None:
    found = diff_json(actual, expected)
    check(clause, found is None, f"{context} differs at {found}")


def _check_counts(
    clause: str, store: Store, expected: dict[tuple[str, JobState], int], context: str
) -> None:
    got = store.counts()
    check(
        clause,
        dict(got) == expected and all(isinstance(n, int) for n in got.values()),
        f"{context}: counts() is {show_counts(got)}, expected {show_counts(expected)}",
    )


def _check_one_winner(
    clause: str,
    store: Store,
    ids: Sequence[str],
    won: dict[str, list[tuple[str, int]]],
    by: str,
) -> None:
    winners: dict[str, list[str]] = {}
    for claimer, claimed in won.items():
        for job_id, attempt in claimed:
            winners.setdefault(job_id, []).append(claimer)
            check(clause, attempt == 1, f"{claimer} claimed {job_id} as attempt {attempt}")
    twice = {job_id: who for job_id, who in winners.items() if len(who) > 1}
    never = [job_id for job_id in ids if job_id not in winners]
    check(
        clause,
        not twice and not never,
        f"of {len(ids)} jobs claimed by {len(won)} {by} at once, {len(twice)} were won more "
        f"than once (e.g. {next(iter(twice.items()), None)}) and {len(never)} never",
    )
    for job_id in ids[:10]:
        job = store.get(job_id)
        check(
            clause,
            job is not None and job.attempt == 1 and job.state is JobState.RUNNING,
            f"get({job_id}) after the claims is {show(job)}",
        )
