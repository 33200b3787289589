"""Whatever arrives on the manager's port, it answers 4xx or closes, and stays healthy.

Each test sends one kind of hostile input (over a raw socket where the HTTP framing
itself is the attack, over httpx otherwise), then checks the same three things: the
store holds the jobs it held before, ``/healthz`` answers 200, and a normal submit
still works. The limits are small so that slow clients are cut off in a test's time.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from forerunner.manager.limits import Limits

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from forerunner.manager import Manager
    from forerunner.model import JobState

LIMITS = Limits(header_timeout=0.5, body_timeout=0.5, max_body=8 * 1024, max_header_bytes=2 * 1024)
#: How much later than a timeout the manager may act, on a busy test machine.
SLACK = 1.5


@pytest.fixture
def manager(start_manager: Callable[..., Manager]) -> Manager:
    return start_manager(limits=LIMITS)


@pytest.fixture
def http(manager: Manager) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=manager.url, timeout=10.0) as client:
        yield client


@pytest.fixture
def unharmed(manager: Manager, http: httpx.Client) -> Iterator[None]:
    """One job in the store before the test; after it, the same jobs, health and submits."""
    assert http.post("/v1/jobs", json={"type": "ping", "data": {"n": 1}}).status_code == 201
    before = counts(manager)
    yield
    assert counts(manager) == before
    assert http.get("/healthz").status_code == 200
    response = http.post("/v1/jobs", json={"type": "ping", "data": {"n": 2}})
    assert response.status_code == 201, response.text
    assert sum(counts(manager).values()) == sum(before.values()) + 1


def counts(manager: Manager) -> dict[tuple[str, JobState], int]:
    return manager.store.counts()


def connect(manager: Manager) -> socket.socket:
    sock = socket.create_connection((manager.host, manager.port), timeout=10.0)
    sock.settimeout(10.0)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """All the manager says until it closes the connection (a reset counts as closed)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def exchange(manager: Manager, data: bytes) -> bytes:
    """Send ``data`` at once and return everything the manager answers until it closes."""
    with connect(manager) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return read_until_closed(sock)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def error_of(answer: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    return error


def head(method: str, path: bytes, *headers: bytes) -> bytes:
    lines = [method.encode() + b" " + path + b" HTTP/1.1", b"Host: manager", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def trickle(sock: socket.socket, data: bytes, every: float, deadline: float) -> float:
    """Send ``data`` a byte at a time until the manager closes; the seconds that took."""
    started = time.monotonic()
    sock.settimeout(every)
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(65536) == b"":
                break
        except TimeoutError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            break
        assert time.monotonic() - started < deadline, "the manager kept the slow client"
    else:
        pytest.fail("the whole request went through; make it longer")
    return time.monotonic() - started


# The request head


@pytest.mark.usefixtures("unharmed")
def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    manager: Manager,
) -> None:
    with connect(manager) as sock:
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        waited = time.monotonic() - started

    assert LIMITS.header_timeout * 0.8 <= waited < LIMITS.header_timeout + SLACK


@pytest.mark.usefixtures("unharmed")
def test_a_head_sent_a_byte_at_a_time_is_cut_off_after_the_header_timeout(
    manager: Manager,
) -> None:
    slow = head("GET", b"/healthz", *(b"X-Slow-%d: yes" % i for i in range(40)))

    with connect(manager) as sock:
        took = trickle(sock, slow, every=0.05, deadline=LIMITS.header_timeout + SLACK)

    assert took >= LIMITS.header_timeout * 0.8


@pytest.mark.usefixtures("unharmed")
def test_a_slow_second_head_on_a_kept_alive_connection_is_cut_off(manager: Manager) -> None:
    with connect(manager) as sock:
        sock.sendall(head("GET", b"/healthz"))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        slow = head("GET", b"/healthz", *(b"X-Slow-%d: yes" % i for i in range(40)))

        took = trickle(sock, slow, every=0.05, deadline=LIMITS.header_timeout + SLACK)

    assert took >= LIMITS.header_timeout * 0.8


@pytest.mark.usefixtures("unharmed")
@pytest.mark.parametrize(
    "request_head",
    [
        pytest.param(head("GET", b"/healthz", b"X-Big: " + b"a" * 5000), id="one-big-header"),
        pytest.param(
            head("GET", b"/healthz", *(b"X-Many-%d: 1" % i for i in range(500))),
            id="many-headers",
        ),
        pytest.param(head("GET", b"/healthz?" + b"q" * 5000), id="long-request-line"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nX-Endless: " + b"a" * 50_000, id="endless-head"),
    ],
)
def test_a_head_over_max_header_bytes_is_answered_431_and_closed(
    manager: Manager, request_head: bytes
) -> None:
    answer = exchange(manager, request_head)

    assert status_of(answer) == 431
    assert error_of(answer)["code"] == "too_large"
    assert b"connection: close" in answer.lower()


@pytest.mark.usefixtures("unharmed")
def test_a_head_just_under_max_header_bytes_is_served(manager: Manager) -> None:
    padding = b"a" * (LIMITS.max_header_bytes - 200)

    answer = exchange(manager, head("GET", b"/healthz", b"Connection: close", b"X-Pad: " + padding))

    assert status_of(answer) == 200


@pytest.mark.usefixtures("unharmed")
def test_many_idle_connections_neither_block_others_nor_stay_open(
    manager: Manager, http: httpx.Client
) -> None:
    idle = [connect(manager) for _ in range(200)]
    try:
        assert http.get("/healthz").status_code == 200
        assert http.post("/v1/jobs/batch", json={"jobs": []}).status_code == 422
        deadline = time.monotonic() + LIMITS.header_timeout + SLACK
        for sock in idle:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            assert read_until_closed(sock) == b""
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.usefixtures("unharmed")
@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, id="tls-hello"
        ),
        pytest.param(b"\x00\xff\xfe garbage \r\n\r\n", id="binary"),
        pytest.param(b"GET /v1/jobs/\xff\xfe HTTP/1.1\r\nHost: m\r\n\r\n", id="raw-utf8-path"),
        pytest.param(b"GET /v1/jobs?type=\xff HTTP/1.1\r\nHost: m\r\n\r\n", id="raw-utf8-query"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nX-Bad\x01Name: 1\r\n\r\n", id="control-in-name"),
        pytest.param(
            head("POST", b"/v1/jobs", b"Content-Length: 5", b"Transfer-Encoding: chunked")
            + b"0\r\n\r\n",
            id="length-and-chunked",
        ),
        pytest.param(head("POST", b"/v1/jobs", b"Content-Length: -1"), id="negative-length"),
        pytest.param(head("POST", b"/v1/jobs", b"Content-Length: 1e9"), id="float-length"),
        pytest.param(
            head("POST", b"/v1/jobs", b"Content-Length: 2", b"Content-Length: 20") + b"{}",
            id="two-lengths",
        ),
        pytest.param(
            head("POST", b"/v1/jobs", b"Transfer-Encoding: chunked") + b"zz\r\n{}\r\n0\r\n\r\n",
            id="bad-chunk-size",
        ),
    ],
)
def test_a_request_that_is_not_http_is_answered_400_and_closed(
    manager: Manager, request_bytes: bytes
) -> None:
    answer = exchange(manager, request_bytes)

    assert status_of(answer) == 400


