"""Tasks on text and JSON objects: ``word_count`` and ``key_map``."""

from __future__ import annotations

import collections
import copy
import re
from collections.abc import Mapping
from typing import Any, Final

from forerunner.errors import ValidationError
from forerunner.tasks._data import mapping

__all__ = ["key_map", "word_count"]

#: A word is a run of letters or digits in any script, with inner apostrophes or hyphens
#: ("don't", "état-major"); underscores and other punctuation separate words.
WORD: Final = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def word_count(job_id: str, data: Any) -> dict[str, Any]:
    """Count the words of ``data`` (a string, or ``{"text": string}``).

    Returns ``{"words": total, "unique": distinct, "counts": {word: n}}`` with words
    lowercased (``str.lower``, so "Straße" stays "straße" and is still readable) and
    ``counts`` ordered most frequent first, ties in order of first appearance: the
    order a person reading the result wants.
    """
    if isinstance(data, Mapping):
        text = data.get("text")
        field = "text"
    else:
        text, field = data, "data"
    if not isinstance(text, str):
        raise ValidationError(
            f"word_count takes a string or {{'text': string}}, got {type(text).__name__}",
            field=field,
        )
    counts = collections.Counter(match.group().lower() for match in WORD.finditer(text))
    # Counter.most_common keeps insertion order among equal counts.
    ordered = dict(counts.most_common())
    return {"words": sum(ordered.values()), "unique": len(ordered), "counts": ordered}


def key_map(job_id: str, data: Any) -> Any:
    """Rename keys: ``{"data": object or list of objects, "map": {old: new}}``.

    Only the top-level keys of the object (or of each object in the list) are renamed;
    nested values are copied unchanged, since a rule for "every level" would also rename
    keys that merely share a name. Keys not in ``map`` keep their names. A renaming that
    would make two keys collide is refused rather than silently dropping a value.
    The input is never modified: the result is a new structure.
    """
    given = mapping(data, "key_map")
    renames = given.get("map")
    if not isinstance(renames, Mapping) or not all(
        isinstance(new, str) for new in renames.values()
    ):
        raise ValidationError(
            f"key_map needs 'map': an object of old key to new key (strings), got {renames!r}",
            field="map",
        )
    target = given.get("data")
    if isinstance(target, Mapping):
        return _rename(target, renames, "data")
    if isinstance(target, list):
        items = []
        for index, item in enumerate(target):
            if not isinstance(item, Mapping):
                raise ValidationError(
                    f"key_map: data[{index}] is {type(item).__name__}; list items must be objects",
                    field=f"data.{index}",
                )
            items.append(_rename(item, renames, f"data.{index}"))
        return items
    raise ValidationError(
        f"key_map needs 'data': an object or a list of objects, got {type(target).__name__}",
        field="data",
    )


def _rename(item: Mapping[str, Any], renames: Mapping[str, str], field: str) -> dict[str, Any]:
    renamed: dict[str, Any] = {}
    for key, value in item.items():
        new = renames.get(key, key)
        if new in renamed:
            raise ValidationError(
                f"key_map: renaming {field} would give two keys the name {new!r}; "
                "change 'map' so that new names are distinct",
                field="map",
            )
        renamed[new] = copy.deepcopy(value)
    return renamed
