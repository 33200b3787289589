"""Bench adapter for RQ, Redis database 2, in two variants.

* default (``--variant`` empty): ``rq worker`` with RQ's default ``Worker``, which forks
  one work horse per job by design, so one worker process has at most one child
  process alive at a time beside it. This is RQ's default and the isolation its docs
  describe: a job that crashes or hangs kills only its horse, and the parent records
  the failure.
* ``simple``: ``rq worker --worker-class rq.worker.SimpleWorker``, which runs each job
  inside the worker process (no fork): cheaper per job, but a job that crashes the
  process takes the worker with it.

An RQ worker runs one job at a time, whatever the workload: RQ has no pool of threads
or tasks inside a worker process (its ``worker-pool`` command starts more OS
processes, which the bench counts with ``--processes``), so ``--concurrency`` does not
apply and the mode says so.

Jobs are enqueued with ``Queue.enqueue_many`` into one Redis pipeline (MULTI/EXEC) per
1,000 jobs. Workers run with ``--results-ttl 86400``: RQ's default of 500 s could expire
early results before a long run ends; one day is what Celery keeps results by default.
Completion is the size of RQ's ``FinishedJobRegistry`` (one ZCARD), which RQ updates in
the same transaction that sets the job's status to finished and stores its result (plus
the ``FailedJobRegistry``, empty unless something went wrong); the exact count checks
every job of this run for status ``finished`` and a finished-registry entry.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import redis
import rq_tasks
from _common import BenchError, System, claim_database, run
from rq import Queue
from rq.job import Job
from rq.results import Result

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The Redis database that belongs to RQ in the bench.
REDIS_DB = 2
#: The queue every job goes to.
QUEUE = "default"
#: Jobs per ``enqueue_many`` pipeline.
BATCH = 1000
#: Jobs read or written per round trip when walking jobs or filling the backlog.
CHUNK = 2000
#: Seconds RQ keeps a finished job, its result and its registry entry.
RESULT_TTL = 86400

#: The worker class of each variant.
WORKERS = {"": "rq.worker.Worker", "simple": "rq.worker.SimpleWorker"}


class RQBench(System):
    name = "rq"

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        if args.variant not in WORKERS:
            raise SystemExit(f"--variant must be empty (Worker) or simple, not {args.variant!r}")
        self.worker_class = WORKERS[args.variant]
        horse = (
            "SimpleWorker, jobs run in the worker process"
            if args.variant
            else "Worker, forks one work horse per job"
        )
        self.mode = (
            f"{horse}, 1 job at a time per process (RQ has no in-process concurrency: "
            f"--concurrency unused), result_ttl {RESULT_TTL}, enqueue_many"
        )
        self.url = f"{args.redis_url.rstrip('/')}/{REDIS_DB}"
        self.redis = redis.Redis.from_url(self.url)
        self.queue = Queue(QUEUE, connection=self.redis)
        self.finished = self.queue.finished_job_registry.key
        self.failed = self.queue.failed_job_registry.key
        self.ids: list[str] = []
        self.baseline = 0
        self.lock: IO[str] | None = None

    def reset(self) -> None:
        if self.lock is None:
            self.lock = claim_database(REDIS_DB)
        self.redis.flushdb(asynchronous=True)
        self.ids = []
        self.baseline = 0

    # Workloads

    def enqueue(self, count: int, task: str) -> None:
        function = rq_tasks.TASKS[task]
        for first in range(0, count, BATCH):
            datas = [
                Queue.prepare_data(function, args=(i,))
                for i in range(first, min(count, first + BATCH))
            ]
            with self.redis.pipeline() as pipe:
                jobs = self.queue.enqueue_many(datas, pipeline=pipe)
                pipe.execute()
            self.ids.extend(job.id for job in jobs)

    def enqueue_one(self, task: str, index: int) -> Any:
        job = self.queue.enqueue(rq_tasks.TASKS[task], index)
        self.ids.append(job.id)
        return job.id

    def worker_command(self, concurrency: int) -> list[str]:
        return [
            str(Path(sys.executable).parent / "rq"), "worker", "--url", self.url,
            "--worker-class", self.worker_class, "--results-ttl", str(RESULT_TTL),
            "--logging_level", "WARNING", QUEUE,
        ]  # fmt: skip

    def completed(self) -> int:
        """Finished jobs, plus failed ones so that a failure ends the drain at once.

        A failed job is then caught by :meth:`verify`, instead of a drain that waits
        for the stuck limit on a job that will never finish.
        """
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.finished)
            pipe.zcard(self.failed)
            finished, failed = pipe.execute()
        return int(finished) + int(failed) - self.baseline

    def verify(self) -> int:
        done = 0
        for first in range(0, len(self.ids), CHUNK):
            ids = self.ids[first : first + CHUNK]
            with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hget(Job.key_for(job_id), "status")
                pipe.zmscore(self.finished, ids)
                *statuses, scores = pipe.execute()
            done += sum(
                1
                for status, score in zip(statuses, scores, strict=True)
                if status == b"finished" and score is not None
            )
        return done

    def stamps(self, handles: Sequence[Any]) -> list[float]:
        stamps = []
        for job in Job.fetch_many(list(handles), connection=self.redis):
            if job is None or job.get_status(refresh=False) != "finished":
                raise BenchError("a latency job did not finish")
            value = job.return_value()
            if value is None:
                raise BenchError(f"latency job {job.id} has no result")
            stamps.append(float(value))
        return stamps

    def fill_backlog(self, rows: int) -> None:
        """Write ``rows`` finished jobs as an RQ worker leaves them.

        A finished RQ job is three things, all written by the worker in one
        transaction: the job hash ``rq:job:<id>`` with status ``finished`` and its
        timestamps, a result stream ``rq:results:<id>`` with one successful ``Result``,
        both expiring after the result TTL, and the job's entry in the queue's
        ``FinishedJobRegistry`` (a sorted set scored by expiry time). The hash and the
        result are made once with RQ's own classes and copied with a fresh id per row.
        """
        now = datetime.now(UTC)
        template = self.queue.create_job(rq_tasks.noop, args=(0,))
        template.enqueued_at = template.started_at = template.ended_at = now
        template.last_heartbeat = now
        template.worker_name = "backlog"
        fields = template.to_dict(include_meta=False, include_result=False)
        fields["status"] = "finished"
        result = Result(
            job_id=template.id, type=Result.Type.SUCCESSFUL, connection=self.redis,
            return_value=None, worker_name="backlog", serializer=template.serializer,
            execution_id=uuid.uuid4().hex, execution_started_at=now, execution_ended_at=now,
        ).serialize()  # fmt: skip
        entry = cast("dict[Any, Any]", result)  # redis-py types stream fields narrowly
        score = int(now.timestamp()) + RESULT_TTL
        written = 0
        while written < rows:
            size = min(CHUNK, rows - written)
            ids = [str(uuid.uuid4()) for _ in range(size)]
            with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    job_key = Job.key_for(job_id)
                    result_key = Result.get_key(job_id)  # type: ignore[no-untyped-call]
                    pipe.hset(job_key, mapping=fields)
                    pipe.expire(job_key, RESULT_TTL)
                    pipe.xadd(result_key, entry, maxlen=10)
                    pipe.expire(result_key, RESULT_TTL)
                pipe.zadd(self.finished, dict.fromkeys(ids, score))
                pipe.execute()
            written += size
        self.redis.sadd("rq:queues", self.queue.key)
        self.baseline = int(self.redis.zcard(self.finished))
        if self.baseline != rows:
            raise BenchError(f"the finished registry holds {self.baseline} jobs, not {rows}")

    def close(self) -> None:
        self.redis.close()
        if self.lock is not None:
            self.lock.close()


if __name__ == "__main__":
    sys.exit(run(RQBench))
