"""The Lua scripts on their own: their headers, and the behaviours the queue builds on.

The queue tests see the scripts only through ``RedisQueue``; these call them with
KEYS and ARGV as their headers document, on the shared Redis under a prefix of their
own, and look at the keys they leave: tokens on signal lists, receipts, what
``remove`` and ``clear`` refuse to do when their reading went stale.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from forerunner_redis_queue.keys import Keys
from forerunner_redis_queue.scripts import NAMES, Scripts, source

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import redis

TOKEN_A = "a" * 32
TOKEN_B = "b" * 32


@pytest.fixture
def keys(unique_prefix: Callable[[str], str]) -> Keys:
    return Keys(unique_prefix("scripts"))


@pytest.fixture
def scripts(raw: redis.Redis, keys: Keys) -> Iterator[Scripts]:
    yield Scripts(raw)
    stale = raw.keys(f"{keys.tag}:*")
    if stale:
        raw.delete(*stale)


def push(scripts: Scripts, keys: Keys, entries: list[tuple[str, str, int]]) -> int:
    types = list(dict.fromkeys(job_type for _, job_type, _ in entries))
    args: list[str | int] = list(types)
    for job_id, job_type, priority in entries:
        args += (job_id, types.index(job_type) + 1, -priority)
    return scripts.push([keys.entries, keys.seq, keys.types, *keys.per_type(types)], args)


def pop(
    scripts: Scripts,
    keys: Keys,
    types: list[str],
    count: int,
    token: str = TOKEN_A,
    *,
    woken: bool = False,
) -> list[tuple[str, str, int]]:
    reply = scripts.pop(
        [keys.entries, keys.receipt("me"), *keys.per_type(types)],
        [token, 60_000, count, "1" if woken else "0", ""],
    )
    return [
        (reply[at], types[int(reply[at + 1]) - 1], -int(float(reply[at + 2])))
        for at in range(0, len(reply), 3)
    ]


@pytest.mark.parametrize("name", NAMES)
def test_each_script_opens_with_a_header_of_its_keys_and_arguments(name: str) -> None:
    text = source(name)
    header = "\n".join(re.findall(r"^--.*$", text.split("\n\n\n")[0], re.MULTILINE))

    assert header.startswith(f"-- {name}.lua: ")
    assert "Key schema" in header
    assert re.search(r"^-- KEYS\[", header, re.MULTILINE), "the header lists KEYS"
    assert re.search(r"^-- ARGV", header, re.MULTILINE), "the header lists ARGV"
    assert "Returns" in header


@pytest.mark.parametrize("name", NAMES)
def test_no_script_reads_the_clock_or_unseeded_randomness(name: str) -> None:
    code = "\n".join(line for line in source(name).splitlines() if not line.startswith("--"))

    assert '"TIME"' not in code
    if "math.random(" in code:
        assert "math.randomseed(tonumber(ARGV[" in code


def test_push_counts_what_it_added_and_skips_ids_already_waiting(
    scripts: Scripts, keys: Keys
) -> None:
    assert push(scripts, keys, [("j1", "alpha", 0), ("j2", "alpha", 5), ("j1", "alpha", 9)]) == 2
    assert push(scripts, keys, [("j2", "beta", 1), ("j3", "beta", 0)]) == 1

    assert pop(scripts, keys, ["alpha", "beta"], 10) == [
        ("j2", "alpha", 5),
        ("j1", "alpha", 0),
        ("j3", "beta", 0),
    ]


def test_push_leaves_one_token_per_type_that_gained_entries(
    scripts: Scripts, keys: Keys, raw: redis.Redis
) -> None:
    push(scripts, keys, [("j1", "alpha", 0), ("j2", "alpha", 0)])
    push(scripts, keys, [("j3", "alpha", 0), ("j1", "beta", 0)])

    assert raw.llen(keys.signal("alpha")) == 1
    assert raw.llen(keys.signal("beta")) == 0, "j1 was waiting already: beta gained nothing"


def test_a_pop_sent_again_with_its_token_replays_the_reply_instead_of_popping_more(
    scripts: Scripts, keys: Keys, raw: redis.Redis
) -> None:
    # Given three entries, and a pop whose reply the client never received
    push(scripts, keys, [("j1", "alpha", 0), ("j2", "alpha", 0), ("j3", "alpha", 0)])
    first = pop(scripts, keys, ["alpha"], 2, TOKEN_A)

    # When the same request is sent again
    again = pop(scripts, keys, ["alpha"], 2, TOKEN_A)

    # Then it gets the same entries, and the third still waits
    assert again == first == [("j1", "alpha", 0), ("j2", "alpha", 0)]
    assert raw.hlen(keys.entries) == 1
    assert pop(scripts, keys, ["alpha"], 2, TOKEN_B) == [("j3", "alpha", 0)]
    assert 0 < raw.pttl(keys.receipt("me")) <= 60_000


def test_an_empty_pop_leaves_the_last_receipt_alone(scripts: Scripts, keys: Keys) -> None:
    push(scripts, keys, [("j1", "alpha", 0)])
    assert pop(scripts, keys, ["alpha"], 1, TOKEN_A) == [("j1", "alpha", 0)]

    assert pop(scripts, keys, ["alpha"], 1, TOKEN_B) == []

    assert pop(scripts, keys, ["alpha"], 1, TOKEN_A) == [("j1", "alpha", 0)]


def test_a_woken_pop_passes_the_wake_up_on_while_entries_remain(
    scripts: Scripts, keys: Keys, raw: redis.Redis
) -> None:
    # Given two entries and their token, taken by a blocked pop that woke
    push(scripts, keys, [("j1", "alpha", 0), ("j2", "alpha", 0)])
    assert raw.lpop(keys.signal("alpha")) == "1"

    # When it pops one, and later another pop (also woken) takes the last
    pop(scripts, keys, ["alpha"], 1, TOKEN_A, woken=True)
    passed_on = raw.llen(keys.signal("alpha"))
    raw.delete(keys.signal("alpha"))
    pop(scripts, keys, ["alpha"], 1, TOKEN_B, woken=True)

    # Then the first left a token for the next waiter, the second none: nothing is left
    assert passed_on == 1
    assert raw.llen(keys.signal("alpha")) == 0


def test_a_pop_that_did_not_wake_passes_nothing_on(
    scripts: Scripts, keys: Keys, raw: redis.Redis
) -> None:
    push(scripts, keys, [("j1", "alpha", 0), ("j2", "alpha", 0)])
    raw.delete(keys.signal("alpha"))

    pop(scripts, keys, ["alpha"], 1, TOKEN_A, woken=False)

    assert raw.llen(keys.signal("alpha")) == 0


def test_remove_drops_what_it_read_and_reports_ids_that_changed_since(
    scripts: Scripts, keys: Keys, raw: redis.Redis
) -> None:
    # Given two entries whose values the caller read
    push(scripts, keys, [("j1", "alpha", 0), ("j2", "alpha", 0)])
    read = dict(zip(["j1", "j2"], raw.hmget(keys.entries, ["j1", "j2"]), strict=True))
    # and j2 popped and pushed again (as beta) before the caller's script runs
    raw.hdel(keys.entries, "j2")
    raw.zrem(keys.queue("alpha"), str(read["j2"])[:16] + "j2")
    push(scripts, keys, [("j2", "beta", 0)])

    reply = scripts.remove(
        [keys.entries, keys.queue("alpha")], ["j1", str(read["j1"]), 1, "j2", str(read["j2"]), 1]
    )

    # Then j1 is gone, and j2, reported back, still waits as beta
    assert reply == [1, "j2"]
    assert raw.zcard(keys.queue("alpha")) == 0
    assert raw.hkeys(keys.entries) == ["j2"]
    assert raw.zcard(keys.queue("beta")) == 1


def test_clear_deletes_nothing_while_a_type_is_missing_from_its_keys(
    scripts: Scripts, keys: Keys, raw: redis.Redis
) -> None:
    push(scripts, keys, [("j1", "alpha", 0), ("j2", "beta", 0)])
    base = [keys.entries, keys.seq, keys.types]

    missing = scripts.clear([*base, *keys.per_type(["alpha"])], ["alpha"])

    assert missing == ["beta"]
    assert raw.hlen(keys.entries) == 2
    assert scripts.clear([*base, *keys.per_type(["alpha", "beta"])], ["alpha", "beta"]) == []
    assert raw.keys(f"{keys.tag}:*") == []


def test_size_sums_the_types_it_is_given(scripts: Scripts, keys: Keys) -> None:
    push(scripts, keys, [("j1", "alpha", 0), ("j2", "beta", 0), ("j3", "beta", 1)])

    assert scripts.size([keys.queue("alpha"), keys.queue("beta")]) == 3
    assert scripts.size([keys.queue("beta"), keys.queue("gamma")]) == 2
