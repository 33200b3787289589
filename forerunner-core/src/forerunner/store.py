"""The Store interface (design §3): the source of truth for every job.

Synchronous and thread-safe; the manager calls it from a thread pool. Every method
takes the times it needs (``now``, ``lease_until``) and never reads the clock for its
semantics, so the conformance suite controls time exactly. Every mutating method takes
a batch, so a SQL store can do one statement per batch.

Each rule below carries a clause id in brackets. The conformance suite
``forerunner-store-tests`` has one test per clause, named for it, and every failure
message starts with the id: docs/conformance.md is the catalogue.

Fencing: every transition out of ``running`` made on a worker's behalf names the
attempt it is about, and is applied only while the job is running that attempt. A
worker whose lease expired, or whose job was cancelled, cannot overwrite what happened
after. Reports, progress and renewals also name the worker, and apply only to an
attempt leased to it: one worker cannot finish, report on or keep alive another's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence

    from forerunner.model import JSON, Job, JobState, Report

__all__ = ["Migrating", "Store"]


@runtime_checkable
class Store(Protocol):
    """Keeps every job; the only place where a job's state changes."""

    #: True when data survives :meth:`close` and reopening the same URL [store.durable.reopen].
    durable: ClassVar[bool]
    #: True when another process that opens the same URL sees the same jobs
    #: [store.shared.visible]; the suite's multi-process clauses run only then.
    shared: ClassVar[bool]

    def add(self, jobs: Sequence[Job]) -> list[Job]:
        """Insert jobs and return them as stored, one per input, in order [store.add.returns].

        A job whose ``key`` already exists, stored or earlier in the same batch, is not
        inserted: the existing job is returned in its place [store.add.key]. What ``add``
        returns is what :meth:`get` returns later [store.add.get], JSON values and times
        exactly [store.data.roundtrip, store.times.utc].
        """
        ...

    def get(self, job_id: str) -> Job | None:
        """Return the job, or None for an unknown id [store.get.unknown]."""
        ...

    def claim(
        self, job_ids: Sequence[str], worker: str, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Job]:
        """Start each id that is still queued, the only way a job starts.

        Each queued id becomes running with ``attempt + 1``, ``worker``,
        ``started_at=now``, ``lease_until``, and ``progress`` cleared; the claimed jobs are
        returned in the order of ``job_ids`` [store.claim.queued]. Ids unknown or not
        queued are skipped and unchanged [store.claim.skips]. Of concurrent claims of one
        id, from threads [store.claim.once.threads] or processes
        [store.claim.once.processes], exactly one wins.
        """
        ...

    def renew(self, worker: str, job_ids: Sequence[str], lease_until: dt.datetime) -> list[str]:
        """Extend the leases of the ids still running for ``worker`` and return those ids.

        [store.renew.own]; any other id, running for another worker or not running, is
        neither returned nor changed [store.renew.others]. The manager tells the worker to
        abandon the ids missing from the answer.
        """
        ...

    def progress(self, job_id: str, attempt: int, value: JSON, worker: str | None = None) -> bool:
        """Record progress while the job runs ``attempt``; return whether it was.

        [store.progress.fenced]: a late worker's progress must not show on the next attempt.
        Progress naming a ``worker`` other than the one holding the running attempt
        returns False and changes nothing [store.progress.owner]: attempt numbers are
        small and easy to guess, the lease holder is not. ``worker=None`` names no
        worker, for callers in the manager's process.
        """
        ...

    def finish(self, reports: Sequence[Report]) -> list[Job | None]:
        """Apply workers' reports; one result per report, in order, None where fenced out.

        A report is applied only while its job is running its attempt; otherwise nothing
        changes [store.finish.fenced]. ``succeeded`` sets ``result`` and ``finished_at``
        and clears ``error`` [store.finish.succeeded]; ``failed`` sets ``error`` and
        ``finished_at`` [store.finish.failed]; ``queued`` and ``scheduled`` (at ``run_at``)
        put the job back for another attempt, keeping ``error`` [store.finish.retry].
        Leaving ``running`` clears ``lease_until``; ``worker`` and ``started_at`` keep the
        last attempt's values.

        A report naming a ``worker`` other than the one holding the running attempt is
        fenced out the same way: None, and nothing changes [store.finish.owner]. One
        worker cannot finish another's job by guessing its attempt number. A report
        whose ``worker`` is None names no worker and is fenced by attempt alone. A batch
        applies as if its reports came one by one: of several about one attempt, the
        first that may apply does, and the rest find the job no longer running.
        """
        ...

    def reclaim_expired(self, now: dt.datetime, limit: int) -> list[Job]:
        """Take back running jobs whose lease passed (``lease_until < now``); return those changed.

        A job with attempts left goes back to queued [store.reclaim.requeue]; one without
        becomes failed, ``finished_at=now`` [store.reclaim.fail]; either way its error is
        type ``"LeaseExpired"``. A live lease is left alone [store.reclaim.live]; at most
        ``limit`` jobs change, earliest lease first [store.reclaim.limit].
        """
        ...

    def promote_due(self, now: dt.datetime, limit: int) -> list[Job]:
        """Move scheduled jobs whose ``run_at <= now`` to queued; return them.

        At most ``limit``, earliest ``run_at`` first [store.promote.due].
        """
        ...

    def cancel(self, job_id: str, now: dt.datetime) -> Job | None:
        """Cancel a job that is not terminal; return the job as it is afterwards.

        scheduled, queued or running become cancelled with ``finished_at=now`` and no
        lease [store.cancel.active]; a terminal job is returned unchanged, an unknown id
        gives None [store.cancel.terminal]. A cancelled attempt's reports are fenced out.
        """
        ...

    def retry(self, job_id: str, now: dt.datetime) -> Job | None:
        """Queue a failed or cancelled job again; return the job as it is afterwards.

        The job becomes queued with ``finished_at``, ``result`` and ``run_at`` cleared and
        ``max_attempts`` raised to ``attempt + 1`` if it was used up [store.retry.requeues];
        any other state is returned unchanged, an unknown id gives None
        [store.retry.others].
        """
        ...

    def queued(self, limit: int, after: str | None = None) -> list[Job]:
        """Return queued jobs in id order, ids greater than ``after``, at most ``limit``.

        [store.queued.order]. The manager pages through this to rebuild a lost queue.
        """
        ...

    def list(
        self,
        state: JobState | None = None,
        type: str | None = None,
        limit: int = 100,
        before: str | None = None,
        text: str | None = None,
    ) -> list[Job]:
        """Return jobs newest first (id descending), ids less than ``before``, at most ``limit``.

        [store.list.order]; only those in ``state`` and of ``type`` when given
        [store.list.filter]; only those whose id or key contains ``text`` when given,
        compared case-sensitively [store.list.text]. An operator pastes part of an id or
        key into the dashboard; a store may answer that with a scan, since it walks ids
        newest first and stops at ``limit`` matches.
        """
        ...

    def counts(self) -> dict[tuple[str, JobState], int]:
        """Map ``(type, state)`` to how many jobs are in it, leaving out zeros [store.counts]."""
        ...

    def purge(self, finished_before: dt.datetime, limit: int) -> int:
        """Delete terminal jobs with ``finished_at < finished_before``; return how many.

        At most ``limit``, oldest finished first, so that a large purge runs in bounded
        batches [store.purge.terminal].
        """
        ...

    def clear(self) -> None:
        """Delete every job of this store, and nothing outside it [store.clear.empties]."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


@runtime_checkable
class Migrating(Protocol):
    """A store whose schema evolves between releases, such as a SQL database's.

    Optional: a store that has it gets ``forerunner migrate --store URL``, which opens
    the store and calls :meth:`migrate`. A store that migrates itself on opening still
    offers it, so that an operator can migrate before starting managers, and see what
    was done.
    """

    def migrate(self) -> object:
        """Bring the schema up to date; safe while other processes use the store.

        Returns what was done, in a form whose ``str()`` is one line for a person.
        """
        ...
