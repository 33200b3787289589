"""Drive a backend and the reference queue side by side with random operation sequences.

The example tests check one rule each; this machine finds what only a sequence shows,
such as an index that ``clear`` or ``remove`` leaves stale. It issues one call at a time,
so races belong to the concurrency tests, not here. Ids come from a bundle so that the
same job is pushed, popped, removed and pushed again; each id keeps one type, as a job
does, while its priority may change between pushes, as a retried job's may. Ids that
left the queue (popped or removed) go to a second bundle that ``push_again`` draws from:
that is what a retried or a cancelled-then-retried job does, and a backend that keeps
stale state about an id it handed out or dropped shows it only then.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Final

from hypothesis import note
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

from forerunner.model import QueueEntry
from forerunner_queue_tests.checks import check, check_entries, show
from forerunner_queue_tests.model import ReferenceQueue

if TYPE_CHECKING:
    from forerunner.queue import Queue

__all__ = ["QueueMachine"]

CLAUSE: Final = "queue.model.reference"
TYPES: Final = ("alpha", "beta", "gamma")
#: Mostly small, so that equal priorities are common and push order decides; sometimes
#: the ends of the range the suite asks every backend to keep exactly.
PRIORITIES: Final = st.integers(-2, 2) | st.sampled_from([-(2**53), 2**53])
UNKNOWN_ID: Final = "never-pushed"

Job = tuple[str, str]


class QueueMachine(RuleBasedStateMachine):
    """A queue under test next to :class:`ReferenceQueue`; every answer must agree."""

    jobs = Bundle("jobs")
    gone = Bundle("gone")

    def __init__(self, queue: Queue) -> None:
        super().__init__()
        self.queue = queue
        self.model = ReferenceQueue()
        self.made = 0

    @initialize()
    def start_empty(self) -> None:
        note("clear()")
        self.queue.clear()
        self.model.clear()

    @rule(target=jobs, type=st.sampled_from(TYPES))
    def new_job(self, type: str) -> Job:
        self.made += 1
        return (f"job-{self.made}", type)

    @rule(batch=st.lists(st.tuples(jobs, PRIORITIES), min_size=1, max_size=6))
    def push(self, batch: list[tuple[Job, int]]) -> None:
        self._push(batch)

    @rule(batch=st.lists(st.tuples(gone, PRIORITIES), min_size=1, max_size=3))
    def push_again(self, batch: list[tuple[Job, int]]) -> None:
        self._push(batch)

    def _push(self, batch: list[tuple[Job, int]]) -> None:
        pushed = [
            QueueEntry(job_id=job_id, type=type, priority=priority)
            for (job_id, type), priority in batch
        ]
        note(f"push({show(pushed)})")
        self.queue.push(pushed)
        self.model.push(pushed)

    @rule(
        target=gone,
        types=st.lists(st.sampled_from(TYPES), min_size=1, max_size=len(TYPES), unique=True),
        count=st.integers(1, 4),
    )
    def pop(self, types: list[str], count: int) -> MultipleResults[Job]:
        popped = self.queue.pop(types, count, 0.0)
        call = f"pop({types!r}, count={count})"
        note(f"{call} -> {show(popped)}")
        if self.queue.ordering == "fifo":
            check_entries(CLAUSE, popped, self.model.pop(types, count), call)
        else:
            self._check_random_pop(call, popped, types, count)
        return multiple(*((e.job_id, e.type) for e in popped))

    def _check_random_pop(
        self, call: str, popped: list[QueueEntry], types: list[str], count: int
    ) -> None:
        allowed = self.model.candidates(types)
        wanted = min(count, len(allowed))
        check(
            CLAUSE,
            len(popped) == wanted,
            f"{call} returned {len(popped)} entries, expected {wanted} of {show(allowed)}",
        )
        repeated = [e for e, n in collections.Counter(popped).items() if n > 1]
        check(CLAUSE, not repeated, f"{call} returned {show(repeated)} more than once")
        strangers = [e for e in popped if e not in allowed]
        check(
            CLAUSE,
            not strangers,
            f"{call} returned {show(strangers)}, which are not among the waiting {show(allowed)}",
        )
        self.model.take(e.job_id for e in popped)

    @rule(target=gone, picked=st.lists(jobs, max_size=3), unknown=st.booleans(), data=st.data())
    def remove(self, picked: list[Job], unknown: bool, data: st.DataObject) -> MultipleResults[Job]:
        # Mostly ids that are waiting, as a cancellation's are; the bundle adds ids that
        # are not, and UNKNOWN_ID one that never was.
        waiting = {e.job_id: (e.job_id, e.type) for e in self.model.candidates(TYPES)}
        if waiting:
            picked += data.draw(st.lists(st.sampled_from(sorted(waiting.values())), max_size=3))
        job_ids = [job_id for job_id, _ in picked] + ([UNKNOWN_ID] if unknown else [])
        dropped = self.queue.remove(job_ids)
        call = f"remove({job_ids!r})"
        note(f"{call} -> {dropped}")
        expected = self.model.remove(job_ids)
        check(CLAUSE, dropped == expected, f"{call} returned {dropped!r}, expected {expected}")
        return multiple(*{job for job in picked if job[0] in waiting})

    @rule(types=st.none() | st.lists(st.sampled_from(TYPES), max_size=len(TYPES), unique=True))
    def size(self, types: list[str] | None) -> None:
        counted = self.queue.size(types)
        call = "size()" if types is None else f"size({types!r})"
        note(f"{call} -> {counted}")
        expected = self.model.size(types)
        check(CLAUSE, counted == expected, f"{call} returned {counted!r}, expected {expected}")

    @rule()
    def clear(self) -> None:
        note("clear()")
        self.queue.clear()
        self.model.clear()

    @invariant()
    def sizes_agree(self) -> None:
        for type in (None, *((t,) for t in TYPES)):
            counted = self.queue.size(type)
            expected = self.model.size(type)
            call = "size()" if type is None else f"size({list(type)!r})"
            check(
                CLAUSE,
                counted == expected,
                f"after the steps above, {call} is {counted!r}, expected {expected}",
            )
