"""The command line against a manager that asks for tokens, and one that serves HTTPS.

Every command that talks to a manager takes ``--token-file PATH`` (else
``$FORERUNNER_TOKEN``) and ``--ca-file PATH`` (else ``$FORERUNNER_CA_FILE``). A refusal,
no token or an unknown one (401) or a role that may not (403), exits 5 with one line
that says what to do and never holds the token; a certificate that does not verify is a
configuration error (exit 2) that names ``--ca-file``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest
import trustme

from forerunner.client import Client
from forerunner.console import EXIT_DENIED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from forerunner.credentials import CA_FILE_ENV, TOKEN_ENV
from forerunner.manager import Manager
from forerunner.manager.auth import Tokens

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from conftest import Ran

CLIENT: Final = "cli-client-token-" + "c" * 24
ADMIN: Final = "cli-admin-token-" + "a" * 24
WORKER: Final = "cli-worker-token-" + "w" * 24
UNKNOWN: Final = "cli-unknown-token-" + "u" * 24
TOKENS: Final = Tokens.from_mapping({"client": [CLIENT], "admin": [ADMIN], "worker": [WORKER]})
#: A job id no manager has; commands that name a job get this one.
MISSING: Final = "no-such-job"

#: Every command that talks to a manager, as argv without the credential options.
MANAGER_COMMANDS: Final = [
    ["status"],
    ["workers"],
    ["jobs", "list"],
    ["jobs", "show", MISSING],
    ["jobs", "get", MISSING],
    ["jobs", "cancel", MISSING],
    ["jobs", "retry", MISSING],
    ["jobs", "retry", "--failed", "--yes"],
    ["jobs", "purge", "--older-than", "7d", "--yes"],
    ["submit", "ping"],
]


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token or CA file in the test runner's environment must not decide a test."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(CA_FILE_ENV, raising=False)


@pytest.fixture
def manager() -> Iterator[Manager]:
    """The conftest's manager, asking for tokens: ``forerunner`` runs against it."""
    running = Manager("memory://", "memory://", port=0, lease=5.0, tokens=TOKENS).start()
    yield running
    running.stop()


@pytest.fixture
def token_file(tmp_path: Path) -> Callable[[str], str]:
    """Write a token to a file, as ``echo TOKEN > file`` would, and give its path."""

    def write(token: str) -> str:
        path = tmp_path / f"token-{len(list(tmp_path.iterdir()))}"
        path.write_text(f"{token}\n", encoding="utf-8")
        path.chmod(0o600)
        return str(path)

    return write


def _one_error_line(ran: Ran) -> str:
    """The error, checked to be one line of the CLI's form and free of any token."""
    lines = ran.err.splitlines()
    assert len(lines) == 1, ran.err
    assert lines[0].startswith("forerunner: error: ")
    assert "Traceback" not in ran.err
    for token in (CLIENT, ADMIN, WORKER, UNKNOWN):
        assert token not in ran.err
        assert token not in ran.out
    return lines[0]


@pytest.mark.parametrize("argv", MANAGER_COMMANDS, ids=" ".join)
def test_every_manager_command_without_a_token_exits_5(
    forerunner: Callable[..., Ran], argv: list[str]
) -> None:
    ran = forerunner(*argv)

    assert ran.code == EXIT_DENIED
    line = _one_error_line(ran)
    assert "FORERUNNER_TOKEN" in line
    assert "--token-file" in line


@pytest.mark.parametrize("argv", MANAGER_COMMANDS, ids=" ".join)
def test_every_manager_command_takes_a_token_file(
    forerunner: Callable[..., Ran], token_file: Callable[[str], str], argv: list[str]
) -> None:
    ran = forerunner(*argv, "--token-file", token_file(ADMIN))

    assert ran.code in (EXIT_OK, EXIT_NOT_FOUND), ran.err


def test_the_token_is_read_from_the_environment_without_a_flag(
    forerunner: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, CLIENT)

    submitted = forerunner("submit", "ping", "--json")
    listed = forerunner("jobs", "list", "--json")

    assert (submitted.code, listed.code) == (EXIT_OK, EXIT_OK)
    assert [job["id"] for job in listed.json["jobs"]] == [submitted.json["id"]]


