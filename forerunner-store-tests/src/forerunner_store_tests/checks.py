"""Job builders with explicit times, and comparisons that put the clause first.

A backend author reads a failure before reading the suite, so each message starts with
``[clause id] clause text:``, then says which job and which fields differ, with the
value seen and the value expected. JSON values are compared strictly (``1`` is not
``1.0`` or ``True``, ``-0.0`` is not ``0.0``) and times must be the same instant *and*
UTC, since ``==`` on Python values would let a lossy store pass. This module is
registered for assertion rewriting by the plugin (style guide §3.5).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any, Final, NoReturn

import attrs

from forerunner.ids import new_id
from forerunner.model import Job, JobError, JobState
from forerunner_store_tests.clauses import message

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from forerunner.model import JSON

__all__ = [
    "BASE",
    "LEASE_EXPIRED",
    "at",
    "check",
    "check_job",
    "check_jobs",
    "check_same_jobs",
    "diff_jobs",
    "diff_json",
    "fail",
    "make_job",
    "make_jobs",
    "present",
    "show",
    "show_counts",
    "show_ids",
]

#: The suite's "now": every time is an offset from it, never the clock. Microseconds
#: are set so that a store that drops them fails.
BASE: Final = dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)

#: The error type the contract fixes for a lost attempt; its message is the store's.
LEASE_EXPIRED: Final = "LeaseExpired"

_WORKER: Final = "worker-a"
_JSON_FIELDS: Final = ("data", "progress", "result")
_TIME_FIELDS: Final = ("run_at", "created_at", "started_at", "finished_at", "lease_until")


def at(seconds: float = 0.0, *, microseconds: int = 0) -> dt.datetime:
    """``BASE`` plus an offset: the only way the suite makes a time."""
    return BASE + dt.timedelta(seconds=seconds, microseconds=microseconds)


def make_job(state: JobState = JobState.QUEUED, **fields: Any) -> Job:
    """A job in ``state`` with the fields that state implies, overridable by ``fields``.

    A running job holds attempt 1 for ``worker-a`` with a lease 30 s after ``BASE``; a
    terminal one finished 10 s after ``BASE``; a scheduled one runs 60 s after it.
    """
    values: dict[str, Any] = {
        "id": new_id(),
        "type": "alpha",
        "data": {"n": 1},
        "state": state,
        "created_at": BASE,
    }
    if state is JobState.SCHEDULED:
        values["run_at"] = at(60)
    if state in {JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED}:
        values.update(attempt=1, worker=_WORKER, started_at=at(1))
    if state is JobState.RUNNING:
        values["lease_until"] = at(30)
    if state.terminal:
        values["finished_at"] = at(10)
    if state is JobState.SUCCEEDED:
        values["result"] = {"ok": True}
    if state is JobState.FAILED:
        values["error"] = JobError(type="ValueError", message="bad input", traceback="Traceback")
    values.update(fields)
    return Job(**values)


def make_jobs(count: int, state: JobState = JobState.QUEUED, **fields: Any) -> list[Job]:
    """``count`` jobs made by :func:`make_job`, ids ascending in list order."""
    return [make_job(state, **fields) for _ in range(count)]


def check(clause_id: str, condition: bool, detail: str) -> None:
    """Fail with the clause's message unless ``condition`` holds."""
    assert condition, message(clause_id, detail)


def fail(clause_id: str, detail: str) -> NoReturn:
    """Fail with the clause's message: for outcomes no single condition describes."""
    raise AssertionError(message(clause_id, detail))


def present(clause_id: str, job: Job | None, context: str) -> Job:
    """``job``, failing with the clause's message when the store answered None."""
    check(clause_id, job is not None, f"{context} returned None, expected a job")
    assert job is not None
    return job


def show(job: Job | None) -> str:
    """A job as one short line: enough to find it, not its whole record."""
    if job is None:
        return "None"
    return f"{job.id}({job.type!r}, {job.state.value}, attempt {job.attempt})"


def show_counts(counts: Mapping[tuple[str, JobState], object]) -> str:
    """Counts as ``{type/state: n}``, sorted, so two of them compare by eye."""
    items = sorted((f"{kind}/{_state(state)}", n) for (kind, state), n in counts.items())
    return "{" + ", ".join(f"{key}: {n!r}" for key, n in items) + "}"


def show_ids(ids: Iterable[str]) -> str:
    return "[" + ", ".join(ids) + "]"


