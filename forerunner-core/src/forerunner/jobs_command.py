"""``forerunner jobs``: list, show, cancel, retry and purge the jobs of a manager.

Commands that take several ids (``cancel``, ``retry``) try every id and report each
one that did not work on its own line of stderr; the exit code is 4 when an id does not
exist, else 1 when a job was in a state that does not allow the action, else 0. A
manager that does not answer stops the command at once (exit 3), and so does one that
refuses the token (exit 5): what was done up to then is done.

The commands that change many jobs at once, ``retry --failed`` and ``purge``, ask
first; ``--yes`` answers for a script, and without it they refuse when stdin is not a
terminal rather than wait for an answer no one will type.

``jobs get`` predates ``jobs show`` and keeps its output, the job as JSON, for the
scripts written against it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any, Final

import attrs
from rich.console import Group
from rich.table import Table
from rich.text import Text

from forerunner.console import (
    EXIT_NOT_DONE,
    EXIT_NOT_FOUND,
    EXIT_OK,
    Output,
    add_json_option,
    add_manager_option,
    confirm,
    format_age,
    format_ago,
    open_client,
    parse_duration,
    print_json,
    state_text,
)
from forerunner.errors import InvalidTransition, JobNotFound, ValidationError
from forerunner.model import JobState
from forerunner.wire import MAX_BATCH, MAX_BULK, job_to_wire

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from rich.console import RenderableType

    from forerunner.client import JobTimeline
    from forerunner.model import Job

__all__ = ["add_jobs_command", "print_job"]

#: Jobs per page of ``jobs list`` unless ``--limit`` says otherwise.
_PAGE: Final = 100
#: Bulk retry's default ``--limit``; the manager takes up to ``MAX_BULK``.
_RETRY_LIMIT: Final = 1000
#: Purge's default ``--limit``, the manager's default too.
_PURGE_LIMIT: Final = 100_000


@attrs.frozen(kw_only=True)
class _Refused:
    """An id a per-job action could not act on, and why."""

    id: str
    code: str
    message: str


def add_jobs_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``forerunner jobs ...`` on the CLI's subcommands."""
    jobs = commands.add_parser(
        "jobs",
        help="list, show, cancel, retry and purge jobs",
        description=(
            "List, show, cancel, retry and purge the jobs of a manager. Exit codes: 0 done, "
            "1 a job refused the action, 2 usage error, 3 manager unreachable, 4 no such job, "
            "5 not allowed (no token, or one whose role may not)."
        ),
    )
    actions = jobs.add_subparsers(title="actions", dest="action", required=True)

    listing = _action(actions, "list", "list jobs, newest first, a page at a time")
    listing.add_argument("--state", choices=[state.value for state in JobState], default=None)
    listing.add_argument("--type", default=None, help="only jobs of this task name")
    listing.add_argument("--text", default=None, help="only jobs whose id or key contains TEXT")
    listing.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help=f"jobs per page, 1 to {MAX_BATCH} (default {_PAGE}; {MAX_BATCH} with --all)",
    )
    listing.add_argument("--before", default=None, metavar="ID", help="the previous page's next")
    listing.add_argument("--all", action="store_true", help="follow every page to the oldest job")
    listing.set_defaults(run=_run_list)

    show = _action(actions, "show", "show one job: every field, its error and its timeline")
    show.add_argument("id", metavar="ID")
    show.set_defaults(run=_run_show)

    get = _action(actions, "get", "print one job as JSON (what show --json shows, without events)")
    get.add_argument("id", metavar="ID")
    get.set_defaults(run=_run_get)

    cancel = _action(actions, "cancel", "cancel jobs that have not ended")
    cancel.add_argument("ids", metavar="ID", nargs="+")
    cancel.set_defaults(run=_run_cancel)

    retry = _action(
        actions,
        "retry",
        "run failed or cancelled jobs again: the ids given, or with --failed or "
        "--cancelled every such job (newest first, up to --limit)",
    )
    retry.add_argument("ids", metavar="ID", nargs="*")
    which = retry.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="retry the failed jobs")
    which.add_argument("--cancelled", action="store_true", help="retry the cancelled jobs")
    retry.add_argument("--type", default=None, help="with --failed/--cancelled: only this type")
    retry.add_argument(
        "--limit",
        type=int,
        default=_RETRY_LIMIT,
        metavar="N",
        help=f"with --failed/--cancelled: at most N jobs, up to {MAX_BULK} "
        f"(default {_RETRY_LIMIT})",
    )
    retry.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    retry.set_defaults(run=_run_retry)

    purge = _action(actions, "purge", "delete finished jobs that ended long enough ago")
    purge.add_argument(
        "--older-than",
        required=True,
        metavar="DURATION",
        help="how long ago they ended: seconds, or 30m, 12h, 7d, 2w, 1d12h",
    )
    purge.add_argument(
        "--limit",
        type=int,
        default=_PURGE_LIMIT,
        metavar="N",
        help=f"delete at most N jobs (default {_PURGE_LIMIT})",
    )
    purge.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(run=_run_purge)


