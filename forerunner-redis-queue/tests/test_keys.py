"""Key naming: one hash slot per queue, no key shared between prefixes.

Redis Cluster runs a script only if all its keys hash to one slot; the hash tag
``{prefix}`` that opens every key is what guarantees it, whatever the job types are.
"""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from forerunner.errors import ConfigurationError
from forerunner_redis_queue.keys import Keys

TYPES = ("alpha", "タスク", "🚀", "type with spaces", "a{b}c", "}{", "dotted.type:colon")


def every_key(keys: Keys) -> list[str]:
    return [
        keys.entries,
        keys.seq,
        keys.types,
        keys.receipt("client-1:42:7"),
        *keys.per_type(TYPES),
    ]


@pytest.mark.parametrize("prefix", ["forerunner", "ci-1234", "テスト", "a:b/c d"])
def test_every_key_of_a_prefix_hashes_to_the_slot_of_the_prefix(prefix: str) -> None:
    keys = Keys(prefix)

    slots = {key_slot(key.encode()) for key in every_key(keys)}

    assert slots == {key_slot(prefix.encode())}


def test_keys_open_with_the_hash_tag_and_name_their_structure() -> None:
    keys = Keys("app")

    assert keys.tag == "{app}"
    assert keys.entries == "{app}:entries"
    assert keys.seq == "{app}:seq"
    assert keys.types == "{app}:types"
    assert keys.queue("ping") == "{app}:queue:ping"
    assert keys.signal("ping") == "{app}:signal:ping"
    assert keys.receipt("c") == "{app}:receipt:c"
    assert keys.per_type(["a", "b"]) == [
        "{app}:queue:a",
        "{app}:signal:a",
        "{app}:queue:b",
        "{app}:signal:b",
    ]


def test_two_prefixes_never_share_a_key() -> None:
    # "a" and "a}:queue:x" cannot both be prefixes: a prefix has no brace, so the tag
    # that opens a key names exactly one prefix.
    first, second = Keys("a"), Keys("a:queue")

    assert not set(every_key(first)) & set(every_key(second))
    for key in every_key(first):
        assert key.startswith("{a}:")


@pytest.mark.parametrize("prefix", ["", "with{brace", "with}brace", "x" * 201])
def test_a_prefix_that_cannot_be_a_hash_tag_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="without '\\{' or '\\}'"):
        Keys(prefix)
