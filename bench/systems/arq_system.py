"""Bench adapter for arq: ``arq arq_tasks.WorkerSettings`` workers on Redis database 4.

arq is asyncio only: one worker process runs up to ``max_jobs`` coroutines at once and
has no process or thread pool, so ``--concurrency`` is ``max_jobs`` for every workload
(0 means arq's default, 10). Everything else is arq's default, which is its reliable
mode: the result of every job, success or failure, is written as ``arq:result:<id>``
(kept ``keep_result``, 3600 s) in the same MULTI that removes the job from the queue
and deletes its job key.

Variants: the default runs arq exactly as configured above, where a worker looks at
the queue every ``poll_delay`` (0.5 s) and takes at most ``queue_read_limit`` (100, or
5 x ``max_jobs``) ids per look, which caps a worker near 200 jobs/s whatever the CPU
and puts a quarter of a second, on average, between enqueue and start;
``--variant poll10ms`` sets ``poll_delay`` to 0.01 s, the one knob an arq user who
wants throughput or latency would turn, so the table can show both.

How completion is read: a job leaves the ``arq:queue`` sorted set only in the MULTI
that stores its outcome, so the jobs this run enqueued minus ``ZCARD arq:queue`` is the
number of outcomes recorded, in O(1). :meth:`Arq.verify` then walks every result key
and counts the successes among this run's job ids.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import BenchError, System, run

if TYPE_CHECKING:
    from collections.abc import Sequence

#: Jobs whose ``enqueue_job`` calls are in flight at once (see :meth:`Arq.enqueue`).
WINDOW = 200
#: Commands per pipeline round trip when writing or reading many keys.
CHUNK = 10_000
#: ``--variant`` -> the workers' ``poll_delay`` in seconds ("" is arq's default).
VARIANTS = {"": 0.5, "poll10ms": 0.01}
#: arq's key names (``arq.constants``), spelled out so the fill needs no arq internals.
QUEUE = "arq:queue"
RESULT_PREFIX = "arq:result:"
#: arq's default ``keep_result``, in milliseconds: the TTL every result key gets.
KEEP_RESULT_MS = 3_600_000


class Arq(System):
    name = "arq"

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        # Set before arq_tasks is imported: it builds its Redis URL at import time, and
        # the workers inherit the variable through env().
        os.environ["BENCH_REDIS_URL"] = args.redis_url
        import arq_tasks
        import redis
        from arq.connections import ArqRedis, create_pool

        if args.variant not in VARIANTS:
            raise SystemExit(f"--variant must be one of {sorted(VARIANTS)}, not {args.variant!r}")
        self.poll_delay = VARIANTS[args.variant]
        self.max_jobs = args.concurrency or arq_tasks.DEFAULT_MAX_JOBS
        self.mode = (
            "arq defaults (results kept 3600 s, max_tries 5, INFO log), "
            f"poll_delay {self.poll_delay:g} s"
            + ("" if args.variant else " (default)")
            + f", one asyncio process, max_jobs {self.max_jobs}"
            + (" (arq default)" if not args.concurrency else "")
            + f", enqueue_job x{WINDOW} in flight via asyncio.gather"
        )
        self.redis = redis.Redis.from_url(arq_tasks.URL)
        self.loop = asyncio.new_event_loop()
        self.pool: ArqRedis = self.loop.run_until_complete(
            create_pool(arq_tasks.WorkerSettings.redis_settings)
        )
        self.bin = str(Path(sys.executable).parent / "arq")
        self.enqueued = 0
        self.run_ids: set[str] = set()

    def reset(self) -> None:
        self.redis.flushdb()
        self.enqueued = 0
        self.run_ids.clear()

    # Enqueueing

    def enqueue(self, count: int, task: str) -> None:
        """``enqueue_job`` with :data:`WINDOW` calls in flight through ``asyncio.gather``.

        arq has no batch API; ``enqueue_job`` is one WATCH/EXISTS/MULTI round trip per
        job, and the documented way to issue many is to await them concurrently on the
        pool (each in-flight call holds its own connection for the WATCH). 200 in
        flight was the fastest of 1, 50, 200 and 1000 on this machine.
        """

        async def window(first: int, last: int) -> list[Any]:
            return await asyncio.gather(
                *(self.pool.enqueue_job(task, index) for index in range(first, last))
            )

        for first in range(0, count, WINDOW):
            jobs = self.loop.run_until_complete(window(first, min(count, first + WINDOW)))
            for job in jobs:
                if job is None:
                    raise BenchError("arq refused a job as a duplicate")
                self.run_ids.add(job.job_id)
        self.enqueued += count

    def enqueue_one(self, task: str, index: int) -> Any:
        job = self.loop.run_until_complete(self.pool.enqueue_job(task, index))
        if job is None:
            raise BenchError("arq refused a job as a duplicate")
        self.run_ids.add(job.job_id)
        self.enqueued += 1
        return job.job_id

    def worker_command(self, concurrency: int) -> list[str]:
        """``arq``'s own CLI; ``env`` sets ``max_jobs`` and ``poll_delay`` and execs it.

        ``env`` replaces itself with ``arq``, so this is still one process per worker.
        """
        return [
            "env",
            f"BENCH_ARQ_MAX_JOBS={concurrency or 0}",
            f"BENCH_ARQ_POLL_DELAY={self.poll_delay}",
            self.bin,
            "arq_tasks.WorkerSettings",
        ]

    # Counting

    def completed(self) -> int:
        return self.enqueued - int(self.redis.zcard(QUEUE))

    def _results(self, ids: Sequence[str]) -> list[Any]:
        """The deserialized ``JobResult`` of each id (``None`` where there is none)."""
        from arq.jobs import deserialize_result

        found: list[Any] = []
        for first in range(0, len(ids), CHUNK):
            keys = [RESULT_PREFIX + job_id for job_id in ids[first : first + CHUNK]]
            found.extend(
                None if raw is None else deserialize_result(raw) for raw in self.redis.mget(keys)
            )
        return found

    def verify(self) -> int:
        """SCAN every ``arq:result:*`` key, keep this run's ids, count the successes."""
        mine: list[str] = []
        for key in self.redis.scan_iter(match=RESULT_PREFIX + "*", count=CHUNK):
            job_id = key[len(RESULT_PREFIX) :].decode()
            if job_id in self.run_ids:
                mine.append(job_id)
        return sum(1 for result in self._results(mine) if result is not None and result.success)

    def stamps(self, handles: Sequence[Any]) -> list[float]:
        started = []
        for job_id, result in zip(handles, self._results(list(handles)), strict=True):
            if result is None or not result.success:
                raise BenchError(f"latency job {job_id} has no successful result")
            started.append(float(result.result))
        return started

    def fill_backlog(self, rows: int) -> None:
        """Write ``rows`` finished ``noop`` jobs as arq leaves them: result keys only.

        When arq finishes a job it deletes the job key and the in-progress key, removes
        the id from ``arq:queue`` and writes ``arq:result:<id>``: a pickled dict made
        by ``arq.jobs.serialize_result``, with a TTL of ``keep_result``. So a finished
        job is exactly one such key. The value is serialized once with a placeholder id
        and the id (32 hex digits, as ``uuid4().hex``, the same length) swapped in per
        row; keys are written with SET PX in pipelines of :data:`CHUNK`. None of these
        ids is in :attr:`run_ids`, and none is in the queue, so :meth:`completed` and
        :meth:`verify` never count them.
        """
        from arq.jobs import serialize_result

        now_ms = int(time.time() * 1000)
        placeholder = uuid.uuid4().hex
        template = serialize_result(
            "noop",
            (0,),
            {},
            1,
            now_ms - 900,
            True,
            None,
            now_ms - 500,
            now_ms - 400,
            f"{placeholder}:noop",
            QUEUE,
            job_id=placeholder,
        )
        if template is None or template.count(placeholder.encode()) != 1:
            raise BenchError("cannot build arq's result template")
        head, tail = template.split(placeholder.encode())
        with self.redis.pipeline(transaction=False) as pipe:
            for first in range(0, rows, CHUNK):
                for _ in range(min(CHUNK, rows - first)):
                    job_id = uuid.uuid4().hex
                    value = head + job_id.encode() + tail
                    pipe.set(RESULT_PREFIX + job_id, value, px=KEEP_RESULT_MS)
                pipe.execute()

    def close(self) -> None:
        self.loop.run_until_complete(self.pool.aclose())
        self.loop.close()
        self.redis.close()


if __name__ == "__main__":
    sys.exit(run(Arq))
