"""``forerunner jobs``: list, show, get, cancel, retry (one by one and in bulk), purge.

Human output is a table whose rows split on blanks when stdout is not a terminal;
``--json`` is the API's document. Per-id actions try every id and exit 4 when one does
not exist, else 1 when one refused, else 0. Bulk retry and purge ask first, take
``--yes``, and refuse (exit 2) without it when stdin is not a terminal.
"""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING

import pytest

from forerunner.model import JobState

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Ran

    from forerunner.client import Client
    from forerunner.manager import Manager
    from forerunner.model import Job
    from forerunner.worker import Worker

HEADER = ["ID", "TYPE", "STATE", "ATTEMPT", "CREATED", "ENDED", "KEY"]


class Terminal(io.StringIO):
    """stdin as a person at a terminal: it answers the prompt with the text given."""

    def isatty(self) -> bool:
        return True


def failed_job(client: Client, data: str = "x", type: str = "fail") -> Job:
    """A job that failed on the test's worker, its one attempt spent."""
    job = client.submit(type, data, max_attempts=1)
    ended = client.wait(job.id, 30)
    assert ended.state is JobState.FAILED
    return ended


# jobs list


def test_list_shows_a_table_newest_first(forerunner: Callable[..., Ran], client: Client) -> None:
    first = client.submit("ping", key="first")
    second = client.submit("word_count")

    ran = forerunner("jobs", "list")

    assert ran.code == 0
    assert ran.rows[0] == HEADER
    assert [row[:4] for row in ran.rows[1:]] == [
        [second.id, "word_count", "queued", "0/3"],
        [first.id, "ping", "queued", "0/3"],
    ]
    assert ran.rows[2][-1] == "first"
    assert "next page" not in ran.out


def test_list_json_is_the_api_page(forerunner: Callable[..., Ran], client: Client) -> None:
    job = client.submit("ping", {"a": 1})

    ran = forerunner("jobs", "list", "--json")

    assert ran.code == 0
    assert ran.json["next"] is None
    [listed] = ran.json["jobs"]
    assert (listed["id"], listed["data"], listed["state"]) == (job.id, {"a": 1}, "queued")


def test_list_filters_by_state_type_and_text(
    forerunner: Callable[..., Ran], client: Client
) -> None:
    ping = client.submit("ping", key="order-17")
    cancelled = client.cancel(client.submit("ping").id)
    counted = client.submit("word_count", key="order-18")

    def ids(*argv: str) -> list[str]:
        return [job["id"] for job in forerunner("jobs", "list", "--json", *argv).json["jobs"]]

    assert ids("--state", "cancelled") == [cancelled.id]
    assert ids("--type", "word_count") == [counted.id]
    assert ids("--text", "order-") == [counted.id, ping.id]
    assert ids("--text", "order-1", "--type", "ping", "--state", "queued") == [ping.id]


def test_list_pages_with_limit_and_prints_the_next_cursor(
    forerunner: Callable[..., Ran], client: Client
) -> None:
    jobs = [client.submit("ping", n) for n in range(5)]
    newest_first = [job.id for job in reversed(jobs)]

    first = forerunner("jobs", "list", "--limit", "2")
    cursor = first.out.splitlines()[-1].removeprefix("next page: --before ")
    second = forerunner("jobs", "list", "--limit", "2", "--before", cursor, "--json")

    assert [row[0] for row in first.rows[1:-1]] == newest_first[:2]
    assert first.out.splitlines()[-1].startswith("next page: --before ")
    assert [job["id"] for job in second.json["jobs"]] == newest_first[2:4]
    assert second.json["next"] is not None


def test_list_all_follows_every_page(forerunner: Callable[..., Ran], client: Client) -> None:
    jobs = [client.submit("ping", n) for n in range(5)]

    ran = forerunner("jobs", "list", "--all", "--limit", "2", "--json")
    table = forerunner("jobs", "list", "--all", "--limit", "2")

    assert [job["id"] for job in ran.json["jobs"]] == [job.id for job in reversed(jobs)]
    assert ran.json["next"] is None
    assert len(table.rows) == 6
    assert "next page" not in table.out


def test_list_of_nothing_says_so(forerunner: Callable[..., Ran]) -> None:
    assert forerunner("jobs", "list").out == "no jobs\n"
    assert forerunner("jobs", "list", "--json").json == {"jobs": [], "next": None}


def test_list_limit_out_of_range_is_a_usage_error(forerunner: Callable[..., Ran]) -> None:
    ran = forerunner("jobs", "list", "--limit", "0")

    assert (ran.code, ran.out) == (2, "")
    assert "--limit must be from 1 to 1000" in ran.err


# jobs show and get


