"""The rules every operator command keeps: which manager, errors, exit codes, pipes.

``--manager`` beats ``$FORERUNNER_MANAGER``, which beats the default address. Errors
are one line on stderr and never a traceback; an unreachable manager exits 3, a
read-only one refusing a change exits 2, bad arguments exit 2. Output to a pipe has no
colour codes and no trailing blanks; on a terminal it is drawn with rich.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from forerunner.client import DEFAULT_URL
from forerunner.console import MANAGER_ENV, manager_url
from forerunner.manager import Manager

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import Ran

    from forerunner.client import Client

NOWHERE = "http://127.0.0.1:9"

MANAGER_COMMANDS = [
    ["status"],
    ["workers"],
    ["jobs", "list"],
    ["jobs", "show", "some-id"],
    ["jobs", "get", "some-id"],
    ["jobs", "cancel", "some-id"],
    ["jobs", "retry", "some-id"],
    ["jobs", "retry", "--failed", "--yes"],
    ["jobs", "purge", "--older-than", "7d", "--yes"],
    ["submit", "ping"],
]


def console_script() -> str:
    found = shutil.which("forerunner", path=str(Path(sys.executable).parent))
    assert found, f"the forerunner console script is not installed next to {sys.executable}"
    return found


def script(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``forerunner`` with stdout and stderr on pipes."""
    environ = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    return subprocess.run(
        [console_script(), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**environ, **env},
    )


@pytest.fixture
def read_only() -> Iterator[Manager]:
    running = Manager("memory://", "memory://", port=0, read_only=True).start()
    yield running
    running.stop()


@pytest.mark.parametrize("argv", MANAGER_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["human", "json"])
def test_unreachable_manager_is_one_line_and_exit_3(
    forerunner: Callable[..., Ran], argv: list[str], json_flag: list[str]
) -> None:
    ran = forerunner(*argv, *json_flag, "--manager", NOWHERE)

    assert (ran.code, ran.out) == (3, "")
    assert ran.err.count("\n") == 1
    assert ran.err.startswith(f"forerunner: error: the manager at {NOWHERE} did not answer")
    assert "Traceback" not in ran.err


def test_submit_file_to_an_unreachable_manager_says_nothing_was_submitted(
    forerunner: Callable[..., Ran], tmp_path: Path
) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"type": "ping"}\n', encoding="utf-8")

    ran = forerunner("submit", "--file", str(path), "--manager", NOWHERE)

    assert ran.code == 3
    assert ran.err.count("\n") == 1
    assert ran.err.rstrip().endswith("; nothing was submitted")


def test_manager_option_beats_the_environment_which_beats_the_default(
    forerunner: Callable[..., Ran], client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.submit("ping")

    from_env = forerunner("jobs", "list", "--json")
    from_option = forerunner("jobs", "list", "--json", "--manager", client.url)
    monkeypatch.setenv(MANAGER_ENV, NOWHERE)
    env_elsewhere = forerunner("jobs", "list", "--json")
    option_wins = forerunner("jobs", "list", "--json", "--manager", client.url)

    assert len(from_env.json["jobs"]) == len(from_option.json["jobs"]) == 1
    assert env_elsewhere.code == 3
    assert NOWHERE in env_elsewhere.err
    assert option_wins.code == 0


def test_without_option_or_environment_the_default_address_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MANAGER_ENV, raising=False)
    unset = manager_url(argparse.Namespace(manager=None))
    monkeypatch.setenv(MANAGER_ENV, "")
    empty = manager_url(argparse.Namespace(manager=None))

    assert unset == empty == DEFAULT_URL == "http://127.0.0.1:2718"


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "cancel", "x"],
        ["jobs", "retry", "x"],
        ["jobs", "retry", "--failed", "--yes"],
        ["jobs", "purge", "--older-than", "1d", "--yes"],
    ],
    ids=" ".join,
)
def test_read_only_manager_refusing_a_change_is_exit_2(
    forerunner: Callable[..., Ran], read_only: Manager, argv: list[str]
) -> None:
    ran = forerunner(*argv, "--manager", read_only.url)

    assert (ran.code, ran.out) == (2, "")
    assert ran.err.count("\n") == 1
    assert "read-only" in ran.err or "read only" in ran.err


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "list", "--state", "sleeping"],
        ["jobs", "frobnicate"],
        ["jobs", "cancel"],
        ["jobs", "purge"],
        ["status", "--limit", "3"],
    ],
    ids=" ".join,
)
def test_bad_arguments_are_one_line_and_exit_2(
    forerunner: Callable[..., Ran], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        forerunner(*argv)

    assert exited.value.code == 2


def test_argparse_errors_are_one_line_on_stderr() -> None:
    result = script("jobs", "list", "--state", "sleeping")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("forerunner jobs list: error: argument --state: invalid choice")
    assert result.stderr.endswith("(see forerunner jobs list --help)\n")


def test_piped_output_is_plain_text_without_trailing_blanks(client: Client) -> None:
    job = client.submit("ping", key="piped")

    listed = script("jobs", "list", "--manager", client.url)
    status = script("status", "--manager", client.url)
    shown = script("jobs", "show", job.id, "--manager", client.url)

    for result in (listed, status, shown):
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout
        assert all(line == line.rstrip() for line in result.stdout.splitlines())
        assert not {"─", "│", "┃", "━"} & set(result.stdout), "no box lines in a pipe"
    assert listed.stdout.splitlines()[1].split()[0] == job.id


def test_json_output_is_only_json_on_stdout(client: Client) -> None:
    client.submit("ping")

    for argv in (["status"], ["workers"], ["jobs", "list"], ["plugins"]):
        manager = [] if argv == ["plugins"] else ["--manager", client.url]
        result = script(*argv, "--json", *manager)
        assert result.returncode == 0, result.stderr
        json.loads(result.stdout)


def test_on_a_terminal_tables_are_drawn_with_colour(client: Client) -> None:
    client.submit("ping")

    result = script("jobs", "list", "--manager", client.url, FORCE_COLOR="1", COLUMNS="120")

    assert result.returncode == 0, result.stderr
    assert "\x1b[" in result.stdout
    assert "─" in result.stdout


def test_on_a_terminal_submit_file_draws_a_progress_bar(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"type": "ping"}\n' * 1500, encoding="utf-8")

    result = script("submit", "--file", str(path), "--manager", client.url, FORCE_COLOR="1")

    assert result.returncode == 0, result.stderr
    assert "1500/1500" in result.stderr
    assert "━" in result.stderr
    assert "submitted 1500 jobs" in result.stdout
