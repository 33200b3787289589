"""Fixtures for the repository tests: running commands, and throwaway virtual environments.

Test modules reach these through fixtures (``run_command``, ``make_venv``), since
``--import-mode=importlib`` does not make this module importable by name. The
packaging and third-party tests install distributions the way a user would, into a
fresh virtual environment made with ``python -m venv``, and run commands there. The
environment they run in keeps pip's settings and cache (so repeated runs are fast) but
drops anything that would leak this checkout into it: ``PYTHONPATH``, ``VIRTUAL_ENV``
and forerunner's own variables.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

#: Building and installing with pip on a two-core machine, with a warm cache.
COMMAND_TIMEOUT: Final = 600.0


def clean_environ(extra_path: Path | None = None) -> dict[str, str]:
    """This process's environment without what would make a child see this checkout."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
        and not key.startswith("FORERUNNER_")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if extra_path is not None:
        env["PATH"] = os.pathsep.join([str(extra_path), env.get("PATH", "")])
    return env


def run(
    args: list[str | Path],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command; when ``check`` and it fails, fail the test with its whole output."""
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=dict(env) if env is not None else clean_environ(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited with {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}",
            pytrace=False,
        )
    return result


class Venv:
    """A virtual environment of its own, made with this interpreter's ``venv`` module."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bin = path / "bin"
        self.python = self.bin / "python"
        self.env = clean_environ(extra_path=self.bin)
        self.env["VIRTUAL_ENV"] = str(path)

    @classmethod
    def create(cls, path: Path) -> Venv:
        run([sys.executable, "-m", "venv", path], cwd=path.parent)
        venv = cls(path)
        # The pip that ensurepip bundles may predate the metadata the wheels carry.
        venv.pip("install", "--quiet", "--upgrade", "pip")
        return venv

    def pip(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return run([self.python, "-m", "pip", *args], cwd=self.path, env=self.env)

    def run(
        self, *args: str | Path, cwd: Path, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command with this environment's ``bin`` first on ``PATH``."""
        return run(list(args), cwd=cwd, env=self.env, check=check)


@pytest.fixture
def make_venv(tmp_path: Path) -> Callable[[str], Venv]:
    """Make a fresh virtual environment named ``name`` under the test's temporary directory."""

    def make(name: str) -> Venv:
        return Venv.create(tmp_path / name)

    return make


@pytest.fixture(scope="session")
def run_command() -> Callable[..., subprocess.CompletedProcess[str]]:
    """:func:`run`: a command that fails the test, with its output, when it fails."""
    return run
