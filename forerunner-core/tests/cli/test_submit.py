"""``forerunner submit``: one job from the arguments, or every job of a JSON Lines file.

A file is checked whole before anything is sent: a bad line is reported with its line
number and nothing is submitted. Good files go in batches of up to 1000 with progress
on stderr (a bar on a terminal, a line per batch elsewhere), then a summary of jobs
created and jobs that already existed by key.
"""

from __future__ import annotations

import io
import json
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import Ran

    from forerunner.client import Client
    from forerunner.worker import Worker


def jsonl(path: Path, *lines: object) -> str:
    """Write ``lines`` (dicts as JSON, strings as they are) one per line; return the path."""
    path.write_text(
        "".join(f"{line if isinstance(line, str) else json.dumps(line)}\n" for line in lines),
        encoding="utf-8",
    )
    return str(path)


def every_job(client: Client) -> list[str]:
    return [job.id for job in client.list(limit=1000).jobs]


def test_submit_one_job_says_its_id_and_state(
    forerunner: Callable[..., Ran], client: Client
) -> None:
    ran = forerunner("submit", "ping", "--data", '{"a": 1}', "--key", "k1")

    assert ran.code == 0
    [job] = client.list().jobs
    assert ran.out == f"submitted {job.id} (ping), queued\n"
    assert (job.data, job.key) == ({"a": 1}, "k1")


def test_submit_json_prints_the_job(forerunner: Callable[..., Ran]) -> None:
    ran = forerunner("submit", "ping", "--data", "[1]", "--priority", "3", "--json")

    assert ran.code == 0
    assert (ran.json["type"], ran.json["data"], ran.json["priority"]) == ("ping", [1], 3)


def test_submit_wait_shows_the_ended_job_and_exits_1_unless_it_succeeded(
    forerunner: Callable[..., Ran], worker: Worker
) -> None:
    succeeded = forerunner("submit", "ping", "--data", '"hi"', "--wait")
    failed = forerunner("submit", "fail", "--data", '"boom"', "--max-attempts", "1", "--wait")

    assert succeeded.code == 0
    assert ["state", "succeeded"] in succeeded.rows
    assert ['"hi"'] in [row[1:] for row in succeeded.rows if row[:1] == ["result"]]
    assert failed.code == 1
    assert ["state", "failed"] in failed.rows
    assert ["error", "RuntimeError:", "as", "asked:", "boom"] in failed.rows
    assert "Traceback (most recent call last):" in failed.out


def test_submit_file_creates_every_job_in_file_order(
    forerunner: Callable[..., Ran], client: Client, tmp_path: Path
) -> None:
    path = jsonl(
        tmp_path / "jobs.jsonl",
        {"type": "ping", "data": {"n": 1}},
        "",
        {"type": "ping", "data": {"n": 2}, "priority": 5, "key": "two"},
        {"type": "word_count", "data": {"text": "a b"}, "delay": 3600},
    )

    ran = forerunner("submit", "--file", path, "--json")

    assert ran.code == 0
    assert (ran.json["submitted"], ran.json["created"], ran.json["existing"]) == (3, 3, 0)
    assert [job["line"] for job in ran.json["jobs"]] == [1, 3, 4], "blank lines are skipped"
    jobs = [client.get(job["id"]) for job in ran.json["jobs"]]
    assert [(job.type, job.data) for job in jobs] == [
        ("ping", {"n": 1}),
        ("ping", {"n": 2}),
        ("word_count", {"text": "a b"}),
    ]
    assert (jobs[1].priority, jobs[1].key, jobs[2].state.value) == (5, "two", "scheduled")


def test_submit_file_counts_jobs_whose_key_already_existed(
    forerunner: Callable[..., Ran], client: Client, tmp_path: Path
) -> None:
    existing = client.submit("ping", key="seen")
    path = jsonl(tmp_path / "jobs.jsonl", {"type": "ping", "key": "seen"}, {"type": "ping"})

    ran = forerunner("submit", "--file", path)

    assert ran.code == 0
    assert ran.out == f"submitted 2 jobs from {path}: 1 created, 1 already existed (by key)\n"
    assert len(every_job(client)) == 2
    assert existing.id in every_job(client)


