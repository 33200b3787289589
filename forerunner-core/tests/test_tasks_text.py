"""The builtin tasks on values: ``ping``, ``word_count``, ``key_map``, and their registration.

Covers each task's documented output form, unicode words, that ``key_map`` never mutates
its input and refuses collisions, and that bad data raises ``ValidationError`` naming
the field.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from forerunner.errors import ValidationError
from forerunner.plugins import Registry
from forerunner.tasks import key_map, ping, word_count


def test_every_builtin_task_is_registered_under_its_name() -> None:
    registry = Registry.from_plugins([])
    names = ["ping", "fetch", "targz", "word_count", "key_map", "get_hrefs", "pluck_data"]
    for name in names:
        assert registry.task(name).__name__ == name


def test_ping_answers_pong_with_the_data_and_job_id() -> None:
    assert ping("job-1", {"a": 1}) == {"pong": {"a": 1}, "job_id": "job-1"}


def test_word_count_counts_lowercased_words_most_frequent_first() -> None:
    result = word_count("job", "The cat, the HAT; the cat!")
    assert result == {"words": 6, "unique": 3, "counts": {"the": 3, "cat": 2, "hat": 1}}
    assert list(result["counts"]) == ["the", "cat", "hat"]


def test_word_count_accepts_an_object_with_text() -> None:
    assert word_count("job", {"text": "one two"})["words"] == 2


def test_word_count_is_unicode_aware() -> None:
    result = word_count("job", "Ελλάδα ελλάδα Straße don't état-major 東京 snake_case 42")
    assert result["counts"] == {
        "ελλάδα": 2,
        "straße": 1,
        "don't": 1,
        "état-major": 1,
        "東京": 1,
        "snake": 1,
        "case": 1,
        "42": 1,
    }


def test_word_count_of_empty_text_is_zero() -> None:
    assert word_count("job", "  ... ") == {"words": 0, "unique": 0, "counts": {}}


@pytest.mark.parametrize(("data", "field"), [(3, "data"), ({"text": None}, "text"), ({}, "text")])
def test_word_count_refuses_non_text(data: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        word_count("job", data)
    assert refused.value.field == field


def test_key_map_renames_the_keys_of_an_object() -> None:
    data = {"data": {"a": 1, "b": {"a": 2}, "c": 3}, "map": {"a": "x", "b": "y"}}
    assert key_map("job", data) == {"x": 1, "y": {"a": 2}, "c": 3}


def test_key_map_renames_each_object_of_a_list() -> None:
    data = {"data": [{"a": 1}, {"a": 2, "b": 3}], "map": {"a": "z"}}
    assert key_map("job", data) == [{"z": 1}, {"z": 2, "b": 3}]


def test_key_map_never_mutates_its_input() -> None:
    data = {"data": [{"a": [1, 2]}], "map": {"a": "b"}}
    before = copy.deepcopy(data)
    result = key_map("job", data)
    result[0]["b"].append(3)
    assert data == before


def test_key_map_refuses_a_rename_that_collides() -> None:
    with pytest.raises(ValidationError, match="two keys") as refused:
        key_map("job", {"data": {"a": 1, "b": 2}, "map": {"a": "b"}})
    assert refused.value.field == "map"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "data"),
        ({"data": {"a": 1}}, "map"),
        ({"data": {"a": 1}, "map": {"a": 3}}, "map"),
        ({"data": "text", "map": {}}, "data"),
        ({"data": [{"a": 1}, 2], "map": {}}, "data.1"),
    ],
)
def test_key_map_refuses_bad_data_naming_the_field(data: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        key_map("job", data)
    assert refused.value.field == field