@pytest.mark.usefixtures("unharmed")
@pytest.mark.parametrize(
    ("path", "status"),
    [
        (b"/v1/jobs/%ff%fe", 404),
        (b"/v1/jobs/%00", 404),
        (b"/v1/jobs?type=%ff%fe&text=%00", 200),
        (b"/v1/jobs?limit=%ff", 422),
        (b"/v1/jobs?state=%ff", 422),
    ],
)
def test_invalid_utf8_percent_encoded_in_the_url_gets_a_json_answer(
    manager: Manager, path: bytes, status: int
) -> None:
    answer = exchange(manager, head("GET", path, b"Connection: close"))

    assert status_of(answer) == status
    json.loads(answer.partition(b"\r\n\r\n")[2])


# The request body


@pytest.mark.usefixtures("unharmed")
def test_a_content_length_over_max_body_is_refused_413_before_the_body_is_sent(
    manager: Manager,
) -> None:
    with connect(manager) as sock:
        sock.sendall(head("POST", b"/v1/jobs", b"Content-Length: 10000000000"))
        answer = read_until_closed(sock)

    assert status_of(answer) == 413
    assert error_of(answer)["code"] == "too_large"


@pytest.mark.usefixtures("unharmed")
def test_expect_100_continue_over_max_body_gets_413_and_no_continue(manager: Manager) -> None:
    request = head("POST", b"/v1/jobs", b"Content-Length: 100000", b"Expect: 100-continue")

    answer = exchange(manager, request)

    assert status_of(answer) == 413
    assert b"100 Continue" not in answer


