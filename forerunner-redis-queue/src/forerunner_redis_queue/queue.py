"""``RedisQueue``: the queue of design §4 on Redis, for many managers in many processes.

Layout (``keys.py`` and the ``.lua`` headers have every key). Each type has a sorted set
of its waiting entries, scored ``-priority``, whose members are ``SEQ .. job_id``
with ``SEQ`` a 16-digit hex push counter: Redis orders equal scores by member bytes, so
a set's head is its highest priority, earliest push. A hash maps every waiting job id
to ``SEQ .. type``; it makes push idempotent (``HSETNX``), ``remove`` able to find the
member, and ``size()`` one ``HLEN``.

Operations are Lua scripts, one round trip each, atomic, on keys that all carry the
hash tag ``{prefix}`` so that a Redis Cluster keeps them in one slot. ``pop`` merges the
heads of the requested types in the script (or takes ``ZPOPMIN`` for one type), which
is fifo across types; with ``?ordering=random`` it draws each entry uniformly among
every matching one, from a seed the client sends (scripts read no clock and no
randomness of their own).

Blocking without polling and without lost wake-ups. Each type also has a signal list
holding at most one token. A push that adds entries of a type leaves a token there if
there is none. A pop that finds nothing blocks in ``BLPOP`` on the signal lists of its
types for what is left of its timeout (in slices of :data:`WAIT_SLICE`), and on
waking runs the pop script again, telling it to pass the wake-up on: having popped, the
script leaves a token on every requested type that still has entries, so the next
blocked pop wakes in turn. No wake-up is lost between "the script found nothing" and
"BLPOP started": the token is a value in Redis, not a message, so a push in between
leaves it for the ``BLPOP`` to take at once. Redis serves blocked clients in the order
they blocked, and a token costs a waiter nothing but one ``BLPOP`` reply, so a push from
any process wakes a waiter within a round trip, while an idle pop sends two commands
per slice: a look, and a wait.

Lost replies. A pop's reply can be lost after the script ran (a dropped connection, a
timeout): the entries are gone from Redis and never reached the caller. So each pop
carries a fresh token, the script stores its reply under the popping thread's receipt
key, and a retry of the same request gets that reply back instead of popping more.

The queue holds no truth (architecture.md): if Redis restarts empty, the manager
rebuilds the queue from the store. Errors reaching Redis raise
:class:`~forerunner.errors.BackendUnavailable` naming the URL, password masked.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from typing import TYPE_CHECKING, ClassVar, Final, cast

import attrs

from forerunner.errors import BackendError, ConfigurationError, ValidationError
from forerunner.model import QueueEntry
from forerunner_redis_queue.connection import (
    WAIT_SLICE,
    Client,
    Clients,
    open_clients,
    translate_errors,
)
from forerunner_redis_queue.scripts import Scripts
from forerunner_redis_queue.url import parse_url

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from forerunner.queue import Ordering
    from forerunner_redis_queue.url import RedisQueueConfig

__all__ = ["MAX_PRIORITY", "RandomRedisQueue", "RedisQueue", "open_redis_queue"]

logger = logging.getLogger(__name__)

#: Priorities are scores, doubles: they order exactly within ±2**53, the range the
#: HTTP API accepts, and the queue refuses others rather than order them wrongly.
MAX_PRIORITY: Final = 2**53
#: How long a pop's receipt lives: far longer than a retry takes to arrive.
RECEIPT_MILLISECONDS: Final = 60_000
#: Rounds of read-then-verify that ``remove`` and ``clear`` allow before giving up.
_ATTEMPTS: Final = 50
#: The shortest BLPOP timeout sent; 0 would mean "forever".
_MIN_WAIT: Final = 0.001


@attrs.frozen(kw_only=True)
class _Link:
    """A queue's way to Redis: its two clients and the scripts registered on them."""

    clients: Clients
    scripts: Scripts

    @property
    def commands(self) -> Client:
        return self.clients.commands


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


