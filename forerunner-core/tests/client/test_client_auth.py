"""Who may call a manager with tokens, and how ``Client`` shows and reports its token.

The table at the top is the access contract of docs/security.md, asked of a real
manager over HTTP: every endpoint, with no token, an unknown token and a token of each
role, answers 2xx where the role may call it, 401 without a valid token and 403 for a
role that may not. Then the client's side: the token is sent from ``token=`` or
``$FORERUNNER_TOKEN``, 401/403/413/429 become errors that say what to do and never
hold the token, and certificates are always verified (a private CA through
``ca_file=`` or ``$FORERUNNER_CA_FILE``).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import attrs
import httpx
import pytest
import trustme

from forerunner.client import AsyncClient, Client
from forerunner.credentials import CA_FILE_ENV, TOKEN_ENV
from forerunner.errors import (
    AuthenticationError,
    BackendUnavailable,
    ConfigurationError,
    PermissionDenied,
    ValidationError,
)
from forerunner.manager import Manager
from forerunner.manager.auth import Tokens
from forerunner.manager.limits import Limits
from forerunner.model import JobState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

CLIENT: Final = "client-token-" + "c" * 24
#: A second client token, as during a rotation: both must work.
CLIENT_NEXT: Final = "client-token-" + "n" * 24
ADMIN: Final = "admin-token-" + "a" * 24
WORKER: Final = "worker-token-" + "w" * 24
UNKNOWN: Final = "unknown-token-" + "u" * 24
TOKENS: Final = Tokens.from_mapping(
    {"client": [CLIENT, CLIENT_NEXT], "admin": [ADMIN], "worker": [WORKER]}
)
ALL_TOKENS: Final = (CLIENT, CLIENT_NEXT, ADMIN, WORKER, UNKNOWN)


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token or CA file in the test runner's environment must not decide a test."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(CA_FILE_ENV, raising=False)


@pytest.fixture(scope="module")
def secured() -> Iterator[Manager]:
    running = Manager("memory://", "memory://", port=0, tokens=TOKENS).start()
    yield running
    running.stop()


# The access table


@attrs.frozen
class Endpoint:
    """One endpoint; ``prepare`` makes what the request needs (a job id) with an admin."""

    method: str
    path: str
    #: Who may call it: "open", "client" (client and admin), "admin" or "worker".
    audience: str
    body: Callable[[], Any] | None = None
    prepare: Callable[[Client], str] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _queued(admin: Client) -> str:
    return admin.submit("auth-table").id


def _cancelled(admin: Client) -> str:
    job = admin.submit("auth-table")
    admin.cancel(job.id)
    return job.id


ENDPOINTS: Final = [
    Endpoint("GET", "/healthz", "open"),
    Endpoint("GET", "/openapi.json", "open"),
    Endpoint("GET", "/v1/session", "open"),
    Endpoint("GET", "/", "open"),
    Endpoint("GET", "/static/app.js", "open"),
    Endpoint("GET", "/v1/jobs", "client"),
    Endpoint("GET", "/v1/jobs/{id}", "client", prepare=_queued),
    Endpoint("GET", "/v1/jobs/{id}/wait?timeout=0", "client", prepare=_queued),
    Endpoint("GET", "/v1/jobs/{id}/timeline", "client", prepare=_queued),
    Endpoint("GET", "/v1/overview", "client"),
    Endpoint("GET", "/v1/workers", "client"),
    Endpoint("GET", "/metrics", "client"),
    Endpoint("POST", "/v1/jobs", "client", body=lambda: {"type": "auth-table"}),
    Endpoint("POST", "/v1/jobs/batch", "client", body=lambda: {"jobs": [{"type": "auth-table"}]}),
    Endpoint("POST", "/v1/jobs/{id}/cancel", "admin", prepare=_queued),
    Endpoint("POST", "/v1/jobs/{id}/retry", "admin", prepare=_cancelled),
    Endpoint(
        "POST", "/v1/jobs/retry", "admin", body=lambda: {"state": "cancelled", "type": "none"}
    ),
    Endpoint("POST", "/v1/jobs/purge", "admin", body=lambda: {"older_than": 86400.0, "limit": 1}),
    Endpoint(
        "POST",
        "/v1/workers/poll",
        "worker",
        body=lambda: {
            "worker": f"w-{secrets.token_hex(4)}",
            "session": secrets.token_urlsafe(32),
        },
    ),
]

#: The roles a token may have, and None (no token) and "unknown" (a token nobody gave).
CALLERS: Final[dict[str | None, str | None]] = {
    None: None,
    "unknown": UNKNOWN,
    "client": CLIENT,
    "admin": ADMIN,
    "worker": WORKER,
}
ALLOWED: Final[dict[str, set[str | None]]] = {
    "open": {None, "unknown", "client", "admin", "worker"},
    "client": {"client", "admin"},
    "admin": {"admin"},
    "worker": {"worker"},
}


def _expected(endpoint: Endpoint, caller: str | None) -> int | None:
    """None for a success (any 2xx), else the refusal's status."""
    if caller in ALLOWED[endpoint.audience]:
        return None
    return 401 if caller in (None, "unknown") else 403


