"""The OpenAPI document is a contract: valid, complete, and honest about every error.

``./dev test`` holds the manager to the document with schemathesis against a live
manager (tests/contract); these are the fast rules that need no server: what the
document must say for that run to mean anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from starlette.routing import Route

from forerunner.manager import Manager
from forerunner.manager.app import _STATUS, create_app
from forerunner.manager.openapi import ERROR_STATUSES, openapi_document

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import httpx

Operation = tuple[str, str]

DOCUMENT = openapi_document()


def operations(document: dict[str, Any]) -> Iterator[tuple[Operation, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield (method.upper(), path), operation


OPERATIONS = dict(operations(DOCUMENT))


def guarded(op: Operation) -> bool:
    return bool(OPERATIONS[op]["security"])


def has_body(op: Operation) -> bool:
    return "requestBody" in OPERATIONS[op]


def has_query(op: Operation) -> bool:
    return any(p["in"] == "query" for p in OPERATIONS[op].get("parameters", []))


#: Which operations can answer each error code the manager has, by what they do.
CAN_ANSWER: dict[str, Callable[[Operation], bool]] = {
    "malformed_json": has_body,
    "unauthorized": guarded,
    "forbidden": guarded,
    "worker_taken": lambda op: op == ("POST", "/v1/workers/poll"),
    "read_only": lambda op: op[0] == "POST" and op[1].endswith(("/cancel", "/retry", "/purge")),
    "cross_origin": lambda op: op[0] == "POST",
    "not_found": lambda op: "{job_id}" in op[1],
    "request_timeout": lambda op: op[0] == "POST",
    "invalid_transition": lambda op: op[0] == "POST" and op[1].endswith(("}/cancel", "}/retry")),
    "too_large": lambda op: op[0] == "POST",
    "validation_error": lambda op: has_body(op) or has_query(op),
    "too_many_requests": lambda op: guarded(op) or op == ("GET", "/v1/session"),
    "internal_error": lambda op: True,
    "unavailable": guarded,
}


def test_the_document_is_valid_openapi_3_1() -> None:
    schema = schemathesis.openapi.from_dict(DOCUMENT)

    schema.validate()
    assert DOCUMENT["openapi"].startswith("3.1.")


def test_the_validity_check_refuses_a_broken_document() -> None:
    broken = {**DOCUMENT, "paths": {"/v1/jobs": {"get": {"responses": "none"}}}}

    with pytest.raises(Exception, match="responses"):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_route_the_api_serves_is_in_the_document_and_nothing_else() -> None:
    manager = Manager("memory://", "memory://", dashboard=False)
    app = create_app(manager.service, dashboard=False)

    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }

    assert served == set(OPERATIONS)


def test_every_error_code_is_declared_on_every_operation_that_can_answer_it() -> None:
    assert set(CAN_ANSWER) == set(_STATUS), "a new error code needs a rule here"
    missing = {
        (code, op)
        for code, can_answer in CAN_ANSWER.items()
        for op, operation in OPERATIONS.items()
        if can_answer(op) and str(_STATUS[code]) not in operation["responses"]
    }

    assert missing == set()


def test_every_error_status_is_described_and_answers_an_error_body() -> None:
    assert set(_STATUS.values()) <= set(ERROR_STATUSES)
    for op, operation in OPERATIONS.items():
        for status, answer in operation["responses"].items():
            if int(status) in ERROR_STATUSES and op != ("GET", "/healthz"):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (op, status)


@pytest.mark.parametrize(
    ("status", "header"), [("401", "WWW-Authenticate"), ("429", "Retry-After")]
)
def test_the_headers_an_error_must_carry_are_declared(status: str, header: str) -> None:
    for operation in OPERATIONS.values():
        if status in operation["responses"]:
            assert operation["responses"][status]["headers"][header]["required"] is True


def test_only_health_the_document_and_the_session_are_open() -> None:
    open_ = {op for op in OPERATIONS if not guarded(op)}

    assert open_ == {("GET", "/healthz"), ("GET", "/openapi.json"), ("GET", "/v1/session")}


def test_times_are_declared_as_rfc_3339_date_times() -> None:
    schemas = DOCUMENT["components"]["schemas"]

    assert schemas["OldestWaiting"]["properties"]["since"]["format"] == "date-time"
    run_at = schemas["JobSpec"]["properties"]["run_at"]["anyOf"]
    assert {"type": "string", "format": "date-time"} in run_at


# What schemathesis found the manager accepting and then failing on (500s), now 422s
# that the document declares.


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "a", "delay": 1e12}, "delay"),
        ({"type": "a", "run_at": "9999-12-31T23:59:59-05:00"}, "run_at"),
        ({"type": "a", "run_at": "0001-01-01T00:00:00+05:00"}, "run_at"),
    ],
)
def test_a_job_scheduled_past_the_last_date_is_refused_with_422(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    answer = http.post("/v1/jobs", json=body)

    assert answer.status_code == 422, answer.text
    assert field in answer.json()["error"]["message"]


def test_an_attempt_number_beyond_64_bits_is_refused_with_422(http: httpx.Client) -> None:
    progress = [{"id": "job", "attempt": 2**63}]

    answer = http.post("/v1/workers/poll", json={"worker": "w", "progress": progress})

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == "$.progress[0].attempt"


def test_a_job_gives_run_at_or_delay_and_the_document_says_so(http: httpx.Client) -> None:
    both = {"type": "a", "run_at": "2030-01-01T00:00:00Z", "delay": 5}

    assert http.post("/v1/jobs", json=both).status_code == 422
    assert {"properties": {"delay": {"type": "null"}}} in DOCUMENT["components"]["schemas"][
        "JobSpec"
    ]["anyOf"]
