"""The OpenAPI 3.1 document the manager serves at ``/openapi.json``.

Its schemas are generated from the :mod:`forerunner.wire` Structs that decode every
request, so the document cannot drift from what the manager accepts; the paths, their
parameters and every answer each one can give are written here, and ``./dev test``
runs ``schemathesis`` against a live manager to hold them to what it really answers.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import msgspec.inspect as mi

from forerunner.model import JobState
from forerunner.wire import (
    MAX_BATCH,
    BatchSubmit,
    BatchSubmitResponse,
    BulkRetry,
    BulkRetryResponse,
    ErrorBody,
    JobList,
    JobResponse,
    JobSpec,
    Overview,
    PollRequest,
    PollResponse,
    Purge,
    PurgeResponse,
    Session,
    SubmitResponse,
    Timeline,
    WaitResponse,
    WorkerList,
)

__all__ = ["ERROR_STATUSES", "MAX_JOB_WAIT", "openapi_document"]

#: Longest ``/wait``, in seconds.
MAX_JOB_WAIT: Final = 60.0

#: Every status an error answer may carry, with the codes it stands for.
ERROR_STATUSES: Final = {
    400: "malformed_json: the body is not JSON",
    401: "unauthorized: no token, or one the manager does not know",
    403: "forbidden: the token's role may not do this; cross_origin: sent by another site's page",
    404: "not_found: no such job",
    408: "request_timeout: the body did not arrive in time",
    409: "invalid_transition: the job's state does not allow this",
    413: "too_large: the body, or a job's data, is over the manager's limit",
    422: "validation_error: the input breaks a rule; field names it",
    429: "too_many_requests: too many requests of this token in flight; retry after a second",
    500: "internal_error: the manager failed; it logged why",
    503: "unavailable: the store or queue is unavailable",
}

#: A string without the control characters (C0, DEL, C1) a job type may not have.
_NO_CONTROLS: Final = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"

_STRUCTS: Final = (
    JobSpec,
    BatchSubmit,
    SubmitResponse,
    BatchSubmitResponse,
    JobResponse,
    JobList,
    WaitResponse,
    PollRequest,
    PollResponse,
    Timeline,
    Overview,
    WorkerList,
    BulkRetry,
    BulkRetryResponse,
    Purge,
    PurgeResponse,
    Session,
    ErrorBody,
)

#: What each kind of operation can answer besides success; the statuses of the guard
#: (auth, limits, internal errors, a failing backend) are on every operation behind it.
_GUARDED: Final = (401, 403, 429, 500, 503)
_WITH_BODY: Final = (400, 408, 413, 422)
_CHANGES_JOB: Final = (404, 409)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the manager's API, schemas from the wire Structs."""
    _, components = msgspec.json.schema_components(
        _STRUCTS, ref_template="#/components/schemas/{name}"
    )
    _mark_date_times(components)
    _mark_job_types(components)
    # run_at and delay both schedule; a job may give one, not both (a 422 otherwise).
    components["JobSpec"]["anyOf"] = [
        {"properties": {"run_at": {"type": "null"}}},
        {"properties": {"delay": {"type": "null"}}},
    ]
    components["Health"] = {
        "type": "object",
        "properties": {
            "status": {"enum": ["ok", "unavailable"]},
            "error": {"type": "string"},
        },
        "required": ["status"],
    }
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
    paths = {
        "/v1/jobs": {
            "post": _operation(
                "Submit one job",
                body="JobSpec",
                answers={
                    201: _answer("SubmitResponse", "created"),
                    200: _answer("SubmitResponse", "the idempotency key named an existing job"),
                },
                errors=_WITH_BODY,
            ),
            "get": _operation(
                "List jobs, newest first",
                parameters=[
                    _query("state", {"type": "string", "enum": [s.value for s in JobState]}),
                    _query("type", {"type": "string"}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_BATCH}),
                    _query("before", {"type": "string"}),
                    _query("text", {"type": "string"}),
                ],
                answers={200: _answer("JobList", "a page of jobs")},
                errors=(422,),
            ),
        },
        "/v1/jobs/batch": {
            "post": _operation(
                "Submit many jobs",
                body="BatchSubmit",
                answers={200: _answer("BatchSubmitResponse", "stored")},
                errors=_WITH_BODY,
            )
        },
        "/v1/jobs/{job_id}": {
            "get": _operation(
                "Get a job",
                parameters=[job_id],
                answers={200: _answer("JobResponse", "the job")},
                errors=(404,),
            )
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": _operation(
                "Cancel a job that has not finished (admin)",
                parameters=[job_id],
                answers={200: _answer("JobResponse", "the cancelled job")},
                errors=(*_CHANGES_JOB, 408, 413),
            )
        },
        "/v1/jobs/{job_id}/retry": {
            "post": _operation(
                "Queue a failed or cancelled job again (admin)",
                parameters=[job_id],
                answers={200: _answer("JobResponse", "the queued job")},
                errors=(*_CHANGES_JOB, 408, 413),
            )
        },
        "/v1/jobs/{job_id}/wait": {
            "get": _operation(
                "Wait until the job finishes or the timeout passes",
                parameters=[
                    job_id,
                    _query("timeout", {"type": "number", "minimum": 0, "maximum": MAX_JOB_WAIT}),
                ],
                answers={200: _answer("WaitResponse", "the job; done tells which")},
                errors=(404, 422),
            )
        },
        "/v1/jobs/{job_id}/timeline": {
            "get": _operation(
                "A job and the steps of its life, oldest first",
                parameters=[job_id],
                answers={200: _answer("Timeline", "the job and its steps")},
                errors=(404,),
            )
        },
        "/v1/jobs/retry": {
            "post": _operation(
                "Retry failed or cancelled jobs, of one type or all (admin)",
                body="BulkRetry",
                answers={200: _answer("BulkRetryResponse", "the retried ids")},
                errors=_WITH_BODY,
            )
        },
        "/v1/jobs/purge": {
            "post": _operation(
                "Delete jobs that finished long enough ago (admin)",
                body="Purge",
                answers={200: _answer("PurgeResponse", "how many were deleted")},
                errors=_WITH_BODY,
            )
        },
        "/v1/overview": {
            "get": _operation(
                "Counts, queue depths, oldest waiting job, the last hour",
                answers={200: _answer("Overview", "the overview")},
            )
        },
        "/v1/workers": {
            "get": _operation(
                "The workers that polled within the last lease",
                answers={200: _answer("WorkerList", "the workers")},
            )
        },
        "/v1/workers/poll": {
            "post": _operation(
                "Report results and progress, renew leases, take new jobs (worker)",
                body="PollRequest",
                answers={200: _answer("PollResponse", "new jobs and ids to abandon")},
                errors=_WITH_BODY,
                forbidden="forbidden: not a worker's token; worker_taken: another token or "
                "session polls as this worker id",
            )
        },
        "/v1/session": {
            "get": _operation(
                "What the caller may do: whether tokens are needed, and its token's role",
                answers={200: _answer("Session", "the caller's session")},
                # Open, but a valid token's requests still count against its limit.
                errors=(429,),
                guarded=False,
            )
        },
        "/metrics": {
            "get": _operation(
                "The Prometheus series",
                answers={
                    200: {
                        "description": "the series, in Prometheus' text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/healthz": {
            "get": _operation(
                "Whether the manager reaches its store",
                answers={
                    200: _answer("Health", "the store answers"),
                    503: _answer("Health", "the store does not answer; error says why"),
                },
                guarded=False,
            )
        },
        "/openapi.json": {
            "get": _operation(
                "This document",
                answers={
                    200: {
                        "description": "the OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
                guarded=False,
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "forerunner manager",
            "version": "1",
            "description": (
                "Integers are read as JSON integer literals (2, not 2.0). With tokens "
                "configured, every operation but /healthz, /openapi.json and /v1/session "
                "needs `Authorization: Bearer <token>` of a role that may call it."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _operation(
    summary: str,
    *,
    answers: dict[int, dict[str, Any]],
    parameters: list[dict[str, Any]] | None = None,
    body: str | None = None,
    errors: tuple[int, ...] = (),
    guarded: bool = True,
    forbidden: str | None = None,
) -> dict[str, Any]:
    """One operation: its answers, then the error answers it can give, each declared once."""
    statuses = {*errors, *(_GUARDED if guarded else (500,))}
    responses = {str(status): answer for status, answer in answers.items()}
    for status in sorted(statuses):
        if str(status) in responses:
            continue
        description = ERROR_STATUSES[status]
        if status == 403 and forbidden is not None:
            description = forbidden
        error = _answer("ErrorBody", description)
        if status == 401:
            error["headers"] = {
                "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}
            }
        elif status == 429:
            error["headers"] = {"Retry-After": {"required": True, "schema": {"type": "string"}}}
        responses[str(status)] = error
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}] if guarded else [],
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return operation


def _mark_date_times(components: dict[str, Any]) -> None:
    """Say ``format: date-time`` on every datetime field of the wire Structs.

    msgspec writes a bare string for a datetime that may lack a time zone; the manager
    accepts only RFC 3339 times with an offset (a naive ``run_at`` is a 422) and sends
    only UTC, which is exactly ``date-time``.
    """
    for info in mi.multi_type_info(_STRUCTS):
        _walk(info, components, set())


def _walk(info: mi.Type, components: dict[str, Any], seen: set[type]) -> None:
    if isinstance(info, mi.StructType):
        if info.cls in seen:
            return
        seen.add(info.cls)
        properties = components.get(info.cls.__name__, {}).get("properties", {})
        for field in info.fields:
            schema = properties.get(field.encode_name)
            if schema is not None:
                _mark(field.type, schema)
            _walk(field.type, components, seen)
    elif isinstance(info, mi.UnionType):
        for member in info.types:
            _walk(member, components, seen)
    elif isinstance(info, (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)):
        _walk(info.item_type, components, seen)
    elif isinstance(info, mi.DictType):
        _walk(info.value_type, components, seen)


def _mark(info: mi.Type, schema: dict[str, Any]) -> None:
    if isinstance(info, mi.DateTimeType):
        schema["format"] = "date-time"
    elif isinstance(info, mi.UnionType) and any(
        isinstance(member, mi.DateTimeType) for member in info.types
    ):
        for member in schema.get("anyOf", []):
            if member.get("type") == "string":
                member["format"] = "date-time"


def _mark_job_types(components: dict[str, Any]) -> None:
    """Say that a job type has no control characters, which the wire Structs check."""
    for name in ("JobSpec", "BulkRetry"):
        schema = components[name]["properties"]["type"]
        for member in schema.get("anyOf", [schema]):
            if member.get("type") == "string":
                member["pattern"] = _NO_CONTROLS