@pytest.mark.parametrize(
    ("endpoint", "caller"),
    list(itertools.product(ENDPOINTS, CALLERS)),
    ids=str,
)
def test_each_role_may_call_exactly_its_endpoints(
    secured: Manager, endpoint: Endpoint, caller: str | None
) -> None:
    with Client(secured.url, token=ADMIN) as admin:
        job_id = endpoint.prepare(admin) if endpoint.prepare else ""
    token = CALLERS[caller]
    headers = {"authorization": f"Bearer {token}"} if token else {}

    response = httpx.request(
        endpoint.method,
        secured.url + endpoint.path.format(id=job_id),
        json=endpoint.body() if endpoint.body else None,
        headers=headers,
        timeout=10,
    )

    expected = _expected(endpoint, caller)
    if expected is None:
        assert response.is_success, (response.status_code, response.text)
        return
    assert response.status_code == expected, response.text
    code = response.json()["error"]["code"]
    assert code == ("unauthorized" if expected == 401 else "forbidden")
    if expected == 401:
        assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert all(known not in response.text for known in ALL_TOKENS)


def test_every_token_of_a_role_works_so_a_token_can_be_rotated(secured: Manager) -> None:
    with Client(secured.url, token=CLIENT) as old, Client(secured.url, token=CLIENT_NEXT) as new:
        job = old.submit("rotated")

        assert new.get(job.id) == job
        assert new.submit("rotated").type == "rotated"


# The client's side: sending the token


def test_the_token_defaults_to_the_environment(
    secured: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, f"  {CLIENT}\n")

    with Client(secured.url) as client:
        assert client.submit("from-env").state is JobState.QUEUED


def test_a_token_given_wins_over_the_environment(
    secured: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, WORKER)

    with Client(secured.url, token=CLIENT) as client:
        assert client.list().jobs is not None


def test_without_a_token_a_call_fails_with_what_to_set(secured: Manager) -> None:
    with Client(secured.url) as client, pytest.raises(AuthenticationError) as raised:
        client.list()

    assert "FORERUNNER_TOKEN" in raised.value.message
    assert "--token-file" in raised.value.message


def test_an_unknown_token_fails_without_showing_the_token(secured: Manager) -> None:
    with Client(secured.url, token=UNKNOWN) as client, pytest.raises(AuthenticationError) as raised:
        client.submit("x")

    assert "does not know the token" in raised.value.message
    assert UNKNOWN not in str(raised.value)
    assert UNKNOWN not in repr(raised.value)


def test_a_client_token_may_not_cancel_and_is_told_to_use_an_admin_token(
    secured: Manager,
) -> None:
    with Client(secured.url, token=CLIENT) as client:
        job = client.submit("x")
        with pytest.raises(PermissionDenied) as raised:
            client.cancel(job.id)

    assert "role admin" in raised.value.message
    assert CLIENT not in raised.value.message


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.retry("any"),
        lambda c: c.retry_many(),
        lambda c: c.purge(older_than=3600),
    ],
    ids=["retry", "retry_many", "purge"],
)
def test_a_client_token_may_not_change_jobs(
    secured: Manager, call: Callable[[Client], Any]
) -> None:
    with Client(secured.url, token=CLIENT) as client, pytest.raises(PermissionDenied):
        call(client)


def test_a_worker_token_may_not_submit_or_read_jobs(secured: Manager) -> None:
    with Client(secured.url, token=WORKER) as client:
        with pytest.raises(PermissionDenied) as raised:
            client.submit("x")
        with pytest.raises(PermissionDenied):
            client.list()

    assert "role client" in raised.value.message


