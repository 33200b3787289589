"""``forerunner manager``: serve the HTTP API until SIGINT or SIGTERM.

One option is hidden from ``--help``: ``--clock-offset S`` moves the manager's clock by
S seconds (negative is behind). It exists for the fault tests, which run managers with
clocks 4 s apart to show that leases stay single-owner when they are long enough
(docs/guarantees.md); an operator never needs it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from typing import TYPE_CHECKING, Any

from forerunner.errors import ConfigurationError
from forerunner.logs import add_logging_arguments, configure_from_arguments
from forerunner.manager.auth import Tokens
from forerunner.manager.limits import Limits
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
    # A URL with a password on the command line shows in `ps` to every user of the
    # machine; the environment does not.
    parser.add_argument(
        "--store",
        default=os.environ.get("FORERUNNER_STORE", DEFAULT_STORE),
        help=f"store URL (default: $FORERUNNER_STORE, else {DEFAULT_STORE})",
    )
    parser.add_argument(
        "--queue",
        default=os.environ.get("FORERUNNER_QUEUE", DEFAULT_QUEUE),
        help=f"queue URL (default: $FORERUNNER_QUEUE, else {DEFAULT_QUEUE})",
    )
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
    security = parser.add_argument_group(
        "security",
        "Tokens come from --tokens-file and from FORERUNNER_CLIENT_TOKENS, "
        "FORERUNNER_WORKER_TOKENS and FORERUNNER_ADMIN_TOKENS (comma-separated), never from "
        "the command line, where any user of the machine could read them. See docs/security.md.",
    )
    security.add_argument(
        "--tokens-file",
        metavar="PATH",
        help="a file of `ROLE TOKEN` lines (roles: client, worker, admin); turns on authentication",
    )
    security.add_argument(
        "--insecure",
        action="store_true",
        help="listen on a non-loopback address without tokens (only behind a network you trust)",
    )
    security.add_argument("--tls-cert", metavar="PATH", help="serve HTTPS with this certificate")
    security.add_argument("--tls-key", metavar="PATH", help="the private key of --tls-cert")
    limits = parser.add_argument_group("limits", "What one request or one token may ask.")
    defaults = Limits()
    for flag, field, text in (
        ("--max-body-bytes", "max_body", "largest request body (413)"),
        ("--max-data-bytes", "max_data", "largest job data, as JSON (413)"),
        ("--max-result-bytes", "max_result", "largest result kept; bigger ones fail the attempt"),
        ("--max-requests-per-token", "max_in_flight", "requests one token may have open (429)"),
    ):
        limits.add_argument(
            flag,
            dest=field,
            type=int,
            default=getattr(defaults, field),
            metavar="N",
            help=f"{text} (default: %(default)s)",
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
        "tokens": _tokens(args.tokens_file),
        "insecure": args.insecure,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "limits": _limits(args),
    }
    if args.clock_offset:
        options["clock"] = _skewed(args.clock_offset)
    Manager(args.store, args.queue, **options).serve()
    return 0


def _tokens(path: str | None) -> Tokens:
    from_file = Tokens.from_file(path) if path is not None else Tokens()
    return from_file + Tokens.from_environment()


def _limits(args: argparse.Namespace) -> Limits:
    try:
        return Limits(
            max_body=args.max_body,
            max_data=args.max_data,
            max_result=args.max_result,
            max_in_flight=args.max_in_flight,
        )
    except ValueError as error:
        raise ConfigurationError(f"a limit is out of range: {error}") from error


def _skewed(seconds: float) -> Callable[[], dt.datetime]:
    offset = dt.timedelta(seconds=seconds)

    def clock() -> dt.datetime:
        return utc_now() + offset

    return clock