def diff_json(actual: JSON, expected: JSON, path: str = "$") -> str | None:
    """Where two JSON values first differ, strictly typed; None when they are the same."""
    if type(actual) is not type(expected):
        return f"{path}: {_short(actual)} ({type(actual).__name__}), expected {_short(expected)}"
    if isinstance(expected, float):
        same = actual == expected and math.copysign(1.0, actual) == math.copysign(1.0, expected)
        return None if same else f"{path}: {actual!r}, expected {expected!r}"
    if isinstance(expected, list):
        if len(actual) != len(expected):
            return f"{path}: {len(actual)} items, expected {len(expected)}"
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            found = diff_json(got, want, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(expected, dict):
        if set(actual) != set(expected):
            missing = sorted(set(expected) - set(actual))
            extra = sorted(set(actual) - set(expected))
            return f"{path}: keys missing {_short(missing)}, unexpected {_short(extra)}"
        for key, want in expected.items():
            found = diff_json(actual[key], want, f"{path}[{key!r}]")
            if found:
                return found
        return None
    if actual != expected:
        return f"{path}: {_short(actual)}, expected {_short(expected)}"
    return None


def diff_jobs(actual: Job, expected: Job) -> list[str]:
    """One line per field where ``actual`` is not ``expected``, empty when they agree.

    An error of type ``LeaseExpired`` is compared by type only: the contract fixes the
    type of a lost attempt's error, and its message is the store's to word.
    """
    differences = []
    for field in attrs.fields(Job):
        name = field.name
        got = getattr(actual, name)
        want = getattr(expected, name)
        if name in _JSON_FIELDS:
            found = diff_json(got, want, name)
            if found:
                differences.append(found)
        elif name in _TIME_FIELDS:
            found = _diff_time(got, want)
            if found:
                differences.append(f"{name}: {found}")
        elif name == "error":
            found = _diff_error(got, want)
            if found:
                differences.append(f"error: {found}")
        elif name == "timeout":
            if got != want:
                differences.append(f"timeout: {got!r}, expected {want!r}")
        elif name == "state":
            if got != want:
                differences.append(f"state: {_state(got)}, expected {_state(want)}")
        elif type(got) is not type(want) or got != want:
            differences.append(f"{name}: {_short(got)}, expected {_short(want)}")
    return differences


def check_job(clause_id: str, actual: Job | None, expected: Job | None, context: str) -> None:
    """``actual`` is ``expected`` in every field; the message lists each field that is not."""
    if actual is None or expected is None:
        check(
            clause_id,
            actual is expected,
            f"{context}: got {show(actual)}, expected {show(expected)}",
        )
        return
    differences = diff_jobs(actual, expected)
    check(
        clause_id,
        not differences,
        f"{context}: job {expected.id} differs in " + "; ".join(differences),
    )


def check_jobs(
    clause_id: str,
    actual: Sequence[Job | None],
    expected: Sequence[Job | None],
    context: str,
) -> None:
    """The same jobs in the same order, each equal in every field."""
    got_ids = [_id(job) for job in actual]
    want_ids = [_id(job) for job in expected]
    check(
        clause_id,
        got_ids == want_ids,
        f"{context}: got {len(actual)} jobs {show_ids(got_ids)}, "
        f"expected {len(expected)} {show_ids(want_ids)} in that order",
    )
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        check_job(clause_id, got, want, f"{context}, item {index}")


def check_same_jobs(
    clause_id: str, actual: Sequence[Job], expected: Sequence[Job], context: str
) -> None:
    """The same jobs in any order, each once and equal in every field."""
    check_jobs(
        clause_id,
        sorted(actual, key=_id),
        sorted(expected, key=_id),
        context + " (compared in id order)",
    )


def _id(job: Job | None) -> str:
    return "None" if job is None else job.id


def _diff_time(actual: object, expected: dt.datetime | None) -> str | None:
    if expected is None or actual is None:
        return None if actual is expected else f"{_when(actual)}, expected {_when(expected)}"
    if not isinstance(actual, dt.datetime):
        return f"{actual!r} is not a datetime, expected {expected.isoformat()}"
    if actual.tzinfo is None or actual.utcoffset() != dt.timedelta(0):
        return f"{actual.isoformat()} is not UTC, expected {expected.isoformat()}"
    if actual != expected:
        return f"{actual.isoformat()}, expected {expected.isoformat()}"
    return None


def _when(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else repr(value)


def _diff_error(actual: object, expected: JobError | None) -> str | None:
    if expected is None or actual is None:
        return None if actual is expected else f"{actual!r}, expected {expected!r}"
    if not isinstance(actual, JobError):
        return f"{actual!r} is not a JobError, expected {expected!r}"
    if actual.type != expected.type:
        return f"type {actual.type!r}, expected {expected.type!r}"
    if expected.type == LEASE_EXPIRED:
        return None
    for name in ("message", "traceback"):
        found = diff_json(getattr(actual, name), getattr(expected, name), name)
        if found:
            return found
    return None


def _state(value: object) -> str:
    return value.value if isinstance(value, JobState) else repr(value)


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