def test_the_client_repr_does_not_show_the_token(secured: Manager) -> None:
    with Client(secured.url, token=CLIENT) as client:
        assert CLIENT not in repr(client)
        assert secured.url in repr(client)


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "caf\u00e9-token-xxxxxxxxxx"])
def test_a_token_a_header_cannot_carry_is_refused_before_sending(token: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Client("http://127.0.0.1:9", token=token)

    assert not token or token not in raised.value.message


def test_the_async_client_sends_the_token_and_maps_refusals(secured: Manager) -> None:
    async def scenario() -> None:
        async with AsyncClient(secured.url, token=CLIENT) as client:
            job = await client.submit("async")
            assert (await client.get(job.id)) == job
            with pytest.raises(PermissionDenied):
                await client.cancel(job.id)
        async with AsyncClient(secured.url) as anonymous:
            with pytest.raises(AuthenticationError):
                await anonymous.list()
        async with AsyncClient(secured.url, token=ADMIN) as admin:
            assert (await admin.cancel(job.id)).state is JobState.CANCELLED

    asyncio.run(scenario())


# The client's side: other refusals


def test_a_read_only_manager_still_refuses_changes_as_a_configuration_error() -> None:
    manager = Manager("memory://", "memory://", port=0, tokens=TOKENS, read_only=True).start()
    try:
        with Client(manager.url, token=ADMIN) as admin:
            job = admin.submit("x")
            with pytest.raises(ConfigurationError) as raised:
                admin.cancel(job.id)
    finally:
        manager.stop()

    assert not isinstance(raised.value, PermissionDenied)


def test_data_over_the_managers_limit_is_a_validation_error() -> None:
    manager = Manager(
        "memory://", "memory://", port=0, tokens=TOKENS, limits=Limits(max_data=100)
    ).start()
    try:
        with Client(manager.url, token=CLIENT) as client, pytest.raises(ValidationError) as raised:
            client.submit("big", "x" * 4096)
    finally:
        manager.stop()

    assert "100" in raised.value.message


def test_too_many_requests_for_one_token_is_unavailable_and_retried_with_retry_for() -> None:
    manager = Manager(
        "memory://", "memory://", port=0, tokens=TOKENS, limits=Limits(max_in_flight=1)
    ).start()
    try:
        with Client(manager.url, token=CLIENT) as holder:
            job = holder.submit("held")
            waiting = threading.Thread(target=holder.wait, args=(job.id, 1.5))
            waiting.start()
            time.sleep(0.3)
            with (
                Client(manager.url, token=CLIENT) as impatient,
                pytest.raises(BackendUnavailable) as raised,
            ):
                impatient.list()
            with Client(manager.url, token=CLIENT, retry_for=10) as patient:
                assert patient.get(job.id).id == job.id
            waiting.join()
    finally:
        manager.stop()

    assert "in flight" in raised.value.message


# TLS


@attrs.frozen
class Certificates:
    ca_file: str
    cert_file: str
    key_file: str


def _certificates(tmp_path: Path, *hosts: str) -> Certificates:
    ca = trustme.CA()
    issued = ca.issue_cert(*hosts)
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    issued.cert_chain_pems[0].write_to_path(str(cert_file))
    issued.private_key_pem.write_to_path(str(key_file))
    return Certificates(str(ca_file), str(cert_file), str(key_file))


@pytest.fixture
def tls_manager(tmp_path: Path) -> Iterator[tuple[Manager, Certificates]]:
    made = _certificates(tmp_path, "127.0.0.1", "localhost")
    running = Manager(
        "memory://",
        "memory://",
        port=0,
        tokens=TOKENS,
        tls_cert=made.cert_file,
        tls_key=made.key_file,
    ).start()
    yield running, made
    running.stop()


def test_a_client_trusting_the_managers_ca_talks_https(
    tls_manager: tuple[Manager, Certificates],
) -> None:
    manager, made = tls_manager
    assert manager.url.startswith("https://")

    with Client(manager.url, token=CLIENT, ca_file=made.ca_file) as client:
        assert client.submit("over-tls").state is JobState.QUEUED


def test_the_ca_file_of_the_environment_is_trusted(
    tls_manager: tuple[Manager, Certificates], monkeypatch: pytest.MonkeyPatch
) -> None:
    manager, made = tls_manager
    monkeypatch.setenv(CA_FILE_ENV, made.ca_file)

    with Client(manager.url, token=CLIENT) as client:
        assert client.list().jobs == []


def test_an_unknown_ca_fails_at_once_with_a_certificate_error_that_names_the_fix(
    tls_manager: tuple[Manager, Certificates],
) -> None:
    manager, _ = tls_manager
    started = time.monotonic()

    with (
        Client(manager.url, token=CLIENT, retry_for=10) as client,
        pytest.raises(ConfigurationError) as raised,
    ):
        client.list()

    assert time.monotonic() - started < 5, "a bad certificate is not worth retrying"
    assert "certificate" in raised.value.message
    assert "--ca-file" in raised.value.message
    assert CLIENT not in raised.value.message


def test_a_certificate_for_another_host_name_is_refused(tmp_path: Path) -> None:
    made = _certificates(tmp_path, "manager.example")
    manager = Manager(
        "memory://",
        "memory://",
        port=0,
        tokens=TOKENS,
        tls_cert=made.cert_file,
        tls_key=made.key_file,
    ).start()
    try:
        with (
            Client(manager.url, token=CLIENT, ca_file=made.ca_file) as client,
            pytest.raises(ConfigurationError) as raised,
        ):
            client.list()
    finally:
        manager.stop()

    assert "could not be verified" in raised.value.message
    assert "mismatch" in raised.value.message


def test_the_async_client_verifies_certificates_too(
    tls_manager: tuple[Manager, Certificates],
) -> None:
    manager, made = tls_manager

    async def scenario() -> None:
        async with AsyncClient(manager.url, token=CLIENT, ca_file=made.ca_file) as trusting:
            assert (await trusting.submit("async-tls")).type == "async-tls"
        async with AsyncClient(manager.url, token=CLIENT) as untrusting:
            with pytest.raises(ConfigurationError, match="certificate"):
                await untrusting.list()

    asyncio.run(scenario())


def test_an_unreadable_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CA file"):
        Client("https://127.0.0.1:9", ca_file=str(tmp_path / "missing.pem"))
