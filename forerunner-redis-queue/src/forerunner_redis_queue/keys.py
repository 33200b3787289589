"""Every Redis key name of a queue, in one place; the Lua headers document the same schema.

All keys of one queue start with the hash tag ``{PREFIX}``. Redis Cluster places a key
by the hash of its tag alone, so a queue's keys share one slot and every script runs
on one node: that is what lets a single script see and change all of a queue's
structures atomically. Two prefixes never share a key, since a prefix may not contain a
brace and the tag ends at the first ``}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs

from forerunner.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["DEFAULT_PREFIX", "MAX_PREFIX_LENGTH", "Keys"]

#: The prefix of a URL that names none.
DEFAULT_PREFIX: Final = "forerunner"
#: Longer prefixes work, but are a sign that something else was pasted in.
MAX_PREFIX_LENGTH: Final = 200


def _check_prefix(_: object, __: attrs.Attribute[str], prefix: str) -> None:
    if not prefix or len(prefix) > MAX_PREFIX_LENGTH or "{" in prefix or "}" in prefix:
        raise ConfigurationError(
            f"Redis queue prefix {prefix!r} is not usable: write 1 to {MAX_PREFIX_LENGTH} "
            "characters without '{' or '}', e.g. ?prefix=myapp (the prefix becomes the "
            "keys' hash tag)"
        )


@attrs.frozen
class Keys:
    """The key names of the queue under one prefix."""

    prefix: str = attrs.field(validator=_check_prefix)

    @property
    def tag(self) -> str:
        """``{PREFIX}``: the hash tag that opens every key."""
        return "{" + self.prefix + "}"

    @property
    def entries(self) -> str:
        """Hash: ``job_id -> SEQ .. TYPE`` for every waiting entry."""
        return f"{self.tag}:entries"

    @property
    def seq(self) -> str:
        """String: the push counter that orders entries of equal priority."""
        return f"{self.tag}:seq"

    @property
    def types(self) -> str:
        """Set: every type pushed since the last clear, so that clear finds its keys."""
        return f"{self.tag}:types"

    def queue(self, job_type: str) -> str:
        """Sorted set: the waiting entries of one type, ``SEQ .. JOB_ID`` scored -priority."""
        return f"{self.tag}:queue:{job_type}"

    def signal(self, job_type: str) -> str:
        """List: at most one token, which wakes a pop blocked on this type."""
        return f"{self.tag}:signal:{job_type}"

    def receipt(self, client: str) -> str:
        """String: the last non-empty pop reply of one popping client, for retries."""
        return f"{self.tag}:receipt:{client}"

    def per_type(self, types: Iterable[str]) -> list[str]:
        """``queue(T), signal(T)`` for each type in order: the pairs the scripts take."""
        return [key for job_type in types for key in (self.queue(job_type), self.signal(job_type))]
