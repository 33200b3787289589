"""Secrets stay secret: backend passwords and bearer tokens never reach a log or an answer.

Real PostgreSQL (trust auth accepts any password, so a URL with one works) and real
Redis (database 13). Each test puts a recognisable secret where an operator would (a
store URL, a queue URL, a token) and reads everything the manager says: its log records
(caplog, and the ``forerunner manager`` process's stderr in both formats), its answers
(the API, /metrics, the overview, the dashboard's files), the CLI's output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from forerunner import cli
from forerunner.backends.memory_store import MemoryStore
from forerunner.errors import BackendUnavailable
from forerunner.manager import Manager
from forerunner.manager import dashboard as dashboard_package
from forerunner.manager.auth import Tokens
from forerunner.plugins import open_queue, open_store

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from forerunner.model import Job

SECRET = "s3cret-pw"
PG_USERINFO = f"postgresql://root:{SECRET}@127.0.0.1:5432/test?schema=forerunner_h4"
PG_QUERY = f"postgresql://root@127.0.0.1:5432/test?schema=forerunner_h4&password={SECRET}"
REDIS_PASSWORD = f"redis://:{SECRET}@127.0.0.1:6379/13?prefix=h4-secrets"
#: A user Redis does not know: every command fails with an AUTH error.
REDIS_BAD_AUTH = f"redis://h4-nobody:{SECRET}@127.0.0.1:6379/13?prefix=h4-secrets"

CLIENT_TOKEN = "client-token-h4-a1b2c3d4e5f6"
ADMIN_TOKEN = "admin-token-h4-f6e5d4c3b2a1"
WORKER_TOKEN = "worker-token-h4-0a9b8c7d6e5f"
WRONG_TOKEN = "wrong-token-h4-5f5f5f5f5f5f"
MALFORMED = "malformed-h4-77e77e77e77e"
#: Every string that must never be shown.
NEVER_SHOWN = (SECRET, CLIENT_TOKEN, ADMIN_TOKEN, WORKER_TOKEN, WRONG_TOKEN, MALFORMED)
#: Authorization headers that must be refused without being echoed.
BAD_AUTHORIZATIONS = (
    f"Bearer {WRONG_TOKEN}",
    f"Token {MALFORMED}",
    f"Bearer {MALFORMED} {MALFORMED}",
    f"Bearer{MALFORMED}",
    f"Basic {MALFORMED}",
)
MAIN = "import sys; from forerunner.cli import main; sys.exit(main())"


def assert_hidden(text: str, where: str) -> None:
    for secret in NEVER_SHOWN:
        assert secret not in text, f"{secret!r} appears in {where}"


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dashboard_files() -> list[str]:
    """The dashboard's static files, as paths under /static/."""
    root = Path(dashboard_package.__file__).parent / "static"
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def read_everything(url: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Submit a job, then read every page an operator sees: where -> body."""
    seen: dict[str, str] = {}
    with httpx.Client(base_url=url, headers=headers or {}, timeout=30.0) as http:
        submitted = http.post("/v1/jobs", json={"type": "echo", "data": {"n": 1}})
        seen["POST /v1/jobs"] = submitted.text
        job_id = submitted.json()["job"]["id"]
        for path in (
            f"/v1/jobs/{job_id}",
            "/v1/jobs",
            "/v1/overview",
            "/v1/workers",
            "/metrics",
            "/healthz",
            "/v1/session",
            "/",
            *(f"/static/{name}" for name in dashboard_files()),
        ):
            answer = http.get(path)
            assert answer.status_code == 200, (path, answer.text)
            seen[f"GET {path}"] = answer.text
    return seen


@pytest.fixture
def debug_caplog(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def start_manager() -> Iterator[Callable[..., Manager]]:
    started: list[Manager] = []

    def start(store: Any, queue: Any = "memory://", **options: Any) -> Manager:
        options.setdefault("tokens", Tokens())
        manager = Manager(store, queue, port=0, **options)
        started.append(manager.start())
        return manager

    yield start
    for manager in started:
        manager.stop()


# In process: backends with passwords in their URLs


@pytest.mark.parametrize("store_url", [PG_USERINFO, PG_QUERY], ids=["userinfo", "query"])
def test_a_manager_on_password_urls_shows_them_masked_in_every_answer_and_record(
    start_manager: Callable[..., Manager], debug_caplog: pytest.LogCaptureFixture, store_url: str
) -> None:
    manager = start_manager(store_url, REDIS_PASSWORD)

    seen = read_everything(manager.url)
    manager.stop()

    for where, body in seen.items():
        assert_hidden(body, where)
    assert_hidden(debug_caplog.text, "the log records")
    overview = json.loads(seen["GET /v1/overview"])
    assert overview["store"] == store_url.replace(SECRET, "***")
    assert overview["queue_url"] == "redis://:***@127.0.0.1:6379/13?prefix=h4-secrets"


def test_a_store_at_a_closed_port_fails_naming_it_with_the_password_masked(
    debug_caplog: pytest.LogCaptureFixture,
) -> None:
    url = (
        f"postgresql://root:{SECRET}@127.0.0.1:{closed_port()}/test"
        "?schema=forerunner_h4&pool_timeout=1&connect_timeout=2"
    )

    with pytest.raises(BackendUnavailable) as raised:
        Manager(url, port=0, tokens=Tokens())

    assert "root:***@127.0.0.1" in raised.value.message
    assert "Connection refused" in raised.value.message
    assert_hidden("".join(traceback.format_exception(raised.value)), "the error and its causes")
    assert_hidden(debug_caplog.text, "the log records")


def test_a_redis_auth_failure_is_reported_with_the_password_masked(
    start_manager: Callable[..., Manager], debug_caplog: pytest.LogCaptureFixture
) -> None:
    queue = open_queue(REDIS_BAD_AUTH)
    try:
        with pytest.raises(BackendUnavailable) as raised:
            queue.size()
    finally:
        queue.close()
    manager = start_manager("memory://", REDIS_BAD_AUTH)
    overview = httpx.get(f"{manager.url}/v1/overview", timeout=30.0)

    assert "AuthenticationError" in raised.value.message
    assert "redis://h4-nobody:***@127.0.0.1:6379/13" in raised.value.message
    assert_hidden("".join(traceback.format_exception(raised.value)), "the error and its causes")
    assert overview.status_code == 503
    assert "h4-nobody:***@" in overview.json()["error"]["message"]
    assert_hidden(overview.text, "the 503 answer")
    assert_hidden(debug_caplog.text, "the log records")


def test_opening_a_store_reports_a_driver_error_with_the_password_masked() -> None:
    url = f"postgresql://root:{SECRET}@127.0.0.1:5432/test?schema=forerunner_h4&sslmode=bogus"

    with pytest.raises(Exception) as raised:  # noqa: PT011 - which class is the store's choice
        open_store(url).close()

    assert "sslmode" in str(raised.value)
    assert_hidden(str(raised.value), "the error")


# Tokens


def test_tokens_good_wrong_or_malformed_never_appear_in_answers_or_records(
    start_manager: Callable[..., Manager], debug_caplog: pytest.LogCaptureFixture
) -> None:
    tokens = Tokens.from_mapping(
        {"client": [CLIENT_TOKEN], "admin": [ADMIN_TOKEN], "worker": [WORKER_TOKEN]}
    )
    manager = start_manager("memory://", tokens=tokens)

    seen = read_everything(manager.url, {"authorization": f"Bearer {CLIENT_TOKEN}"})
    refused = send_bad_tokens(manager.url)
    manager.stop()

    for where, body in {**seen, **refused}.items():
        assert_hidden(body, where)
    assert_hidden(debug_caplog.text, "the log records")


def send_bad_tokens(url: str) -> dict[str, str]:
    """Call the manager with each bad Authorization header, and a worker poll with a good one."""
    answers: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=30.0) as http:
        for number, header in enumerate(BAD_AUTHORIZATIONS):
            for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/workers/poll")):
                answer = http.request(
                    method, path, headers={"authorization": header}, json={"worker": "w-h4"}
                )
                assert answer.status_code == 401, (header, answer.text)
                assert answer.json()["error"]["code"] == "unauthorized"
                answers[f"{method} {path} with bad header {number}"] = answer.text
                answers[f"{method} {path} www-authenticate {number}"] = str(answer.headers)
        polled = http.post(
            "/v1/workers/poll",
            headers={"authorization": f"Bearer {WORKER_TOKEN}"},
            json={"worker": "w-h4", "session": "h4-session-0123456789"},
        )
        assert polled.status_code == 200, polled.text
        answers["POST /v1/workers/poll"] = polled.text
    return answers


# The 500 answer


class RaisingStore:
    """A memory store whose reads fail with an error a handler does not expect."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get(self, job_id: str) -> Job | None:
        raise RuntimeError("secret-xyz: the store broke")


def test_an_unexpected_error_answers_500_internal_error_without_its_text_and_logs_the_traceback(
    start_manager: Callable[..., Manager], caplog: pytest.LogCaptureFixture
) -> None:
    manager = start_manager(RaisingStore())

    answer = httpx.get(f"{manager.url}/v1/jobs/some-job", timeout=30.0)

    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert "secret-xyz" not in answer.text
    assert "Traceback" not in answer.text
    assert "RuntimeError" not in answer.text
    [record] = [r for r in caplog.records if getattr(r, "action", None) == "internal_error"]
    assert record.exc_info is not None
    logged = logging.Formatter().formatException(record.exc_info)
    assert "Traceback" in logged
    assert "secret-xyz" in logged


# The command line


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_the_manager_process_never_writes_a_backend_password_or_a_token(
    log_format: str, tmp_path: Path
) -> None:
    environment = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "FORERUNNER_CLIENT_TOKENS": CLIENT_TOKEN,
        "FORERUNNER_ADMIN_TOKENS": ADMIN_TOKEN,
        "FORERUNNER_WORKER_TOKENS": WORKER_TOKEN,
    }
    command = [
        sys.executable,
        "-c",
        MAIN,
        "manager",
        "--port",
        "0",
        "--store",
        PG_USERINFO,
        "--queue",
        REDIS_PASSWORD,
        "--log-format",
        log_format,
        "--log-level",
        "debug",
    ]
    with running(command, environment) as (url, lines):
        seen = read_everything(url, {"authorization": f"Bearer {CLIENT_TOKEN}"})
        refused = send_bad_tokens(url)

    stderr = "".join(lines)
    for where, body in {**seen, **refused}.items():
        assert_hidden(body, where)
    assert_hidden(stderr, "the manager's stderr")
    # The log does name the backends (masked), so the check above read the right text.
    assert "root:***@127.0.0.1" in stderr
    if log_format == "json":
        assert all(json.loads(line) for line in stderr.splitlines())


