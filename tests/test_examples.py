"""The examples run as written and print what their READMEs promise.

- examples/basic: manager.py and worker.py as two real processes on a free port (their
  ``PORT`` variable): the manager prints the result of each of its three pings;
- examples/composition: pipeline.py runs its composed task to a result;
- examples/demo.py, the main job of ``./dev demo``: a manager and two worker processes
  run the whole batch, the failing task fails after its retry, and everything stops
  with exit status 0; twice in a row, since each run starts from a fresh directory.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Final

REPO: Final = Path(__file__).resolve().parents[1]
EXAMPLES: Final = REPO / "examples"
#: A row of the demo's results table: short id, type, state, tries.
ROW: Final = re.compile(r"^[0-9a-f]{8} +(\S+) +(\S+) +(\d+/\d+) ", re.MULTILINE)
#: Generous: each example finishes in a few seconds on a two-core machine.
TIMEOUT: Final = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environ(port: int | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if port is not None:
        env["PORT"] = str(port)
    return env


def lines_of(stream: IO[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """The lines of ``stream`` as they come, read on a thread so waiting can time out.

    The thread ends at the end of the stream; join it before closing the stream.
    """
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return lines, thread


def wait_for(lines: queue.Queue[str], prefix: str, count: int = 1) -> list[str]:
    """The first ``count`` lines starting with ``prefix``; fails after :data:`TIMEOUT`."""
    deadline = time.monotonic() + TIMEOUT
    found: list[str] = []
    while len(found) < count:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(
                f"no {count} lines {prefix!r} within {TIMEOUT} s: {found}"
            ) from None
        if line.startswith(prefix):
            found.append(line)
    return found


def stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=TIMEOUT)


def run_example(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, path],
        cwd=cwd,
        env=environ(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        check=False,
    )


def test_basic_example_runs_the_seeds_pings(tmp_path: Path) -> None:
    # Given the basic example's manager serving on a free port
    port = free_port()
    manager = subprocess.Popen(
        [sys.executable, EXAMPLES / "basic" / "manager.py"],
        cwd=tmp_path,
        env=environ(port),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert manager.stdout is not None
    output, reader = lines_of(manager.stdout)
    worker = None
    try:
        wait_for(output, "manager listening on")

        # When its worker starts against that port
        worker = subprocess.Popen(
            [sys.executable, EXAMPLES / "basic" / "worker.py"],
            cwd=tmp_path,
            env=environ(port),
            stdout=subprocess.DEVNULL,
        )

        # Then the manager prints the result of each of its three pings
        completed = wait_for(output, "complete: ping", count=3)
        assert all("'pong': {'foo': 'bar', 'n':" in line for line in completed)
    finally:
        if worker is not None:
            stop(worker)
        manager_status = stop(manager)
        reader.join(TIMEOUT)
        manager.stdout.close()
    assert manager_status == 0
    assert (tmp_path / "forerunner.db").exists()


def test_composition_example_runs_the_pipeline(tmp_path: Path) -> None:
    result = run_example(EXAMPLES / "composition" / "pipeline.py", tmp_path)

    assert result.returncode == 0, result.stderr
    assert "headline_words succeeded: {'words': 11, 'unique': 11" in result.stdout


def test_demo_runs_the_batch_to_completion_twice(tmp_path: Path) -> None:
    for _ in range(2):
        result = run_example(EXAMPLES / "demo.py", tmp_path)

        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "API address: http://127.0.0.1:" in out
        assert "submitted 11 jobs" in out
        assert "always_fails attempt 1 failed (RuntimeError: the billing service is down)" in out
        states = ROW.findall(out)
        assert sorted(states) == sorted(
            [("ping", "succeeded", "1/3")] * 6
            + [("word_count", "succeeded", "1/3")] * 3
            + [("headline_words", "succeeded", "1/3"), ("always_fails", "failed", "2/2")]
        )
        assert "RuntimeError: the billing service is down" in out
        assert "stopped the manager and the workers" in out
    assert list(tmp_path.iterdir()) == []
