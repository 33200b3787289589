"""The job log: one record per lifecycle event, and the two line formats.

In process (caplog): each event of a real manager and worker gives one record with the
job's id, type, attempt, worker, state and duration; the data, result and traceback
appear only with ``log_job_data``. As processes: ``forerunner manager`` and
``forerunner worker`` with ``--log-format json`` write one JSON object per line, and
with ``--log-format plain`` logfmt lines that parse back into the same fields.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from forerunner.client import Client
from forerunner.logs import JsonFormatter, LogfmtFormatter
from forerunner.manager import Manager
from forerunner.worker import Worker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

MAIN = "import sys; from forerunner.cli import main; sys.exit(main())"
SECRET_DATA = "data-only-the-task-may-see"
SECRET_RESULT = "result-only-the-client-may-see"
#: The fields every job line carries (``worker`` and ``duration`` are null where unknown).
JOB_FIELDS = {"action", "job_id", "type", "attempt", "worker", "state", "duration"}

TASKS = f'''
def echo(job_id, data):
    return "{SECRET_RESULT}"

def boom(job_id, data):
    raise ValueError("no such thing")

TASKS = {{"echo": echo, "boom": boom}}
'''


def echo(job_id: str, data: Any) -> Any:
    return SECRET_RESULT


def boom(job_id: str, data: Any) -> Any:
    raise ValueError("no such thing")


def job_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "forerunner.manager.joblog"]


@pytest.fixture
def run_jobs(tmp_path: Path) -> Iterator[Callable[..., list[str]]]:
    """Run one ``echo`` and one ``boom`` (two attempts) on a fresh manager; their ids."""
    managers: list[Manager] = []

    def run(**options: Any) -> list[str]:
        manager = Manager(f"sqlite:///{tmp_path / 'jobs.db'}", port=0, **options).start()
        managers.append(manager)
        worker = Worker(2, worker_id="w-log")
        worker.register_job_handler("echo", echo)
        worker.register_job_handler("boom", boom)
        thread = threading.Thread(target=worker.start, args=(manager.url,), daemon=True)
        thread.start()
        try:
            with Client(manager.url) as client:
                ids = [
                    client.submit("echo", {"secret": SECRET_DATA}).id,
                    client.submit("boom", {"secret": SECRET_DATA}, max_attempts=2).id,
                ]
                for job_id in ids:
                    assert client.wait(job_id, timeout=30).state.terminal
        finally:
            worker.stop()
            thread.join(15)
        return ids

    yield run
    for manager in managers:
        manager.stop()


def test_each_lifecycle_event_is_one_record_with_the_jobs_facts(
    caplog: pytest.LogCaptureFixture, run_jobs: Callable[..., list[str]]
) -> None:
    caplog.set_level(logging.INFO, logger="forerunner")

    echo_id, boom_id = run_jobs()

    records = job_records(caplog)
    actions = {
        job_id: [vars(r)["action"] for r in records if vars(r)["job_id"] == job_id]
        for job_id in (echo_id, boom_id)
    }
    assert actions == {
        echo_id: ["job_submitted", "job_started", "job_succeeded"],
        boom_id: ["job_submitted", "job_started", "job_retrying", "job_started", "job_failed"],
    }
    for record in records:
        assert vars(record).keys() >= JOB_FIELDS
        assert record.levelno == logging.INFO
    by_action = {(vars(r)["job_id"], vars(r)["action"]): vars(r) for r in records}
    started = by_action[echo_id, "job_started"]
    assert (started["type"], started["attempt"], started["worker"]) == ("echo", 1, "w-log")
    assert started["state"] == "running"
    assert started["duration"] >= 0
    succeeded = by_action[echo_id, "job_succeeded"]
    assert (succeeded["state"], succeeded["attempt"]) == ("succeeded", 1)
    assert succeeded["duration"] >= 0
    failed = by_action[boom_id, "job_failed"]
    assert (failed["attempt"], failed["state"]) == (2, "failed")
    assert (failed["error_type"], failed["error_message"]) == ("ValueError", "no such thing")
    retrying = by_action[boom_id, "job_retrying"]
    assert (retrying["attempt"], retrying["state"]) == (1, "scheduled")
    assert retrying["error_type"] == "ValueError"
    assert by_action[echo_id, "job_submitted"]["duration"] is None


def test_data_results_and_tracebacks_stay_out_of_the_log_by_default(
    caplog: pytest.LogCaptureFixture, run_jobs: Callable[..., list[str]]
) -> None:
    caplog.set_level(logging.INFO, logger="forerunner")

    run_jobs()

    for record in job_records(caplog):
        assert not {"data", "result", "traceback"} & vars(record).keys()
        for formatter in (JsonFormatter(), LogfmtFormatter()):
            line = formatter.format(record)
            assert SECRET_DATA not in line
            assert SECRET_RESULT not in line
            assert "Traceback" not in line


def test_log_job_data_adds_data_results_and_tracebacks(
    caplog: pytest.LogCaptureFixture, run_jobs: Callable[..., list[str]]
) -> None:
    caplog.set_level(logging.INFO, logger="forerunner")

    echo_id, boom_id = run_jobs(log_job_data=True)

    by_action = {(vars(r)["job_id"], vars(r)["action"]): vars(r) for r in job_records(caplog)}
    assert by_action[echo_id, "job_submitted"]["data"] == {"secret": SECRET_DATA}
    assert by_action[echo_id, "job_succeeded"]["result"] == SECRET_RESULT
    assert "ValueError: no such thing" in by_action[boom_id, "job_failed"]["traceback"]


def make_record(**extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(
        "forerunner.test", logging.WARNING, __file__, 1, "hello %s", ("there",), None
    )
    record.__dict__.update(extra)
    return record


LOGFMT_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^ ]*)(?: |$)')


def parse_logfmt(line: str) -> dict[str, str]:
    """Split a logfmt line into its keys and (unquoted, unescaped) values."""
    fields: dict[str, str] = {}
    position = 0
    while position < len(line):
        found = LOGFMT_PAIR.match(line, position)
        assert found is not None, f"not logfmt at {position}: {line!r}"
        raw = found.group(2)
        if raw.startswith('"'):
            raw = json.loads(raw)
        fields[found.group(1)] = raw
        position = found.end()
    return fields


def test_logfmt_lines_parse_back_into_their_fields() -> None:
    record = make_record(
        action="odd_values",
        job_id="j1",
        quoted='say "hi"',
        spaced="two words",
        lines="one\ntwo",
        equals="a=b",
        empty="",
        count=3,
        flag=True,
        missing=None,
        mapping={"k": [1, 2]},
    )

    line = LogfmtFormatter().format(record)

    assert "\n" not in line
    fields = parse_logfmt(line)
    assert fields["msg"] == "hello there"
    assert (fields["level"], fields["logger"]) == ("warning", "forerunner.test")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["time"])
    assert fields["quoted"] == 'say "hi"'
    assert fields["spaced"] == "two words"
    assert fields["lines"] == "one\ntwo"
    assert fields["equals"] == "a=b"
    assert fields["empty"] == ""
    assert (fields["count"], fields["flag"]) == ("3", "true")
    assert "missing" not in fields
    assert json.loads(fields["mapping"]) == {"k": [1, 2]}


def test_json_lines_keep_extras_and_the_traceback_on_one_line() -> None:
    try:
        raise KeyError("lost")
    except KeyError:
        record = make_record(action="it_broke", job_id="j2", attempt=2, worker=None)
        record.exc_info = sys.exc_info()

    line = JsonFormatter().format(record)

    assert "\n" not in line
    fields = json.loads(line)
    assert fields["message"] == "hello there"
    assert (fields["action"], fields["job_id"], fields["attempt"]) == ("it_broke", "j2", 2)
    assert fields["worker"] is None
    assert "KeyError: 'lost'" in fields["exception"]


class Process:
    """A ``forerunner`` command running in a child process, its stderr read line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-c", MAIN, *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._fresh: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self._fresh.put(line.rstrip("\n"))
        self._fresh.put(None)

    def wait_for(self, condition: Callable[[str], bool], seconds: float = 30.0) -> str:
        """Read lines until one meets ``condition``; return it."""
        deadline = time.monotonic() + seconds
        while True:
            line = self._fresh.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, "the process ended: " + "\n".join(self.lines)
            self.lines.append(line)
            if condition(line):
                return line

    def stop(self) -> list[str]:
        """SIGTERM, wait for a clean exit, and return every line it wrote."""
        self.popen.send_signal(signal.SIGTERM)
        assert self.popen.wait(timeout=30) == 0, "\n".join(self.lines)
        self._reader.join(10)
        while (line := self._fresh.get_nowait()) is not None:
            self.lines.append(line)
        return self.lines

    def close(self) -> None:
        """Kill the process if it still runs, and close its pipe."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._reader.join(10)
        assert self.popen.stderr is not None
        self.popen.stderr.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start ``forerunner`` commands that see a ``logtasks`` module; kill leftovers."""
    (tmp_path / "logtasks.py").write_text(TASKS, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORERUNNER_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *filter(None, [env.get("PYTHONPATH")])])
    started: list[Process] = []

    def start(*args: str) -> Process:
        process = Process(list(args), env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def run_commands(
    spawn: Callable[..., Process], tmp_path: Path, log_format: str, *manager_options: str
) -> tuple[list[str], list[str], list[str]]:
    """Run ``echo`` and ``boom`` on a manager and a worker process; both logs and the ids."""
    parse = json.loads if log_format == "json" else parse_logfmt
    manager = spawn(
        "manager",
        "--port",
        "0",
        "--store",
        f"sqlite:///{tmp_path / 'jobs.db'}",
        "--log-format",
        log_format,
        *manager_options,
    )
    started = manager.wait_for(lambda line: parse(line).get("action") == "manager_started")
    url = parse(started)["url"]
    worker = spawn("worker", "--manager", url, "--tasks", "logtasks", "--log-format", log_format)
    with Client(url) as client:
        ids = [
            client.submit("echo", {"secret": SECRET_DATA}).id,
            client.submit("boom", {"secret": SECRET_DATA}, max_attempts=1).id,
        ]
        for job_id in ids:
            assert client.wait(job_id, timeout=30).state.terminal
    return manager.stop(), worker.stop(), ids


def test_json_format_writes_one_object_per_line_from_manager_and_worker(
    spawn: Callable[..., Process], tmp_path: Path
) -> None:
    manager_lines, worker_lines, (echo_id, boom_id) = run_commands(spawn, tmp_path, "json")

    manager_records = [json.loads(line) for line in manager_lines]
    worker_records = [json.loads(line) for line in worker_lines]
    assert {"time", "level", "logger", "message"} <= worker_records[-1].keys()
    jobs = [r for r in manager_records if r["logger"] == "forerunner.manager.joblog"]
    assert [(r["job_id"], r["action"]) for r in jobs if r["job_id"] == echo_id] == [
        (echo_id, "job_submitted"),
        (echo_id, "job_started"),
        (echo_id, "job_succeeded"),
    ]
    assert [r["action"] for r in jobs if r["job_id"] == boom_id] == [
        "job_submitted",
        "job_started",
        "job_failed",
    ]
    for record in jobs:
        assert record.keys() >= JOB_FIELDS
    failed = next(r for r in jobs if r["action"] == "job_failed")
    assert (failed["error_type"], failed["error_message"]) == ("ValueError", "no such thing")
    everything = "\n".join(manager_lines + worker_lines)
    assert SECRET_DATA not in everything
    assert SECRET_RESULT not in everything
    assert "Traceback" not in everything


def test_log_job_data_on_the_command_line_logs_data_results_and_tracebacks(
    spawn: Callable[..., Process], tmp_path: Path
) -> None:
    manager_lines, _, (echo_id, boom_id) = run_commands(spawn, tmp_path, "json", "--log-job-data")

    records = {
        (r["job_id"], r["action"]): r
        for r in map(json.loads, manager_lines)
        if r["logger"] == "forerunner.manager.joblog"
    }
    assert records[echo_id, "job_submitted"]["data"] == {"secret": SECRET_DATA}
    assert records[echo_id, "job_succeeded"]["result"] == SECRET_RESULT
    assert "ValueError: no such thing" in records[boom_id, "job_failed"]["traceback"]


def test_plain_format_is_logfmt_from_manager_and_worker(
    spawn: Callable[..., Process], tmp_path: Path
) -> None:
    manager_lines, worker_lines, (echo_id, _) = run_commands(spawn, tmp_path, "plain")

    manager_records = [parse_logfmt(line) for line in manager_lines]
    for line in worker_lines:
        assert {"time", "level", "logger", "msg"} <= parse_logfmt(line).keys()
    succeeded = next(r for r in manager_records if r.get("action") == "job_succeeded")
    assert (succeeded["job_id"], succeeded["type"], succeeded["attempt"]) == (echo_id, "echo", "1")
    assert succeeded["state"] == "succeeded"
    assert float(succeeded["duration"]) >= 0


def test_log_level_warning_leaves_the_job_lines_out(
    spawn: Callable[..., Process], tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    manager = spawn(
        "manager",
        "--port",
        str(port),
        "--store",
        f"sqlite:///{tmp_path / 'jobs.db'}",
        "--log-level",
        "warning",
    )
    url = f"http://127.0.0.1:{port}"
    with Client(url, retry_for=30) as client:
        client.submit("echo")

    assert manager.stop() == []
