"""Hypothesis strategies for what the stateful test feeds a store.

Values are kept small and drawn from few choices (three types, three workers, a
handful of keys) so that operations collide: the same key in one batch, two workers
on one job, a report for the attempt before. Times are offsets in seconds from the
machine's clock, never the wall clock.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Final

import attrs
from hypothesis import strategies as st

from forerunner.model import Job, JobError, JobState

if TYPE_CHECKING:
    from forerunner.model import JSON

__all__ = [
    "JOB_TYPES",
    "REPORT_STATES",
    "WORKERS",
    "Draft",
    "attempt_shifts",
    "drafts",
    "errors",
    "json_values",
    "lease_seconds",
    "limits",
    "new_keys",
]

JOB_TYPES: Final = ("alpha", "beta", "γάμμα")
WORKERS: Final = ("worker-a", "worker-b", "worker-c")
REPORT_STATES: Final = (JobState.SUCCEEDED, JobState.FAILED, JobState.QUEUED, JobState.SCHEDULED)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)

#: Any JSON value, small: nested lists and objects, NUL and non-BMP characters, -0.0,
#: integers beyond 64 bits.
json_values: st.SearchStrategy[JSON] = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)

#: Idempotency keys: any text but NUL, which is JSON's to carry, not a key's (a
#: PostgreSQL ``text`` column cannot hold it).
new_keys: st.SearchStrategy[str] = st.text(
    st.characters(exclude_characters="\x00"), min_size=1, max_size=6
)

errors: st.SearchStrategy[JobError] = st.builds(
    JobError,
    type=st.sampled_from(("ValueError", "KeyError", "TimeoutError")),
    message=st.text(max_size=12),
    traceback=st.none() | st.text(max_size=20),
)

#: How far a report or progress call's attempt is from the job's: mostly the right one.
attempt_shifts: st.SearchStrategy[int] = st.sampled_from((0, 0, 0, -1, 1))
lease_seconds: st.SearchStrategy[int] = st.sampled_from((1, 10, 30))
limits: st.SearchStrategy[int] = st.integers(min_value=1, max_value=4)


@attrs.frozen(kw_only=True)
class Draft:
    """A job before the machine gives it an id and the clock's time."""

    type: str
    data: JSON
    priority: int
    max_attempts: int
    key: str | None
    timeout: float | None
    #: Scheduled this many seconds after the clock, or queued when None.
    run_in: int | None

    def job(self, job_id: str, now: dt.datetime) -> Job:
        scheduled = self.run_in is not None
        return Job(
            id=job_id,
            type=self.type,
            data=self.data,
            state=JobState.SCHEDULED if scheduled else JobState.QUEUED,
            priority=self.priority,
            max_attempts=self.max_attempts,
            key=self.key,
            run_at=now + dt.timedelta(seconds=self.run_in) if self.run_in is not None else None,
            timeout=self.timeout,
            created_at=now,
        )


def drafts(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Draft]:
    """Jobs to add; about half carry a key drawn from ``keys``, so keys repeat."""
    return st.builds(
        Draft,
        type=st.sampled_from(JOB_TYPES),
        data=json_values,
        priority=st.integers(min_value=-3, max_value=3),
        max_attempts=st.integers(min_value=1, max_value=3),
        key=st.none() | keys,
        timeout=st.none() | st.sampled_from((0.5, 30.0)),
        run_in=st.none() | st.integers(min_value=-10, max_value=60),
    )