def test_submit_file_with_a_bad_line_submits_nothing_and_names_the_line(
    forerunner: Callable[..., Ran], client: Client, tmp_path: Path
) -> None:
    # Given a file whose third and fifth lines are bad, after good ones
    path = jsonl(
        tmp_path / "jobs.jsonl",
        {"type": "ping"},
        {"type": "ping"},
        {"type": "ping", "priority": "high"},
        {"type": "ping"},
        "{not json",
    )

    # When it is submitted
    ran = forerunner("submit", "--file", path)

    # Then nothing is, and one line names the first bad line, the field and the rest
    assert ran.code == 2
    assert ran.out == ""
    assert ran.err.count("\n") == 1
    assert ran.err.startswith(f"forerunner: error: {path} line 3: Expected `int`, got `str`")
    assert "$.priority" in ran.err
    assert "(and 1 more bad line); nothing was submitted" in ran.err
    assert every_job(client) == []


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ({"type": "ping", "delay": 5, "run_at": "2030-01-01T00:00:00Z"}, "not both"),
        ({"type": "ping", "run_at": "2030-01-01T00:00:00"}, "no time zone"),
        ({"type": "ping", "colour": "red"}, "unknown field `colour`"),
        ({"type": ""}, "$.type"),
        ([1, 2], "Expected `object`, got `array`"),
    ],
)
def test_submit_file_holds_each_line_to_the_managers_rules(
    forerunner: Callable[..., Ran], client: Client, tmp_path: Path, spec: object, said: str
) -> None:
    path = jsonl(tmp_path / "jobs.jsonl", {"type": "ping"}, spec)

    ran = forerunner("submit", "--file", path)

    assert ran.code == 2
    assert f"{path} line 2: " in ran.err
    assert said in ran.err
    assert every_job(client) == []


def test_submit_file_reads_stdin_for_a_dash(
    forerunner: Callable[..., Ran], client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = b'{"type": "ping", "data": 1}\n{"type": "ping", "data": 2}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(lines)))

    ran = forerunner("submit", "--file", "-")

    assert ran.code == 0
    assert ran.out == "submitted 2 jobs from stdin: 2 created, 0 already existed (by key)\n"
    assert sorted(job.data for job in client.list().jobs) == [1, 2]


def test_submit_file_of_thousands_goes_in_batches_with_progress_on_stderr(
    forerunner: Callable[..., Ran], client: Client, tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "jobs.jsonl", *({"type": "ping", "data": n} for n in range(2500)))

    ran = forerunner("submit", "--file", path, "--json")

    assert ran.code == 0
    assert ran.json["created"] == 2500
    assert ran.err == ("submitted 1000/2500\nsubmitted 2000/2500\nsubmitted 2500/2500\n"), (
        "one line per batch when stderr is not a terminal"
    )
    ids = [job["id"] for job in ran.json["jobs"]]
    assert len(set(ids)) == 2500
    assert client.get(ids[1234]).data == 1234


def test_submit_file_of_an_unreadable_path_is_a_usage_error(
    forerunner: Callable[..., Ran], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.jsonl"

    ran = forerunner("submit", "--file", str(missing))

    assert ran.code == 2
    assert ran.err == f"forerunner: error: {missing}: cannot read: No such file or directory\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["submit"],
        ["submit", "ping", "--file", "jobs.jsonl"],
        ["submit", "--file", "jobs.jsonl", "--wait"],
        ["submit", "--file", "jobs.jsonl", "--data", "1"],
    ],
)
def test_submit_takes_a_type_or_a_file(forerunner: Callable[..., Ran], argv: list[str]) -> None:
    ran = forerunner(*argv)

    assert (ran.code, ran.out) == (2, "")
    assert ran.err.count("\n") == 1
