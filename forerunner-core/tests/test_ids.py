"""Job ids (design §2): UUIDv7 text, unique, and sorted in the order they were made.

Stores list jobs newest first and page through queued jobs by comparing ids as text,
so the order must hold for the text, within a millisecond (many ids share one), and
for ids made concurrently by many threads.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING

from forerunner import ids, new_id

if TYPE_CHECKING:
    import pytest

RAPID = 10_000


def test_id_is_uuid_version_7_text() -> None:
    made = new_id()

    parsed = uuid.UUID(made)
    assert str(parsed) == made, "canonical lowercase 36-character text"
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_id_carries_its_creation_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000

    stamp = uuid.UUID(made).int >> 80
    assert before <= stamp <= after + 1


def test_rapid_ids_are_unique_and_sorted_in_creation_order() -> None:
    made = [new_id() for _ in range(RAPID)]

    assert made == sorted(made)
    assert len(set(made)) == RAPID


def test_ids_made_by_many_threads_are_unique_and_each_thread_sees_them_rise() -> None:
    # Given eight threads that each make ids as fast as they can, all at once
    per_thread = RAPID // 8
    made: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def work(index: int) -> None:
        start.wait()
        made[index].extend(new_id() for _ in range(per_thread))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then no id repeats, and each thread's ids are sorted in the order it made them
    every = [made_id for batch in made for made_id in batch]
    assert len(set(every)) == len(every) == 8 * per_thread
    for batch in made:
        assert batch == sorted(batch)


def test_ids_made_after_others_finished_sort_after_them_across_threads() -> None:
    first: list[str] = []
    thread = threading.Thread(target=lambda: first.extend(new_id() for _ in range(100)))
    thread.start()
    thread.join()

    later = new_id()

    assert max(first) < later


def test_order_holds_when_the_millisecond_counter_overflows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a clock that stands still, so every id shares one millisecond
    frozen = time.time_ns()
    monkeypatch.setattr(ids.time, "time_ns", lambda: frozen)

    # When more ids are made than the 12-bit counter holds
    made = [new_id() for _ in range(2 * 4096)]

    # Then they still rise and never repeat
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_order_holds_when_the_clock_goes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    before = new_id()
    an_hour_ago = time.time_ns() - 3600 * 10**9
    monkeypatch.setattr(ids.time, "time_ns", lambda: an_hour_ago)

    after = [new_id() for _ in range(100)]

    assert [before, *after] == sorted([before, *after])