@pytest.mark.usefixtures("unharmed")
def test_a_chunked_body_over_max_body_is_refused_413_while_it_streams(manager: Manager) -> None:
    chunk = b"400\r\n" + b" " * 0x400 + b"\r\n"
    body = b'5\r\n{"a":\r\n' + chunk * 100 + b"0\r\n\r\n"

    answer = exchange(manager, head("POST", b"/v1/jobs", b"Transfer-Encoding: chunked") + body)

    assert status_of(answer) == 413
    assert error_of(answer)["code"] == "too_large"


@pytest.mark.usefixtures("unharmed")
def test_an_endless_chunked_body_is_cut_off_at_max_body(manager: Manager) -> None:
    chunk = b"400\r\n" + b" " * 0x400 + b"\r\n"
    with connect(manager) as sock:
        sock.sendall(head("POST", b"/v1/workers/poll", b"Transfer-Encoding: chunked"))
        sent = 0
        try:
            while sent < 100 * LIMITS.max_body:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_until_closed(sock)

    assert sent < 100 * LIMITS.max_body
    assert answer == b"" or status_of(answer) == 413


@pytest.mark.usefixtures("unharmed")
def test_httpx_body_over_max_body_is_refused_413(http: httpx.Client) -> None:
    jobs = [{"type": "ping", "data": "x" * 100} for _ in range(200)]

    response = http.post("/v1/jobs/batch", json={"jobs": jobs})

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


@pytest.mark.usefixtures("unharmed")
def test_a_content_length_that_promises_more_than_comes_is_answered_408(
    manager: Manager,
) -> None:
    with connect(manager) as sock:
        sock.sendall(head("POST", b"/v1/jobs", b"Content-Length: 100") + b'{"type": "ping"}')
        started = time.monotonic()
        answer = read_until_closed(sock)
        waited = time.monotonic() - started

    assert status_of(answer) == 408
    assert error_of(answer)["code"] == "request_timeout"
    assert waited < LIMITS.body_timeout + SLACK


@pytest.mark.usefixtures("unharmed")
def test_a_content_length_shorter_than_the_body_makes_the_rest_a_bad_request(
    manager: Manager,
) -> None:
    request = head("POST", b"/v1/jobs", b"Content-Length: 2") + b'{}{"type": "ping"}'

    answer = exchange(manager, request)

    assert status_of(answer) == 400


@pytest.mark.usefixtures("unharmed")
def test_a_body_trickled_a_byte_at_a_time_is_cut_off_after_the_body_timeout(
    manager: Manager,
) -> None:
    body = json.dumps({"type": "ping", "data": "x" * 200}).encode()
    with connect(manager) as sock:
        sock.sendall(head("POST", b"/v1/jobs", b"Content-Length: %d" % len(body)))

        took = trickle(sock, body, every=0.05, deadline=LIMITS.body_timeout + SLACK)

    assert took >= LIMITS.body_timeout * 0.8


# Bodies that arrive whole but are not what the endpoint takes


