"""Jobs to columns and back: how the store encodes a job for PostgreSQL.

JSON values (``data``, ``progress``, ``result``, and ``error`` as an object) are sent
as JSON text into ``json`` columns, which keep the text exactly as sent: a string
holding NUL, ``-0.0``, ``1e308`` or an integer beyond 64 bits comes back as it went in,
which ``jsonb`` cannot promise (docs/postgres-store.md). The text is UTF-8 where it
can be, for size, and falls back to ASCII escapes for a string holding a lone
surrogate, which UTF-8 cannot carry but a JSON escape can.

Rows come back through :func:`job_row`, a psycopg row factory that finds the job's
columns by name once per result, so queries can return ``*`` or extra columns.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

import msgspec

from forerunner.errors import ValidationError
from forerunner.model import Job, JobError, JobState, stored_job

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg
    from psycopg.rows import RowMaker

    from forerunner.model import JSON, Report

__all__ = [
    "FIELDS",
    "dump_error",
    "dump_json",
    "job_columns",
    "job_maker",
    "job_row",
    "load_error",
    "load_json_text",
    "positioned_job_row",
    "report_columns",
]

#: The job fields in table order; each is a column of the same name.
FIELDS: Final = (
    "id",
    "type",
    "data",
    "state",
    "priority",
    "attempt",
    "max_attempts",
    "key",
    "run_at",
    "timeout",
    "created_at",
    "started_at",
    "finished_at",
    "worker",
    "lease_until",
    "progress",
    "result",
    "error",
)


def dump_json(value: JSON, *, field: str) -> str | None:
    """``value`` as JSON text for a ``json`` column, None (SQL NULL) for None.

    NaN and infinities are refused here, naming the field: they are not JSON, and
    PostgreSQL would refuse them with a message that names no field.
    """
    if value is None:
        return None
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise ValidationError(
            f"{field} is not JSON: {error}; pass dicts, lists, strings, finite numbers, "
            "booleans and None only",
            field=field,
        ) from error
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    return text


def dump_error(error: JobError | None) -> str | None:
    """``error`` as a JSON object: its message and traceback may hold NUL."""
    if error is None:
        return None
    return dump_json(
        {"type": error.type, "message": error.message, "traceback": error.traceback},
        field="error",
    )


def load_error(value: Any) -> JobError | None:
    if value is None:
        return None
    return JobError(type=value["type"], message=value["message"], traceback=value["traceback"])


def job_columns(jobs: Sequence[Job]) -> dict[str, list[Any]]:
    """The jobs as one list per column, the parameters of ``add_jobs``."""
    columns: dict[str, list[Any]] = {name: [] for name in FIELDS}
    for job in jobs:
        columns["id"].append(job.id)
        columns["type"].append(job.type)
        columns["data"].append(dump_json(job.data, field="data"))
        columns["state"].append(job.state.value)
        columns["priority"].append(job.priority)
        columns["attempt"].append(job.attempt)
        columns["max_attempts"].append(job.max_attempts)
        columns["key"].append(job.key)
        columns["run_at"].append(job.run_at)
        columns["timeout"].append(None if job.timeout is None else float(job.timeout))
        columns["created_at"].append(job.created_at)
        columns["started_at"].append(job.started_at)
        columns["finished_at"].append(job.finished_at)
        columns["worker"].append(job.worker)
        columns["lease_until"].append(job.lease_until)
        columns["progress"].append(dump_json(job.progress, field="progress"))
        columns["result"].append(dump_json(job.result, field="result"))
        columns["error"].append(dump_error(job.error))
    return columns


def report_columns(reports: Sequence[Report], contested: Sequence[bool]) -> dict[str, list[Any]]:
    """The reports as one list per column, the parameters of ``finish_jobs``.

    ``contested`` says, per report, whether it names no worker and follows reports
    about the same attempt that do (forerunner/backends/reports.py).
    """
    columns: dict[str, list[Any]] = {
        name: []
        for name in ("job_id", "attempt", "worker", "state", "now", "result", "error", "run_at")
    }
    columns["contested"] = list(contested)
    for report in reports:
        columns["job_id"].append(report.job_id)
        columns["attempt"].append(report.attempt)
        columns["worker"].append(report.worker)
        columns["state"].append(report.state.value)
        columns["now"].append(report.now)
        columns["result"].append(dump_json(report.result, field="result"))
        columns["error"].append(dump_error(report.error))
        columns["run_at"].append(report.run_at)
    return columns


def job_row(cursor: psycopg.Cursor[Any]) -> RowMaker[Job]:
    """A psycopg row factory: each row as a :class:`Job`, columns found by name."""
    return job_maker(cursor)


def positioned_job_row(cursor: psycopg.Cursor[Any]) -> RowMaker[tuple[int, Job | None]]:
    """A row factory for ``add_jobs``: the batch position, and the stored job or None."""
    make = job_maker(cursor)
    description = cursor.description or []
    i_position = next(i for i, column in enumerate(description) if column.name == "batch_position")
    i_id = next(i for i, column in enumerate(description) if column.name == "id")

    def positioned(row: Sequence[Any]) -> tuple[int, Job | None]:
        return row[i_position], None if row[i_id] is None else make(row)

    return positioned


_decode: Final = msgspec.json.Decoder().decode
_STATES: Final = {state.value: state for state in JobState}


def load_json_text(text: str | bytes) -> Any:
    """The value of a ``json`` column, as :func:`json.loads` would decode it.

    msgspec first, for speed; the standard library for what msgspec refuses and the
    columns can hold: ``NaN`` and infinities, and escaped lone surrogates.
    """
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def job_maker(cursor: psycopg.Cursor[Any]) -> RowMaker[Job]:
    """Build each row of the cursor's current result as a :class:`Job`.

    psycopg has already decoded the ``json`` columns (with :func:`load_json_text`) and the
    ``timestamptz`` ones as aware datetimes (the session time zone is UTC).
    """
    description = cursor.description or []
    where = {column.name: index for index, column in enumerate(description)}
    (i_id, i_type, i_data, i_state, i_priority, i_attempt, i_max_attempts, i_key, i_run_at,
     i_timeout, i_created_at, i_started_at, i_finished_at, i_worker, i_lease_until,
     i_progress, i_result, i_error) = (where[name] for name in FIELDS)  # fmt: skip

    def make(row: Sequence[Any]) -> Job:
        return stored_job(
            row[i_id],
            row[i_type],
            row[i_data],
            _STATES[row[i_state]],
            row[i_priority],
            row[i_attempt],
            row[i_max_attempts],
            row[i_key],
            row[i_run_at],
            row[i_timeout],
            row[i_created_at],
            row[i_started_at],
            row[i_finished_at],
            row[i_worker],
            row[i_lease_until],
            row[i_progress],
            row[i_result],
            load_error(row[i_error]),
        )

    return make