def _action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse.ArgumentParser:
    parser = actions.add_parser(
        name, help=help_text, description=help_text[0].upper() + help_text[1:] + "."
    )
    add_manager_option(parser)
    add_json_option(parser)
    return parser


# jobs list


def _run_list(args: argparse.Namespace) -> int:
    limit = args.limit if args.limit is not None else (MAX_BATCH if args.all else _PAGE)
    if not 1 <= limit <= MAX_BATCH:
        raise ValidationError(f"--limit must be from 1 to {MAX_BATCH}, got {limit}")
    jobs: list[Job] = []
    before: str | None = args.before
    with open_client(args) as client:
        while True:
            page = client.list(
                state=args.state, type=args.type, text=args.text, limit=limit, before=before
            )
            jobs.extend(page.jobs)
            before = page.next
            if not args.all or before is None:
                break
    if args.json:
        print_json({"jobs": [job_to_wire(job) for job in jobs], "next": before})
        return EXIT_OK
    out = Output()
    if not jobs:
        out.print("no jobs")
    else:
        out.print(_jobs_table(out, jobs))
    if before is not None:
        out.print(f"next page: --before {before}")
    return EXIT_OK


def _jobs_table(out: Output, jobs: list[Job]) -> Table:
    now = dt.datetime.now(dt.UTC)
    table = out.table("ID", "TYPE", "STATE", "ATTEMPT", "CREATED", "ENDED", "KEY")
    for job in jobs:
        table.add_row(
            job.id,
            job.type,
            state_text(job.state),
            f"{job.attempt}/{job.max_attempts}",
            format_ago(job.created_at, now),
            format_ago(job.finished_at, now),
            job.key or "-",
        )
    return table


# jobs show and get


