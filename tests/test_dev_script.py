"""The ``dev`` script: its commands, and that CI never passes over a missing service.

The full ``./dev test`` is what runs this test, so it is not run again here; these tests
cover what a run would not show: the help, an unknown command, and the CI rule, with
PostgreSQL and Redis made unreachable by stand-ins for their tools on ``PATH``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
DEV: Final = REPO / "dev"


def dev(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DEV, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    result = dev("help")

    assert result.returncode == 0
    assert result.stdout.startswith("usage: ./dev COMMAND")
    for command in ("test", "lint", "demo", "help"):
        assert f"\n  {command}  " in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = dev("deploy")

    assert result.returncode == 2
    assert "dev: unknown command 'deploy'" in result.stderr


def test_under_ci_a_service_that_cannot_start_fails_the_run(tmp_path: Path) -> None:
    # Given PostgreSQL and Redis that neither answer nor start
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool in ("pg_isready", "pg_ctlcluster", "redis-cli", "redis-server"):
        stand_in = fake_bin / tool
        stand_in.write_text("#!/bin/sh\nexit 1\n")
        stand_in.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}", "CI": "true"}

    # When ./dev test runs under CI
    result = dev("test", env=env)

    # Then the services step fails the run, and no later step runs
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PostgreSQL could not be started (exit code 1), and CI is set" in result.stdout
    assert "dev: FAILED  services" in result.stdout
    assert "==> ruff check" not in result.stdout