def test_a_token_file_wins_over_the_environment(
    forerunner: Callable[..., Ran],
    token_file: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, WORKER)

    assert forerunner("status", "--token-file", token_file(CLIENT)).code == EXIT_OK


def test_an_unknown_token_exits_5_and_is_never_printed(
    forerunner: Callable[..., Ran], token_file: Callable[[str], str]
) -> None:
    ran = forerunner("jobs", "list", "--token-file", token_file(UNKNOWN))

    assert ran.code == EXIT_DENIED
    assert "does not know the token" in _one_error_line(ran)


def test_a_client_token_may_not_cancel_and_is_told_to_use_an_admin_token(
    forerunner: Callable[..., Ran], token_file: Callable[[str], str], manager: Manager
) -> None:
    with Client(manager.url, token=CLIENT) as client:
        job = client.submit("ping")

    ran = forerunner("jobs", "cancel", job.id, "--token-file", token_file(CLIENT))

    assert ran.code == EXIT_DENIED
    assert "role admin" in _one_error_line(ran)


def test_a_client_token_may_not_purge_but_an_admin_token_may(
    forerunner: Callable[..., Ran], token_file: Callable[[str], str]
) -> None:
    argv = ("jobs", "purge", "--older-than", "1d", "--yes", "--token-file")

    assert forerunner(*argv, token_file(CLIENT)).code == EXIT_DENIED
    assert forerunner(*argv, token_file(ADMIN)).code == EXIT_OK


def test_a_worker_token_may_not_read_the_managers_status(
    forerunner: Callable[..., Ran], token_file: Callable[[str], str]
) -> None:
    ran = forerunner("status", "--token-file", token_file(WORKER))

    assert ran.code == EXIT_DENIED
    assert "role client" in _one_error_line(ran)


def test_an_unreadable_token_file_is_a_usage_error(
    forerunner: Callable[..., Ran], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"

    ran = forerunner("jobs", "list", "--token-file", str(missing))

    assert ran.code == EXIT_USAGE
    assert str(missing) in _one_error_line(ran)


def test_an_empty_token_file_is_a_usage_error(
    forerunner: Callable[..., Ran], token_file: Callable[[str], str]
) -> None:
    ran = forerunner("status", "--token-file", token_file("   "))

    assert ran.code == EXIT_USAGE
    assert "empty" in _one_error_line(ran)


def test_the_help_lists_the_exit_code_for_a_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    from forerunner import cli

    with pytest.raises(SystemExit):
        cli.main(["--help"])

    assert "5 not allowed" in " ".join(capsys.readouterr().out.split())


# TLS


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A manager with tokens on https://, its certificate signed by a private CA: (url, CA)."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    ca_file, cert, key = (str(tmp_path / name) for name in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(ca_file)
    issued.cert_chain_pems[0].write_to_path(cert)
    issued.private_key_pem.write_to_path(key)
    running = Manager(
        "memory://", "memory://", port=0, tokens=TOKENS, tls_cert=cert, tls_key=key
    ).start()
    yield running.url, ca_file
    running.stop()


def test_the_ca_file_lets_a_command_talk_to_an_https_manager(
    forerunner: Callable[..., Ran], token_file: Callable[[str], str], tls: tuple[str, str]
) -> None:
    url, ca_file = tls

    ran = forerunner(
        "status", "--manager", url, "--token-file", token_file(CLIENT), "--ca-file", ca_file
    )

    assert ran.code == EXIT_OK, ran.err
    assert url in ran.out


def test_the_ca_file_is_read_from_the_environment_without_a_flag(
    forerunner: Callable[..., Ran], tls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = tls
    monkeypatch.setenv(CA_FILE_ENV, ca_file)
    monkeypatch.setenv(TOKEN_ENV, CLIENT)

    assert forerunner("jobs", "list", "--manager", url).code == EXIT_OK


def test_without_the_ca_file_a_command_fails_with_a_certificate_error(
    forerunner: Callable[..., Ran], token_file: Callable[[str], str], tls: tuple[str, str]
) -> None:
    url, _ = tls

    ran = forerunner("jobs", "list", "--manager", url, "--token-file", token_file(CLIENT))

    assert ran.code == EXIT_USAGE
    line = _one_error_line(ran)
    assert "certificate" in line
    assert "--ca-file" in line
