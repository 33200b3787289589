"""The ``forerunner`` command line.

One subcommand per job, each a pair of functions: ``_add_<name>`` declares its
arguments and ``_run_<name>`` does the work and returns the exit code. :func:`main`
turns every :class:`~forerunner.errors.ForerunnerError` into one line on stderr and an
exit code, because a person who mistyped a URL or installed a broken plugin needs the
message, not a traceback through forerunner's internals, and a script needs the code.

Exit codes, the same for every command (docs/cli.md; constants in
:mod:`forerunner.console`):

- 0: done.
- 1: the command ran but the asked-for outcome did not happen: a job ended in a state
  other than succeeded under ``submit --wait``, ``forerunner run`` had a job fail, a job
  was in a state that does not allow ``cancel`` or ``retry``, a prompt was declined.
- 2: usage or configuration error, nothing was done: bad arguments or input (a bad line
  of a ``submit --file``), an unknown backend or broken plugin, a read-only manager asked
  to change a job, a destructive command without ``--yes`` and no terminal to ask on.
- 3: the manager did not answer, or answered that its store or queue is unavailable:
  trying again later may work.
- 4: a job named on the command line does not exist.
- 5: the manager refused the caller: no token or an unknown one (401), or a token whose
  role may not do this (403); another token may work, the same one will not.
- 130: interrupted with Ctrl-C.

The commands that talk to a manager take ``--manager URL`` (default
``$FORERUNNER_MANAGER``, else ``http://127.0.0.1:2718``), ``--token-file PATH`` (default
``$FORERUNNER_TOKEN``) and ``--ca-file PATH`` (default ``$FORERUNNER_CA_FILE``); the
commands that print take ``--json`` for one JSON document on stdout and nothing else there.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any, Final, NoReturn, cast

from rich.text import Text

from forerunner import __version__
from forerunner.batch_command import add_run_command
from forerunner.client_command import add_submit_command
from forerunner.console import (
    EXIT_DENIED,
    EXIT_INTERRUPTED,
    EXIT_NOT_DONE,
    EXIT_NOT_FOUND,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Output,
    add_json_option,
    print_json,
)
from forerunner.errors import (
    AuthenticationError,
    BackendUnavailable,
    ForerunnerError,
    InvalidTransition,
    JobNotFound,
    PermissionDenied,
)
from forerunner.jobs_command import add_jobs_command
from forerunner.manager.command import add_manager_command
from forerunner.migrate_command import add_migrate_command
from forerunner.operator_command import add_operator_commands
from forerunner.plugins import get_registry
from forerunner.urls import mask_secrets
from forerunner.worker.command import add_worker_command

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from forerunner.plugins import PluginInfo, Provided, Registry

__all__ = ["main"]

PROG: Final = "forerunner"
#: Exit code for a usage or configuration error, as argparse uses for bad arguments.
EXIT_ERROR: Final = EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line like every other error of the CLI."""

    def error(self, message: str) -> NoReturn:
        commands = [
            name
            for action in self._actions
            if isinstance(action, argparse._SubParsersAction) and action.dest in message
            for name in action.choices
        ]
        hint = f"; one of: {', '.join(commands)}" if commands else ""
        shown = mask_secrets(message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {shown}{hint} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ForerunnerError as error:
        _fail(error)
        return _exit_code(error)
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (``| head``): not an error of this command.
        # Point stdout at nothing so that the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _exit_code(error: ForerunnerError) -> int:
    if isinstance(error, JobNotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, AuthenticationError | PermissionDenied):
        return EXIT_DENIED
    if isinstance(error, BackendUnavailable):
        return EXIT_UNREACHABLE
    if isinstance(error, InvalidTransition):
        return EXIT_NOT_DONE
    return EXIT_ERROR


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="forerunner: a distributed job queue with pluggable stores and queues.",
        epilog=(
            "Exit codes: 0 done, 1 the outcome asked for did not happen, 2 usage or "
            "configuration error, 3 manager unreachable or unavailable, 4 job not found, "
            "5 not allowed (no token, an unknown one, or one whose role may not do this)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Typed as plain ArgumentParser subparsers, which is what the commands declare on;
    # at run time they are _Parser instances, and so are their own subparsers.
    commands = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(title="commands", dest="command", required=True),
    )
    _add_plugins(commands)
    add_worker_command(commands)
    add_submit_command(commands)
    add_jobs_command(commands)
    add_operator_commands(commands)
    add_manager_command(commands)
    add_run_command(commands)
    add_migrate_command(commands)
    return parser


def _fail(error: ForerunnerError) -> None:
    """Print the error on one line: a message that wraps is still one log record.

    Its secrets are masked (a plugin's or a driver's message may quote a connection
    string): a deployment's output is kept in CI logs and journals.
    """
    text = " ".join(mask_secrets(str(error)).split())
    print(f"{PROG}: error: {text}", file=sys.stderr)


# forerunner plugins


def _add_plugins(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "plugins",
        help="list the installed plugins and the backends and tasks they provide",
        description=(
            "List every forerunner plugin with the distribution that installed it, then the "
            "store schemes, queue schemes and task names with the plugin providing each, and "
            "any name two plugins claim."
        ),
    )
    add_json_option(parser)
    parser.set_defaults(run=_run_plugins)


def _run_plugins(args: argparse.Namespace) -> int:
    report = _plugins_report(get_registry())
    if args.json:
        print_json(report)
    else:
        _print_plugins(report, Output())
    return 0


def _plugins_report(registry: Registry) -> dict[str, Any]:
    """What ``forerunner plugins`` shows, as the JSON document ``--json`` prints."""
    conflicts = [
        *_conflicts_json("store", registry.stores.conflicts()),
        *_conflicts_json("queue", registry.queues.conflicts()),
        *_conflicts_json("task", registry.tasks.conflicts()),
    ]
    return {
        "plugins": [_plugin_json(info) for info in registry.plugins()],
        "stores": _provided_json(registry.stores.unique().values(), "scheme"),
        "queues": _provided_json(registry.queues.unique().values(), "scheme"),
        "tasks": _provided_json(registry.tasks.unique().values(), "name"),
        "conflicts": conflicts,
    }


def _conflicts_json(
    kind: str, conflicts: Mapping[str, list[Provided[Any]]]
) -> list[dict[str, Any]]:
    return [
        {"kind": kind, "name": name, "plugins": [_plugin_json(item.plugin) for item in claimants]}
        for name, claimants in conflicts.items()
    ]


def _plugin_json(info: PluginInfo) -> dict[str, str | None]:
    return {
        "name": info.name,
        "distribution": info.distribution,
        "version": info.version,
        "module": info.module,
    }


def _provided_json(items: Iterable[Provided[Any]], key: str) -> list[dict[str, str]]:
    return [{key: item.name, "plugin": item.plugin.name} for item in items]


def _print_plugins(report: dict[str, Any], out: Output) -> None:
    """One titled table per section; ``none`` under a title with nothing, so each shows."""
    sections: list[tuple[str, tuple[str, ...], list[list[str]]]] = [
        (
            "Plugins",
            ("NAME", "DISTRIBUTION", "VERSION", "MODULE"),
            [
                [p["name"], p["distribution"] or "-", p["version"] or "-", p["module"]]
                for p in report["plugins"]
            ],
        ),
        (
            "Store schemes",
            ("SCHEME", "PLUGIN"),
            [[s["scheme"], s["plugin"]] for s in report["stores"]],
        ),
        (
            "Queue schemes",
            ("SCHEME", "PLUGIN"),
            [[q["scheme"], q["plugin"]] for q in report["queues"]],
        ),
        ("Tasks", ("NAME", "PLUGIN"), [[t["name"], t["plugin"]] for t in report["tasks"]]),
        (
            "Conflicts",
            ("NAME", "CLAIMED BY"),
            [
                [f"{c['kind']} {c['name']!r}", " and ".join(_describe(p) for p in c["plugins"])]
                for c in report["conflicts"]
            ],
        ),
    ]
    for index, (title, headers, rows) in enumerate(sections):
        if index:
            out.print("")
        _print_section(out, title, headers, rows)


def _describe(plugin: dict[str, str | None]) -> str:
    if plugin["distribution"] is None:
        return str(plugin["name"])
    return f"{plugin['name']} ({plugin['distribution']} {plugin['version']})"


def _print_section(
    out: Output, title: str, headers: Sequence[str], rows: Iterable[Sequence[str]]
) -> None:
    items = list(rows)
    out.heading(f"{title}:")
    if not items:
        out.print(Text("  none", style="dim"))
        return
    table = out.table(*headers)
    for row in items:
        table.add_row(*row)
    out.print(table)