@contextlib.contextmanager
def running(command: list[str], environment: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """Run a manager process; yield its URL and its stderr lines (complete once it stopped)."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
    assert process.stderr is not None
    lines: list[str] = []
    listening = threading.Event()
    found: list[str] = []

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            match = re.search(r"listening on (http://[^\s\"]+)", line)
            if match and not found:
                found.append(match.group(1))
                listening.set()
        listening.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert listening.wait(60), "".join(lines)
        assert found, "".join(lines)
        yield found[0], lines
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        process.stderr.close()


@pytest.mark.parametrize("as_json", [False, True], ids=["plain", "json"])
def test_migrate_never_prints_the_store_password(
    capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    code = cli.main(["migrate", "--store", PG_USERINFO, *(["--json"] if as_json else [])])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert_hidden(out + err, "migrate's output")
    if as_json:
        assert json.loads(out)["store"] == PG_USERINFO.replace(SECRET, "***")


def test_migrate_on_an_unreachable_store_fails_in_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql://root:{SECRET}@127.0.0.1:{closed_port()}/test?connect_timeout=2"

    code = cli.main(["migrate", "--store", url])

    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("forerunner: error: ")
    assert "root:***@127.0.0.1" in err
    assert_hidden(err, "migrate's error")


@pytest.mark.parametrize("as_json", [False, True], ids=["plain", "json"])
def test_plugins_never_prints_a_token_or_password_from_the_environment(as_json: bool) -> None:
    environment = {
        **os.environ,
        "FORERUNNER_TOKEN": CLIENT_TOKEN,
        "FORERUNNER_STORE": PG_USERINFO,
        "FORERUNNER_QUEUE": REDIS_PASSWORD,
    }
    finished = subprocess.run(
        [sys.executable, "-c", MAIN, "plugins", *(["--json"] if as_json else [])],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    assert "postgresql" in finished.stdout
    assert_hidden(finished.stdout + finished.stderr, "plugins' output")
