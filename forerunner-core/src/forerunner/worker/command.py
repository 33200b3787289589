"""``forerunner worker``: run tasks for one or more managers until SIGTERM/SIGINT.

``--tasks`` is a comma-separated list; each item is one of

* a task name an installed plugin provides (``ping``, ``fetch``: see ``forerunner plugins``);
* ``MODULE`` or ``MODULE:ATTR``: an importable module and a module-level mapping of task
  name to handler in it, ``TASKS`` unless ``ATTR`` names another.

A plain mapping keeps a task module an ordinary module, importable and testable without
forerunner, and one line tells the reader which names it serves.

The worker's token comes from ``--token-file`` or ``$FORERUNNER_TOKEN``, never from a
flag's value, which ``ps`` would show to every user of the machine; ``--ca-file`` (or
``$FORERUNNER_CA_FILE``) names the CAs that ``https://`` managers are verified against.
With ``--processes`` the children only run handlers; the parent alone talks to the
managers, so neither the token nor the CA file is handed to them.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from forerunner.credentials import load_token
from forerunner.errors import ConfigurationError
from forerunner.logs import add_logging_arguments, configure_from_arguments
from forerunner.plugins import get_registry
from forerunner.worker.worker import Worker

if TYPE_CHECKING:
    import argparse

    from forerunner.plugins import Registry

__all__ = ["add_worker_command", "load_tasks"]

#: The mapping a task module exposes when ``--tasks`` names no attribute.
DEFAULT_ATTR: Final = "TASKS"


def add_worker_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``forerunner worker`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "worker",
        help="run tasks handed out by a manager",
        description=(
            "Long-poll one or more managers for jobs of the given tasks and run them, up to "
            "--concurrency at once, until SIGTERM or SIGINT; then finish running jobs within "
            "--grace seconds and exit."
        ),
    )
    parser.add_argument(
        "--manager",
        action="append",
        metavar="URL",
        help="manager base URL; repeat for several (default http://127.0.0.1:2718)",
    )
    parser.add_argument(
        "--tasks",
        required=True,
        metavar="NAMES_OR_MODULES",
        help=(
            "comma-separated: plugin task names, or MODULE[:ATTR] with a mapping of task "
            f"name to handler (ATTR defaults to {DEFAULT_ATTR})"
        ),
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="jobs run at once (default 4, or P with --processes)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        metavar="P",
        help=(
            "run each job in one of P child processes, for CPU-bound tasks; a job past its "
            "timeout is killed"
        ),
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        default=None,
        metavar="N",
        help=(
            "jobs to hold beyond the free slots (default: about 20 ms of work, at least "
            "--concurrency and at most 256, while jobs take under 0.1 s on average; else none)"
        ),
    )
    parser.add_argument(
        "--grace", type=float, default=30.0, metavar="S", help="seconds to finish on stop"
    )
    parser.add_argument("--worker-id", default=None, help="default: host-pid-random")
    parser.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        help="file holding the worker token (default: $FORERUNNER_TOKEN; none: no token sent)",
    )
    parser.add_argument(
        "--ca-file",
        default=None,
        metavar="PATH",
        help=(
            "PEM file of CAs to trust, beside the system's, for https:// managers "
            "(default: $FORERUNNER_CA_FILE)"
        ),
    )
    add_logging_arguments(parser)
    parser.set_defaults(run=_run_worker)


def load_tasks(worker: Worker, spec: str, registry: Registry) -> None:
    """Register on ``worker`` every task that the ``--tasks`` value ``spec`` names."""
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise ConfigurationError("--tasks is empty; name plugin tasks or task modules")
    for item in items:
        if ":" not in item and item in registry.tasks.by_name:
            worker.add_plugin_tasks([item])
            continue
        module_name, _, attr = item.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            known = ", ".join(sorted(registry.tasks.by_name)) or "none"
            raise ConfigurationError(
                f"--tasks {item!r} is neither an installed task ({known}) nor an importable "
                f"module: {error}"
            ) from error
        mapping = getattr(module, attr or DEFAULT_ATTR, None)
        if not isinstance(mapping, Mapping):
            raise ConfigurationError(
                f"--tasks {item!r}: module {module_name!r} has no mapping "
                f"{attr or DEFAULT_ATTR!r} of task name to handler"
            )
        for name, handler in mapping.items():
            worker.register_job_handler(name, handler)


def _run_worker(args: argparse.Namespace) -> int:
    configure_from_arguments(args)
    registry = get_registry()
    worker = Worker(
        args.concurrency,
        worker_id=args.worker_id,
        registry=registry,
        grace=args.grace,
        processes=args.processes,
        prefetch=args.prefetch,
        token=load_token(args.token_file),
        ca_file=args.ca_file,
    )
    load_tasks(worker, args.tasks, registry)
    worker.start(args.manager or ["http://127.0.0.1:2718"])
    if worker.lingering:
        # Their threads cannot be killed and would hold the exit forever; their jobs
        # run again elsewhere once their leases expire.
        logging.getLogger(__name__).warning(
            "exiting with %d task thread(s) still running past the grace period",
            worker.lingering,
        )
        logging.shutdown()
        os._exit(0)
    return 0
