"""Bench adapter for Dramatiq: ``RedisBroker`` + ``Results`` on ``RedisBackend``, Redis db 3.

Reliability: the Redis broker moves a fetched message into a per-worker acks set and
deletes it only when the actor has returned (at-least-once; a dead worker's unacked
messages go back to the queue once its heartbeat is 60 s old). That is Dramatiq's only
Redis mode, and its default. Every actor has ``store_results=True`` (see
``dramatiq_tasks``), so each completed job leaves one result key: a Redis list holding
the JSON-encoded return value, named by the MD5 of
``dramatiq-results:<queue>:<actor>:<message id>`` and expiring after the middleware's
default ``result_ttl`` of 10 minutes.

Worker: the ``dramatiq`` command with ``--processes 1 --threads T``. Dramatiq's worker is
a thread pool in one process; the command also keeps a supervisor parent that only
forks the worker and relays its log lines, so each worker command is two OS processes,
one of which does the work. ``--concurrency 0`` means Dramatiq's default of 8 threads.

Enqueue: Dramatiq has no batch API (``group(...).run()`` is a loop over
``broker.enqueue``), so each job is one ``actor.send()``, one script call on Redis.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from hashlib import md5
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from _common import BenchError, System, run

if TYPE_CHECKING:
    from collections.abc import Sequence

REDIS_DB = 3
#: Dramatiq's default thread count for one worker process (``dramatiq --threads``).
DEFAULT_THREADS = 8
#: Commands per pipeline when writing or reading many keys.
CHUNK = 5_000
#: Backlog results outlive any run (the 10-minute default could expire mid-run).
BACKLOG_TTL_MS = 3_600_000

#: Keys in the database that are not results: the broker's queue, message hash, delay
#: queue, dead-letter queue, heartbeats and, per worker in the heartbeats set, its acks
#: sets. DBSIZE minus those is the number of result keys, in one round trip and O(workers).
COUNT_RESULTS = """
local ns = KEYS[1]
local n = redis.call('DBSIZE')
n = n - redis.call('EXISTS', ns .. ':default', ns .. ':default.msgs',
    ns .. ':default.DQ', ns .. ':default.DQ.msgs', ns .. ':default.XQ',
    ns .. ':default.XQ.msgs', ns .. ':__heartbeats__')
for _, worker in ipairs(redis.call('ZRANGE', ns .. ':__heartbeats__', 0, -1)) do
    local acks = ns .. ':__acks__.' .. worker
    n = n - redis.call('EXISTS', acks .. '.default', acks .. '.default.DQ')
end
return n
"""


class Dramatiq(System):
    name = "dramatiq"

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.url = f"{args.redis_url}/{REDIS_DB}"
        # The tasks module builds its broker from this at import, here and in workers.
        os.environ["BENCH_DRAMATIQ_URL"] = self.url
        import dramatiq_tasks

        self.tasks = dramatiq_tasks
        self.threads = args.concurrency or DEFAULT_THREADS
        default = " (default)" if not args.concurrency else ""
        self.mode = (
            "RedisBroker, ack after the actor returns (at-least-once), "
            "Results on RedisBackend (store_results=True, result_ttl 10 min); "
            f"1 worker process x {self.threads} threads{default}, prefetch 2x threads "
            "(default); enqueue: actor.send per job (no batch API)"
        )
        self.redis = redis.Redis.from_url(self.url)
        self.count_results = self.redis.register_script(COUNT_RESULTS)
        self.bin = str(Path(sys.executable).parent / "dramatiq")
        self.sent: list[Any] = []
        self.baseline = 0

    def reset(self) -> None:
        self.redis.flushdb(asynchronous=True)
        self.sent = []
        self.baseline = 0

    def enqueue(self, count: int, task: str) -> None:
        actor = self.tasks.ACTORS[task]
        sent = self.sent
        for _ in range(count):
            sent.append(actor.send())

    def enqueue_one(self, task: str, index: int) -> Any:
        message = self.tasks.ACTORS[task].send()
        self.sent.append(message)
        return message

    def worker_command(self, concurrency: int) -> list[str]:
        return [self.bin, "dramatiq_tasks", "--processes", "1", "--threads", str(self.threads)]

    def completed(self) -> int:
        """Result keys in db 3 (DBSIZE less the broker's own keys), less the backlog."""
        return int(self.count_results(keys=[self.tasks.broker.namespace])) - self.baseline

    def _results(self, messages: Sequence[Any]) -> list[bytes | None]:
        """The stored result of each message, read with pipelined LINDEX as Dramatiq does."""
        backend = self.tasks.backend
        found: list[bytes | None] = []
        for first in range(0, len(messages), CHUNK):
            with self.redis.pipeline(transaction=False) as pipe:
                for message in messages[first : first + CHUNK]:
                    pipe.lindex(backend.build_message_key(message), 0)
                found.extend(pipe.execute())
        return found

    def verify(self) -> int:
        """Messages of this run whose result key holds a return value, not an exception."""
        done = 0
        for raw in self._results(self.sent):
            if raw is None:
                continue
            value = json.loads(raw)
            if isinstance(value, dict) and "__t" in value:
                continue  # wrap_exception's marker: the actor raised.
            done += 1
        return done

    def stamps(self, handles: Sequence[Any]) -> list[float]:
        values = self._results(handles)
        if any(raw is None for raw in values):
            raise BenchError("a latency job has no result")
        return [float(json.loads(raw)) for raw in values if raw is not None]

    def fill_backlog(self, rows: int) -> None:
        """Write ``rows`` results of finished ``noop`` jobs.

        A finished Dramatiq job is only its result key: the broker deletes the message
        from ``dramatiq:default.msgs`` and the acks set when the actor returns, and the
        Results middleware leaves a list with the encoded return value (``null``) under
        the MD5 of ``dramatiq-results:default:noop:<message id>``, with a TTL.
        """
        namespace = self.tasks.backend.namespace
        value = self.tasks.backend.encoder.encode(None)
        written = 0
        while written < rows:
            batch = min(CHUNK, rows - written)
            with self.redis.pipeline(transaction=False) as pipe:
                for _ in range(batch):
                    key = md5(f"{namespace}:default:noop:{uuid.uuid4()}".encode()).hexdigest()
                    pipe.lpush(key, value)
                    pipe.pexpire(key, BACKLOG_TTL_MS)
                pipe.execute()
            written += batch
        self.baseline = int(self.count_results(keys=[self.tasks.broker.namespace]))
        if self.baseline != rows:
            raise BenchError(f"the backlog holds {self.baseline} results, not {rows}")

    def close(self) -> None:
        self.redis.close()


if __name__ == "__main__":
    sys.exit(run(Dramatiq))
