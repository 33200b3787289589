"""``forerunner run``: a batch of jobs from a file, run to completion on this machine.

Exit codes: 0 when every job succeeded, 1 when any did not (RESULTS.json says which
and why), 2 for a bad input file or setup error (the CLI's rule for errors).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from forerunner.batch import BatchOptions, load_specs, run_batch, write_results
from forerunner.model import JobState

if TYPE_CHECKING:
    import argparse

__all__ = ["add_run_command"]

#: Exit code when at least one job ended in a state other than succeeded.
EXIT_JOB_FAILED: Final = 1


def add_run_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``forerunner run`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "run",
        help="run a batch of jobs from a JSON file with an embedded manager and workers",
        description=(
            "Start a manager on 127.0.0.1 and N worker processes, run every job of JOBS.json "
            "(a JSON list of job specs) to completion, write RESULTS.json aligned with it, "
            "and exit 0 if every job succeeded, else 1."
        ),
    )
    parser.add_argument("jobs", metavar="JOBS.json", type=Path)
    parser.add_argument(
        "--tasks",
        required=True,
        metavar="NAMES_OR_MODULES",
        help="comma-separated plugin task names or MODULE[:ATTR], as for forerunner worker",
    )
    parser.add_argument("-n", "--workers", type=int, default=1, metavar="N", help="processes")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="RESULTS.json")
    parser.add_argument("--store", default=None, metavar="URL", help="default: a temporary sqlite")
    parser.add_argument("--concurrency", type=int, default=4, metavar="C", help="per worker")
    parser.set_defaults(run=_run_batch)


def _run_batch(args: argparse.Namespace) -> int:
    specs = load_specs(args.jobs)
    options = BatchOptions(
        tasks=args.tasks,
        workers=max(1, args.workers),
        concurrency=max(1, args.concurrency),
        store=args.store,
    )
    jobs = run_batch(specs, options, sys.stderr)
    write_results(args.output, jobs)
    return 0 if all(job.state is JobState.SUCCEEDED for job in jobs) else EXIT_JOB_FAILED
