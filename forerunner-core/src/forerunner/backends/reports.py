"""Which reports of a ``finish`` batch one SQL statement must see, for the SQL stores.

``Store.finish`` applies a batch as if its reports came one by one: of several about
one attempt, the first that may apply does, and the rest find the job no longer
running. An ``UPDATE ... FROM`` that joins a job to two reports applies an arbitrary
one of them, so the SQL stores send each attempt only the reports that could still
apply after the earlier ones:

* a worker's second report about an attempt is dropped: its first applies if either
  could;
* a report naming no worker applies whoever holds the attempt, so the reports after it
  are dropped;
* a report naming no worker that follows reports naming workers is *contested*: it
  applies only when none of those workers holds the attempt. The statement checks
  that for contested rows alone, so batches that name their worker (all of the
  manager's) stay one join by id.

At most one named worker holds an attempt, so the statement joins each job to at most
one report, and the store finds which one by the job's worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from forerunner.model import Job, Report

__all__ = ["ReportBatch", "applicable_reports"]


@attrs.frozen
class ReportBatch:
    """The reports to send, by index into the batch, and how to map results back."""

    #: Indexes of the reports the statement must see, in batch order.
    indexes: tuple[int, ...]
    #: The indexes among them whose report names no worker and follows reports that do.
    contested: frozenset[int]
    _sent: dict[tuple[str, int, str | None], int]

    def index_of(self, job: Job) -> int:
        """The index of the report that moved ``job``, as the statement returned it."""
        named = self._sent.get((job.id, job.attempt, job.worker))
        return named if named is not None else self._sent[job.id, job.attempt, None]


def applicable_reports(reports: Sequence[Report]) -> ReportBatch:
    """Pick the reports of ``reports`` that could apply after the earlier ones."""
    sent: dict[tuple[str, int, str | None], int] = {}
    named: set[tuple[str, int]] = set()
    anyone: set[tuple[str, int]] = set()
    contested: set[int] = set()
    for index, report in enumerate(reports):
        attempt = (report.job_id, report.attempt)
        key = (report.job_id, report.attempt, report.worker)
        if attempt in anyone or key in sent:
            continue
        sent[key] = index
        if report.worker is None:
            anyone.add(attempt)
            if attempt in named:
                contested.add(index)
        else:
            named.add(attempt)
    return ReportBatch(tuple(sent.values()), frozenset(contested), sent)
