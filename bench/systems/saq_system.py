"""Bench adapter for SAQ: ``RedisQueue`` in Redis db 6, queue ``default``.

Reliability: SAQ's Redis queue is its documented mode. A worker dequeues with BLMOVE
from ``saq:default:queued`` to ``saq:default:active``; the job's record stays in
``saq:default:incomplete`` until it finishes, and the worker's sweep (every 60 s) hands
jobs that are stuck in ``active`` back to ``retry``, so a dead worker's jobs run again
(at-least-once, within the job's ``retries``, default 1). A finished job stays as its
record, ``saq:job:default:<key>``: the JSON job with ``status: "complete"`` and its
``result``, kept for the job's ``ttl`` (default 600 s). Outcomes are always recorded.

Completion: the record is set and the job leaves ``incomplete`` in one transaction, so
job records minus ``ZCARD incomplete`` is the number of finished jobs; a script counts
job records as DBSIZE less SAQ's fixed keys and its live worker-info keys.

Worker: ``saq saq_tasks.settings`` (one process, ``--workers 1`` is the default), an
asyncio loop running ``concurrency`` jobs at a time. SAQ has no thread pool; its
command line has no concurrency flag, so the adapter passes it in the environment, and
``--concurrency 0`` keeps SAQ's default of 10.

Enqueue: SAQ 0.26 has no ``enqueue_many``; ``Queue.map`` enqueues with
``asyncio.gather`` over ``Queue.enqueue`` (one script call per job, at most
``max_concurrent_ops`` = 20 in flight), and so does this adapter, in chunks.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis
from _common import BenchError, System, run
from saq import Job, Status
from saq.queue.redis import RedisQueue

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence

REDIS_DB = 6
QUEUE = "default"
#: SAQ's own default for ``Worker(concurrency=...)``.
DEFAULT_CONCURRENCY = 10
#: Jobs per gather on enqueue, keys per MGET or pipeline elsewhere.
CHUNK = 5_000
#: Backlog records outlive any run (the 600 s default could expire mid-run).
BACKLOG_TTL = 3_600
#: Stands for the job key in the backlog's record template.
PLACEHOLDER = "@@KEY@@"

#: Finished jobs: job records (DBSIZE less the queue's fixed keys and the worker-info
#: keys listed in its stats set) less the jobs still in the incomplete set.
COUNT_FINISHED = """
local p = KEYS[1]
local n = redis.call('DBSIZE')
n = n - redis.call('EXISTS', p .. 'incomplete', p .. 'queued', p .. 'active',
    p .. 'schedule', p .. 'sweep', p .. 'stats')
for _, key in ipairs(redis.call('ZRANGE', p .. 'stats', 0, -1)) do
    n = n - redis.call('EXISTS', key)
end
return n - redis.call('ZCARD', p .. 'incomplete')
"""


class Saq(System):
    name = "saq"

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.url = f"{args.redis_url}/{REDIS_DB}"
        self.concurrency = args.concurrency or DEFAULT_CONCURRENCY
        default = " (default)" if not args.concurrency else ""
        self.mode = (
            "RedisQueue, BLMOVE queued->active + sweep (at-least-once), "
            "finished job records kept (ttl 600 s default); "
            f"1 worker process, asyncio concurrency {self.concurrency}{default}; "
            "enqueue: asyncio.gather over Queue.enqueue (no enqueue_many)"
        )
        self.loop = asyncio.new_event_loop()
        self.queue = RedisQueue.from_url(self.url, name=QUEUE)
        self._await(self.queue.connect())
        self.redis = redis.Redis.from_url(self.url)
        self.count_finished = self.redis.register_script(COUNT_FINISHED)
        self.bin = str(Path(sys.executable).parent / "saq")
        self.keys: list[str] = []
        self.baseline = 0

    def _await(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coroutine)

    def reset(self) -> None:
        self.redis.flushdb(asynchronous=True)
        self.keys = []
        self.baseline = 0

    async def _enqueue(self, count: int, task: str) -> None:
        for first in range(0, count, CHUNK):
            jobs = await asyncio.gather(
                *(self.queue.enqueue(task) for _ in range(min(CHUNK, count - first)))
            )
            for job in jobs:
                if job is None:
                    raise BenchError("SAQ refused a job as a duplicate")
                self.keys.append(job.key)

    def enqueue(self, count: int, task: str) -> None:
        self._await(self._enqueue(count, task))

    def enqueue_one(self, task: str, index: int) -> Any:
        job = self._await(self.queue.enqueue(task))
        if job is None:
            raise BenchError("SAQ refused a job as a duplicate")
        self.keys.append(job.key)
        return job.key

    def worker_command(self, concurrency: int) -> list[str]:
        # `env` execs the worker, so this is still one process.
        return [
            "env",
            f"BENCH_SAQ_URL={self.url}",
            f"BENCH_SAQ_CONCURRENCY={self.concurrency}",
            self.bin,
            "saq_tasks.settings",
        ]

    def completed(self) -> int:
        """Finished job records in db 6, less the backlog's."""
        prefix = f"saq:{QUEUE}:"
        return int(self.count_finished(keys=[prefix])) - self.baseline

    def _records(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        """Each job's record as SAQ stored it (JSON), by MGET in chunks."""
        found: list[dict[str, Any] | None] = []
        for first in range(0, len(keys), CHUNK):
            ids = [self.queue.job_id(key) for key in keys[first : first + CHUNK]]
            raws = cast("list[bytes | None]", self.redis.mget(ids))
            found.extend(json.loads(raw) if raw else None for raw in raws)
        return found

    def verify(self) -> int:
        """Jobs of this run whose record says ``complete``."""
        return sum(
            1
            for record in self._records(self.keys)
            if record is not None and record.get("status") == Status.COMPLETE.value
        )

    def stamps(self, handles: Sequence[Any]) -> list[float]:
        records = self._records(handles)
        if any(record is None or "result" not in record for record in records):
            raise BenchError("a latency job has no result")
        return [float(record["result"]) for record in records if record is not None]

    def fill_backlog(self, rows: int) -> None:
        """Write ``rows`` records of finished ``noop`` jobs.

        A finished SAQ job is only its record: ``_finish`` removes it from ``active``
        and ``incomplete`` and SETEXes the JSON job (status ``complete``, its result,
        attempts, timestamps) under ``saq:job:default:<key>`` for the job's ttl.
        """
        now = int(time.time() * 1000)
        template = self.queue.serialize(
            Job(
                function="noop",
                queue=self.queue,
                key=PLACEHOLDER,
                ttl=BACKLOG_TTL,
                attempts=1,
                queued=now,
                started=now,
                touched=now,
                completed=now,
                progress=1.0,
                status=Status.COMPLETE,
                worker_id=str(uuid.uuid1()),
            )
        )
        record = template if isinstance(template, str) else template.decode()
        prefix = self.queue.job_id("")
        written = 0
        while written < rows:
            batch = min(CHUNK, rows - written)
            with self.redis.pipeline(transaction=False) as pipe:
                for _ in range(batch):
                    key = str(uuid.uuid1())
                    pipe.setex(prefix + key, BACKLOG_TTL, record.replace(PLACEHOLDER, key))
                pipe.execute()
            written += batch
        self.baseline = int(self.count_finished(keys=[f"saq:{QUEUE}:"]))
        if self.baseline != rows:
            raise BenchError(f"the backlog holds {self.baseline} finished jobs, not {rows}")

    def close(self) -> None:
        self._await(self.queue.disconnect())
        self.loop.close()
        self.redis.close()


if __name__ == "__main__":
    sys.exit(run(Saq))
