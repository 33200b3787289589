"""Reading a task's ``data``: every refusal is a ValidationError naming the field.

Tasks receive whatever JSON a client submitted; checking it here, before any side
effect, keeps a bad job from half-running and tells the submitter which field to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forerunner.errors import ValidationError

__all__ = ["mapping", "optional_number", "required_str"]


def mapping(data: Any, task: str) -> Mapping[str, Any]:
    """``data`` itself, which must be a JSON object."""
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"{task} takes a JSON object as data, got {type(data).__name__}", field="data"
        )
    return data


def required_str(data: Mapping[str, Any], field: str, task: str) -> str:
    """The non-empty string ``data[field]``."""
    value = data.get(field)
    if not isinstance(value, str) or not value:
        raise ValidationError(
            f"{task} needs {field!r}: a non-empty string, got {value!r}", field=field
        )
    return value


def optional_number(
    data: Mapping[str, Any], field: str, default: float, task: str, *, integer: bool = False
) -> float:
    """The positive number ``data[field]``, or ``default`` when it is absent or null."""
    value: object = data.get(field)
    if value is None:
        return default
    kinds = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        kind = "integer" if integer else "number"
        raise ValidationError(
            f"{task}: {field!r} must be a positive {kind}, got {value!r}", field=field
        )
    return value
