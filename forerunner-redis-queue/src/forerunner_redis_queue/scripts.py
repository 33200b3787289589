"""The queue's Lua scripts: read from the package's ``lua/`` files, one typed call each.

Each script is registered once per client as a redis-py :class:`~redis.commands.core.Script`,
which sends ``EVALSHA`` (the script's digest, not its text) and loads the text only when
the server answers ``NOSCRIPT``: after a restart, or on a cluster node that has not
seen it. The headers of the ``.lua`` files document their KEYS, ARGV and replies; the
methods here only carry them across.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.commands.core import Script

    from forerunner_redis_queue.connection import Client

__all__ = ["NAMES", "Scripts", "source"]

#: Every script of the package, by file name without ``.lua``.
NAMES: Final = ("push", "pop", "remove", "clear", "size")


def source(name: str) -> str:
    """The text of ``lua/<name>.lua`` inside the installed package."""
    return (
        resources.files("forerunner_redis_queue")
        .joinpath("lua", f"{name}.lua")
        .read_text(encoding="utf-8")
    )


class Scripts:
    """The scripts registered on one client."""

    def __init__(self, client: Client) -> None:
        self._push = client.register_script(source("push"))
        self._pop = client.register_script(source("pop"))
        self._remove = client.register_script(source("remove"))
        self._clear = client.register_script(source("clear"))
        self._size = client.register_script(source("size"))

    def push(self, keys: Sequence[str], args: Sequence[str | int]) -> int:
        """``push.lua``: how many entries were added."""
        return int(_run(self._push, keys, args))

    def pop(self, keys: Sequence[str], args: Sequence[str | int]) -> list[Any]:
        """``pop.lua``: the flat triples ``JOB_ID, t, SCORE`` of the entries popped."""
        return cast("list[Any]", _run(self._pop, keys, args))

    def remove(self, keys: Sequence[str], args: Sequence[str | int]) -> list[Any]:
        """``remove.lua``: ``[removed, changed JOB_ID...]``."""
        return cast("list[Any]", _run(self._remove, keys, args))

    def clear(self, keys: Sequence[str], args: Sequence[str]) -> list[str]:
        """``clear.lua``: ``[]`` once cleared, else the types missing from ``args``."""
        return cast("list[str]", _run(self._clear, keys, args))

    def size(self, keys: Sequence[str]) -> int:
        """``size.lua``: the waiting entries of the types whose queue keys are ``keys``."""
        return int(_run(self._size, keys, ()))


def _run(script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
    return script(keys=list(keys), args=list(args))
