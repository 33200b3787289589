"""The store and the reference model driven side by side by Hypothesis.

:class:`StoreMachine` applies every operation to the backend and to
:class:`~forerunner_store_tests.model.ReferenceStore` and compares what they return,
jobs field by field. Rules draw job ids and keys from bundles, so operations hit jobs
that exist, ids that were never stored (a duplicate key's id, a purged job) and keys
that repeat; claim, renew, progress and finish also pick among the jobs the model has
in the state they act on, which ids drawn at random would seldom find. Every example
starts with a few jobs, some of them running. The machine owns the clock: a rule
advances it, every other rule passes it as ``now``. Each failure starts with
``[store.model.reference]``, and the minimal program Hypothesis prints is annotated
with the resolved arguments of every step.

Not collected by pytest: ``StoreContract.test_model_reference`` runs it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Final, TypeAlias, TypeVar

from hypothesis import event, note
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from forerunner.ids import new_id
from forerunner.model import Job, JobError, JobState, Report
from forerunner_store_tests import strategies as fs
from forerunner_store_tests.checks import (
    BASE,
    check,
    check_job,
    check_jobs,
    check_same_jobs,
    show,
    show_counts,
    show_ids,
)
from forerunner_store_tests.clauses import message
from forerunner_store_tests.model import Due, ReferenceStore

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from forerunner.model import JSON
    from forerunner.store import Store

__all__ = ["StoreMachine"]

CLAUSE: Final = "store.model.reference"
#: Keys the first jobs of every example draw from, so that they collide at once.
_FIRST_KEYS: Final = ("key-a", "key-b", "ключ-c")
#: A limit larger than any example's job count: "all of them".
_ALL: Final = 10_000
#: Stands, among the senders drawn, for the worker holding the job's attempt.
_HOLDER: Final = "<holder>"
#: Who sends a report or progress: mostly the holder, else no worker or any worker.
_senders: Final[st.SearchStrategy[str | None]] = st.sampled_from(
    (_HOLDER, _HOLDER, _HOLDER, None, *fs.WORKERS)
)

T = TypeVar("T")


#: A report to make: (job id, attempt shift, state, result, error, run_at offset, sender).
_ReportItem: TypeAlias = tuple[str, int, JobState, "JSON", JobError, int, "str | None"]


def _report_items(
    ids: st.SearchStrategy[str], most: int = 3
) -> st.SearchStrategy[list[_ReportItem]]:
    """Reports as (id, attempt shift, state, result, error, run_at offset, sender), one per id."""
    return st.lists(
        st.tuples(
            ids,
            fs.attempt_shifts,
            st.sampled_from(fs.REPORT_STATES),
            fs.json_values,
            fs.errors,
            st.integers(min_value=0, max_value=60),
            _senders,
        ),
        unique_by=lambda item: item[0],
        max_size=most,
    )


class StoreMachine(RuleBasedStateMachine):
    """Drives one store and the reference model with the same operations."""

    job_ids: Bundle[str] = Bundle("job_ids")
    keys: Bundle[str] = Bundle("keys")

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.model = ReferenceStore()
        self.clock = BASE

    @initialize(target=keys)
    def first_keys(self) -> MultipleResults[str]:
        """A few keys for jobs to share."""
        return multiple(*_FIRST_KEYS)

    @initialize(
        target=job_ids,
        drafts=st.lists(fs.drafts(st.sampled_from(_FIRST_KEYS)), max_size=6),
        started=st.integers(min_value=0, max_value=3),
    )
    def start(self, drafts: list[fs.Draft], started: int) -> MultipleResults[str]:
        """Clear both stores, then add a few jobs and start some, so that every example
        begins with work in several states; plus an id no job has."""
        self._call("clear()", self.store.clear)
        self.model.clear()
        ids = self._add(drafts)
        queued = [job.id for job in self.model.queued(started)]
        self._claim(queued, fs.WORKERS[0], 10)
        return multiple(new_id(), *ids)

    @rule(seconds=st.sampled_from((0, 1, 5, 30, 61)), microseconds=st.sampled_from((0, 1)))
    def advance(self, seconds: int, microseconds: int) -> None:
        self.clock += dt.timedelta(seconds=seconds, microseconds=microseconds)
        note(f"clock is now {self.clock.isoformat()}")

    @rule(target=job_ids, drafts=st.lists(fs.drafts(keys), max_size=5))
    def add(self, drafts: list[fs.Draft]) -> MultipleResults[str]:
        return multiple(*self._add(drafts))

    @rule(target=keys, key=fs.new_keys)
    def new_key(self, key: str) -> str:
        return key

    @rule(
        data=st.data(),
        ids=st.lists(job_ids, unique=True, max_size=2),
        worker=st.sampled_from(fs.WORKERS),
        lease=fs.lease_seconds,
    )
    def claim(self, data: st.DataObject, ids: list[str], worker: str, lease: int) -> None:
        """Claim queued jobs mixed with ids of any kind, in any order."""
        mixed = list(dict.fromkeys(self._pick(data, JobState.QUEUED) + ids))
        self._claim(data.draw(st.permutations(mixed), "claim order"), worker, lease)

    @rule(data=st.data(), ids=st.lists(job_ids, unique=True, max_size=2), lease=fs.lease_seconds)
    def renew(self, data: st.DataObject, ids: list[str], lease: int) -> None:
        """Renew running jobs and others, mostly for the worker of one of them."""
        mixed = list(dict.fromkeys(self._pick(data, JobState.RUNNING) + ids))
        holders = sorted({job.worker for job in map(self.model.get, mixed) if job and job.worker})
        workers = st.sampled_from(fs.WORKERS)
        worker = data.draw(st.sampled_from(holders) | workers if holders else workers, "worker")
        self._renew(worker, mixed, lease)

    @rule(
        data=st.data(),
        job_id=job_ids,
        shift=fs.attempt_shifts,
        value=fs.json_values,
        sender=_senders,
    )
    def progress(
        self, data: st.DataObject, job_id: str, shift: int, value: JSON, sender: str | None
    ) -> None:
        """Report progress, mostly on a running job and from the worker holding it."""
        job_id = (self._pick(data, JobState.RUNNING, 1) or [job_id])[0]
        self._progress(job_id, shift, value, self._sender(job_id, sender))

    @rule(data=st.data(), items=_report_items(job_ids, most=1))
    def finish(self, data: st.DataObject, items: list[_ReportItem]) -> None:
        """Report on running jobs, mostly for the attempt they run, and on any other id."""
        running = sorted(job.id for job in self.model.list(JobState.RUNNING, limit=_ALL))
        if running:
            items = data.draw(_report_items(st.sampled_from(running)), "reports") + items
        self._finish(list({item[0]: item for item in items}.values()))

    @rule(limit=fs.limits)
    def reclaim_expired(self, limit: int) -> None:
        what = f"reclaim_expired(now={self._now()}, limit={limit})"
        got = self._call(what, lambda: self.store.reclaim_expired(self.clock, limit))
        chosen = self._chosen(Due.RECLAIM, limit, [job.id for job in got], what)
        check_same_jobs(CLAUSE, got, self.model.reclaim_ids(chosen, self.clock), what)
        event("reclaim_expired: jobs changed", len(got) > 0)

    @rule(limit=fs.limits)
    def promote_due(self, limit: int) -> None:
        what = f"promote_due(now={self._now()}, limit={limit})"
        got = self._call(what, lambda: self.store.promote_due(self.clock, limit))
        chosen = self._chosen(Due.PROMOTE, limit, [job.id for job in got], what)
        check_same_jobs(CLAUSE, got, self.model.promote_ids(chosen), what)
        event("promote_due: jobs changed", len(got) > 0)

    @rule(job_id=job_ids)
    def cancel(self, job_id: str) -> None:
        what = f"cancel({job_id}, now={self._now()})"
        got = self._call(what, lambda: self.store.cancel(job_id, self.clock))
        check_job(CLAUSE, got, self.model.cancel(job_id, self.clock), what)

    @rule(job_id=job_ids)
    def retry(self, job_id: str) -> None:
        what = f"retry({job_id}, now={self._now()})"
        got = self._call(what, lambda: self.store.retry(job_id, self.clock))
        check_job(CLAUSE, got, self.model.retry(job_id, self.clock), what)

    @rule(limit=st.integers(min_value=1, max_value=6), after=st.none() | job_ids)
    def queued(self, limit: int, after: str | None) -> None:
        what = f"queued(limit={limit}, after={after})"
        got = self._call(what, lambda: self.store.queued(limit, after))
        check_jobs(CLAUSE, got, self.model.queued(limit, after), what)

    @rule(
        state=st.none() | st.sampled_from(JobState),
        type=st.none() | st.sampled_from(fs.JOB_TYPES),
        limit=st.integers(min_value=1, max_value=6),
        before=st.none() | job_ids,
        text=st.none() | st.text(alphabet="0123456789abcdef-", min_size=1, max_size=2) | keys,
    )
    def list_jobs(
        self,
        state: JobState | None,
        type: str | None,
        limit: int,
        before: str | None,
        text: str | None,
    ) -> None:
        what = f"list(state={state}, type={type!r}, limit={limit}, before={before}, text={text!r})"
        got = self._call(what, lambda: self.store.list(state, type, limit, before, text))
        check_jobs(CLAUSE, got, self.model.list(state, type, limit, before, text), what)

    @rule(limit=fs.limits, seconds=st.integers(min_value=-30, max_value=30))
    def purge(self, limit: int, seconds: int) -> None:
        before = self.clock + dt.timedelta(seconds=seconds)
        what = f"purge(finished_before=now{seconds:+d}s, limit={limit})"
        got = self._call(what, lambda: self.store.purge(before, limit))
        groups = self.model.due(Due.PURGE, before)
        certain, pool, wanted = _cut(groups, limit)
        check(
            CLAUSE,
            got == len(certain) + wanted,
            f"{what} returned {got!r}, expected {len(certain) + wanted}",
        )
        gone = [job.id for job in pool if self._get(job.id) is None]
        check(
            CLAUSE,
            len(gone) == wanted,
            f"{what} deleted {len(gone)} of the jobs finished at the same time "
            f"{show_ids(job.id for job in pool)}, expected {wanted}",
        )
        self.model.purge_ids([job.id for job in certain] + gone)
        event("purge: jobs deleted", got > 0)
        event("purge: a tie was cut", bool(pool))

    @rule(job_id=job_ids)
    def get(self, job_id: str) -> None:
        check_job(CLAUSE, self._get(job_id), self.model.get(job_id), f"get({job_id})")

    @invariant()
    def counts_agree(self) -> None:
        self._check_counts()

    def _check_counts(self) -> None:
        got = self._call("counts()", self.store.counts)
        want = self.model.counts()
        check(
            CLAUSE,
            dict(got) == want,
            f"counts() is {show_counts(got)}, expected {show_counts(want)}",
        )

    def _chosen(self, kind: Due, limit: int, got: Sequence[str], what: str) -> list[str]:
        """Check the backend chose whole groups earliest first; return the ids it chose."""
        certain, pool, wanted = _cut(self.model.due(kind, self.clock), limit)
        must = {job.id for job in certain}
        may = {job.id for job in pool}
        extra = set(got) - must - may
        check(
            CLAUSE,
            len(got) == len(set(got)) == len(must) + wanted and must <= set(got) and not extra,
            f"{what} changed {show_ids(got)}, expected {show_ids(sorted(must))}"
            + (f" and {wanted} of {show_ids(sorted(may))}" if wanted else ""),
        )
        return list(got)

    def _add(self, drafts: list[fs.Draft]) -> list[str]:
        jobs = [draft.job(new_id(), self.clock) for draft in drafts]
        what = "add([" + ", ".join(f"{show(job)} key={job.key!r}" for job in jobs) + "])"
        got = self._call(what, lambda: self.store.add(jobs))
        want = self.model.add(jobs)
        check_jobs(CLAUSE, got, want, what)
        event("add: a key stood in", any(a.id != b.id for a, b in zip(want, jobs, strict=True)))
        return [job.id for job in jobs]

    def _claim(self, ids: list[str], worker: str, lease: int) -> None:
        lease_until = self.clock + dt.timedelta(seconds=lease)
        what = f"claim({show_ids(ids)}, {worker!r}, now={self._now()}, lease_until=now+{lease}s)"
        got = self._call(what, lambda: self.store.claim(ids, worker, self.clock, lease_until))
        check_jobs(CLAUSE, got, self.model.claim(ids, worker, self.clock, lease_until), what)
        event("claim: jobs started", len(got) > 0)

    def _renew(self, worker: str, ids: list[str], lease: int) -> None:
        lease_until = self.clock + dt.timedelta(seconds=lease)
        what = f"renew({worker!r}, {show_ids(ids)}, lease_until=now+{lease}s)"
        got = self._call(what, lambda: self.store.renew(worker, ids, lease_until))
        want = self.model.renew(worker, ids, lease_until)
        check(
            CLAUSE,
            sorted(got) == sorted(want),
            f"{what} returned {show_ids(got)}, expected {show_ids(want)} in any order",
        )
        event("renew: leases extended", len(want) > 0)

    def _progress(self, job_id: str, shift: int, value: JSON, worker: str | None) -> None:
        attempt = self._attempt(job_id) + shift
        what = f"progress({job_id}, attempt={attempt}, {value!r}, worker={worker!r})"
        got = self._call(what, lambda: self.store.progress(job_id, attempt, value, worker))
        want = self.model.progress(job_id, attempt, value, worker)
        check(CLAUSE, got is want, f"{what} returned {got!r}, expected {want!r}")
        event("progress: recorded", want)

    def _finish(self, items: list[_ReportItem]) -> None:
        reports = [
            Report(
                job_id=job_id,
                attempt=max(1, self._attempt(job_id) + shift),
                state=state,
                now=self.clock,
                result=value if state is JobState.SUCCEEDED else None,
                error=None if state is JobState.SUCCEEDED else error,
                run_at=self.clock + dt.timedelta(seconds=run_in)
                if state is JobState.SCHEDULED
                else None,
                worker=self._sender(job_id, sender),
            )
            for job_id, shift, state, value, error, run_in, sender in items
        ]
        what = "finish([" + ", ".join(_show_report(report) for report in reports) + "])"
        got = self._call(what, lambda: self.store.finish(reports))
        want = self.model.finish(reports)
        check_jobs(CLAUSE, got, want, what)
        for job in want:
            event("finish: applied", None if job is None else job.state.value)

    def _pick(self, data: st.DataObject, state: JobState, most: int = 3) -> list[str]:
        """Ids of jobs in ``state``: the bundles alone would rarely find them."""
        ids = sorted(job.id for job in self.model.list(state, limit=_ALL))
        if not ids:
            return []
        return data.draw(st.lists(st.sampled_from(ids), max_size=most, unique=True), state.value)

    def _get(self, job_id: str) -> Job | None:
        return self._call(f"get({job_id})", lambda: self.store.get(job_id))

    def _sender(self, job_id: str, sender: str | None) -> str | None:
        """The worker a drawn sender stands for: the job's holder, or itself."""
        if sender != _HOLDER:
            return sender
        job = self.model.get(job_id)
        return job.worker if job is not None else None

    def _attempt(self, job_id: str) -> int:
        job = self.model.get(job_id)
        return job.attempt if job is not None else 1

    def _now(self) -> str:
        return self.clock.isoformat()

    def _call(self, what: str, call: Callable[[], T]) -> T:
        note(what)
        try:
            return call()
        except Exception as error:
            raise AssertionError(
                message(CLAUSE, f"{what} raised {type(error).__name__}: {error}")
            ) from error


def _cut(groups: list[list[Job]], limit: int) -> tuple[list[Job], list[Job], int]:
    """Split due groups at ``limit``: jobs that must be taken, the group the limit cuts
    through, and how many of that group must be taken."""
    certain: list[Job] = []
    for group in groups:
        room = limit - len(certain)
        if len(group) <= room:
            certain.extend(group)
            continue
        return certain, group, room
    return certain, [], 0


def _show_report(report: Report) -> str:
    extra = f" run_at={report.run_at.isoformat()}" if report.run_at else ""
    sender = f" from {report.worker!r}" if report.worker is not None else ""
    return f"{report.job_id}@{report.attempt}->{report.state.value}{extra}{sender}"
