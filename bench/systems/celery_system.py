"""Bench adapter for Celery: Redis broker and Redis result backend, database 1.

Mode: ``task_acks_late=True``, ``worker_prefetch_multiplier=1`` (see
:mod:`celery_tasks`). One worker process is ``celery worker`` with a pool that runs
inside it, as a user would pick for the workload: the ``threads`` pool at Celery's
default width (the CPU count) for noop and latency, or at ``--concurrency`` threads
for sleep. One pool type for every workload keeps ``--concurrency 0`` meaning Celery's
own default; ``solo`` (one task at a time in the main thread) drained noop jobs no
faster in trial runs. No prefork pool, so ``--processes P`` is exactly P OS processes. Workers run
``--without-gossip --without-mingle --without-heartbeat``: those exchange state between
workers of a cluster, which no workload here needs, and mingle would send control
messages while the clock may already run.

Jobs are sent with ``apply_async``, one message per job (Celery has no batch send:
``group`` loops over the same call), all through one producer. As Celery's Redis result
backend does for every ``apply_async`` whose result may be waited for, the sending
process subscribes to each job's result channel and unsubscribes when the handle is
dropped; that is part of Celery's cost per job and is left in.

Completion is read from the result backend. Result keys are the only keys in the
database with a time to live (``result_expires``; kombu's queues, bindings and unacked
index have none), so the ``expires`` figure of ``INFO keyspace`` counts them in O(1);
the one volatile kombu key, ``unacked_mutex``, is subtracted when present. The exact
count reads back every result key of this run and checks that its state is SUCCESS.
"""

from __future__ import annotations

import itertools
import os
import sys
import uuid
from typing import IO, TYPE_CHECKING, Any

import redis
from _common import BenchError, System, claim_database, run

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The Redis database that belongs to Celery in the bench (see :mod:`celery_tasks`).
REDIS_DB = 1
#: Keys read or written per round trip when walking results or filling the backlog.
CHUNK = 5000
#: kombu's lock around restoring unacknowledged messages: volatile, but no result.
MUTEX = "unacked_mutex"


class CeleryBench(System):
    name = "celery"

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        if args.variant:
            raise SystemExit(f"celery has no variants, not {args.variant!r}")
        # celery_tasks reads the URL when it is imported: set it first.
        os.environ["BENCH_REDIS_URL"] = args.redis_url
        import celery_tasks

        self.tasks = celery_tasks
        self.app = celery_tasks.app
        self.redis = redis.Redis.from_url(f"{args.redis_url.rstrip('/')}/{REDIS_DB}")
        # Celery's own default width for the threads pool is the CPU count.
        self.pool, self.width = "threads", args.concurrency or os.cpu_count() or 1
        self.mode = (
            f"acks_late, prefetch multiplier 1, {self.pool} pool x{self.width} in one process, "
            "redis broker + redis results, apply_async per job, no gossip/mingle/heartbeat"
        )
        self.names = itertools.count()
        self.ids: list[str] = []
        self.baseline = 0
        self.lock: IO[str] | None = None

    # The backend

    def _volatile(self) -> int:
        """Keys with a time to live in Celery's database, minus kombu's mutex."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.info("keyspace")
            pipe.exists(MUTEX)
            keyspace, mutex = pipe.execute()
        expires = int(keyspace.get(f"db{REDIS_DB}", {}).get("expires", 0))
        return expires - int(mutex)

    def _metas(self, ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """The stored result of each job, in order; None where there is none."""
        metas: list[dict[str, Any] | None] = []
        backend = self.app.backend
        for first in range(0, len(ids), CHUNK):
            keys = [backend.get_key_for_task(i) for i in ids[first : first + CHUNK]]
            metas.extend(
                None if raw is None else backend.decode(raw) for raw in self.redis.mget(keys)
            )
        return metas

    def reset(self) -> None:
        if self.lock is None:
            self.lock = claim_database(REDIS_DB)
        self.redis.flushdb(asynchronous=True)
        self.ids = []
        self.baseline = 0

    # Workloads

    def env(self) -> dict[str, str]:
        env = super().env()
        env["BENCH_REDIS_URL"] = self.args.redis_url
        return env

    def enqueue(self, count: int, task: str) -> None:
        function = self.tasks.TASKS[task]
        ids = [str(uuid.uuid4()) for _ in range(count)]
        with self.app.producer_or_acquire() as producer:
            for index, task_id in enumerate(ids):
                function.apply_async((index,), task_id=task_id, producer=producer)
        self.ids.extend(ids)

    def enqueue_one(self, task: str, index: int) -> Any:
        result = self.tasks.TASKS[task].apply_async((index,))
        self.ids.append(result.id)
        return result.id

    def worker_command(self, concurrency: int) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "celery_tasks", "worker",
            "--pool", self.pool, "--concurrency", str(self.width),
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "WARNING", "--hostname", f"bench{next(self.names)}@%h",
        ]  # fmt: skip

    def completed(self) -> int:
        return self._volatile() - self.baseline

    def verify(self) -> int:
        return sum(
            1
            for meta in self._metas(self.ids)
            if meta is not None and meta.get("status") == "SUCCESS"
        )

    def stamps(self, handles: Sequence[Any]) -> list[float]:
        metas = self._metas(list(handles))
        if any(meta is None or meta.get("status") != "SUCCESS" for meta in metas):
            raise BenchError("a latency job has no successful result")
        return [float(meta["result"]) for meta in metas if meta is not None]

    def fill_backlog(self, rows: int) -> None:
        """Write ``rows`` finished jobs as Celery's Redis result backend stores them.

        A finished Celery job leaves nothing in the broker (its message was removed
        from the queue and, being acknowledged, from the ``unacked`` hash); what stays
        is its result: the key ``celery-task-meta-<uuid>``, the JSON the backend
        encodes (status SUCCESS, result, traceback, children, date_done, task_id),
        written with a time to live of ``result_expires`` (the backend's SETEX; here
        SET with EX, the same entry). The value is made once with the
        backend's own encoder and copied with a fresh id per row.
        """
        backend = self.app.backend
        template = "00000000-0000-4000-8000-000000000000"
        meta = backend._get_result_meta(None, "SUCCESS", None, None)
        meta["task_id"] = template
        encoded = backend.encode(meta)
        if isinstance(encoded, bytes):
            encoded = encoded.decode()
        head, tail = encoded.split(template)
        expires = int(backend.expires)
        written = 0
        while written < rows:
            with self.redis.pipeline(transaction=False) as pipe:
                for _ in range(min(CHUNK, rows - written)):
                    task_id = str(uuid.uuid4())
                    pipe.set(backend.get_key_for_task(task_id), head + task_id + tail, ex=expires)
                pipe.execute()
            written += min(CHUNK, rows - written)
        self.baseline = self._volatile()
        if self.baseline != rows:
            raise BenchError(f"the backlog holds {self.baseline} results, not {rows}")

    def close(self) -> None:
        self.redis.close()
        if self.lock is not None:
            self.lock.close()


if __name__ == "__main__":
    sys.exit(run(CeleryBench))
