"""The in-process queues ``memory://`` (MemoryQueue) and ``memory+random://`` (RandomMemoryQueue).

Covers what the queue conformance suite does not: the URLs they accept, that each
opening is a new queue, blocking pops waking on pushes from other threads and on
close, the fifo heaps staying in order through many removals and repushes (lazy
deletion and compaction), and the random queue drawing uniformly among the waiting
entries of the requested types. The Queue contract itself is certified by
``pytest --pyargs forerunner_queue_tests --forerunner-queue memory://``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from forerunner.backends.memory_queue import MemoryQueue, RandomMemoryQueue
from forerunner.errors import BackendError, ConfigurationError
from forerunner.model import QueueEntry
from forerunner.plugins import open_queue
from forerunner.queue import Queue

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Bound for "returns soon after a push": generous for a loaded two-core machine.
WAKE_SECONDS = 1.0


@pytest.fixture(params=[MemoryQueue, RandomMemoryQueue], ids=["fifo", "random"])
def queue(request: pytest.FixtureRequest) -> Iterator[MemoryQueue | RandomMemoryQueue]:
    made: MemoryQueue | RandomMemoryQueue = request.param()
    yield made
    made.close()


def entry(job_id: str, job_type: str = "alpha", priority: int = 0) -> QueueEntry:
    return QueueEntry(job_id=job_id, type=job_type, priority=priority)


def test_capabilities() -> None:
    assert (MemoryQueue.ordering, MemoryQueue.durable, MemoryQueue.shared) == (
        "fifo",
        False,
        False,
    )
    assert (RandomMemoryQueue.ordering, RandomMemoryQueue.durable, RandomMemoryQueue.shared) == (
        "random",
        False,
        False,
    )
    assert isinstance(MemoryQueue(), Queue)
    assert isinstance(RandomMemoryQueue(), Queue)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("memory://", MemoryQueue),
        ("MEMORY://", MemoryQueue),
        ("memory+random://", RandomMemoryQueue),
    ],
)
def test_from_url_accepts_the_bare_scheme(url: str, kind: type[Queue]) -> None:
    assert type(open_queue(url)) is kind


@pytest.mark.parametrize(
    "url",
    ["memory://host", "memory:///path", "memory://?size=3", "memory://#x", "memory:"],
)
def test_from_url_refuses_anything_after_the_scheme(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"write exactly memory://"):
        MemoryQueue.from_url(url)


def test_random_from_url_names_its_own_scheme() -> None:
    with pytest.raises(ConfigurationError, match=r"write exactly memory\+random://"):
        RandomMemoryQueue.from_url("memory+random://somewhere")


def test_each_opening_is_a_new_queue() -> None:
    first, second = MemoryQueue.from_url("memory://"), MemoryQueue.from_url("memory://")

    first.push([entry("a")])

    assert (first.size(), second.size()) == (1, 0)


def test_blocked_pop_wakes_on_a_push_from_another_thread(queue: MemoryQueue) -> None:
    # Given a pop blocked on an empty queue with a long timeout
    got: list[QueueEntry] = []
    popper = threading.Thread(target=lambda: got.extend(queue.pop(["alpha"], 1, 30.0)))
    popper.start()
    time.sleep(0.1)

    # When another thread pushes a matching entry
    pushed_at = time.monotonic()
    queue.push([entry("a")])
    popper.join(WAKE_SECONDS)

    # Then the pop returns it well before its timeout
    assert not popper.is_alive()
    assert time.monotonic() - pushed_at < WAKE_SECONDS
    assert got == [entry("a")]


def test_blocked_pop_ignores_pushes_of_other_types(queue: MemoryQueue) -> None:
    # Given a pop for alpha blocked on an empty queue
    started = time.monotonic()
    pusher = threading.Timer(0.05, lambda: queue.push([entry("b", "beta")]))
    pusher.start()

    # When only a beta entry arrives before the timeout
    got = queue.pop(["alpha"], 1, 0.3)
    pusher.join()

    # Then the pop waited its whole timeout and the beta entry still waits
    assert got == []
    assert time.monotonic() - started >= 0.3
    assert queue.size(["beta"]) == 1


def test_close_wakes_blocked_pops_and_refuses_further_calls(queue: MemoryQueue) -> None:
    # Given two pops blocked on an empty queue
    results: list[list[QueueEntry]] = []
    poppers = [
        threading.Thread(target=lambda: results.append(queue.pop(["alpha"], 1, 30.0)))
        for _ in range(2)
    ]
    for popper in poppers:
        popper.start()
    time.sleep(0.1)

    # When the queue is closed from another thread
    queue.close()
    for popper in poppers:
        popper.join(WAKE_SECONDS)

    # Then both pops return nothing at once, and the queue is not used any more
    assert not any(popper.is_alive() for popper in poppers)
    assert results == [[], []]
    with pytest.raises(BackendError, match="is closed"):
        queue.push([entry("a")])
    queue.close()


def test_pop_of_nothing_returns_at_once(queue: MemoryQueue) -> None:
    queue.push([entry("a")])
    started = time.monotonic()

    assert queue.pop(["alpha"], 0, 30.0) == []
    assert queue.pop([], 1, 0.0) == []
    assert time.monotonic() - started < WAKE_SECONDS
    assert queue.size() == 1


def test_types_named_twice_count_once(queue: MemoryQueue) -> None:
    queue.push([entry("a1"), entry("a2"), entry("b1", "beta")])

    assert queue.size(["alpha", "alpha"]) == 2
    popped = queue.pop(["alpha", "alpha", "beta"], 10)
    assert sorted(e.job_id for e in popped) == ["a1", "a2", "b1"]


def test_fifo_order_survives_many_removals_and_repushes() -> None:
    """Removed entries leave stale heap items behind; none may surface or reorder."""
    queue = MemoryQueue()
    rng = random.Random(7)
    types = ["alpha", "beta", "gamma"]
    expected: dict[str, tuple[int, int, QueueEntry]] = {}
    pushes = 0

    def push(item: QueueEntry) -> None:
        nonlocal pushes
        queue.push([item])
        if item.job_id not in expected:
            expected[item.job_id] = (-item.priority, pushes, item)
        pushes += 1

    # Given 600 entries, 500 of them removed (enough to compact each type's heap
    # several times), and some of the removed ones pushed again with a new priority
    for n in range(600):
        push(entry(f"job-{n}", rng.choice(types), rng.randint(-2, 2)))
    removed = rng.sample(sorted(expected), 500)
    assert queue.remove([*removed, "never-pushed"]) == 500
    for job_id in removed:
        del expected[job_id]
    for job_id in removed[:50]:
        push(entry(job_id, rng.choice(types), rng.randint(-2, 2)))

    # When everything is popped in small batches
    popped: list[QueueEntry] = []
    while batch := queue.pop(types, rng.randint(1, 7)):
        popped.extend(batch)

    # Then the order is priority first, then push order, and nothing was lost
    assert popped == [item for _, _, item in sorted(expected.values())]
    assert queue.size() == 0


def test_fifo_repush_of_a_removed_id_goes_to_the_back() -> None:
    queue = MemoryQueue()
    queue.push([entry("a"), entry("b")])

    queue.remove(["a"])
    queue.push([entry("a")])

    assert [e.job_id for e in queue.pop(["alpha"], 2)] == ["b", "a"]


def test_random_pop_is_uniform_over_entries_not_types() -> None:
    """One alpha entry among three beta ones is drawn a quarter of the time, not half."""
    queue = RandomMemoryQueue(random.Random(2024))
    waiting = [
        entry("a", "alpha", priority=5),
        entry("b1", "beta"),
        entry("b2", "beta", priority=-5),
        entry("b3", "beta"),
    ]
    draws = 8000
    counts: Counter[str] = Counter()

    for _ in range(draws):
        queue.push(waiting)
        (chosen,) = queue.pop(["alpha", "beta"], 1)
        counts[chosen.job_id] += 1
        queue.clear()

    # Each of the four should be drawn draws/4 = 2000 times; with a fixed seed the
    # result is reproducible, and the bound is over 8 standard deviations (~39).
    assert set(counts) == {"a", "b1", "b2", "b3"}
    assert all(abs(n - draws / 4) < 320 for n in counts.values()), counts


def test_random_pop_reaches_the_oldest_entry() -> None:
    queue = RandomMemoryQueue(random.Random(1))
    queue.push([entry("old")])

    for n in range(200):
        queue.push([entry(f"new-{n}")])
        if queue.pop(["alpha"], 1) == [entry("old")]:
            return
    pytest.fail("the oldest entry was never popped in 200 rounds")


def test_random_order_is_reproducible_with_a_seed() -> None:
    def drain(seed: int) -> list[str]:
        queue = RandomMemoryQueue(random.Random(seed))
        queue.push([entry(f"j{n}", ["alpha", "beta"][n % 2]) for n in range(50)])
        return [e.job_id for e in queue.pop(["alpha", "beta"], 50)]

    assert drain(3) == drain(3)
    assert sorted(drain(3)) == sorted(f"j{n}" for n in range(50))
    assert drain(3) != [f"j{n}" for n in range(50)]
