"""Assertion helpers that put the clause first in every failure message.

A backend author reads a failure before reading the suite, so each message starts with
``[clause id] clause text:`` and then says what was seen and what was expected. This
module is registered for assertion rewriting by the plugin (style guide §3.5), so a
failing ``assert`` here still shows pytest's comparison under the message.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING, Final, Generic, NoReturn, TypeVar

import attrs

from forerunner.model import QueueEntry
from forerunner_queue_tests.clauses import message

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from forerunner.queue import Queue

__all__ = [
    "Timed",
    "check",
    "check_entries",
    "check_same_entries",
    "check_size",
    "entries",
    "fail",
    "run_with_deadline",
    "show",
]

T = TypeVar("T")

#: Longer ids and types are cut in messages; the suite pushes one of 1000 characters.
_LONGEST_SHOWN: Final = 40
#: Above this many entries a message shows what differs, not both lists.
_MOST_SHOWN: Final = 16


def check(clause_id: str, condition: bool, detail: str) -> None:
    """Fail with the clause's message unless ``condition`` holds."""
    assert condition, message(clause_id, detail)


def fail(clause_id: str, detail: str) -> NoReturn:
    """Fail with the clause's message: for outcomes no single condition describes."""
    raise AssertionError(message(clause_id, detail))


def show(found: Iterable[QueueEntry]) -> str:
    """Entries as short text, ``id(type, priority)``, so a message fits on a line or two."""
    return (
        "[" + ", ".join(f"{_short(e.job_id)}({_short(e.type)}, {e.priority})" for e in found) + "]"
    )


def _short(text: str) -> str:
    if len(text) <= _LONGEST_SHOWN:
        return repr(text)
    return f"{text[: _LONGEST_SHOWN // 2]!r}...({len(text)} characters)"


def check_entries(
    clause_id: str, popped: Sequence[QueueEntry], expected: Sequence[QueueEntry], context: str
) -> None:
    """The popped entries are exactly ``expected``, in that order."""
    check(
        clause_id,
        list(popped) == list(expected),
        f"{context}: popped {show(popped)}, expected {show(expected)} in that order",
    )


def check_same_entries(
    clause_id: str, popped: Sequence[QueueEntry], expected: Sequence[QueueEntry], context: str
) -> None:
    """The popped entries are ``expected`` in any order, each exactly once."""
    got = collections.Counter(popped)
    want = collections.Counter(expected)
    if len(popped) + len(expected) <= _MOST_SHOWN:
        seen = f"popped {show(popped)}, expected {show(expected)} in any order"
    else:
        seen = f"popped {len(popped)} entries, expected {len(expected)} in any order"
    check(clause_id, got == want, f"{context}: {seen}{_difference(got, want)}")


def check_size(
    clause_id: str, queue: Queue, types: Sequence[str] | None, expected: int, context: str = ""
) -> None:
    """``queue.size(types)`` is ``expected``; ``context`` says what happened before."""
    got = queue.size(types)
    asked = "size()" if types is None else f"size({list(types)!r})"
    prefix = f"{context}: " if context else ""
    check(clause_id, got == expected, f"{prefix}{asked} returned {got!r}, expected {expected}")


def entries(prefix: str, count: int, *, type: str = "alpha", priority: int = 0) -> list[QueueEntry]:
    """``count`` entries with ids ``prefix-0``, ``prefix-1``, ...: readable in messages."""
    return [QueueEntry(job_id=f"{prefix}-{i}", type=type, priority=priority) for i in range(count)]


@attrs.frozen
class Timed(Generic[T]):
    """What a call returned, and when it started and returned.

    ``started`` and ``finished`` are ``time.monotonic()`` readings, for durations;
    ``returned_at`` is ``time.time()``, to compare with a time another process read.
    """

    value: T
    started: float
    finished: float
    returned_at: float

    @property
    def elapsed(self) -> float:
        return self.finished - self.started


def run_with_deadline(
    clause_id: str, call: Callable[[], T], deadline: float, what: str
) -> Timed[T]:
    """Run ``call`` in a daemon thread and fail if it has not returned after ``deadline`` s.

    Blocking calls run this way so that a backend that never returns fails its clause
    instead of hanging the suite; the thread is abandoned, not killed, since Python cannot.
    """
    outcome: list[Timed[T]] = []
    failure: list[BaseException] = []

    def target() -> None:
        started = time.monotonic()
        try:
            value = call()
        except BaseException as error:
            failure.append(error)
        else:
            outcome.append(Timed(value, started, time.monotonic(), time.time()))

    thread = threading.Thread(target=target, name=f"forerunner-queue-tests {what}", daemon=True)
    thread.start()
    thread.join(deadline)
    if failure:
        raise failure[0]
    if not outcome:
        fail(clause_id, f"{what} had not returned after {deadline} s")
    return outcome[0]


def _difference(got: collections.Counter[QueueEntry], want: collections.Counter[QueueEntry]) -> str:
    missing = want - got
    extra = got - want
    parts = []
    if missing:
        parts.append(f"missing {show(missing.elements())}")
    if extra:
        parts.append(f"unexpected or repeated {show(extra.elements())}")
    return " (" + "; ".join(parts) + ")" if parts else ""