class RedisQueue:
    """A fifo queue in Redis, shared by every process that opens the same URL.

    Thread-safe: redis-py's connection pools hand each thread its own connection.
    """

    ordering: ClassVar[Ordering] = "fifo"
    #: Entries live in Redis, not in this object: closing and reopening the URL finds
    #: them again. (A Redis restart without persistence loses them; the manager
    #: rebuilds the queue from the store.)
    durable: ClassVar[bool] = True
    shared: ClassVar[bool] = True

    def __init__(self, config: RedisQueueConfig) -> None:
        if config.ordering != self.ordering:
            raise ConfigurationError(
                f"{type(self).__name__} orders {self.ordering!r}; open the URL with "
                "open_redis_queue to get the class its ordering asks for"
            )
        self.config = config
        self._keys = config.keys
        self._display = config.display
        self._link: _Link | None = None
        self._link_lock = threading.Lock()
        self._client_id = os.urandom(8).hex()
        #: The receipt keys this object's pops wrote, deleted on close.
        self._receipts: set[str] = set()
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> RedisQueue:
        """The queue for a ``redis://``, ``rediss://``, ``unix://`` or cluster URL."""
        return open_redis_queue(url)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._display}>"

    # The Queue protocol

    def push(self, entries: Sequence[QueueEntry]) -> None:
        self._check_open()
        if not entries:
            return
        types = _distinct(entry.type for entry in entries)
        index = {job_type: n for n, job_type in enumerate(types, 1)}
        args: list[str | int] = list(types)
        for entry in entries:
            if not -MAX_PRIORITY <= entry.priority <= MAX_PRIORITY:
                raise ValidationError(
                    f"job {entry.job_id!r} has priority {entry.priority}; the Redis queue "
                    f"orders priorities from -2**53 to 2**53 (as the HTTP API accepts)",
                    field="priority",
                )
            args += (entry.job_id, index[entry.type], -entry.priority)
        keys = [self._keys.entries, self._keys.seq, self._keys.types]
        keys += self._keys.per_type(types)
        with translate_errors(self._display, "push"):
            self._connected().scripts.push(keys, args)

    def pop(self, types: Sequence[str], count: int = 1, timeout: float = 0.0) -> list[QueueEntry]:
        self._check_open()
        wanted = _distinct(types)
        if count < 1 or not wanted:
            return []
        receipt = self._keys.receipt(self._receipt_client())
        self._receipts.add(receipt)
        keys = [self._keys.entries, receipt, *self._keys.per_type(wanted)]
        signals = keys[3::2]
        deadline = time.monotonic() + max(timeout, 0.0)
        woken: bool | None = False
        while True:
            try:
                popped = self._pop_once(wanted, keys, count, woken=bool(woken))
            except BackendError:
                if self._closed:  # closed by another thread while this one popped
                    return []
                raise
            left = deadline - time.monotonic()
            if popped or left <= 0:
                return popped
            woken = self._wait(signals, min(left, WAIT_SLICE))
            if woken is None:
                return []

    def remove(self, job_ids: Sequence[str]) -> int:
        self._check_open()
        pending = _distinct(job_ids)
        removed = 0
        with translate_errors(self._display, "remove entries"):
            for _ in range(_ATTEMPTS):
                if not pending:
                    return removed
                values = cast(
                    "list[str | None]",
                    self._connected().commands.hmget(self._keys.entries, pending),
                )
                found = [
                    (job_id, v) for job_id, v in zip(pending, values, strict=True) if v is not None
                ]
                if not found:
                    return removed
                types = _distinct(value[16:] for _, value in found)
                index = {job_type: n for n, job_type in enumerate(types, 1)}
                keys = [self._keys.entries, *(self._keys.queue(t) for t in types)]
                args: list[str | int] = []
                for job_id, value in found:
                    args += (job_id, value, index[value[16:]])
                reply = self._connected().scripts.remove(keys, args)
                removed += int(reply[0])
                pending = [str(job_id) for job_id in reply[1:]]
        raise BackendError(
            f"the Redis queue at {self._display} could not remove {len(pending)} entries: "
            f"they were popped and pushed again {_ATTEMPTS} times while it tried"
        )

    def size(self, types: Sequence[str] | None = None) -> int:
        self._check_open()
        with translate_errors(self._display, "count entries"):
            if types is None:
                return int(self._connected().commands.hlen(self._keys.entries))
            wanted = _distinct(types)
            if not wanted:
                return 0
            return self._connected().scripts.size([self._keys.queue(t) for t in wanted])

    def clear(self) -> None:
        self._check_open()
        with translate_errors(self._display, "clear"):
            known = list(cast("set[str]", self._connected().commands.smembers(self._keys.types)))
            for _ in range(_ATTEMPTS):
                keys = [self._keys.entries, self._keys.seq, self._keys.types]
                keys += self._keys.per_type(known)
                missing = self._connected().scripts.clear(keys, known)
                if not missing:
                    return
                known += missing
        raise BackendError(
            f"the Redis queue at {self._display} could not clear: new types kept arriving"
        )

    def close(self) -> None:
        """Close every connection; pops blocked in other threads return ``[]``.

        Also deletes this object's pop receipts, so that a closed queue leaves nothing
        behind but its entries; if Redis does not answer, they expire on their own.
        """
        if self._closed:
            return
        self._closed = True
        with self._link_lock:
            link, self._link = self._link, None
        if link is None:
            return
        receipts = list(self._receipts)
        try:
            if receipts:
                with translate_errors(self._display, "delete pop receipts"):
                    link.commands.delete(*receipts)
        except BackendError:
            logger.debug("pop receipts of %s left to expire", self._display, exc_info=True)
        finally:
            link.clients.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # Internals

    def _connected(self) -> _Link:
        """The clients and scripts, made on first use.

        Not in the constructor, because a cluster client asks a node for the slot map as
        soon as it is made: a manager must start, and answer 503, while Redis is down.
        """
        link = self._link
        if link is not None:
            return link
        with self._link_lock:
            self._check_open()
            if self._link is None:
                with translate_errors(self._display, "connect"):
                    clients = open_clients(self.config)
                    self._link = _Link(clients=clients, scripts=Scripts(clients.commands))
            return self._link

    def _seed(self) -> str:
        """ARGV[5] of pop.lua: empty for fifo order."""
        return ""

    def _pop_once(
        self, types: list[str], keys: list[str], count: int, *, woken: bool
    ) -> list[QueueEntry]:
        token = os.urandom(16).hex()
        args: list[str | int] = [token, RECEIPT_MILLISECONDS, count, "1" if woken else "0"]
        args.append(self._seed())
        with translate_errors(self._display, "pop"):
            reply = self._connected().scripts.pop(keys, args)
        return [
            QueueEntry(
                job_id=reply[at],
                type=types[int(reply[at + 1]) - 1],
                priority=-int(float(reply[at + 2])),
            )
            for at in range(0, len(reply), 3)
        ]

    def _wait(self, signals: list[str], seconds: float) -> bool | None:
        """Block until a signal token arrives or ``seconds`` pass; whether one arrived.

        None when the queue was closed meanwhile: closing ends the wait by closing its
        connection, and the pop then returns without looking again.
        """
        try:
            with translate_errors(self._display, "wait for entries"):
                got = self._connected().clients.waits.blpop(
                    signals, timeout=max(seconds, _MIN_WAIT)
                )
        except BackendError:
            if self._closed:
                return None
            raise
        return None if self._closed else got is not None

    def _receipt_client(self) -> str:
        """Who pops: this queue object, in this process, on this thread."""
        return f"{self._client_id}:{os.getpid()}:{threading.get_ident()}"

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError(f"the Redis queue at {self._display} is closed; open the URL again")


class RandomRedisQueue(RedisQueue):
    """``?ordering=random``: pops uniformly at random among the matching entries.

    Same keys as the fifo queue, so both orderings may open one prefix at once; only
    the pop differs. The seed comes from this process, since Redis seeds a script's
    ``math.random`` the same way on every call.
    """

    ordering: ClassVar[Ordering] = "random"

    def _seed(self) -> str:
        return str(random.getrandbits(31))


def open_redis_queue(url: str) -> RedisQueue:
    """The plugin's factory for every scheme: the class the URL's ordering asks for.

    No connection is opened here; the first call reaches Redis and raises
    :class:`~forerunner.errors.BackendUnavailable` if it does not answer.
    """
    config = parse_url(url)
    if config.ordering == "random":
        return RandomRedisQueue(config)
    return RedisQueue(config)