def test_show_prints_every_field_the_error_traceback_and_timeline(
    forerunner: Callable[..., Ran], client: Client, worker: Worker
) -> None:
    job = failed_job(client, "boom")

    ran = forerunner("jobs", "show", job.id)

    assert ran.code == 0
    fields = {row[0]: row[1:] for row in ran.rows if row}
    assert fields["id"] == [job.id]
    assert fields["state"] == ["failed"]
    assert fields["attempt"] == ["1", "of", "1"]
    assert fields["data"] == ['"boom"']
    assert fields["worker"] == [worker.worker_id]
    assert fields["error"] == ["RuntimeError:", "as", "asked:", "boom"]
    traceback = ran.out.split("\ntraceback\n", 1)[1]
    assert traceback.startswith("Traceback (most recent call last):")
    assert "RuntimeError: as asked: boom" in traceback
    timeline = ran.out.split("\ntimeline\n", 1)[1].splitlines()
    assert timeline[0].split() == ["AT", "EVENT", "ATTEMPT", "WORKER", "DETAIL"]
    events = [line.split()[1] for line in timeline[1:]]
    assert events[0] == "submitted"
    assert events[-1] == "failed"


def test_show_json_has_the_job_and_its_events(
    forerunner: Callable[..., Ran], client: Client, worker: Worker
) -> None:
    job = failed_job(client)

    ran = forerunner("jobs", "show", job.id, "--json")

    assert ran.code == 0
    assert ran.json["job"]["id"] == job.id
    assert ran.json["job"]["error"]["type"] == "RuntimeError"
    assert ran.json["events"][0]["event"] == "submitted"
    assert set(ran.json["events"][0]) == {"at", "event", "attempt", "worker", "detail"}


def test_get_prints_the_job_as_json_as_it_always_did(
    forerunner: Callable[..., Ran], client: Client
) -> None:
    job = client.submit("ping", [1, 2])

    for ran in (forerunner("jobs", "get", job.id), forerunner("jobs", "get", job.id, "--json")):
        assert ran.code == 0
        assert (ran.json["id"], ran.json["data"]) == (job.id, [1, 2])


@pytest.mark.parametrize("action", ["show", "get"])
def test_show_of_an_unknown_job_exits_4(forerunner: Callable[..., Ran], action: str) -> None:
    ran = forerunner("jobs", action, "no-such-job")

    assert (ran.code, ran.out) == (4, "")
    assert ran.err.startswith("forerunner: error: no job with id 'no-such-job'")
    assert ran.err.count("\n") == 1


# jobs cancel and retry by id


def test_cancel_cancels_every_job_given(forerunner: Callable[..., Ran], client: Client) -> None:
    one, two = client.submit("ping"), client.submit("ping")

    ran = forerunner("jobs", "cancel", one.id, two.id)

    assert ran.code == 0
    assert ran.rows[0] == ["cancelled", "2", "of", "2"]
    assert [one.id, "ping", "cancelled"] in ran.rows
    assert [two.id, "ping", "cancelled"] in ran.rows
    assert {client.get(one.id).state, client.get(two.id).state} == {JobState.CANCELLED}


def test_cancel_goes_on_past_a_job_that_ended_and_exits_1(
    forerunner: Callable[..., Ran], client: Client
) -> None:
    ended = client.cancel(client.submit("ping").id)
    waiting = client.submit("ping")

    ran = forerunner("jobs", "cancel", ended.id, waiting.id, "--json")

    assert ran.code == 1
    assert [job["id"] for job in ran.json["jobs"]] == [waiting.id]
    [error] = ran.json["errors"]
    assert (error["id"], error["code"]) == (ended.id, "invalid_transition")
    assert ran.err.count("\n") == 1
    assert ran.err.startswith("forerunner: error: ")
    assert client.get(waiting.id).state is JobState.CANCELLED


def test_cancel_of_an_unknown_id_exits_4_after_doing_the_others(
    forerunner: Callable[..., Ran], client: Client
) -> None:
    ended = client.cancel(client.submit("ping").id)
    waiting = client.submit("ping")

    ran = forerunner("jobs", "cancel", "no-such-job", ended.id, waiting.id)

    assert ran.code == 4
    assert ran.rows[0] == ["cancelled", "1", "of", "3"]
    assert ran.err.count("\n") == 2
    assert "'no-such-job'" in ran.err.splitlines()[0]
    assert client.get(waiting.id).state is JobState.CANCELLED


def test_retry_by_id_queues_failed_jobs_again(
    forerunner: Callable[..., Ran], client: Client, manager: Manager
) -> None:
    cancelled = client.cancel(client.submit("ping").id)
    queued = client.submit("ping")

    ran = forerunner("jobs", "retry", cancelled.id, queued.id, "--json")

    assert ran.code == 1, "a queued job cannot be retried"
    assert [(job["id"], job["state"]) for job in ran.json["jobs"]] == [(cancelled.id, "queued")]
    assert ran.json["errors"][0]["code"] == "invalid_transition"


# bulk retry


