"""forerunner-postgres-store's plugin module, registered under the ``forerunner`` entry point.

It provides the ``postgresql://`` store and ``postgres://``, the same scheme under the
older name libpq also accepts. The store module, and psycopg with it, is imported only
when a URL asks for it: every forerunner process imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forerunner.hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from forerunner.store import Store


def open_postgres_store(url: str) -> Store:
    """Open the PostgreSQL store a ``postgresql://`` or ``postgres://`` URL names."""
    from forerunner_postgres_store.store import PostgresStore

    return PostgresStore(url)


@hookimpl
def forerunner_store_backends() -> Mapping[str, Callable[[str], Store]]:
    return {"postgresql": open_postgres_store, "postgres": open_postgres_store}
