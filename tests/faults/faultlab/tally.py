"""The counts a fault run ends with, and the promises they are checked against.

:func:`tally` reads the store (through a manager's listing) and the side table (every
execution the handlers recorded) and counts: jobs submitted, succeeded, failed, lost,
and executions beyond one per job. It also lists every broken promise:

* a submitted job is missing from the store, or not terminal once the run settled;
* a succeeded job's recorded result is not the one its recorded attempt produced, or
  that attempt did not run to its end exactly once (exactly one success per job);
* one attempt of a job ran twice (two workers held the same claim);
* a job ran more than once, and the earlier run was not really cut off: its process
  was not killed, frozen or crashed by the fault, and it did not overlap a time when a
  manager, the store or the queue was away (at-least-once, but no more than a fault
  explains);
* a job failed that should not have.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Final

import attrs

from forerunner.model import JobState

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from faultlab.lab import Lab
    from faultlab.ledger import Execution
    from forerunner.model import Job

__all__ = ["COLUMNS", "Tally", "render", "tally"]

#: Broken promises listed one by one in a failure; the rest are counted.
SHOWN: Final = 10
COLUMNS: Final = (
    "scenario", "backends", "submitted", "succeeded", "failed", "lost",
    "duplicate executions", "cut off", "fenced", "seconds",
)  # fmt: skip


@attrs.frozen(kw_only=True)
class Tally:
    """What one run ended with."""

    scenario: str
    backends: str
    submitted: int
    succeeded: int
    failed: int
    #: Submitted jobs missing from the store, or not terminal after the run settled.
    lost: int
    #: Executions beyond the first, summed over the jobs.
    duplicates: int
    #: Executions that never returned: their process died (or stayed frozen) mid-job.
    cut_off: int
    #: Executions that returned after a later attempt had replaced theirs: their
    #: outcome was fenced out.
    fenced: int
    seconds: float
    #: Every broken promise, described; empty when the run kept them all.
    problems: tuple[str, ...] = ()

    def row(self) -> list[str]:
        return [
            self.scenario, self.backends, f"{self.submitted:,}", f"{self.succeeded:,}",
            f"{self.failed:,}", f"{self.lost:,}", f"{self.duplicates:,}", f"{self.cut_off:,}",
            f"{self.fenced:,}", f"{self.seconds:.1f}",
        ]  # fmt: skip

    def verdict(self) -> str:
        """The problems as one message, for an assertion."""
        shown = list(self.problems[:SHOWN])
        if len(self.problems) > SHOWN:
            shown.append(f"... and {len(self.problems) - SHOWN} more")
        return f"{self.scenario} on {self.backends}:\n" + "\n".join(shown)


def tally(
    lab: Lab,
    scenario: str,
    jobs: Mapping[str, Job],
    executions: Sequence[Execution],
    *,
    seconds: float,
    may_fail: Collection[str] = (),
) -> Tally:
    """Count the run and check every promise; ``may_fail`` are jobs meant to end failed.

    ``jobs`` is the store's content (:meth:`Lab.jobs`), ``executions`` the side table's
    (:func:`~faultlab.ledger.read_ledger`).
    """
    problems: list[str] = []
    runs: dict[str, list[Execution]] = defaultdict(list)
    for execution in executions:
        runs[execution.job_id].append(execution)

    submitted = set(lab.submitted)
    lost = 0
    for job_id in lab.submitted:
        job = jobs.get(job_id)
        if job is None:
            lost += 1
            problems.append(f"job {job_id} was submitted and is not in the store")
        elif not job.state.terminal:
            lost += 1
            problems.append(f"job {job_id} is still {job.state.value} after the run settled")
    problems += [f"job {job_id} ran, never submitted" for job_id in runs.keys() - submitted]
    problems += [f"job {job_id} is stored, never submitted" for job_id in jobs.keys() - submitted]

    succeeded = failed = duplicates = cut_off = fenced = 0
    for job_id in lab.submitted:
        job = jobs.get(job_id)
        ran = runs.get(job_id, [])
        duplicates += max(len(ran) - 1, 0)
        attempts = [execution.attempt for execution in ran]
        for attempt in {a for a in attempts if attempts.count(a) > 1}:
            problems.append(f"job {job_id} attempt {attempt} ran {attempts.count(attempt)} times")
        if job is None:
            continue
        if job.state is JobState.SUCCEEDED:
            succeeded += 1
            problems += _check_success(job_id, job.attempt, job.result, ran)
        elif job.state is JobState.FAILED:
            failed += 1
            if job_id not in may_fail:
                error = job.error.type if job.error is not None else "no error"
                problems.append(f"job {job_id} failed ({error}) after {job.attempt} attempts")
        for execution in ran:
            recorded = job.state is JobState.SUCCEEDED and execution.attempt == job.attempt
            if recorded:
                continue
            if execution.ended is None:
                cut_off += 1
            else:
                fenced += 1
            if job.state is JobState.SUCCEEDED and not _excused(lab, execution):
                problems.append(
                    f"job {job_id} attempt {execution.attempt} in pid {execution.pid} was "
                    f"replaced by attempt {job.attempt}, yet no fault touched it"
                )
    return Tally(
        scenario=scenario,
        backends=lab.backends.label,
        submitted=len(lab.submitted),
        succeeded=succeeded,
        failed=failed,
        lost=lost,
        duplicates=duplicates,
        cut_off=cut_off,
        fenced=fenced,
        seconds=seconds,
        problems=tuple(problems),
    )


def _check_success(job_id: str, attempt: int, result: object, ran: list[Execution]) -> list[str]:
    mine = [execution for execution in ran if execution.attempt == attempt]
    finished = [execution for execution in mine if execution.ended is not None]
    if len(finished) != 1:
        return [
            f"job {job_id} succeeded with attempt {attempt}, which ran to its end "
            f"{len(finished)} times"
        ]
    expected = {"attempt": attempt, "pid": finished[0].pid}
    if result != expected:
        return [f"job {job_id} recorded {result!r}, but attempt {attempt} returned {expected!r}"]
    return []


def _excused(lab: Lab, execution: Execution) -> bool:
    """Whether a fault explains that this execution's attempt was replaced."""
    if execution.pid in lab.harmed:
        return True
    ended = execution.ended if execution.ended is not None else math.inf
    return any(
        execution.started <= end and ended >= start - lab.lease for start, end in lab.outages
    )


def render(tallies: Iterable[Tally]) -> str:
    """The counts as a Markdown table, the shape the bench README and the report use."""
    rows = [list(COLUMNS), *(tally.row() for tally in tallies)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(width) if column < 2 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if index == 0:
            lines.append(
                "|" + "|".join(
                    "-" * (width + 1) + ("-" if column < 2 else ":")
                    for column, width in enumerate(widths)
                ) + "|"
            )  # fmt: skip
    return "\n".join(lines)
