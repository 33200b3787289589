"""``forerunner migrate --store URL``: bring a store's schema up to date.

Stores that keep a schema (PostgreSQL) implement :class:`forerunner.store.Migrating`;
for the others (memory, SQLite, whose schema is created on opening) there is nothing to
do, and the command says so rather than fail, so a deployment script can run it for any
store URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    parser.add_argument("--store", required=True, metavar="URL", help="store URL")
    parser.set_defaults(run=_run_migrate)


def _run_migrate(args: argparse.Namespace) -> int:
    store = get_registry().open_store(args.store)
    try:
        if isinstance(store, Migrating):
            print(store.migrate())
        else:
            print(
                f"{mask_password(args.store)}: {scheme_of(args.store)} stores keep no schema "
                "to migrate"
            )
    finally:
        store.close()
    return 0
