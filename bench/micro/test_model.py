"""Building job records: every store makes one per row it reads or writes back.

:class:`forerunner.model.Job` is a frozen attrs class with validators and converters;
``claim``, ``finish``, ``add``, ``get`` and the reaper all return records built this
way, so its cost is paid for every job at every change of its state.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.ids import new_id
from forerunner.model import Job, JobError, JobState

if TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

pytestmark = pytest.mark.benchmark(group="model")


def _rows(count: int) -> list[dict[str, Any]]:
    """Rows as a store has them once its driver decoded them: running jobs just claimed."""
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "id": new_id(),
            "type": "micro.noop",
            "data": {"n": n, "payload": "x" * 32},
            "state": "running",
            "priority": 0,
            "attempt": 1,
            "max_attempts": 3,
            "key": None,
            "run_at": None,
            "timeout": None,
            "created_at": now,
            "started_at": now,
            "finished_at": None,
            "worker": "micro-worker",
            "lease_until": now + dt.timedelta(seconds=30),
            "progress": None,
            "result": None,
            "error_type": None,
            "error_message": None,
            "error_traceback": None,
        }
        for n in range(count)
    ]


def test_build_64_jobs_from_rows(benchmark: BenchmarkFixture) -> None:
    """Store, after every claim or finish: 64 rows turned into ``Job`` records.

    The rows hold values already decoded (UTC datetimes, JSON as Python values, the
    state as text), so this times the model alone, as the SQLite store's ``_from_row``
    and the PostgreSQL store's row factory call it: the ``JobState`` lookup, the attrs
    validators and converters. The stores' own decoding is timed by their benchmarks.
    """
    rows = _rows(64)

    def build() -> list[Job]:
        return [
            Job(
                id=row["id"],
                type=row["type"],
                data=row["data"],
                state=JobState(row["state"]),
                priority=row["priority"],
                attempt=row["attempt"],
                max_attempts=row["max_attempts"],
                key=row["key"],
                run_at=row["run_at"],
                timeout=row["timeout"],
                created_at=row["created_at"],
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                worker=row["worker"],
                lease_until=row["lease_until"],
                progress=row["progress"],
                result=row["result"],
                error=None
                if row["error_type"] is None
                else JobError(
                    type=row["error_type"],
                    message=row["error_message"],
                    traceback=row["error_traceback"],
                ),
            )
            for row in rows
        ]

    jobs = benchmark(build)

    assert len(jobs) == 64
    assert all(job.state is JobState.RUNNING for job in jobs)
