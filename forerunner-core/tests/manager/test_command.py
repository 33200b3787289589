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
