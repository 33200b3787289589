"""``forerunner run``: one batch of jobs from a file, run to completion by real processes.

Covers: a batch of mixed outcomes -> RESULTS.json aligned with JOBS.json (id, type,
state, result, error, attempt) and exit 1; an all-successful batch on N worker
processes and an explicit ``--store`` -> exit 0 and the store kept; progress lines on a
non-terminal stderr; workers that cannot start -> a one-line error and exit 2 instead
of a hang; a bad JOBS.json (unreadable, not JSON, not a list, an invalid spec) -> one
line on stderr, exit 2, no RESULTS.json. The tasks module is written to a temporary
directory and reaches the worker processes through ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.cli import main

if TYPE_CHECKING:
    from pathlib import Path

TASKS = """
def double(job_id, data):
    return data["n"] * 2

def boom(job_id, data):
    raise RuntimeError(f"boom {data}")

TASKS = {"double": double, "boom": boom}
"""


def _run(tmp_path: Path, jobs: Any, *options: str) -> subprocess.CompletedProcess[str]:
    """Write the tasks module and JOBS.json into ``tmp_path``, then run the command there."""
    (tmp_path / "batch_tasks.py").write_text(textwrap.dedent(TASKS), encoding="utf-8")
    (tmp_path / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "forerunner", "run", "jobs.json", "-o", "results.json"]
    return subprocess.run(
        [*command, *options],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _results(tmp_path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((tmp_path / "results.json").read_text("utf-8"))
    return rows


def test_mixed_batch_writes_every_result_and_error_and_exits_1(tmp_path: Path) -> None:
    # Given three jobs that succeed around one that fails on its only attempt
    jobs = [
        {"type": "double", "data": {"n": 1}},
        {"type": "boom", "data": "x", "max_attempts": 1},
        {"type": "double", "data": {"n": 2}, "priority": 5},
        {"type": "double", "data": {"n": 3}, "key": "third"},
    ]

    # When the batch runs on one worker process
    done = _run(tmp_path, jobs, "--tasks", "batch_tasks", "-n", "1")

    # Then the exit code says a job failed, and RESULTS.json is aligned with JOBS.json
    assert done.returncode == 1, done.stderr
    rows = _results(tmp_path)
    assert [row["type"] for row in rows] == ["double", "boom", "double", "double"]
    assert [row["state"] for row in rows] == ["succeeded", "failed", "succeeded", "succeeded"]
    assert [row["result"] for row in rows] == [2, None, 4, 6]
    assert [row["attempt"] for row in rows] == [1, 1, 1, 1]
    assert len({row["id"] for row in rows}) == 4
    assert [row["error"] for row in rows if row["type"] == "double"] == [None, None, None]
    error = rows[1]["error"]
    assert error["type"] == "RuntimeError"
    assert error["message"] == "boom x"
    assert "RuntimeError: boom x" in error["traceback"]
    # and stderr, not a terminal, carries plain progress lines ending at the total
    assert "4/4 done, 1 not succeeded" in done.stderr


def test_successful_batch_on_many_workers_exits_0_and_keeps_the_given_store(
    tmp_path: Path,
) -> None:
    # Given a batch that only succeeds and a store URL of the caller's
    jobs = [{"type": "double", "data": {"n": n}} for n in range(20)]
    store = tmp_path / "kept.db"

    # When it runs on two worker processes of two slots each
    done = _run(
        tmp_path,
        jobs,
        "--tasks",
        "batch_tasks",
        "-n",
        "2",
        "--concurrency",
        "2",
        "--store",
        f"sqlite:///{store}",
    )

    # Then every job succeeded once, in input order, and the store outlives the command
    assert done.returncode == 0, done.stderr
    rows = _results(tmp_path)
    assert [row["result"] for row in rows] == [n * 2 for n in range(20)]
    assert {row["state"] for row in rows} == {"succeeded"}
    assert store.exists()


def test_workers_that_cannot_start_end_the_command_with_one_line_not_a_hang(
    tmp_path: Path,
) -> None:
    # Given a --tasks module that does not exist, so every worker process exits at start
    done = _run(tmp_path, [{"type": "double", "data": {"n": 1}}], "--tasks", "no_such_mod")

    # Then the command reports it on its last line and exits 2 without RESULTS.json
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("forerunner: error: every worker process exited")
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (None, "cannot read"),
        ("{", "not valid JSON"),
        ('{"type": "double"}', "expected a non-empty JSON list"),
        ("[]", "expected a non-empty JSON list"),
        ('[{"type": "double"}, {"data": 1}]', "job 1:"),
        ('[{"type": "double", "max_attempts": 0}]', "job 0:"),
    ],
    ids=["missing", "not-json", "not-a-list", "empty", "no-type", "bad-max-attempts"],
)
def test_bad_jobs_file_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, complaint: str
) -> None:
    # Given a JOBS.json that is missing or wrong
    jobs = tmp_path / "jobs.json"
    if content is not None:
        jobs.write_text(content, encoding="utf-8")
    output = tmp_path / "results.json"

    # When the command runs
    code = main(["run", str(jobs), "--tasks", "ping", "-o", str(output)])

    # Then it names the file and the rule on one line, starts nothing and writes nothing
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"forerunner: error: {jobs}")
    assert complaint in err
    assert not output.exists()