def _run_show(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        timeline = client.timeline(args.id)
    if args.json:
        print_json({"job": job_to_wire(timeline.job), "events": timeline.events})
        return EXIT_OK
    out = Output()
    print_job(out, timeline.job)
    _print_timeline(out, timeline)
    return EXIT_OK


def _run_get(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        job = client.get(args.id)
    print_json(job_to_wire(job))
    return EXIT_OK


def print_job(out: Output, job: Job) -> None:
    """Every field of ``job``, then its error with the traceback, as a person reads them."""
    now = dt.datetime.now(dt.UTC)
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    rows: list[tuple[str, RenderableType]] = [
        ("id", job.id),
        ("type", job.type),
        ("state", state_text(job.state)),
        ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("priority", str(job.priority)),
        ("key", job.key or "-"),
        ("created", _moment(job.created_at, now)),
        ("run at", _moment(job.run_at, now)),
        ("started", _moment(job.started_at, now)),
        ("finished", _moment(job.finished_at, now)),
        ("timeout", "-" if job.timeout is None else f"{job.timeout:g}s per attempt"),
        ("worker", job.worker or "-"),
        ("lease until", _moment(job.lease_until, now)),
        ("data", _json_text(job.data)),
        ("progress", _json_text(job.progress)),
        ("result", _json_text(job.result)),
    ]
    if job.error is not None:
        rows.append(("error", Text(f"{job.error.type}: {job.error.message}", style="red")))
    for name, value in rows:
        fields.add_row(name, value)
    parts: list[RenderableType] = [fields]
    if job.error is not None and job.error.traceback:
        parts += [Text(""), Text("traceback", style="bold"), Text(job.error.traceback.rstrip())]
    out.print(Group(*parts))


def _print_timeline(out: Output, timeline: JobTimeline) -> None:
    out.print("")
    if not timeline.events:
        out.heading("timeline: no events recorded")
        return
    table = out.table("AT", "EVENT", "ATTEMPT", "WORKER", "DETAIL", title="timeline")
    for event in timeline.events:
        table.add_row(
            event.at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            event.event,
            "-" if event.attempt is None else str(event.attempt),
            event.worker or "-",
            "-" if event.detail is None else _compact(event.detail),
        )
    out.print(table)


def _moment(moment: dt.datetime | None, now: dt.datetime) -> str:
    if moment is None:
        return "-"
    stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{stamp} ({format_ago(moment, now)})"


def _json_text(value: Any) -> str:
    return "-" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# jobs cancel and retry


def _run_cancel(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        return _each(args, client.cancel, "cancelled")


def _run_retry(args: argparse.Namespace) -> int:
    bulk = args.failed or args.cancelled
    if bulk and args.ids:
        raise ValidationError("give job ids or --failed/--cancelled, not both")
    if not bulk:
        if not args.ids:
            raise ValidationError("give the ids of the jobs to retry, or --failed or --cancelled")
        if args.type is not None:
            raise ValidationError("--type selects jobs for --failed or --cancelled; drop it")
        with open_client(args) as client:
            return _each(args, client.retry, "retried")
    if not 1 <= args.limit <= MAX_BULK:
        raise ValidationError(f"--limit must be from 1 to {MAX_BULK}, got {args.limit}")
    state = JobState.FAILED if args.failed else JobState.CANCELLED
    what = f"{state.value} jobs" + (f" of type {args.type!r}" if args.type else "")
    if not confirm(
        f"Retry up to {args.limit} {what}, newest first?",
        yes=args.yes,
        refusal=f"refusing to retry {what} without --yes: stdin is not a terminal to ask on",
    ):
        Output.stderr().print("nothing retried")
        return EXIT_NOT_DONE
    with open_client(args) as client:
        retried = client.retry_many(state=state, type=args.type, limit=args.limit)
    if args.json:
        print_json({"retried": retried.retried, "ids": retried.ids})
    else:
        Output().print(f"retried {retried.retried} {what}")
    return EXIT_OK


def _each(args: argparse.Namespace, act: Callable[[str], Job], done: str) -> int:
    """Apply ``act`` to every id; report the refused ones on stderr, the rest on stdout."""
    jobs: list[Job] = []
    refused: list[_Refused] = []
    for job_id in args.ids:
        try:
            jobs.append(act(job_id))
        except JobNotFound as error:
            refused.append(_Refused(id=job_id, code="not_found", message=error.message))
        except InvalidTransition as error:
            refused.append(_Refused(id=job_id, code="invalid_transition", message=error.message))
    errors = Output.stderr()
    for item in refused:
        errors.print(f"forerunner: error: {' '.join(item.message.split())}")
    if args.json:
        print_json(
            {
                "jobs": [job_to_wire(job) for job in jobs],
                "errors": [attrs.asdict(item) for item in refused],
            }
        )
    elif jobs:
        out = Output()
        table = out.table("ID", "TYPE", "STATE", title=f"{done} {len(jobs)} of {len(args.ids)}")
        for job in jobs:
            table.add_row(job.id, job.type, state_text(job.state))
        out.print(table)
    if any(item.code == "not_found" for item in refused):
        return EXIT_NOT_FOUND
    return EXIT_NOT_DONE if refused else EXIT_OK


# jobs purge


def _run_purge(args: argparse.Namespace) -> int:
    seconds = parse_duration(args.older_than)
    if args.limit < 1:
        raise ValidationError(f"--limit must be 1 or more, got {args.limit}")
    given = args.older_than.strip()
    age = given if given[-1:].isalpha() else format_age(seconds)
    what = f"finished jobs that ended more than {age} ago"
    if not confirm(
        f"Delete up to {args.limit} {what}? This cannot be undone.",
        yes=args.yes,
        refusal=f"refusing to delete {what} without --yes: stdin is not a terminal to ask on",
    ):
        Output.stderr().print("nothing deleted")
        return EXIT_NOT_DONE
    with open_client(args) as client:
        purged = client.purge(older_than=seconds, limit=args.limit)
    if args.json:
        print_json({"purged": purged, "older_than": seconds})
    else:
        Output().print(f"deleted {purged} {what}")
    return EXIT_OK
