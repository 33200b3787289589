"""The ``forerunner`` command line.

One subcommand per job, each a pair of functions: ``_add_<name>`` declares its
arguments and ``_run_<name>`` does the work and returns the exit code. :func:`main`
turns every :class:`~forerunner.errors.ForerunnerError` into one line on stderr and
exit code 2, because a person who mistyped a URL or installed a broken plugin needs the
message, not a traceback through forerunner's internals.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, Final, TextIO

from forerunner import __version__
from forerunner.batch_command import add_run_command
from forerunner.client_command import add_client_commands
from forerunner.errors import ForerunnerError
from forerunner.manager.command import add_manager_command
from forerunner.migrate_command import add_migrate_command
from forerunner.plugins import get_registry
from forerunner.worker.command import add_worker_command

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from forerunner.plugins import PluginInfo, Provided, Registry

__all__ = ["main"]

PROG: Final = "forerunner"
#: Exit code for a usage or configuration error, as argparse uses for bad arguments.
EXIT_ERROR: Final = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ForerunnerError as error:
        _fail(error)
        return EXIT_ERROR


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="forerunner: a distributed job queue with pluggable stores and queues.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", required=True)
    _add_plugins(commands)
    add_worker_command(commands)
    add_client_commands(commands)
    add_manager_command(commands)
    add_run_command(commands)
    add_migrate_command(commands)
    return parser


def _fail(error: ForerunnerError) -> None:
    """Print the error on one line: a message that wraps is still one log record."""
    text = " ".join(str(error).split())
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
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    parser.set_defaults(run=_run_plugins)


def _run_plugins(args: argparse.Namespace) -> int:
    report = _plugins_report(get_registry())
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_plugins(report, sys.stdout)
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


def _print_plugins(report: dict[str, Any], out: TextIO) -> None:
    plugins = report["plugins"]
    _print_table(
        out,
        "Plugins",
        [[p["name"], p["distribution"] or "-", p["version"] or "-", p["module"]] for p in plugins],
    )
    _print_table(out, "Store schemes", [[s["scheme"], s["plugin"]] for s in report["stores"]])
    _print_table(out, "Queue schemes", [[q["scheme"], q["plugin"]] for q in report["queues"]])
    _print_table(out, "Tasks", [[t["name"], t["plugin"]] for t in report["tasks"]])
    _print_table(
        out,
        "Conflicts",
        [
            [
                f"{c['kind']} {c['name']!r}",
                "claimed by " + " and ".join(_describe(p) for p in c["plugins"]),
            ]
            for c in report["conflicts"]
        ],
    )


def _describe(plugin: dict[str, str | None]) -> str:
    if plugin["distribution"] is None:
        return str(plugin["name"])
    return f"{plugin['name']} ({plugin['distribution']} {plugin['version']})"


def _print_table(out: TextIO, title: str, rows: list[list[str]]) -> None:
    """A titled block of left-aligned columns; ``none`` when empty, so every block shows."""
    out.write(f"{title}:\n")
    if not rows:
        out.write("  none\n")
        return
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        out.write(("  " + "  ".join(cells)).rstrip() + "\n")
