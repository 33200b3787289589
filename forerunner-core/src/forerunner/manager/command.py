"""``forerunner manager``: serve the HTTP API until SIGINT or SIGTERM.

One option is hidden from ``--help``: ``--clock-offset S`` moves the manager's clock by
S seconds (negative is behind). It exists for the fault tests, which run managers with
clocks 4 s apart to show that leases stay single-owner when they are long enough
(docs/guarantees.md); an operator never needs it.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING, Any

from forerunner.logs import add_logging_arguments, configure_from_arguments
from forerunner.manager.server import DEFAULT_PORT, DEFAULT_QUEUE, DEFAULT_STORE, Manager
from forerunner.manager.service import utc_now

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["add_manager_command"]


def add_manager_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "manager",
        help="serve the HTTP API that accepts jobs and hands them to workers",
        description=(
            "Serve the forerunner HTTP API: clients submit jobs, workers poll for them. "
            "Every fact lives in the store; the queue only orders work and is rebuilt from "
            "the store when lost."
        ),
    )
    parser.add_argument("--store", default=DEFAULT_STORE, help="store URL (default: %(default)s)")
    parser.add_argument("--queue", default=DEFAULT_QUEUE, help="queue URL (default: %(default)s)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)"
    )
    parser.add_argument(
        "--lease",
        type=float,
        default=30.0,
        help="seconds a handed-out job lives without the worker's renewal (default: %(default)s)",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="refuse cancel, retry, bulk retry and purge (403); reading and submitting still work",
    )
    parser.add_argument(
        "--no-dashboard",
        dest="dashboard",
        action="store_false",
        help="serve no dashboard, only the API",
    )
    add_logging_arguments(parser)
    parser.add_argument(
        "--log-job-data",
        action="store_true",
        help=(
            "add jobs' data, results and tracebacks to the job log (off by default: they "
            "may hold anything a user put there)"
        ),
    )
    parser.add_argument("--clock-offset", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.set_defaults(run=_run_manager)


def _run_manager(args: argparse.Namespace) -> int:
    configure_from_arguments(args)
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "lease": args.lease,
        "log_job_data": args.log_job_data,
        "read_only": args.read_only,
        "dashboard": args.dashboard,
    }
    if args.clock_offset:
        options["clock"] = _skewed(args.clock_offset)
    Manager(args.store, args.queue, **options).serve()
    return 0


def _skewed(seconds: float) -> Callable[[], dt.datetime]:
    offset = dt.timedelta(seconds=seconds)

    def clock() -> dt.datetime:
        return utc_now() + offset

    return clock
