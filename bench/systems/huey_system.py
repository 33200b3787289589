"""Bench adapter for Huey: ``RedisHuey`` (Redis db 5), results on, ``store_none=True``.

Reliability: Huey on Redis has one mode. The consumer takes a task with BRPOP, which
removes it from the queue before it runs; there is no acknowledgement, so a consumer
killed mid-task loses that task (at-most-once), and failures are retried only when the
task asks for retries. Results are on (Huey's default); ``store_none=True`` makes Huey
store a ``None`` return too, since forerunner records every outcome, so each completed
job is one field (task id -> pickled return value) in the hash ``huey.results.bench``.
Completion is HLEN of that hash, less the backlog.

Worker: ``huey_consumer huey_tasks.huey -k thread -w N``, one OS process with N worker
threads (plus Huey's scheduler thread). ``--concurrency 0`` means Huey's default of one
worker thread. The consumer keeps its default logging (INFO, a line per task, sent to
/dev/null unless ``--verbose``).

Enqueue: Huey has no batch API (enqueueing a ``group`` loops over single enqueues), so
each job is one task call, one LPUSH.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis
from _common import BenchError, System, run

if TYPE_CHECKING:
    from collections.abc import Sequence

REDIS_DB = 5
#: Huey's default worker count for one consumer (``huey_consumer -w``).
DEFAULT_WORKERS = 1
#: Fields per HMGET / HSET when reading or writing many results.
CHUNK = 5_000


class Huey(System):
    name = "huey"

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.url = f"{args.redis_url}/{REDIS_DB}"
        # The tasks module builds its RedisHuey from this at import, here and in workers.
        os.environ["BENCH_HUEY_URL"] = self.url
        import huey_tasks
        from huey.utils import Error

        self.tasks = huey_tasks
        self.error_type = Error
        self.workers = args.concurrency or DEFAULT_WORKERS
        default = " (default)" if not args.concurrency else ""
        self.mode = (
            "RedisHuey, BRPOP without ack (at-most-once, Huey's only Redis mode), "
            "results on (default) with store_none=True; "
            f"1 consumer process x {self.workers} worker thread(s){default} (-k thread); "
            "consumer logging INFO (default); enqueue: one task call (LPUSH) per job (no batch API)"
        )
        self.redis = redis.Redis.from_url(self.url)
        self.results_key = huey_tasks.huey.storage.result_key
        self.bin = str(Path(sys.executable).parent / "huey_consumer")
        self.ids: list[str] = []
        self.baseline = 0

    def reset(self) -> None:
        self.redis.flushdb(asynchronous=True)
        self.ids = []
        self.baseline = 0

    def enqueue(self, count: int, task: str) -> None:
        call = self.tasks.TASKS[task]
        ids = self.ids
        for _ in range(count):
            ids.append(call().id)

    def enqueue_one(self, task: str, index: int) -> Any:
        task_id: str = self.tasks.TASKS[task]().id
        self.ids.append(task_id)
        return task_id

    def worker_command(self, concurrency: int) -> list[str]:
        return [self.bin, "huey_tasks.huey", "-k", "thread", "-w", str(self.workers)]

    def completed(self) -> int:
        """Fields in Huey's result hash, less the backlog's."""
        return int(self.redis.hlen(self.results_key)) - self.baseline

    def _results(self, ids: Sequence[str]) -> list[bytes | None]:
        """The stored result of each task, by HMGET on the result hash in chunks."""
        found: list[bytes | None] = []
        for first in range(0, len(ids), CHUNK):
            chunk = list(ids[first : first + CHUNK])
            found.extend(cast("list[bytes | None]", self.redis.hmget(self.results_key, chunk)))
        return found

    def verify(self) -> int:
        """Tasks of this run whose stored result is a return value, not a huey Error."""
        deserialize = self.tasks.huey.serializer.deserialize
        return sum(
            1
            for raw in self._results(self.ids)
            if raw is not None and not isinstance(deserialize(raw), self.error_type)
        )

    def stamps(self, handles: Sequence[Any]) -> list[float]:
        deserialize = self.tasks.huey.serializer.deserialize
        values = self._results(handles)
        if any(raw is None for raw in values):
            raise BenchError("a latency task has no result")
        return [float(deserialize(raw)) for raw in values if raw is not None]

    def fill_backlog(self, rows: int) -> None:
        """Write ``rows`` results of finished ``noop`` tasks.

        A finished Huey task is only its result: the consumer popped the message off the
        queue list when it started, and ``put_result`` stores the pickled return value
        (``None`` here, as ``store_none=True`` keeps it) under the task id in the one
        result hash; it has no TTL.
        """
        value = self.tasks.huey.serializer.serialize(None)
        written = 0
        while written < rows:
            with self.redis.pipeline(transaction=False) as pipe:
                for _ in range(10):
                    batch = min(CHUNK, rows - written)
                    if batch <= 0:
                        break
                    pipe.hset(
                        self.results_key, mapping={str(uuid.uuid4()): value for _ in range(batch)}
                    )
                    written += batch
                pipe.execute()
        self.baseline = int(self.redis.hlen(self.results_key))
        if self.baseline != rows:
            raise BenchError(f"the backlog holds {self.baseline} results, not {rows}")

    def close(self) -> None:
        self.redis.close()


if __name__ == "__main__":
    sys.exit(run(Huey))
