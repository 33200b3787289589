"""What the Redis queue promises beyond the conformance suite.

The suite certifies the Queue contract; these cover what is particular to Redis: the
plugin's schemes, prefixes that keep deployments apart in one database, a ``clear``
that touches nothing outside its prefix, ``close`` releasing blocked pops, the
priority range scores can order, and the two orderings sharing one prefix.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from forerunner.errors import BackendError, ValidationError
from forerunner.model import QueueEntry
from forerunner.plugins import get_registry
from forerunner_redis_queue import RandomRedisQueue, RedisQueue, open_redis_queue
from forerunner_redis_queue.queue import MAX_PRIORITY

if TYPE_CHECKING:
    from collections.abc import Callable

    import redis

#: How long a test waits for a thread it expects to finish; passing never takes long.
STUCK = 20.0


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/15",
        "rediss://127.0.0.1:6379/15",
        "unix:///run/redis.sock?db=15",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "rediss+cluster://127.0.0.1:7000",
    ],
)
def test_the_plugin_serves_every_redis_scheme(url: str) -> None:
    registry = get_registry()

    described = registry.describe_backend("queue", url)
    queue = registry.open_queue(url)  # opening does not connect
    try:
        assert "plugin 'redis'" in described
        assert "forerunner-redis-queue" in described
        assert type(queue) is RedisQueue
    finally:
        queue.close()


def test_ordering_random_opens_the_random_queue(
    queue_url: str, open_queue: Callable[[str], RedisQueue]
) -> None:
    queue = open_queue(f"{queue_url}&ordering=random")

    assert type(queue) is RandomRedisQueue
    assert queue.ordering == "random"
    assert (queue.shared, queue.durable) == (True, True)


def test_fifo_and_random_queues_share_one_prefix(
    queue_url: str, open_queue: Callable[[str], RedisQueue]
) -> None:
    fifo = open_queue(queue_url)
    shuffled = open_queue(f"{queue_url}&ordering=random")
    pushed = [QueueEntry(job_id=f"j{n}", type="alpha", priority=n % 2) for n in range(6)]
    fifo.push(pushed)

    taken = shuffled.pop(["alpha"], 3, 0.0)
    rest = fifo.pop(["alpha"], 10, 0.0)

    assert sorted(taken + rest, key=lambda e: e.job_id) == pushed
    assert rest == sorted(rest, key=lambda e: -e.priority)


def test_queues_under_other_prefixes_do_not_see_each_other(
    shared_redis: str,
    open_queue: Callable[[str], RedisQueue],
    unique_prefix: Callable[[str], str],
) -> None:
    mine = open_queue(f"{shared_redis}?prefix={unique_prefix('mine')}")
    theirs = open_queue(f"{shared_redis}?prefix={unique_prefix('theirs')}")
    entry = QueueEntry(job_id="j1", type="alpha")

    mine.push([entry])

    assert theirs.size() == 0
    assert theirs.pop(["alpha"], 1, 0.0) == []
    assert theirs.remove(["j1"]) == 0
    assert mine.pop(["alpha"], 1, 0.0) == [entry]


def test_any_prefix_text_works_and_names_the_connections(
    shared_redis: str,
    open_queue: Callable[[str], RedisQueue],
    unique_prefix: Callable[[str], str],
    raw: redis.Redis,
) -> None:
    prefix = f"テスト {unique_prefix('名前')}\t/x"
    queue = open_queue(f"{shared_redis}?prefix={quote(prefix)}")
    entry = QueueEntry(job_id="j1", type="alpha")

    queue.push([entry])

    assert queue.pop(["alpha"], 1, 0.0) == [entry]
    names = {client["name"] for client in raw.client_list()}
    assert any(name.startswith("forerunner-queue-____fr-") for name in names), names


def test_clear_deletes_only_the_keys_of_its_prefix(
    shared_redis: str,
    open_queue: Callable[[str], RedisQueue],
    unique_prefix: Callable[[str], str],
    raw: redis.Redis,
) -> None:
    # Given two queues with entries, a key of someone else, and one popped entry
    mine_prefix = unique_prefix("mine")
    mine = open_queue(f"{shared_redis}?prefix={mine_prefix}")
    other = open_queue(f"{shared_redis}?prefix={unique_prefix('other')}")
    foreign = f"{unique_prefix('foreign')}:{{{mine_prefix}}}-lookalike"
    raw.set(foreign, "keep me", ex=300)
    for queue in (mine, other):
        queue.push([QueueEntry(job_id=f"j{n}", type=t) for n, t in enumerate("abcab")])
    mine.pop(["a"], 1, 0.0)

    # When one is cleared and closed
    mine.clear()
    mine.close()

    # Then none of its keys remain, and everything else does
    assert raw.keys(f"{{{mine_prefix}}}*") == []
    assert other.size() == 5
    assert raw.get(foreign) == "keep me"
    raw.delete(foreign)


def test_close_releases_a_pop_blocked_in_another_thread(queue: RedisQueue) -> None:
    # Given a pop blocked for up to a minute
    got: list[list[QueueEntry]] = []
    blocked = threading.Thread(target=lambda: got.append(queue.pop(["alpha"], 1, 60.0)))
    blocked.start()
    queue.size()  # a round trip, so the pop is most likely in BLPOP by now

    # When the queue is closed
    queue.close()
    blocked.join(STUCK)

    # Then the pop returns nothing, and the queue refuses further use
    assert not blocked.is_alive()
    assert got == [[]]
    with pytest.raises(BackendError, match="is closed; open the URL again"):
        queue.push([QueueEntry(job_id="late", type="alpha")])
    queue.close()


def test_priorities_are_kept_exactly_at_the_ends_of_the_range(queue: RedisQueue) -> None:
    ends = [
        QueueEntry(job_id="low", type="alpha", priority=-MAX_PRIORITY),
        QueueEntry(job_id="high", type="alpha", priority=MAX_PRIORITY),
        QueueEntry(job_id="below-high", type="alpha", priority=MAX_PRIORITY - 1),
    ]
    queue.push(ends)

    assert queue.pop(["alpha"], 3, 0.0) == [ends[1], ends[2], ends[0]]


@pytest.mark.parametrize("priority", [MAX_PRIORITY + 1, -MAX_PRIORITY - 1, 10**30])
def test_a_priority_scores_cannot_order_is_refused_and_nothing_is_pushed(
    queue: RedisQueue, priority: int
) -> None:
    batch = [
        QueueEntry(job_id="fine", type="alpha"),
        QueueEntry(job_id="huge", type="alpha", priority=priority),
    ]

    with pytest.raises(ValidationError, match="from -2\\*\\*53 to 2\\*\\*53") as raised:
        queue.push(batch)

    assert raised.value.field == "priority"
    assert queue.size() == 0


def test_pop_of_no_types_or_no_entries_returns_at_once(queue: RedisQueue) -> None:
    queue.push([QueueEntry(job_id="j1", type="alpha")])

    assert queue.pop([], 1, 30.0) == []
    assert queue.pop(["alpha"], 0, 30.0) == []
    assert queue.size(["alpha"]) == 1


def test_a_type_named_twice_is_one_type(queue: RedisQueue) -> None:
    pushed = [QueueEntry(job_id=f"j{n}", type="alpha") for n in range(3)]
    queue.push(pushed)

    assert queue.size(["alpha", "alpha"]) == 3
    assert queue.pop(["alpha", "alpha"], 10, 0.0) == pushed


def test_remove_counts_an_id_named_twice_once(queue: RedisQueue) -> None:
    queue.push([QueueEntry(job_id="j1", type="alpha"), QueueEntry(job_id="j2", type="beta")])

    assert queue.remove(["j1", "j1", "j2", "unknown"]) == 2
    assert queue.size() == 0


def test_the_repr_shows_the_url_without_its_password() -> None:
    queue = open_redis_queue("redis://app:hunter2@127.0.0.1:6379/15?prefix=repr")
    queue.close()

    assert repr(queue) == "<RedisQueue redis://app:***@127.0.0.1:6379/15?prefix=repr>"