HOSTILE_BODIES: list[tuple[str, bytes, int, str | None]] = [
    ("/v1/jobs", b"", 400, None),
    ("/v1/jobs", b"{", 400, None),
    ("/v1/jobs", b'{"type": "ping"', 400, None),
    ("/v1/jobs", b'{"type": "ping", "data": NaN}', 400, None),
    ("/v1/jobs", b'{"type": "ping", "data": Infinity}', 400, None),
    ("/v1/jobs", b'{"type": "ping", "data": "\xff\xfe"}', 400, None),
    ("/v1/jobs", b'{"type": "ping", "data": "\\ud800"}', 400, None),
    ("/v1/jobs", b'\xef\xbb\xbf{"type": "ping"}', 400, None),
    ("/v1/jobs", b'{"type": "ping"} trailing', 400, None),
    ("/v1/jobs", b"null", 422, "$"),
    ("/v1/jobs", b"[]", 422, "$"),
    ("/v1/jobs", b'"ping"', 422, "$"),
    ("/v1/jobs", b"{}", 422, "$.type"),
    ("/v1/jobs", b'{"type": 1}', 422, "$.type"),
    ("/v1/jobs", b'{"type": ""}', 422, "$.type"),
    ("/v1/jobs", b'{"type": "' + b"t" * 201 + b'"}', 422, "$.type"),
    ("/v1/jobs", b'{"type": "ping\\u0000"}', 422, "$.type"),
    ("/v1/jobs", b'{"type": "pi\\nng"}', 422, "$.type"),
    ("/v1/jobs", b'{"type": "ping\\u009b"}', 422, "$.type"),
    ("/v1/jobs", b'{"type": "ping", "data": 1e400}', 422, "$.data"),
    ("/v1/jobs", b'{"type": "ping", "data": -1e400}', 422, "$.data"),
    ("/v1/jobs", b'{"type": "ping", "data": [18446744073709551616]}', 422, "$.data"),
    ("/v1/jobs", b'{"type": "ping", "data": {"n": 9223372036854775808}}', 422, "$.data"),
    ("/v1/jobs", b'{"type": "ping", "data": ' + b"1" * 400 + b"}", 422, "$.data"),
    ("/v1/jobs", b'{"type": "ping", "data": ' + b"9" * 5000 + b"}", 422, "$.data"),
    ("/v1/jobs", b'{"type": "ping", "data": ' + b"[" * 65 + b"]" * 65 + b"}", 422, "$.data"),
    ("/v1/jobs", b'{"type": "ping", "data": ' + b'{"a":' * 65 + b"1" + b"}" * 66, 422, "$.data"),
    ("/v1/jobs", b"[" * 3000 + b"]" * 3000, 422, "$"),
    ("/v1/jobs", b'{"type": "ping", "data": ' + b"[" * 3000 + b"]" * 3000 + b"}", 422, "$"),
    ("/v1/jobs", b'{"type": "ping", "priority": 1e300}', 422, "$.priority"),
    ("/v1/jobs", b'{"type": "ping", "priority": 9007199254740993}', 422, "$.priority"),
    ("/v1/jobs", b'{"type": "ping", "max_attempts": 0}', 422, "$.max_attempts"),
    ("/v1/jobs", b'{"type": "ping", "delay": -1}', 422, "$.delay"),
    ("/v1/jobs", b'{"type": "ping", "delay": 1e400}', 422, "$.delay"),
    ("/v1/jobs", b'{"type": "ping", "timeout": 0}', 422, "$.timeout"),
    ("/v1/jobs", b'{"type": "ping", "run_at": "yesterday"}', 422, "$.run_at"),
    ("/v1/jobs", b'{"type": "ping", "run_at": "99999-01-01T00:00:00Z"}', 422, "$.run_at"),
    ("/v1/jobs", b'{"type": "ping", "key": ""}', 422, "$.key"),
    ("/v1/jobs", b'{"type": "ping", "surprise": 1}', 422, "$.surprise"),
    ("/v1/jobs/batch", b'{"jobs": {}}', 422, "$.jobs"),
    (
        "/v1/jobs/batch",
        b'{"jobs": [{"type": "ping"}, {"type": "ping", "data": 1e999}]}',
        422,
        "$.jobs[1].data",
    ),
    ("/v1/workers/poll", b"{}", 422, "$.worker"),
    ("/v1/workers/poll", b'{"worker": "w", "capacity": -1}', 422, "$.capacity"),
    ("/v1/workers/poll", b'{"worker": "w", "capacity": 1e400}', 422, "$.capacity"),
    ("/v1/workers/poll", b'{"worker": "w", "wait": 1e400}', 422, "$.wait"),
    ("/v1/workers/poll", b'{"worker": "w", "types": "ping"}', 422, "$.types"),
    ("/v1/workers/poll", b'{"worker": "w", "session": "short"}', 422, "$.session"),
    (
        "/v1/workers/poll",
        b'{"worker": "w", "reports": [{"id": "x", "attempt": 1, "outcome": "succeeded", '
        b'"result": ' + b"[" * 3000 + b"]" * 3000 + b"}]}",
        422,
        "$",
    ),
    (
        "/v1/workers/poll",
        b'{"worker": "w", "progress": [{"id": "x", "attempt": 1, "value": 1e400}]}',
        422,
        "$.progress[0].value",
    ),
    ("/v1/jobs/retry", b'{"state": "running"}', 422, "$.state"),
    ("/v1/jobs/retry", b'{"type": "a\\u0007"}', 422, "$.type"),
    ("/v1/jobs/retry", b'{"limit": 1e400}', 422, "$.limit"),
    ("/v1/jobs/purge", b'{"older_than": -1}', 422, "$.older_than"),
    ("/v1/jobs/purge", b'{"older_than": 1e400}', 422, "$.older_than"),
]


