"""The embedded store, ``sqlite://``: where the default manager records every transition.

Each batch is one ``BEGIN IMMEDIATE`` transaction with a fixed number of statements, so
these show the per-job cost of the SQL and of the row encoding around it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from forerunner.backends.sqlite_store import SQLiteStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from pytest_benchmark.fixture import BenchmarkFixture

    from forerunner.model import Job
    from forerunner.store import Store

pytestmark = pytest.mark.benchmark(group="sqlite-store")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A new SQLite store file in the benchmark's temporary directory."""
    opened = SQLiteStore(str(tmp_path / "micro.db"))
    yield opened
    opened.close()


def test_sqlite_add_1000_jobs(
    benchmark: BenchmarkFixture,
    store: SQLiteStore,
    make_jobs: Callable[[int], list[Job]],
    rounds: int,
) -> None:
    """Manager, on a batch submission: 1,000 new jobs stored in one ``add``.

    ``POST /v1/jobs/batch`` takes up to 1,000 jobs; this is the store's share of it (the
    row encoding, one ``executemany``, the records it returns). Fresh ids every round,
    made by the untimed setup; the table grows by 1,000 rows a round.
    """

    def setup() -> tuple[tuple[list[Job]], dict[str, object]]:
        return (make_jobs(1000),), {}

    # pytest-benchmark ships py.typed but leaves pedantic() unannotated.
    stored = benchmark.pedantic(  # type: ignore[no-untyped-call]
        store.add, setup=setup, rounds=rounds, warmup_rounds=1
    )

    assert len(stored) == 1000


def test_sqlite_claim_64_finish_64(
    store: SQLiteStore, claim_and_finish: Callable[[Store], None]
) -> None:
    """Manager, per busy worker's poll: 64 queued jobs claimed, 64 running ones finished.

    The two store calls behind every hand-out and every batch of results: ``claim``
    (queued to running, with a lease) and ``finish`` (running to succeeded, fenced by
    attempt). Both are transactions that take SQLite's one write lock.
    """
    claim_and_finish(store)
