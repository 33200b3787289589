"""What each child process of test_sqlite_store's claim race runs; not a test module.

Children are started with ``spawn``, which imports targets by name, so the target lives
in a module of its own that the test puts on ``sys.path``.
"""

from __future__ import annotations

import random
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as dt
    import multiprocessing.queues
    import multiprocessing.synchronize
    from collections.abc import Sequence


def claim_all(
    url: str,
    worker: str,
    job_ids: Sequence[str],
    *,
    times: tuple[dt.datetime, dt.datetime],
    start: multiprocessing.synchronize.Barrier,
    results: multiprocessing.queues.Queue[tuple[str, list[str] | str]],
) -> None:
    """Open the store, wait for every child, claim all ids in shuffled batches of 20.

    Sends ``(worker, ids won)``, or ``(worker, traceback text)`` if anything failed.
    """
    from forerunner.plugins import open_store

    now, lease_until = times
    try:
        store = open_store(url)
        try:
            order = list(job_ids)
            random.Random(worker).shuffle(order)
            start.wait(60)
            won: list[str] = []
            for first in range(0, len(order), 20):
                claimed = store.claim(order[first : first + 20], worker, now, lease_until)
                won.extend(job.id for job in claimed)
        finally:
            store.close()
    except BaseException:
        results.put((worker, traceback.format_exc()))
    else:
        results.put((worker, won))
