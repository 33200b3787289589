"""``forerunner manager``: a bad backend URL is one line and exit 2; SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from forerunner import cli

if TYPE_CHECKING:
    from pathlib import Path

MAIN = "import sys; from forerunner.cli import main; sys.exit(main())"


@pytest.mark.parametrize(
    ("option", "url"), [("--store", "nope://x"), ("--queue", "no-scheme"), ("--store", "bogus")]
)
def test_bad_backend_url_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], option: str, url: str
) -> None:
    code = cli.main(["manager", option, url, "--port", "0"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("forerunner: error: ")


def test_manager_serves_until_sigterm(tmp_path: Path) -> None:
    # Given a manager process on a free port
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            MAIN,
            "manager",
            "--port",
            "0",
            "--store",
            f"sqlite:///{tmp_path / 'jobs.db'}",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            found = re.search(r"listening on (http://\S+)", line)
            url = found.group(1) if found else None
        assert url is not None
        # When it is asked for health, then SIGTERM
        health = httpx.get(f"{url}/healthz")
        process.send_signal(signal.SIGTERM)
        # Then it answered and exits cleanly
        assert health.json() == {"status": "ok"}
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_manager_refuses_a_network_address_without_tokens(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FORERUNNER_CLIENT_TOKENS", "FORERUNNER_WORKER_TOKENS", "FORERUNNER_ADMIN_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    code = cli.main(
        ["manager", "--host", "0.0.0.0", "--port", "0", "--store", f"sqlite:///{tmp_path / 'j.db'}"]
    )

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "without tokens" in err
    assert "--insecure" in err


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--tokens-file", "/nonexistent/tokens"], "cannot read the tokens file"),
        (["--tls-cert", "/nonexistent/cert.pem"], "both a certificate and its key"),
        (["--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"], "no such file"),
        (["--max-body-bytes", "10"], "a limit is out of range"),
    ],
)
def test_bad_security_options_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, arguments: list[str], complaint: str
) -> None:
    code = cli.main(
        ["manager", "--port", "0", "--store", f"sqlite:///{tmp_path / 'j.db'}", *arguments]
    )

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert complaint in err


def test_manager_takes_tokens_from_a_file_and_the_environment(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    client, admin = "client-token-" + "1" * 20, "admin-token-" + "2" * 20
    tokens.write_text(f"# rotated 2026-11\nclient {client}\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            MAIN,
            "manager",
            "--port",
            "0",
            "--tokens-file",
            str(tokens),
            "--store",
            f"sqlite:///{tmp_path / 'jobs.db'}",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "FORERUNNER_ADMIN_TOKENS": admin},
    )
    try:
        assert process.stderr is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            found = re.search(r"listening on (http://\S+)", process.stderr.readline())
            url = found.group(1) if found else None
        assert url is not None
        assert httpx.get(f"{url}/v1/jobs").status_code == 401
        for token, role in ((client, "client"), (admin, "admin")):
            session = httpx.get(f"{url}/v1/session", headers={"authorization": f"Bearer {token}"})
            assert session.json()["role"] == role
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        log = process.stderr.read()
        assert client not in log
        assert admin not in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
