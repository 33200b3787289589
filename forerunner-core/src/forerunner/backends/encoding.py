"""How the embedded stores encode job values: JSON as text, times as integer microseconds.

Both stores encode JSON the same way, so that the memory store behaves like the durable
one: a value comes back as its JSON round trip (tuples as lists, a caller's later
mutation not shared), never as the object the caller passed in. ASCII escapes keep the
text exact for every Python string, lone surrogates and NUL included, and make it safe
to bind as SQLite TEXT.

Times are integer microseconds since the Unix epoch, UTC: exact to the microsecond a
``datetime`` holds, and ordered as the times are, so SQL can compare and sort them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Final

import msgspec

from forerunner.errors import ValidationError

if TYPE_CHECKING:
    from forerunner.model import JSON

__all__ = ["copy_json", "dump_json", "from_micros", "load_json", "to_micros"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND: Final = dt.timedelta(microseconds=1)
_IMMUTABLE_SCALARS: Final = (str, int, float, bool)
_decode: Final = msgspec.json.Decoder().decode


def dump_json(value: JSON, *, field: str) -> str | None:
    """Encode ``value`` as compact JSON text, None for None; ``field`` names it in errors."""
    if value is None:
        return None
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise ValidationError(
            f"{field} is not JSON: {error}; pass dicts, lists, strings, numbers, "
            "booleans and None only",
            field=field,
        ) from error


def load_json(text: str | None) -> JSON:
    """Decode what :func:`dump_json` made.

    msgspec first, being several times faster and decoding the same values; the standard
    library for what it refuses and :func:`dump_json` can write: lone surrogates, NaN
    and infinities.
    """
    if text is None:
        return None
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def copy_json(value: JSON, *, field: str) -> JSON:
    """Return ``value`` as a store returns it: its JSON round trip, sharing nothing."""
    if value is None or type(value) in _IMMUTABLE_SCALARS:
        return value
    return load_json(dump_json(value, field=field))


def to_micros(value: dt.datetime | None) -> int | None:
    """Microseconds from the epoch to ``value`` (an aware datetime), None for None."""
    return None if value is None else (value - _EPOCH) // _MICROSECOND


def from_micros(value: int | None) -> dt.datetime | None:
    """The aware UTC datetime :func:`to_micros` encoded."""
    return None if value is None else _EPOCH + value * _MICROSECOND