@pytest.mark.usefixtures("unharmed")
@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    HOSTILE_BODIES,
    ids=[f"{path}:{body[:40]!r}" for path, body, _, _ in HOSTILE_BODIES],
)
def test_a_hostile_body_is_refused_with_a_json_error_naming_the_field(
    http: httpx.Client, path: str, body: bytes, status: int, field: str | None
) -> None:
    response = http.post(path, content=body, headers={"content-type": "application/json"})

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == {400: "malformed_json", 422: "validation_error"}[status]
    if field is not None:
        assert error["field"] == field
    assert "Traceback" not in error["message"]


@pytest.mark.usefixtures("unharmed")
@pytest.mark.parametrize(
    "query",
    [
        "limit=abc",
        "limit=1e400",
        "limit=99999999999999999999999",
        "limit=-1",
        "state=nope",
        "limit=%00",
    ],
)
def test_a_hostile_query_is_refused_422(http: httpx.Client, query: str) -> None:
    response = http.get(f"/v1/jobs?{query}")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.usefixtures("unharmed")
@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "1e400", "-1", "x"])
def test_a_hostile_wait_timeout_is_refused_422(http: httpx.Client, timeout: str) -> None:
    job_id = http.get("/v1/jobs").json()["jobs"][0]["id"]

    response = http.get(f"/v1/jobs/{job_id}/wait?timeout={timeout}")

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "timeout"


@pytest.mark.usefixtures("unharmed")
@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs/" + "x" * 1000,
        "/v1/jobs/..%2F..%2Fetc%2Fpasswd",
        "/v1/jobs/%2e%2e/timeline",
        "/v1/jobs/%00/cancel",
    ],
)
def test_a_hostile_job_id_or_path_is_not_found(http: httpx.Client, path: str) -> None:
    method = "POST" if path.endswith("/cancel") else "GET"

    assert http.request(method, path).status_code == 404


@pytest.mark.usefixtures("unharmed")
def test_a_job_id_longer_than_max_header_bytes_is_answered_431(http: httpx.Client) -> None:
    response = http.get("/v1/jobs/" + "x" * LIMITS.max_header_bytes)

    assert response.status_code == 431


@pytest.mark.usefixtures("unharmed")
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE"])
def test_an_unknown_method_is_refused_405(http: httpx.Client, method: str) -> None:
    assert http.request(method, "/v1/jobs").status_code == 405


# Unknown job types are a feature


def test_a_job_of_a_type_no_worker_knows_waits_and_shows_in_the_overview(
    http: httpx.Client,
) -> None:
    name = "nobody.knows/this type é ✓"

    response = http.post("/v1/jobs", json={"type": name, "data": {"x": 1}})
    polled = http.post("/v1/workers/poll", json={"worker": "w", "types": ["ping"], "capacity": 5})
    overview = http.get("/v1/overview").json()

    assert response.status_code == 201
    assert polled.json()["jobs"] == []
    assert {"type": name, "state": "queued", "count": 1} in overview["counts"]
    assert {"type": name, "depth": 1} in overview["queue"]
    assert http.get("/healthz").status_code == 200
    taken = http.post("/v1/workers/poll", json={"worker": "w", "types": [name], "capacity": 5})
    assert [job["type"] for job in taken.json()["jobs"]] == [name]
