"""``forerunner submit`` and ``forerunner jobs``: the HTTP client on the command line.

Every command prints JSON on stdout (a job as the API shows it, or a page of jobs), so
its output can be piped into ``jq`` or read back by a script. Errors are one line on
stderr with exit code 2 (the CLI's rule); ``submit --wait`` exits 1 when the job ends
in any state but ``succeeded``.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Final

import msgspec

from forerunner.client import DEFAULT_URL, Client
from forerunner.errors import ValidationError
from forerunner.model import JobState
from forerunner.wire import job_to_wire

if TYPE_CHECKING:
    import argparse

    from forerunner.model import Job

__all__ = ["add_client_commands"]

#: Exit code of ``submit --wait`` when the job did not succeed.
EXIT_JOB_FAILED: Final = 1
#: Seconds per wait request of ``submit --wait``; the command waits until the job ends.
_WAIT_SLICE: Final = 60.0


def add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``forerunner submit`` and ``forerunner jobs ...`` on the CLI's subcommands."""
    submit = commands.add_parser(
        "submit",
        help="submit a job to a manager",
        description="Submit one job and print it as JSON; with --wait, print it once it ends.",
    )
    _add_manager(submit)
    submit.add_argument("type", metavar="TYPE", help="the task name, e.g. ping")
    submit.add_argument("--data", default="null", metavar="JSON", help="the job's data")
    submit.add_argument("--key", default=None, help="idempotency key")
    submit.add_argument("--priority", type=int, default=0, metavar="N")
    submit.add_argument("--max-attempts", type=int, default=3, metavar="N")
    submit.add_argument("--delay", type=float, default=None, metavar="S")
    submit.add_argument("--timeout", type=float, default=None, metavar="S", help="per attempt")
    submit.add_argument(
        "--wait", action="store_true", help="wait for the job to end; exit 1 unless it succeeded"
    )
    submit.set_defaults(run=_run_submit)

    jobs = commands.add_parser("jobs", help="inspect and manage jobs on a manager")
    actions = jobs.add_subparsers(title="actions", dest="action", required=True)
    for action, help_text in (
        ("get", "print one job"),
        ("cancel", "cancel a job that has not ended"),
        ("retry", "run a failed or cancelled job again"),
    ):
        parser = actions.add_parser(action, help=help_text)
        _add_manager(parser)
        parser.add_argument("id", metavar="ID")
        parser.set_defaults(run=_run_job_action)
    listing = actions.add_parser("list", help="list jobs, newest first")
    _add_manager(listing)
    listing.add_argument("--state", choices=[state.value for state in JobState], default=None)
    listing.add_argument("--type", default=None)
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--before", default=None, metavar="ID", help="the previous page's next")
    listing.set_defaults(run=_run_list)


def _add_manager(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--manager", default=DEFAULT_URL, metavar="URL", help=f"default {DEFAULT_URL}"
    )


def _print(document: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(document), indent=2).decode())
    sys.stdout.write("\n")


def _job_json(job: Job) -> Any:
    return job_to_wire(job)


def _run_submit(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as error:
        raise ValidationError(f"--data is not JSON: {error}", field="data") from error
    with Client(args.manager) as client:
        job = client.submit(
            args.type,
            data,
            key=args.key,
            priority=args.priority,
            max_attempts=args.max_attempts,
            delay=args.delay,
            timeout=args.timeout,
        )
        if not args.wait:
            _print(_job_json(job))
            return 0
        while not job.state.terminal:
            job = client.wait(job.id, _WAIT_SLICE)
    _print(_job_json(job))
    return 0 if job.state is JobState.SUCCEEDED else EXIT_JOB_FAILED


def _run_job_action(args: argparse.Namespace) -> int:
    with Client(args.manager) as client:
        if args.action == "get":
            job = client.get(args.id)
        elif args.action == "cancel":
            job = client.cancel(args.id)
        else:
            job = client.retry(args.id)
    _print(_job_json(job))
    return 0


def _run_list(args: argparse.Namespace) -> int:
    with Client(args.manager) as client:
        page = client.list(state=args.state, type=args.type, limit=args.limit, before=args.before)
    _print({"jobs": [_job_json(job) for job in page.jobs], "next": page.next})
    return 0
