"""``forerunner submit``: one job from the command line, or many from a JSON Lines file.

``submit TYPE --data JSON`` submits one job (``--wait`` waits for it to end and exits 1
unless it succeeded). ``submit --file jobs.jsonl`` (``-`` reads stdin) submits one job
per line, a JobSpec object such as ``{"type": "ping", "data": {"n": 1}}``.

A file is all or nothing where that can be known before sending: every line is read and
checked as the manager would check it (JSON, the JobSpec schema, ``run_at`` with a time
zone and not together with ``delay``), and a bad line stops the command with its line
number before any job is sent, so fixing the file and running again never submits a job
twice. Then the jobs go in batches of up to 1000, each stored whole or not at all by the
manager, with a progress bar on stderr. Should a batch fail after all (the manager goes
away), the error says which lines were submitted; give the jobs ``key`` values to make
sending the same file again safe, since a key that exists answers with its job.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import msgspec
from rich.text import Text

from forerunner.console import (
    EXIT_NOT_DONE,
    EXIT_OK,
    Output,
    add_json_option,
    add_manager_option,
    open_client,
    print_json,
    progress,
)
from forerunner.errors import ForerunnerError, ValidationError
from forerunner.jobs_command import print_job
from forerunner.model import JobState
from forerunner.wire import MAX_BATCH, JobSpec, job_to_wire

if TYPE_CHECKING:
    import argparse

__all__ = ["JobLine", "add_submit_command", "read_job_lines"]

#: Seconds per wait request of ``submit --wait``; the command waits until the job ends.
_WAIT_SLICE: Final = 60.0
_BATCH_FIELD: Final = re.compile(r"^\$\.jobs\[(\d+)\]")


@attrs.frozen(kw_only=True)
class JobLine:
    """One job of a JSON Lines file and the line it came from (1-based), for messages."""

    line: int
    spec: JobSpec


def add_submit_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``forerunner submit`` on the CLI's subcommands."""
    submit = commands.add_parser(
        "submit",
        help="submit a job, or every job of a JSON Lines file, to a manager",
        description=(
            "Submit one job of type TYPE, or with --file one job per line of a JSON Lines "
            "file (- for stdin). Every line is checked before anything is sent: a bad line "
            "is reported with its number and nothing is submitted."
        ),
    )
    add_manager_option(submit)
    add_json_option(submit)
    submit.add_argument("type", metavar="TYPE", nargs="?", help="the task name, e.g. ping")
    submit.add_argument(
        "--file", metavar="PATH", help="a JSON Lines file of job specs, one per line; - is stdin"
    )
    submit.add_argument("--data", default=None, metavar="JSON", help="the job's data")
    submit.add_argument("--key", default=None, help="idempotency key")
    submit.add_argument("--priority", type=int, default=0, metavar="N")
    submit.add_argument("--max-attempts", type=int, default=3, metavar="N")
    submit.add_argument("--delay", type=float, default=None, metavar="S")
    submit.add_argument("--timeout", type=float, default=None, metavar="S", help="per attempt")
    submit.add_argument(
        "--wait", action="store_true", help="wait for the job to end; exit 1 unless it succeeded"
    )
    submit.set_defaults(run=_run_submit)


def _run_submit(args: argparse.Namespace) -> int:
    if args.file is not None:
        single = [
            name
            for name, given in (
                ("TYPE", args.type is not None),
                ("--data", args.data is not None),
                ("--key", args.key is not None),
                ("--wait", args.wait),
            )
            if given
        ]
        if single:
            raise ValidationError(
                f"--file takes every job from the file; drop {', '.join(single)} "
                "(they describe one job given on the command line)"
            )
        return _submit_file(args)
    if args.type is None:
        raise ValidationError("give the job's TYPE (e.g. forerunner submit ping), or --file")
    return _submit_one(args)


