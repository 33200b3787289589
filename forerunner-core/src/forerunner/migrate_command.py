"""``forerunner migrate --store URL``: bring a store's schema up to date.

Stores that keep a schema (PostgreSQL) implement :class:`forerunner.store.Migrating`;
for the others (memory, SQLite, whose schema is created on opening) there is nothing to
do, and the command says so rather than fail, so a deployment script can run it for any
store URL.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from forerunner.console import EXIT_OK, Output, add_json_option, print_json
from forerunner.plugins import get_registry
from forerunner.store import Migrating
from forerunner.urls import mask_password, scheme_of

if TYPE_CHECKING:
    import argparse

__all__ = ["add_migrate_command"]


def add_migrate_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``forerunner migrate`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "migrate",
        help="bring a store's schema up to date",
        description=(
            "Apply the schema migrations the store at --store lacks, and print what was done. "
            "Safe while managers use the store; managers also migrate when they start."
        ),
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("FORERUNNER_STORE"),
        required="FORERUNNER_STORE" not in os.environ,
        metavar="URL",
        help="store URL (default: $FORERUNNER_STORE, which keeps a password out of `ps`)",
    )
    add_json_option(parser)
    parser.set_defaults(run=_run_migrate)


def _run_migrate(args: argparse.Namespace) -> int:
    store = get_registry().open_store(args.store)
    masked = mask_password(args.store)
    try:
        migrating = False
        if isinstance(store, Migrating):
            migrating = True
            message = str(store.migrate())
        else:
            message = f"{masked}: {scheme_of(args.store)} stores keep no schema to migrate"
    finally:
        store.close()
    if args.json:
        print_json({"store": masked, "schema": migrating, "message": message})
    else:
        Output().print(message)
    return EXIT_OK