def test_retry_failed_with_yes_retries_the_failed_jobs_of_a_type(
    forerunner: Callable[..., Ran], client: Client, worker: Worker
) -> None:
    failed = [failed_job(client, str(n)) for n in range(3)]
    cancelled = client.cancel(client.submit("fail").id)

    ran = forerunner("jobs", "retry", "--failed", "--type", "fail", "--yes", "--json")

    assert ran.code == 0
    assert ran.json["retried"] == 3
    assert sorted(ran.json["ids"]) == sorted(job.id for job in failed)
    assert client.get(cancelled.id).state is JobState.CANCELLED


def test_retry_cancelled_human_output_says_how_many(
    forerunner: Callable[..., Ran], client: Client
) -> None:
    client.cancel(client.submit("ping").id)

    ran = forerunner("jobs", "retry", "--cancelled", "--limit", "5", "-y")

    assert (ran.code, ran.out) == (0, "retried 1 cancelled jobs\n")


def test_bulk_retry_without_yes_refuses_when_stdin_is_not_a_terminal(
    forerunner: Callable[..., Ran], client: Client, worker: Worker
) -> None:
    job = failed_job(client)

    ran = forerunner("jobs", "retry", "--failed", "--json")

    assert (ran.code, ran.out) == (2, "")
    assert ran.err == (
        "forerunner: error: refusing to retry failed jobs without --yes: "
        "stdin is not a terminal to ask on\n"
    )
    assert client.get(job.id).state is JobState.FAILED


@pytest.mark.parametrize(
    "agreed", [("y\n", 0, "queued"), ("\n", 1, "cancelled")], ids=["yes", "no"]
)
def test_bulk_retry_asks_on_a_terminal_and_does_only_what_was_agreed(
    forerunner: Callable[..., Ran],
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    agreed: tuple[str, int, str],
) -> None:
    answer, code, state = agreed
    job = client.cancel(client.submit("ping").id)
    monkeypatch.setattr(sys, "stdin", Terminal(answer))

    ran = forerunner("jobs", "retry", "--cancelled", "--type", "ping")

    assert ran.code == code
    assert ran.err.startswith(
        "Retry up to 1000 cancelled jobs of type 'ping', newest first? [y/N] "
    )
    assert client.get(job.id).state.value == state


def test_retry_takes_ids_or_a_selection_not_both(
    forerunner: Callable[..., Ran], client: Client
) -> None:
    job = client.submit("ping")

    for argv in (
        ["--failed", job.id],
        [],
        ["--type", "ping", job.id],
        ["--failed", "--limit", "0"],
    ):
        ran = forerunner("jobs", "retry", *argv, "--yes")
        assert (ran.code, ran.out) == (2, ""), argv
        assert ran.err.count("\n") == 1


# purge


def test_purge_with_yes_deletes_the_jobs_that_ended_long_enough_ago(
    forerunner: Callable[..., Ran], client: Client
) -> None:
    old = client.cancel(client.submit("ping").id)
    waiting = client.submit("ping")

    kept = forerunner("jobs", "purge", "--older-than", "7d", "--yes", "--json")
    purged = forerunner("jobs", "purge", "--older-than", "0", "--yes")

    assert (kept.code, kept.json) == (0, {"purged": 0, "older_than": 604800.0})
    assert (purged.code, purged.out) == (
        0,
        "deleted 1 finished jobs that ended more than 0.0s ago\n",
    )
    assert [job.id for job in client.list().jobs] == [waiting.id]
    assert old.id not in [job.id for job in client.list().jobs]


def test_purge_without_yes_refuses_when_stdin_is_not_a_terminal(
    forerunner: Callable[..., Ran], client: Client
) -> None:
    job = client.cancel(client.submit("ping").id)

    ran = forerunner("jobs", "purge", "--older-than", "0")

    assert (ran.code, ran.out) == (2, "")
    assert "refusing to delete finished jobs that ended more than 0.0s ago without --yes" in ran.err
    assert client.get(job.id).state is JobState.CANCELLED


def test_purge_declined_at_the_prompt_deletes_nothing_and_exits_1(
    forerunner: Callable[..., Ran], client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = client.cancel(client.submit("ping").id)
    monkeypatch.setattr(sys, "stdin", Terminal("no\n"))

    ran = forerunner("jobs", "purge", "--older-than", "12h")

    assert ran.code == 1
    assert ran.err.startswith(
        "Delete up to 100000 finished jobs that ended more than 12h ago? This cannot be undone."
    )
    assert ran.err.endswith("nothing deleted\n")
    assert client.get(job.id).state is JobState.CANCELLED


@pytest.mark.parametrize("duration", ["soon", "7x", "-5", "5m3", ""])
def test_purge_refuses_a_duration_it_cannot_read(
    forerunner: Callable[..., Ran], duration: str
) -> None:
    ran = forerunner("jobs", "purge", "--older-than", duration, "--yes")

    assert (ran.code, ran.out) == (2, "")
    assert "is not a duration" in ran.err
