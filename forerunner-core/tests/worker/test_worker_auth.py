"""A worker against a manager that asks for tokens: who may poll, over what, how much.

Every test runs a real manager on 127.0.0.1 with client, worker and admin tokens, and
workers in threads of this process (the command-line ones as real processes).

Covers: a worker token runs jobs, and neither it nor the worker's session secret ever
reaches the log; no token, or an unknown one, stops the worker with an
AuthenticationError naming FORERUNNER_TOKEN and --token-file; a client token stops it
with PermissionDenied; a second worker under a taken id is refused while the first
keeps working; TLS with a private CA works when the worker trusts it and stops the
worker at once when it does not; reports are split across polls to fit the manager's
body limit, and a report too big for any poll ends its attempt as ResultTooLarge;
``forerunner worker --token-file`` works and exits 5 with the fix when refused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs
import pytest
import trustme

from forerunner.client import Client
from forerunner.credentials import CA_FILE_ENV, TOKEN_ENV
from forerunner.errors import (
    AuthenticationError,
    ConfigurationError,
    PermissionDenied,
    ValidationError,
)
from forerunner.manager import Manager
from forerunner.manager.auth import Tokens
from forerunner.manager.limits import Limits
from forerunner.model import JobState
from forerunner.worker import Worker
from forerunner.worker.worker import RESULT_TOO_LARGE_ERROR

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from forerunner.model import JSON

CLIENT: Final = "client-token-" + "c" * 24
WORKER: Final = "worker-token-" + "w" * 24
#: A second worker token: another worker's, which must not speak for the first.
OTHER_WORKER: Final = "worker-token-" + "o" * 24
ADMIN: Final = "admin-token-" + "a" * 24
UNKNOWN: Final = "unknown-token-" + "u" * 24
TOKENS: Final = Tokens.from_mapping(
    {"client": [CLIENT], "worker": [WORKER, OTHER_WORKER], "admin": [ADMIN]}
)
#: The body limit of the splitting tests: the least a manager may set is 1 KiB.
SMALL_BODY: Final = 4096


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token or CA file in the test runner's environment must not decide a test."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(CA_FILE_ENV, raising=False)


def secured_manager(**options: object) -> Manager:
    return Manager("memory://", "memory://", port=0, lease=1.0, tokens=TOKENS, **options).start()  # type: ignore[arg-type]


@pytest.fixture
def manager() -> Iterator[Manager]:
    running = secured_manager()
    yield running
    running.stop()


@attrs.define
class Running:
    """A worker started in a thread; ``error`` is what :meth:`Worker.start` raised."""

    worker: Worker
    thread: threading.Thread
    error: BaseException | None = None

    def ended(self, seconds: float = 10.0) -> BaseException | None:
        """Wait for the worker to stop by itself; fail the test if it does not."""
        self.thread.join(seconds)
        if self.thread.is_alive():
            self.worker.stop(force=True)
            self.thread.join(10)
            pytest.fail(f"worker {self.worker.worker_id} did not stop by itself")
        return self.error


@pytest.fixture
def start() -> Iterator[Callable[[Worker, str], Running]]:
    """Start workers in threads; every one still running is stopped at teardown."""
    started: list[Running] = []

    def run(worker: Worker, url: str) -> Running:
        running = Running(worker, threading.Thread(daemon=True))

        def target() -> None:
            try:
                worker.start(url)
            except BaseException as error:
                running.error = error

        running.thread = threading.Thread(target=target, daemon=True)
        running.thread.start()
        started.append(running)
        return running

    yield run
    for running in started:
        running.worker.stop()
        running.thread.join(15)
        assert not running.thread.is_alive(), f"worker {running.worker.worker_id} hangs"


def echo_worker(**options: object) -> Worker:
    worker = Worker(concurrency=2, **options)  # type: ignore[arg-type]
    worker.register_job_handler("echo", lambda job_id, data: data)
    return worker


def test_a_worker_with_a_worker_token_runs_jobs_and_never_logs_its_secrets(
    manager: Manager,
    start: Callable[[Worker, str], Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    worker = echo_worker(token=WORKER)
    start(worker, manager.url)

    with Client(manager.url, token=CLIENT) as client:
        done = client.wait(client.submit("echo", {"n": 1}).id, timeout=10)

    assert done.state is JobState.SUCCEEDED
    assert done.result == {"n": 1}
    assert WORKER not in caplog.text
    assert worker._session not in caplog.text


def test_the_token_defaults_to_the_environment(
    manager: Manager,
    start: Callable[[Worker, str], Running],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, WORKER)
    start(echo_worker(), manager.url)

    with Client(manager.url, token=CLIENT) as client:
        done = client.wait(client.submit("echo", 7).id, timeout=10)

    assert done.state is JobState.SUCCEEDED


@pytest.mark.parametrize("token", [None, UNKNOWN], ids=["no-token", "unknown-token"])
def test_without_a_known_token_the_worker_stops_with_what_to_set(
    manager: Manager,
    start: Callable[[Worker, str], Running],
    caplog: pytest.LogCaptureFixture,
    token: str | None,
) -> None:
    error = start(echo_worker(token=token), manager.url).ended()

    assert isinstance(error, AuthenticationError)
    assert "FORERUNNER_TOKEN" in str(error)
    assert "--token-file" in str(error)
    assert UNKNOWN not in str(error)
    assert UNKNOWN not in caplog.text


def test_a_client_token_stops_the_worker_with_permission_denied(
    manager: Manager, start: Callable[[Worker, str], Running]
) -> None:
    error = start(echo_worker(token=CLIENT), manager.url).ended()

    assert isinstance(error, PermissionDenied)
    assert "not a worker token" in str(error)
    assert CLIENT not in str(error)


@pytest.mark.parametrize("token", [WORKER, OTHER_WORKER], ids=["same-token", "other-token"])
def test_a_second_worker_under_a_taken_id_is_refused_and_the_first_keeps_working(
    manager: Manager, start: Callable[[Worker, str], Running], token: str
) -> None:
    first = start(echo_worker(token=WORKER, worker_id="worker-7"), manager.url)
    with Client(manager.url, token=CLIENT) as client:
        assert client.wait(client.submit("echo", 1).id, timeout=10).state is JobState.SUCCEEDED

        error = start(echo_worker(token=token, worker_id="worker-7"), manager.url).ended()

        assert isinstance(error, PermissionDenied)
        assert "worker-7" in str(error)
        assert "--worker-id" in str(error)
        done = client.wait(client.submit("echo", 2).id, timeout=10)
    assert done.state is JobState.SUCCEEDED
    assert done.worker == "worker-7"
    assert first.thread.is_alive()


def test_the_same_worker_started_again_keeps_its_id(
    manager: Manager, start: Callable[[Worker, str], Running]
) -> None:
    worker = echo_worker(token=WORKER, worker_id="worker-again")
    with Client(manager.url, token=CLIENT) as client:
        for value in (1, 2):
            running = start(worker, manager.url)
            assert client.wait(client.submit("echo", value).id, timeout=10).result == value
            worker.stop()
            assert running.ended() is None


# TLS


@attrs.frozen
class Certificates:
    ca_file: str
    cert_file: str
    key_file: str


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    made = Certificates(*(str(tmp_path / name) for name in ("ca.pem", "cert.pem", "key.pem")))
    ca.cert_pem.write_to_path(made.ca_file)
    issued.cert_chain_pems[0].write_to_path(made.cert_file)
    issued.private_key_pem.write_to_path(made.key_file)
    return made


@pytest.fixture
def tls_manager(certificates: Certificates) -> Iterator[Manager]:
    running = secured_manager(tls_cert=certificates.cert_file, tls_key=certificates.key_file)
    yield running
    running.stop()


@pytest.mark.parametrize("given", ["argument", "environment"])
def test_a_worker_trusting_the_managers_ca_runs_jobs_over_https(
    tls_manager: Manager,
    certificates: Certificates,
    start: Callable[[Worker, str], Running],
    monkeypatch: pytest.MonkeyPatch,
    given: str,
) -> None:
    assert tls_manager.url.startswith("https://")
    if given == "environment":
        monkeypatch.setenv(CA_FILE_ENV, certificates.ca_file)
        worker = echo_worker(token=WORKER)
    else:
        worker = echo_worker(token=WORKER, ca_file=certificates.ca_file)
    start(worker, tls_manager.url)

    with Client(tls_manager.url, token=CLIENT, ca_file=certificates.ca_file) as client:
        done = client.wait(client.submit("echo", "secret").id, timeout=10)

    assert done.state is JobState.SUCCEEDED


def test_a_worker_that_does_not_trust_the_certificate_stops_at_once_naming_the_fix(
    tls_manager: Manager, certificates: Certificates, start: Callable[[Worker, str], Running]
) -> None:
    began = time.monotonic()
    error = start(echo_worker(token=WORKER), tls_manager.url).ended()

    assert isinstance(error, ConfigurationError)
    assert "certificate" in str(error)
    assert "--ca-file" in str(error)
    assert time.monotonic() - began < 5
    with Client(tls_manager.url, token=ADMIN, ca_file=certificates.ca_file) as client:
        assert client.workers() == [], "it never got past the handshake"


def test_a_ca_file_that_cannot_be_read_fails_when_the_worker_is_made(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CA file"):
        echo_worker(token=WORKER, ca_file=str(tmp_path / "missing.pem"))


@pytest.mark.parametrize("token", ["two words here long", "line\r\nX-Injected: yes"])
def test_a_token_a_header_cannot_carry_is_refused_when_the_worker_is_made(token: str) -> None:
    with pytest.raises(ValidationError, match="header"):
        echo_worker(token=token)


# The body limit


@pytest.fixture
def small_body_manager() -> Iterator[Manager]:
    running = secured_manager(limits=Limits(max_body=SMALL_BODY))
    yield running
    running.stop()


def together(count: int, result: JSON) -> Callable[[str, JSON], object]:
    """An async handler whose first ``count`` jobs all return in the same loop turn.

    Their reports then wait for the same poll, which is what the body limit must split.
    """
    gate: dict[str, asyncio.Event] = {}
    started = 0

    async def handler(job_id: str, data: JSON) -> JSON:
        nonlocal started
        event = gate.setdefault("open", asyncio.Event())
        started += 1
        if started >= count:
            event.set()
        await event.wait()
        return result

    return handler


def test_reports_over_the_body_limit_are_split_across_polls_and_all_arrive(
    small_body_manager: Manager,
    start: Callable[[Worker, str], Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = "r" * 1500
    worker = Worker(concurrency=8, token=WORKER)
    worker.register_job_handler("big", together(8, result))
    with Client(small_body_manager.url, token=CLIENT) as client:
        ids = [client.submit("big", index).id for index in range(8)]
        start(worker, small_body_manager.url)

        done = [client.wait(job_id, timeout=15) for job_id in ids]

    assert [job.state for job in done] == [JobState.SUCCEEDED] * 8
    assert all(job.result == result for job in done)
    refused = [record for record in caplog.records if "answered 413" in record.getMessage()]
    assert refused == [], "the worker sent a poll over the limit it was told"


def test_a_report_bigger_than_the_body_limit_ends_its_attempt_as_result_too_large(
    small_body_manager: Manager, start: Callable[[Worker, str], Running]
) -> None:
    worker = Worker(concurrency=1, token=WORKER)
    worker.register_job_handler("huge", lambda job_id, data: "h" * 10_000)
    start(worker, small_body_manager.url)
    with Client(small_body_manager.url, token=CLIENT) as client:
        done = client.wait(client.submit("huge", max_attempts=1).id, timeout=15)

    assert done.state is JobState.FAILED
    assert done.error is not None
    assert done.error.type == RESULT_TOO_LARGE_ERROR
    size = re.search(r"is (\d+) bytes", done.error.message)
    assert size is not None
    assert int(size.group(1)) > 10_000
    assert str(SMALL_BODY) in done.error.message


# The command line


def console_script() -> str:
    found = shutil.which("forerunner", path=str(Path(sys.executable).parent))
    assert found, f"the forerunner console script is not installed next to {sys.executable}"
    return found


def worker_command(url: str, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORERUNNER_")}
    return subprocess.Popen(
        [console_script(), "worker", "--manager", url, "--tasks", "ping", *extra],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_worker_command_reads_its_token_from_the_token_file(
    manager: Manager, tmp_path: Path
) -> None:
    token_file = tmp_path / "worker.token"
    token_file.write_text(f"{WORKER}\n", encoding="utf-8")
    process = worker_command(manager.url, "--token-file", str(token_file))
    try:
        with Client(manager.url, token=CLIENT) as client:
            done = client.wait(client.submit("ping", "hello").id, timeout=20)
        assert done.state is JobState.SUCCEEDED
        assert WORKER not in " ".join(process.args)  # type: ignore[arg-type]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert WORKER not in stderr


def test_the_worker_command_exits_5_naming_the_token_settings_when_refused(
    manager: Manager, tmp_path: Path
) -> None:
    token_file = tmp_path / "client.token"
    token_file.write_text(UNKNOWN, encoding="utf-8")
    process = worker_command(manager.url, "--token-file", str(token_file))
    try:
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)

    assert process.returncode == 5, stderr
    assert "FORERUNNER_TOKEN" in stderr
    assert UNKNOWN not in stderr
