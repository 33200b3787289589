"""``forerunner submit`` and ``forerunner jobs`` with ``--json``: one-line errors, exit codes.

``submit --wait`` prints the ended job and exits 0 if it succeeded, 1 otherwise; an
error is one line on stderr, with exit code 2 for bad input, 3 for a manager that does
not answer and 4 for a job that does not exist (docs/cli.md). ``jobs get`` prints the
job as JSON without ``--json``, as it did before ``jobs show``. The commands run in this
process through :func:`forerunner.cli.main`, against a real manager, with a worker in a
thread where a job must run; tests/cli/ covers the human output.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pytest

from forerunner import cli
from forerunner.worker import Worker

if TYPE_CHECKING:
    from collections.abc import Iterator

    from forerunner.client import Client
    from forerunner.manager import Manager


@pytest.fixture
def worker(manager: Manager) -> Iterator[Worker]:
    """A worker running ``ping`` (echo) and ``fail`` (raises) against the manager."""
    running = Worker(2)
    running.register_job_handler("ping", lambda job_id, data: data)

    @running.task("fail")
    def fail(job_id: str, data: Any) -> Any:
        raise RuntimeError("as asked")

    thread = threading.Thread(target=running.start, args=(manager.url,), daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(15)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def test_submit_prints_the_queued_job(manager: Manager, capsys: pytest.CaptureFixture[str]) -> None:
    code, job, _ = run(
        capsys, "submit", "ping", "--data", '{"a": 1}', "--key", "k1", "--priority", "3",
        "--manager", manager.url, "--json",
    )  # fmt: skip

    assert code == 0
    assert (job["type"], job["data"], job["state"]) == ("ping", {"a": 1}, "queued")
    assert (job["key"], job["priority"]) == ("k1", 3)


def test_submit_wait_prints_the_result_and_exits_0(
    manager: Manager, worker: Worker, capsys: pytest.CaptureFixture[str]
) -> None:
    code, job, _ = run(
        capsys, "submit", "ping", "--data", "[1, 2]", "--wait", "--manager", manager.url, "--json"
    )

    assert code == 0
    assert (job["state"], job["result"]) == ("succeeded", [1, 2])


def test_submit_wait_exits_1_when_the_job_fails(
    manager: Manager, worker: Worker, capsys: pytest.CaptureFixture[str]
) -> None:
    code, job, _ = run(
        capsys,
        "submit",
        "fail",
        "--max-attempts",
        "1",
        "--wait",
        "--manager",
        manager.url,
        "--json",
    )

    assert code == 1
    assert job["state"] == "failed"
    assert job["error"]["type"] == "RuntimeError"


def test_jobs_get_list_cancel_retry(
    manager: Manager, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    job = client.submit("ping")
    url = ["--manager", manager.url]

    assert run(capsys, "jobs", "get", job.id, *url)[1]["id"] == job.id
    assert run(capsys, "jobs", "cancel", job.id, *url, "--json")[1]["jobs"][0]["state"] == (
        "cancelled"
    )
    assert run(capsys, "jobs", "retry", job.id, *url, "--json")[1]["jobs"][0]["state"] == "queued"
    code, page, _ = run(
        capsys, "jobs", "list", "--state", "queued", "--type", "ping", *url, "--json"
    )
    assert code == 0
    assert [item["id"] for item in page["jobs"]] == [job.id]
    assert page["next"] is None


def test_errors_are_one_line_with_their_exit_code(
    manager: Manager, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "jobs", "get", "missing", "--manager", manager.url)
    assert code == 4
    assert err.count("\n") == 1
    assert err.startswith("forerunner: error:")

    code, _, err = run(capsys, "submit", "ping", "--data", "{not json", "--manager", manager.url)
    assert code == 2
    assert "--data is not JSON" in err

    code, _, err = run(capsys, "jobs", "cancel", "x", "--manager", "http://127.0.0.1:9")
    assert code == 3
    assert "did not answer" in err
