"""Blocked pops: they wait in Redis without polling it, and no wake-up is lost.

A pop normally waits in slices and looks at the queue between them, which would hide
a lost wake-up behind a few seconds' delay. The wake-up tests switch the slices off
(``one_long_wait``) and pop with an hour's timeout, so that only a wake-up can end a
wait: a pop that missed one is stuck, and the test fails on that, not on a duration.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

import forerunner_redis_queue.queue
from forerunner.model import QueueEntry

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import RedisServer

    from forerunner_redis_queue import RedisQueue

#: Longer than any test: a waiter returns only because a push woke it.
WAITER_TIMEOUT = 3600.0
#: How long a test waits for a waiter before calling it stuck.
STUCK = 30.0


@pytest.fixture
def one_long_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocked pops wait in one BLPOP for their whole timeout, without a second look."""
    monkeypatch.setattr(forerunner_redis_queue.queue, "WAIT_SLICE", WAITER_TIMEOUT)


def pop_in_thread(
    queue: RedisQueue, types: list[str]
) -> tuple[threading.Thread, list[list[QueueEntry]]]:
    got: list[list[QueueEntry]] = []
    thread = threading.Thread(
        target=lambda: got.append(queue.pop(types, 1, WAITER_TIMEOUT)), daemon=True
    )
    thread.start()
    return thread, got


def wait_for_blocked_clients(server: RedisServer, count: int) -> None:
    server.wait_until(
        lambda client: int(client.info("clients")["blocked_clients"]) >= count,
        f"show {count} blocked clients",
    )


def test_an_idle_pop_waits_in_one_blpop_instead_of_polling(
    start_redis: Callable[..., RedisServer], open_queue: Callable[[str], RedisQueue]
) -> None:
    # Given a queue on a private server, its scripts already loaded
    server = start_redis()
    queue = open_queue(f"{server.url}?prefix=idle")
    queue.pop(["alpha"], 1, 0.0)
    client = server.client()
    client.config_resetstat()

    # When a pop waits two seconds for an entry that never comes
    assert queue.pop(["alpha", "beta"], 1, 2.0) == []

    # Then it looked twice (before and after waiting) and waited once
    stats = client.info("commandstats")
    client.close()
    assert stats["cmdstat_evalsha"]["calls"] == 2
    assert stats["cmdstat_blpop"]["calls"] == 1


@pytest.mark.usefixtures("one_long_wait")
def test_one_batch_wakes_as_many_waiters_as_it_has_entries(
    start_redis: Callable[..., RedisServer], open_queue: Callable[[str], RedisQueue]
) -> None:
    # Given eight pops blocked on one type
    server = start_redis()
    queue = open_queue(f"{server.url}?prefix=herd")
    waiters = [pop_in_thread(queue, ["alpha"]) for _ in range(8)]
    wait_for_blocked_clients(server, 8)

    # When one push brings eight entries (and leaves a single token)
    pushed = [QueueEntry(job_id=f"j{n}", type="alpha") for n in range(8)]
    queue.push(pushed)
    for thread, _ in waiters:
        thread.join(STUCK)

    # Then each woke, one from the next, and got one entry
    stuck = sum(thread.is_alive() for thread, _ in waiters)
    assert stuck == 0, f"{stuck} waiters slept through the push"
    got = [entry for _, result in waiters for popped in result for entry in popped]
    assert sorted(got, key=lambda e: e.job_id) == pushed
    assert queue.size() == 0


@pytest.mark.usefixtures("one_long_wait")
def test_a_push_wakes_only_the_waiters_of_its_type(
    start_redis: Callable[..., RedisServer], open_queue: Callable[[str], RedisQueue]
) -> None:
    # Given a pop blocked on alpha and one blocked on beta or gamma
    server = start_redis()
    queue = open_queue(f"{server.url}?prefix=types")
    alpha_waiter, alpha_got = pop_in_thread(queue, ["alpha"])
    other_waiter, other_got = pop_in_thread(queue, ["beta", "gamma"])
    wait_for_blocked_clients(server, 2)

    # When a gamma entry arrives
    gamma = QueueEntry(job_id="g", type="gamma")
    queue.push([gamma])
    other_waiter.join(STUCK)

    # Then the beta-or-gamma waiter has it and the alpha waiter still waits, until alpha comes
    assert other_got == [[gamma]]
    assert alpha_waiter.is_alive()
    alpha = QueueEntry(job_id="a", type="alpha")
    queue.push([alpha])
    alpha_waiter.join(STUCK)
    assert alpha_got == [[alpha]]


@pytest.mark.usefixtures("one_long_wait")
def test_no_wake_up_is_lost_when_pushes_race_pops_about_to_block(
    queue_url: str, open_queue: Callable[[str], RedisQueue]
) -> None:
    """A push may land between a pop finding nothing and the pop starting to wait.

    The token it leaves stays in Redis until a waiter takes it, so the pop that blocks
    a moment later wakes at once; were wake-ups messages, it would miss this one and
    be stuck.
    """
    popper = open_queue(queue_url)
    pusher = open_queue(queue_url)
    rng = random.Random(4)
    rounds = 40

    def one_round(n: int) -> list[QueueEntry]:
        entry = QueueEntry(job_id=f"race-{n}", type="alpha")
        with ThreadPoolExecutor(max_workers=1) as pool:
            popped = pool.submit(popper.pop, ["alpha"], 1, WAITER_TIMEOUT)
            # Push somewhere around the moment the pop goes from its script to BLPOP
            threading.Event().wait(rng.uniform(0.0, 0.003))
            pusher.push([entry])
            return popped.result(STUCK)

    results = [one_round(n) for n in range(rounds)]

    assert [[e.job_id for e in popped] for popped in results] == [
        [f"race-{n}"] for n in range(rounds)
    ]
