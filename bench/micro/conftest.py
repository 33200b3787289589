"""Shared fixtures of the micro-benchmarks: jobs, rounds, services and an event loop.

Not part of ``./dev test``: the root ``pyproject.toml`` lists its test directories in
``testpaths`` and ``bench`` is not one of them. Run these with
``.venv/bin/python -m pytest bench/micro --benchmark-only`` (bench/README.md, section
"micro/"). They measure and compare; they assert only that each round did the work it
claims to time (64 jobs claimed, 64 outcomes back), never how long it took.

The shared Redis and PostgreSQL servers are used by other people at the same time, so
the Redis benchmark works in database 12 under a prefix of its own (``micro-<random>``)
and clears only that, and the PostgreSQL one in a schema of its own (``micro_<random>``)
that it drops. A service that does not answer skips its benchmark on a laptop and fails
it when ``CI`` is set, as the project's own test fixtures do: a CI run must never look
complete while it measured nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
from typing import TYPE_CHECKING, Final

import pytest

from forerunner.ids import new_id
from forerunner.model import Job, JobState, Report

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pytest_benchmark.fixture import BenchmarkFixture

    from forerunner.store import Store

#: Jobs per batch: what a busy worker hands back, or a manager hands out, in one poll.
BATCH: Final = 64
#: The task name every benchmark job carries.
JOB_TYPE: Final = "micro.noop"
#: Rounds of the ``benchmark.pedantic`` benchmarks (the ones that need fresh jobs for
#: every round, made by an untimed setup), unless ``--benchmark-min-rounds`` asks for more.
PEDANTIC_ROUNDS: Final = 100

REDIS_SERVER: Final = "redis://127.0.0.1:6379/12"
POSTGRES_SERVER: Final = "postgresql://root@127.0.0.1:5432/test"


def unavailable(why: str) -> None:
    """Skip the benchmark, or fail it under CI, where a missing service is a broken run."""
    if os.environ.get("CI"):
        pytest.fail(f"{why}, and CI is set: the benchmark must run", pytrace=False)
    pytest.skip(why)


def queued_jobs(count: int, *, now: dt.datetime | None = None) -> list[Job]:
    """``count`` new queued jobs as the manager's ``submit`` makes them, fresh ids each call."""
    created = now or dt.datetime.now(dt.UTC)
    return [
        Job(id=new_id(), type=JOB_TYPE, data={"n": n}, created_at=created) for n in range(count)
    ]


@pytest.fixture(name="make_jobs")
def make_jobs_fixture() -> Callable[[int], list[Job]]:
    """Make ``count`` new queued jobs with fresh ids (a small JSON ``data`` each)."""
    return queued_jobs


@pytest.fixture
def running_jobs() -> list[Job]:
    """64 jobs as a store returns them from ``claim``: running, attempt 1, leased."""
    now = dt.datetime.now(dt.UTC)
    return [
        Job(
            id=new_id(),
            type=JOB_TYPE,
            data={"n": n, "payload": "x" * 32},
            state=JobState.RUNNING,
            attempt=1,
            created_at=now,
            started_at=now,
            worker="micro-worker",
            lease_until=now + dt.timedelta(seconds=30),
        )
        for n in range(BATCH)
    ]


@pytest.fixture
def rounds(request: pytest.FixtureRequest) -> int:
    """Rounds for ``benchmark.pedantic``: :data:`PEDANTIC_ROUNDS` or the asked-for minimum."""
    asked = request.config.getoption("benchmark_min_rounds")
    return max(PEDANTIC_ROUNDS, int(asked))


@pytest.fixture
def claim_and_finish(benchmark: BenchmarkFixture, rounds: int) -> Callable[[Store], None]:
    """Benchmark ``claim`` of 64 queued jobs then ``finish`` of their 64 reports on a store.

    Each round's setup (untimed) adds 64 fresh queued jobs and makes their ``succeeded``
    reports, so every timed round claims jobs that are really queued and finishes
    attempts that are really running, as a manager does for one busy worker's poll.
    """

    def run(store: Store) -> None:
        def setup() -> tuple[tuple[list[str], list[Report], dt.datetime], dict[str, object]]:
            now = dt.datetime.now(dt.UTC)
            ids = [job.id for job in store.add(queued_jobs(BATCH, now=now))]
            reports = [
                Report(job_id=job_id, attempt=1, state=JobState.SUCCEEDED, now=now, result=n)
                for n, job_id in enumerate(ids)
            ]
            return (ids, reports, now), {}

        def claim_then_finish(
            ids: list[str], reports: list[Report], now: dt.datetime
        ) -> tuple[list[Job], list[Job | None]]:
            claimed = store.claim(ids, "micro-worker", now, now + dt.timedelta(seconds=30))
            return claimed, store.finish(reports)

        # pytest-benchmark ships py.typed but leaves pedantic() unannotated.
        claimed, finished = benchmark.pedantic(  # type: ignore[no-untyped-call]
            claim_then_finish, setup=setup, rounds=rounds, warmup_rounds=1
        )
        assert len(claimed) == BATCH
        assert all(job is not None and job.state is JobState.SUCCEEDED for job in finished)

    return run


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop of the benchmark's own; each round runs one coroutine to completion."""
    running = asyncio.new_event_loop()
    yield running
    running.run_until_complete(running.shutdown_asyncgens())
    running.run_until_complete(running.shutdown_default_executor())
    running.close()


@pytest.fixture
def redis_queue_url() -> str:
    """A URL of database 12 of the shared Redis, under a prefix no one else uses."""
    import redis

    client = redis.Redis.from_url(REDIS_SERVER, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable(f"Redis does not answer at {REDIS_SERVER} ({error})")
    finally:
        client.close()
    return f"{REDIS_SERVER}?prefix=micro-{secrets.token_hex(6)}"


@pytest.fixture
def postgres_store_url() -> Iterator[str]:
    """A store URL on a schema of its own (``micro_<random>``), dropped afterwards."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(POSTGRES_SERVER, connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        unavailable(f"PostgreSQL at {POSTGRES_SERVER} does not answer ({error})")
    schema = f"micro_{secrets.token_hex(6)}"
    yield f"{POSTGRES_SERVER}?schema={schema}"
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
