"""Who may call a manager: tokens, roles, worker identities, and what one caller may ask.

The table of every role against every endpoint lives with the client's tests
(tests/client/test_client_auth.py); these are the manager's own rules.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest

from forerunner.errors import ConfigurationError
from forerunner.manager import Manager
from forerunner.manager.auth import Principal, Role, Tokens, WorkerBindings, is_loopback
from forerunner.manager.limits import Limits
from forerunner.model import JobState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

CLIENT = "client-" + "c" * 24
ADMIN = "admin-" + "a" * 24
WORKER = "worker-" + "w" * 24
OTHER_WORKER = "worker-" + "v" * 24


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def tokens() -> Tokens:
    return Tokens.from_mapping(
        {"client": [CLIENT], "admin": [ADMIN], "worker": [WORKER, OTHER_WORKER]}
    )


@pytest.fixture
def guarded(start_manager: Callable[..., Manager], tokens: Tokens) -> Manager:
    return start_manager(tokens=tokens)


@pytest.fixture
def http(guarded: Manager) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded.url, timeout=30.0) as client:
        yield client


def poll(http: httpx.Client, token: str, **body: Any) -> httpx.Response:
    body.setdefault("worker", "w1")
    return http.post("/v1/workers/poll", json=body, headers=bearer(token))


# Tokens


def test_a_request_without_a_token_is_refused_with_401_and_a_bearer_challenge(
    http: httpx.Client,
) -> None:
    answer = http.get("/v1/jobs")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["error"]["code"] == "unauthorized"
    assert "FORERUNNER_TOKEN" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {CLIENT}x",
        f"Bearer {CLIENT[:-1]}",
        f"Basic {CLIENT}",
        CLIENT,
        "Bearer",
        "Bearer \u00e9\u00e9\u00e9",
    ],
)
def test_a_wrong_token_is_refused_and_never_echoed(http: httpx.Client, header: str) -> None:
    answer = http.get("/v1/jobs", headers={"authorization": header.encode("utf-8")})  # type: ignore[dict-item]
    assert answer.status_code == 401
    assert CLIENT[:20] not in answer.text


def test_a_token_of_the_wrong_role_is_refused_with_403_naming_the_role_needed(
    http: httpx.Client, guarded: Manager
) -> None:
    job = guarded.assign_job("ping")
    answer = http.post(f"/v1/jobs/{job.id}/cancel", headers=bearer(CLIENT))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert "admin" in answer.json()["error"]["message"]
    assert guarded.store.get(job.id).state is JobState.QUEUED  # type: ignore[union-attr]


def test_several_tokens_of_one_role_all_work_so_a_token_can_be_rotated(
    start_manager: Callable[..., Manager],
) -> None:
    old, new = "old-token-" + "1" * 20, "new-token-" + "2" * 20
    manager = start_manager(tokens=Tokens.from_mapping({"client": [old, new]}))
    with httpx.Client(base_url=manager.url) as http:
        assert http.get("/v1/jobs", headers=bearer(old)).status_code == 200
        assert http.get("/v1/jobs", headers=bearer(new)).status_code == 200


def test_health_the_document_and_the_session_answer_without_a_token(http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    assert http.get("/openapi.json").status_code == 200
    assert http.get("/v1/session").json() == {"auth": True, "role": None, "read_only": False}
    session = http.get("/v1/session", headers=bearer(CLIENT)).json()
    assert session["role"] == "client"


def test_without_tokens_everyone_is_admin(manager: Manager) -> None:
    with httpx.Client(base_url=manager.url) as http:
        assert http.get("/v1/session").json() == {
            "auth": False,
            "role": "admin",
            "read_only": False,
        }


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("client short\n", "shorter than 16"),
        (f"boss {'x' * 20}\n", "unknown role 'boss'"),
        (f"client {'x' * 20} extra\n", "expected `ROLE TOKEN`"),
        (f"client {'x' * 20}\nadmin {'x' * 20}\n", "given twice"),
    ],
)
def test_a_bad_tokens_file_is_refused_with_its_line_or_rule(
    tmp_path: Path, content: str, complaint: str
) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# the team's tokens\n\n{content}")
    with pytest.raises(ConfigurationError, match=complaint) as caught:
        Tokens.from_file(str(path))
    assert "x" * 20 not in caught.value.message


def test_a_tokens_file_and_the_environment_add_up(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"client {CLIENT}\n")
    tokens = Tokens.from_file(str(path)) + Tokens.from_environment(
        {"FORERUNNER_ADMIN_TOKENS": f"{ADMIN}, {'b' * 20}", "FORERUNNER_WORKER_TOKENS": ""}
    )
    assert (tokens.count(Role.CLIENT), tokens.count(Role.ADMIN), tokens.count(Role.WORKER)) == (
        1,
        2,
        0,
    )
    assert CLIENT not in repr(tokens)
    principal = tokens.authenticate(f"Bearer {'b' * 20}")
    assert principal is not None
    assert principal.role is Role.ADMIN


def test_a_manager_refuses_a_network_address_without_tokens_unless_insecure(
    store_url: str,
) -> None:
    with pytest.raises(ConfigurationError, match="--insecure"):
        Manager(store_url, host="0.0.0.0", port=0, tokens=Tokens())
    Manager(store_url, host="0.0.0.0", port=0, tokens=Tokens(), insecure=True).stop()
    Manager(
        store_url, host="0.0.0.0", port=0, tokens=Tokens.from_mapping({"client": [CLIENT]})
    ).stop()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.org", False),
    ],
)
def test_only_loopback_addresses_count_as_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# Worker identity


def test_a_worker_id_belongs_to_the_token_and_session_that_first_polled_as_it(
    http: httpx.Client,
) -> None:
    mine, theirs = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    assert poll(http, WORKER, session=mine).status_code == 200
    assert poll(http, WORKER, session=mine).status_code == 200
    for token, session in ((WORKER, theirs), (OTHER_WORKER, mine), (WORKER, None)):
        body = {"session": session} if session else {}
        answer = poll(http, token, **body)
        assert answer.status_code == 403, (token, session)
        assert answer.json()["error"]["code"] == "worker_taken"
    assert poll(http, OTHER_WORKER, worker="w2", session=theirs).status_code == 200


def test_a_dead_workers_id_is_free_again_after_twice_the_lease() -> None:
    now = [0.0]
    bindings = WorkerBindings(60.0, clock=lambda: now[0])
    assert bindings.admit("w1", "token-a", "s" * 20)
    now[0] = 59.0
    assert not bindings.admit("w1", "token-a", "t" * 20)
    now[0] = 119.5
    assert bindings.admit("w1", "token-a", "t" * 20)
    assert not bindings.admit("w1", "token-a", "s" * 20)


def test_a_client_token_cannot_poll_and_a_worker_token_cannot_submit(http: httpx.Client) -> None:
    assert poll(http, CLIENT).json()["error"]["code"] == "forbidden"
    answer = http.post("/v1/jobs", json={"type": "ping"}, headers=bearer(WORKER))
    assert answer.status_code == 403


# Limits


def test_job_data_over_the_limit_is_refused_with_413_and_nothing_is_stored(
    start_manager: Callable[..., Manager],
) -> None:
    manager = start_manager(limits=Limits(max_data=2048), tokens=Tokens())
    with httpx.Client(base_url=manager.url) as http:
        answer = http.post("/v1/jobs", json={"type": "big", "data": "x" * 3000})
        assert answer.status_code == 413
        assert answer.json()["error"] == {
            "code": "too_large",
            "message": answer.json()["error"]["message"],
            "field": "data",
        }
        batch = {"jobs": [{"type": "small"}, {"type": "big", "data": ["y" * 2100]}]}
        answer = http.post("/v1/jobs/batch", json=batch)
        assert answer.status_code == 413
        assert answer.json()["error"]["field"] == "jobs[1].data"
        assert http.post("/v1/jobs", json={"type": "fits", "data": "x" * 2000}).status_code == 201
    assert sum(manager.store.counts().values()) == 1


def test_a_result_over_the_limit_fails_the_attempt_as_result_too_large(
    start_manager: Callable[..., Manager],
) -> None:
    manager = start_manager(limits=Limits(max_result=1024), tokens=Tokens())
    big = manager.assign_job("big", max_attempts=1)
    small = manager.assign_job("small")
    with httpx.Client(base_url=manager.url) as http:
        taken = http.post(
            "/v1/workers/poll", json={"worker": "w1", "types": ["big", "small"], "capacity": 2}
        ).json()
        assert taken["max_body"] == Limits().max_body
        reports = [
            {"id": job["id"], "attempt": 1, "outcome": "succeeded", "result": "r" * 2000}
            if job["id"] == big.id
            else {"id": job["id"], "attempt": 1, "outcome": "succeeded", "result": "ok"}
            for job in taken["jobs"]
        ]
        progress = [{"id": small.id, "attempt": 1, "value": "p" * 5000}]
        http.post(
            "/v1/workers/poll", json={"worker": "w1", "reports": reports, "progress": progress}
        )
    failed = manager.store.get(big.id)
    assert failed is not None
    assert failed.state is JobState.FAILED
    assert failed.error is not None
    assert failed.error.type == "ResultTooLarge"
    done = manager.store.get(small.id)
    assert done is not None
    assert done.state is JobState.SUCCEEDED
    assert done.result == "ok"
    assert done.progress is None


def test_one_token_may_have_only_so_many_requests_in_flight(
    start_manager: Callable[..., Manager], tokens: Tokens
) -> None:
    manager = start_manager(tokens=tokens, limits=Limits(max_in_flight=2))

    async def scenario() -> list[int]:
        async with httpx.AsyncClient(base_url=manager.url, timeout=30) as http:
            waits = [
                http.get(f"/v1/jobs/{job}/wait", params={"timeout": 2}, headers=bearer(CLIENT))
                for job in (manager.assign_job("slow").id, manager.assign_job("slow").id)
            ]
            pending = [asyncio.ensure_future(wait) for wait in waits]
            await asyncio.sleep(0.5)
            third = await http.get("/v1/jobs", headers=bearer(CLIENT))
            other = await http.get("/v1/jobs", headers=bearer(ADMIN))
            done = await asyncio.gather(*pending)
            after = await http.get("/v1/jobs", headers=bearer(CLIENT))
            assert third.headers["retry-after"] == "1"
            assert third.json()["error"]["code"] == "too_many_requests"
            return [
                third.status_code,
                other.status_code,
                *(a.status_code for a in done),
                after.status_code,
            ]

    assert asyncio.run(scenario()) == [429, 200, 200, 200, 200]


# Answers


class _Exploding:
    """A store whose reads fail the way a bug would, with a secret in the message."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get(self, job_id: str) -> Any:
        raise RuntimeError("secret-in-the-traceback")


def test_an_unexpected_failure_answers_500_without_a_traceback_and_is_logged(
    start_manager: Callable[..., Manager], store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from forerunner.plugins import get_registry

    store = get_registry().open_store(store_url)
    try:
        manager = start_manager(store=_Exploding(store), tokens=Tokens())
        with httpx.Client(base_url=manager.url) as http:
            answer = http.get("/v1/jobs/some-id")
        assert answer.status_code == 500
        assert answer.json() == {
            "error": {
                "code": "internal_error",
                "message": "the manager failed to answer; its log says why",
                "field": None,
            }
        }
        assert "secret-in-the-traceback" not in answer.text
        assert any(
            record.exc_info and "secret-in-the-traceback" in str(record.exc_info[1])
            for record in caplog.records
        )
    finally:
        store.close()


def test_the_session_body_is_what_the_wire_says() -> None:
    from forerunner.wire import Session

    assert msgspec.json.decode(b'{"auth":true,"role":"worker","read_only":false}', type=Session)
    assert Principal(Role.ADMIN, "abc").role == "admin"
