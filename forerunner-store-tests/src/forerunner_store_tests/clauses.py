"""The store contract, clause by clause (design §2 and §3).

Each clause has a stable id and one line of text. The suite has one test per clause,
named for it (``store.claim.skips`` is ``test_claim_skips``), and every failure message
starts with ``[id] text:``. docs/conformance.md is generated from this table.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CLAUSES", "message", "test_name_for"]

CLAUSES: Final[dict[str, str]] = {
    "store.add.returns": "add returns the stored jobs, one per input, in input order",
    "store.add.get": "get(id) returns the job exactly as add stored it",
    "store.add.key": (
        "a job whose key exists (stored or earlier in the batch) is not inserted; "
        "the existing job is returned"
    ),
    "store.get.unknown": "get of an unknown id returns None",
    "store.data.roundtrip": (
        "data, result, progress and error round-trip exactly: unicode, nested JSON, big ints, "
        "floats, None, empty strings, 1 MiB"
    ),
    "store.times.utc": (
        "times come back timezone-aware UTC, equal to those stored to the microsecond"
    ),
    "store.batch.empty": "every batch method accepts an empty batch and returns an empty result",
    "store.claim.queued": (
        "claim moves each queued id to running: attempt+1, worker, started_at=now, "
        "lease_until, progress cleared; returned in the order asked"
    ),
    "store.claim.skips": "claim skips ids that are unknown or not queued and leaves them unchanged",
    "store.claim.once.threads": (
        "of concurrent claims of one id from many threads, exactly one wins"
    ),
    "store.claim.once.processes": (
        "of concurrent claims of one id from many processes, exactly one wins"
    ),
    "store.renew.own": "renew extends lease_until of the ids running for this worker, returns them",
    "store.renew.others": "renew neither returns nor changes an id not running for this worker",
    "store.progress.fenced": (
        "progress is recorded only while the job runs that attempt; returns whether it was"
    ),
    "store.progress.owner": (
        "progress naming a worker other than the one holding the running attempt returns "
        "False and changes nothing"
    ),
    "store.finish.succeeded": (
        "a succeeded report sets result and finished_at=now, clears lease_until and error"
    ),
    "store.finish.failed": "a failed report sets error and finished_at=now, clears lease_until",
    "store.finish.retry": (
        "a queued report re-queues the job, a scheduled one schedules it at run_at; "
        "error is kept, lease_until cleared"
    ),
    "store.finish.fenced": (
        "a report is applied only while the job runs that attempt; otherwise None, nothing changes"
    ),
    "store.finish.owner": (
        "a report naming a worker other than the one holding the running attempt gives None "
        "and changes nothing"
    ),
    "store.reclaim.requeue": (
        "a running job whose lease passed goes back to queued while attempt < max_attempts, "
        "error LeaseExpired"
    ),
    "store.reclaim.fail": (
        "a running job whose lease passed with no attempts left fails, error LeaseExpired, "
        "finished_at=now"
    ),
    "store.reclaim.live": "reclaim_expired leaves jobs whose lease_until >= now alone",
    "store.reclaim.limit": "reclaim_expired changes at most limit jobs, earliest lease first",
    "store.promote.due": (
        "promote_due queues scheduled jobs with run_at <= now, earliest first, at most limit"
    ),
    "store.cancel.active": (
        "cancel moves a scheduled, queued or running job to cancelled, finished_at=now, no lease"
    ),
    "store.cancel.terminal": "cancel returns a terminal job unchanged, and None for an unknown id",
    "store.retry.requeues": (
        "retry moves a failed or cancelled job to queued and allows one more attempt"
    ),
    "store.retry.others": "retry returns a job in any other state unchanged, None for unknown ids",
    "store.queued.order": (
        "queued(limit, after) returns queued jobs in id order, ids after the cursor, at most limit"
    ),
    "store.list.order": (
        "list returns jobs newest first (id descending), ids before the cursor, at most limit"
    ),
    "store.list.filter": "list returns only jobs of the given state and type",
    "store.list.text": (
        "list(text=...) returns only jobs whose id or key contains the text, case-sensitively"
    ),
    "store.counts": "counts() maps (type, state) to the number of jobs, leaving out zeros",
    "store.purge.terminal": (
        "purge deletes at most limit terminal jobs finished before the time, returns how many; "
        "others stay"
    ),
    "store.clear.empties": "clear() deletes every job",
    "store.shared.visible": "shared: another process opening the same URL sees the same jobs",
    "store.durable.reopen": "durable: jobs survive close() and reopening the same URL",
    "store.model.reference": "every sequence of operations gives the reference model's results",
}


def message(clause_id: str, detail: str) -> str:
    """The failure message for a clause: its id and text first, then what was seen."""
    return f"[{clause_id}] {CLAUSES[clause_id]}: {detail}"


def test_name_for(clause_id: str) -> str:
    """The name of the contract test that checks a clause."""
    return "test_" + clause_id.removeprefix("store.").replace(".", "_")
