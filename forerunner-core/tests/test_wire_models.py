"""The request Structs of :mod:`forerunner.wire`, as the manager decodes them.

Whatever JSON a caller sends, decoding gives a Struct or a msgspec error (the manager
answers those 400 or 422), never another exception, which would be a 500. A valid
request survives encode then decode unchanged. An invalid field value is refused by
an error that names the field.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forerunner.errors import ValidationError
from forerunner.wire import (
    MAX_BATCH,
    MAX_DEPTH,
    MAX_INT,
    MAX_WAIT,
    MIN_INT,
    AttemptRef,
    BatchSubmit,
    BulkRetry,
    JobSpec,
    PollRequest,
    ProgressReport,
    Purge,
    ResultReport,
    WireError,
    WorkerInfo,
    value_problem,
)

REQUESTS: list[type[msgspec.Struct]] = [JobSpec, BatchSubmit, PollRequest, BulkRetry, Purge]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.text(max_size=20)
numbers = st.integers(MIN_INT, MAX_INT) | st.floats(allow_nan=False, allow_infinity=False)
#: JSON values forerunner keeps: finite numbers, 64-bit integers, shallow nesting.
values = st.recursive(
    scalars | numbers,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
#: Any JSON at all, including what the Structs refuse.
any_json = st.recursive(
    scalars | st.integers() | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
names = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=200)
short = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40)
times = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9999, 1, 1), timezones=st.just(dt.UTC)
)
finite = st.floats(min_value=0, max_value=1e9, allow_nan=False)

job_specs = st.builds(
    JobSpec,
    type=names,
    data=values,
    priority=st.integers(-(2**53), 2**53),
    max_attempts=st.integers(1, 1000),
    key=st.none() | short,
    run_at=st.none() | times,
    delay=st.none() | finite,
    timeout=st.none() | finite.filter(lambda value: value > 0),
)
attempts = st.integers(1, 2**31)
polls = st.builds(
    PollRequest,
    worker=short,
    types=st.lists(names, max_size=5),
    capacity=st.integers(0, MAX_BATCH),
    running=st.lists(st.builds(AttemptRef, id=short, attempt=attempts), max_size=3),
    progress=st.lists(
        st.builds(ProgressReport, id=short, attempt=attempts, value=values), max_size=3
    ),
    reports=st.lists(
        st.builds(
            ResultReport,
            id=short,
            attempt=attempts,
            outcome=st.sampled_from(["succeeded", "failed"]),
            result=values,
            error=st.none()
            | st.builds(WireError, type=short, message=st.text(), traceback=st.none() | st.text()),
        ),
        max_size=3,
    ),
    wait=st.floats(0, MAX_WAIT),
    stopping=st.booleans(),
    info=st.none()
    | st.builds(
        WorkerInfo,
        host=st.text(max_size=255),
        pid=st.integers(0, 2**31),
        concurrency=st.integers(0, 1_000_000),
    ),
    session=st.none() | st.text(min_size=16, max_size=200),
)
requests = st.one_of(
    job_specs,
    st.builds(BatchSubmit, jobs=st.lists(job_specs, min_size=1, max_size=3)),
    polls,
    st.builds(
        BulkRetry,
        type=st.none() | names,
        state=st.sampled_from(["failed", "cancelled"]),
        limit=st.integers(1, 10_000),
    ),
    st.builds(Purge, older_than=st.floats(0, 100 * 365 * 86400), limit=st.integers(1, 10_000_000)),
)


@FAST
@given(value=any_json, kind=st.sampled_from(REQUESTS))
def test_any_json_decodes_to_the_struct_or_a_msgspec_error(value: Any, kind: type) -> None:
    raw = msgspec.json.encode(value)

    try:
        decoded: object = msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError:
        return
    assert isinstance(decoded, kind)


@FAST
@given(
    fields=st.dictionaries(
        st.sampled_from(["type", "data", "priority", "worker", "jobs", "types", "limit", "x"]),
        any_json,
        max_size=4,
    ),
    kind=st.sampled_from(REQUESTS),
)
def test_any_json_object_decodes_to_the_struct_or_a_validation_error(
    fields: dict[str, Any], kind: type
) -> None:
    try:
        decoded: object = msgspec.json.decode(msgspec.json.encode(fields), type=kind)
    except msgspec.ValidationError:
        return
    assert isinstance(decoded, kind)


@FAST
@given(raw=st.binary(max_size=200), kind=st.sampled_from(REQUESTS))
def test_any_bytes_decode_to_the_struct_or_a_msgspec_error(raw: bytes, kind: type) -> None:
    with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
        msgspec.json.decode(raw, type=kind)


@FAST
@given(request=requests)
def test_a_valid_request_round_trips_unchanged(request: msgspec.Struct) -> None:
    decoded = msgspec.json.decode(msgspec.json.encode(request), type=type(request))

    assert decoded == request


INVALID: list[tuple[type[msgspec.Struct], str, st.SearchStrategy[Any]]] = [
    (JobSpec, "type", st.just("")),
    (JobSpec, "type", st.text(min_size=201, max_size=300)),
    (
        JobSpec,
        "type",
        st.builds(
            lambda a, c, b: a + c + b,
            st.text(max_size=5),
            st.characters(min_codepoint=0, max_codepoint=0x1F),
            st.text(max_size=5),
        ),
    ),
    (JobSpec, "type", st.integers() | st.none() | st.lists(st.text())),
    (JobSpec, "priority", st.integers(2**53 + 1) | st.integers(max_value=-(2**53) - 1)),
    (JobSpec, "priority", st.text() | st.floats()),
    (JobSpec, "max_attempts", st.integers(max_value=0) | st.integers(1001)),
    (JobSpec, "delay", st.floats(max_value=-1e-9, allow_infinity=False)),
    (JobSpec, "timeout", st.floats(max_value=0, allow_infinity=False)),
    (JobSpec, "key", st.just("") | st.text(min_size=201, max_size=250)),
    (JobSpec, "run_at", st.text(max_size=10).filter(lambda text: not text[:1].isdigit())),
    (JobSpec, "data", st.integers(MAX_INT + 1) | st.integers(max_value=MIN_INT - 1)),
    (PollRequest, "worker", st.just("") | st.integers()),
    (PollRequest, "capacity", st.integers(MAX_BATCH + 1) | st.integers(max_value=-1)),
    (PollRequest, "wait", st.floats(MAX_WAIT, exclude_min=True) | st.floats(max_value=-1e-9)),
    (PollRequest, "types", st.lists(st.just("t"), min_size=MAX_BATCH + 1, max_size=MAX_BATCH + 1)),
    (PollRequest, "session", st.text(max_size=15)),
    (PollRequest, "stopping", st.integers() | st.text()),
    (BulkRetry, "state", st.sampled_from(["queued", "running", "succeeded", ""])),
    (BulkRetry, "limit", st.integers(10_001) | st.integers(max_value=0)),
    (Purge, "older_than", st.floats(max_value=-1e-9) | st.floats(100 * 365 * 86400 + 1)),
    (Purge, "limit", st.integers(max_value=0)),
]
BASE: dict[type, dict[str, Any]] = {
    JobSpec: {"type": "ping"},
    PollRequest: {"worker": "w1"},
    BulkRetry: {},
    Purge: {"older_than": 60},
}


@pytest.mark.parametrize(
    ("kind", "field", "bad"), INVALID, ids=[f"{k.__name__}.{f}" for k, f, _ in INVALID]
)
@FAST
@given(data=st.data())
def test_an_invalid_field_value_is_refused_naming_the_field(
    kind: type[msgspec.Struct], field: str, bad: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    value = data.draw(bad.filter(lambda value: not _is_nan(value)))
    raw = msgspec.json.encode({**BASE[kind], field: value})

    with pytest.raises(msgspec.ValidationError) as refused:
        msgspec.json.decode(raw, type=kind)

    message = str(refused.value)
    assert message.endswith(f"- at `$.{field}`") or f"field `{field}`" in message


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (nested(MAX_DEPTH), None),
        (nested(MAX_DEPTH + 1), "nested deeper"),
        (MAX_INT, None),
        (MIN_INT, None),
        (MAX_INT + 1, "outside 64 bits"),
        ({"a": [MIN_INT - 1]}, "outside 64 bits"),
        (10**400, "outside 64 bits"),
        (math.nan, "NaN"),
        ([1.0, math.inf], "NaN or an infinity"),
        ({"x": -math.inf}, "NaN or an infinity"),
        ((1, 2, (3, 1e308)), None),
        ("text", None),
        (True, None),
    ],
)
def test_a_job_value_must_be_keepable_as_json(data: Any, problem: str | None) -> None:
    found = value_problem(data)

    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_a_job_built_in_python_with_unkeepable_data_is_refused_naming_data() -> None:
    with pytest.raises(ValidationError) as refused:
        JobSpec(type="ping", data={"n": math.nan})

    assert refused.value.field == "data"


@pytest.mark.parametrize("field", ["delay", "timeout"])
@pytest.mark.parametrize("seconds", [math.inf, -math.inf, math.nan])
def test_a_job_built_in_python_with_endless_seconds_is_refused(field: str, seconds: float) -> None:
    options: dict[str, Any] = {field: seconds}

    with pytest.raises(ValidationError) as refused:
        JobSpec(type="ping", **options)

    assert refused.value.field == field


def test_a_job_decoded_with_data_nested_too_deeply_is_refused_naming_the_job() -> None:
    raw = msgspec.json.encode({"jobs": [{"type": "a"}, {"type": "a", "data": nested(100)}]})

    with pytest.raises(msgspec.ValidationError, match=r"field `data` - at `\$\.jobs\[1\]`"):
        msgspec.json.decode(raw, type=BatchSubmit)


@pytest.mark.parametrize("name", ["a\x00", "tab\there", "line\n", "\x7f", "c1\x85", "\x1b[31m"])
def test_a_type_name_with_control_characters_is_refused(name: str) -> None:
    with pytest.raises(msgspec.ValidationError, match="control characters"):
        msgspec.json.decode(msgspec.json.encode({"type": name}), type=JobSpec)


@pytest.mark.parametrize("name", ["thumbnail", "a b", "ümlaut.ü", "emoji ✓", "zero\u200bwidth"])
def test_a_type_name_of_printable_text_is_accepted(name: str) -> None:
    assert msgspec.json.decode(msgspec.json.encode({"type": name}), type=JobSpec).type == name