def _submit_one(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data if args.data is not None else "null")
    except json.JSONDecodeError as error:
        raise ValidationError(f"--data is not JSON: {error}", field="data") from error
    with open_client(args) as client:
        job = client.submit(
            args.type,
            data,
            key=args.key,
            priority=args.priority,
            max_attempts=args.max_attempts,
            delay=args.delay,
            timeout=args.timeout,
        )
        if args.wait:
            while not job.state.terminal:
                job = client.wait(job.id, _WAIT_SLICE)
    if args.json:
        print_json(job_to_wire(job))
    elif args.wait:
        print_job(Output(), job)
    else:
        Output().print(
            Text.assemble("submitted ", (job.id, "bold"), f" ({job.type}), ", job.state.value)
        )
    if args.wait and job.state is not JobState.SUCCEEDED:
        return EXIT_NOT_DONE
    return EXIT_OK


def read_job_lines(name: str) -> list[JobLine]:
    """Every job of the JSON Lines file ``name`` (``-``: stdin), checked; blank lines skipped.

    Raises :class:`ValidationError` naming the first bad line and how many others are
    bad, so one run shows where to start and how much is left to fix.
    """
    label = "stdin" if name == "-" else name
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as error:
        raise ValidationError(f"{label}: cannot read: {error.strerror or error}") from error
    jobs: list[JobLine] = []
    bad: list[str] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            jobs.append(JobLine(line=number, spec=_checked_spec(line)))
        except (msgspec.ValidationError, msgspec.DecodeError, ValidationError) as error:
            bad.append(f"{label} line {number}: {error}")
    if bad:
        others = len(bad) - 1
        more = f" (and {others} more bad line{'s' if others > 1 else ''})" if others else ""
        raise ValidationError(f"{bad[0]}{more}; nothing was submitted")
    return jobs


def _checked_spec(line: bytes) -> JobSpec:
    """The spec on ``line``, held to the manager's rules as well as the schema's."""
    spec = msgspec.json.decode(line, type=JobSpec)
    if spec.run_at is not None and spec.delay is not None:
        raise ValidationError("give run_at or delay, not both - at `$.delay`")
    if spec.run_at is not None and spec.run_at.utcoffset() is None:
        raise ValidationError("run_at has no time zone, e.g. 2030-01-01T00:00:00Z - at `$.run_at`")
    return spec


def _submit_file(args: argparse.Namespace) -> int:
    jobs = read_job_lines(args.file)
    results: list[dict[str, Any]] = []
    with open_client(args) as client, progress(len(jobs), "submitted") as advance:
        for start in range(0, len(jobs), MAX_BATCH):
            batch = jobs[start : start + MAX_BATCH]
            try:
                submitted = client.submit_batch([item.spec for item in batch])
            except ForerunnerError as error:
                raise _batch_failed(error, jobs, start) from error
            results.extend(
                {"line": item.line, "id": done.job.id, "created": done.created}
                for item, done in zip(batch, submitted, strict=True)
            )
            advance(len(batch))
    created = sum(1 for result in results if result["created"])
    if args.json:
        print_json(
            {
                "submitted": len(results),
                "created": created,
                "existing": len(results) - created,
                "jobs": results,
            }
        )
    else:
        Output().print(
            f"submitted {len(results)} jobs from {'stdin' if args.file == '-' else args.file}: "
            f"{created} created, {len(results) - created} already existed (by key)"
        )
    return EXIT_OK


def _batch_failed(error: ForerunnerError, jobs: list[JobLine], start: int) -> ForerunnerError:
    """``error`` told in the file's terms: the line at fault and what was submitted before."""
    message = error.message
    field = getattr(error, "field", None)
    found = _BATCH_FIELD.match(field or "")
    if found is not None and start + int(found.group(1)) < len(jobs):
        message = f"line {jobs[start + int(found.group(1))].line}: {message}"
    done = (
        f"the jobs of lines {jobs[0].line} to {jobs[start - 1].line} were submitted, "
        f"from line {jobs[start].line} on nothing was"
        if start
        else "nothing was submitted"
    )
    return type(error)(f"{message}; {done}")
