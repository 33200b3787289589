"""The production store on PostgreSQL: one statement per batch, fencing in ``WHERE``.

Runs on the shared server in a schema of its own, dropped afterwards; see conftest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from forerunner.store import Store

pytestmark = pytest.mark.benchmark(group="postgres-store")


def test_postgres_claim_64_finish_64(
    postgres_store_url: str, claim_and_finish: Callable[[Store], None]
) -> None:
    """Manager, per busy worker's poll: 64 queued jobs claimed, 64 running ones finished.

    The two statements behind every hand-out and every batch of results on the
    production pairing: ``claim`` (an ``UPDATE`` of the given ids that are queued) and
    ``finish`` (an ``UPDATE ... FROM unnest`` fenced by attempt). A round trip to the
    server each, plus psycopg's row decoding and the ``Job`` records built from it.
    """
    from forerunner_postgres_store import PostgresStore

    store = PostgresStore(postgres_store_url)
    try:
        claim_and_finish(store)
    finally:
        store.close()
