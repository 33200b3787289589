"""The PostgreSQL store backend for forerunner: ``postgresql://`` URLs.

``PostgresStore(url)`` opens a store, migrating its schema unless the URL says
``migrate=false``; :func:`migrate` brings a schema up to date without keeping a store
open, for deployments that migrate as a separate step. The names below import psycopg
only when first used, so that importing the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forerunner_postgres_store.schema import MigrationResult
    from forerunner_postgres_store.store import PostgresStore, migrate

__all__ = ["MigrationResult", "PostgresStore", "__version__", "migrate"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from forerunner_postgres_store.store import PostgresStore

        return PostgresStore
    if name == "migrate":
        from forerunner_postgres_store.store import migrate

        return migrate
    if name == "MigrationResult":
        from forerunner_postgres_store.schema import MigrationResult

        return MigrationResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
