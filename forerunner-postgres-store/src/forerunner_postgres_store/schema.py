"""Versioned migrations: the store's tables, brought up to date safely by many managers.

Migrations are the files ``sql/migrations/NNNN_name.sql``, numbered from 0001 without
gaps; each one runs once per schema and is recorded in ``forerunner_migrations``. They
run in one transaction that first takes a transaction-level advisory lock keyed by the
schema name, so managers starting at once queue up on the lock, and each finds the
work of the one before it done: no migration runs twice, none half-way.

``sql/schema.sql`` is what the migrations produce, for reading; a test compares the
two on a real server. A store opened with ``migrate=false`` applies nothing and
refuses a schema that is behind, so a deployment can run migrations as a separate step
(``forerunner migrate --store URL``) with a more privileged role.
"""

from __future__ import annotations

import importlib.resources
import re
import zlib
from typing import TYPE_CHECKING, Any, Final

import attrs
from psycopg import sql

from forerunner.errors import ConfigurationError
from forerunner.sqlfiles import load_queries, load_script

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "SCHEMA_SQL",
    "Migration",
    "MigrationResult",
    "apply_migrations",
    "check_version",
    "load_migrations",
    "schema_version",
]

_PACKAGE: Final = "forerunner_postgres_store"
_FILE_NAME: Final = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
#: The first key of the advisory lock: "fore" in ASCII, so that the lock is told apart
#: from an application's own advisory locks in pg_locks.
LOCK_CLASS: Final = 0x666F7265


@attrs.frozen(kw_only=True)
class Migration:
    """One migration file."""

    version: int
    #: The file name without number and extension, e.g. ``"initial"``.
    name: str
    sql: str


@attrs.frozen(kw_only=True)
class MigrationResult:
    """What :func:`apply_migrations` found and did."""

    #: The schema migrated.
    schema: str
    #: Its version before, 0 for a schema without the store's tables.
    before: int
    #: Its version now, the newest this package ships.
    after: int
    #: The migrations applied, in order; empty when the schema was up to date.
    applied: tuple[Migration, ...]

    def __str__(self) -> str:
        """One line for a person: what ``forerunner migrate`` prints."""
        if not self.applied:
            return f"schema {self.schema!r} is up to date at version {self.after}"
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in self.applied)
        return (
            f"schema {self.schema!r} migrated from version {self.before} to {self.after} ({names})"
        )


def load_migrations() -> tuple[Migration, ...]:
    """The migrations shipped in this package, in version order.

    A misnamed file or a gap in the numbers is a packaging bug, reported as a
    :class:`~forerunner.errors.ConfigurationError` naming the file.
    """
    folder = importlib.resources.files(_PACKAGE).joinpath("sql/migrations")
    migrations = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise ConfigurationError(
                f"migration file {entry.name!r} of {_PACKAGE} is misnamed; name it "
                "NNNN_lowercase_words.sql, numbered after the last one"
            )
        migrations.append(
            Migration(
                version=int(match["version"]),
                name=match["name"],
                sql=entry.read_text(encoding="utf-8"),
            )
        )
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ConfigurationError(
                f"migration {migration.version:04d}_{migration.name}.sql of {_PACKAGE} "
                f"should be number {expected:04d}: migrations are numbered from 0001 "
                "without gaps"
            )
    return tuple(migrations)


MIGRATIONS: Final = load_migrations()
#: The version a schema has once every migration of this package is applied.
LATEST_VERSION: Final = MIGRATIONS[-1].version if MIGRATIONS else 0
#: The text of ``sql/schema.sql``: the schema the migrations produce.
SCHEMA_SQL: Final = load_script(_PACKAGE, "sql/schema.sql")
_Q: Final = load_queries(_PACKAGE, "sql/queries.sql")


def schema_version(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    """The schema's version: the newest migration recorded, 0 if it has none.

    ``conn`` has its search_path set to the schema, as the store's connections do.
    """
    present = conn.execute(_Q["migrations_table_exists"]).fetchone()
    if not present or not present[0]:
        return 0
    row = conn.execute(_Q["schema_version"]).fetchone()
    return int(row[0]) if row else 0


def check_version(version: int, schema: str, display: str) -> None:
    """Refuse a schema newer than this package, or (not migrating) older than it."""
    if version > LATEST_VERSION:
        raise ConfigurationError(
            f"PostgreSQL store {display}: schema {schema!r} is at version {version}, and "
            f"this forerunner-postgres-store knows versions up to {LATEST_VERSION}; a newer "
            "forerunner migrated it. Upgrade forerunner-postgres-store to use it"
        )
    if version < LATEST_VERSION:
        raise ConfigurationError(
            f"PostgreSQL store {display}: schema {schema!r} is at version {version}, and "
            f"this forerunner-postgres-store needs version {LATEST_VERSION}. Run "
            f"'forerunner migrate --store URL', or open the store without migrate=false "
            "so that it migrates itself"
        )


def apply_migrations(
    conn: psycopg.Connection[tuple[Any, ...]], schema: str, display: str
) -> MigrationResult:
    """Bring ``schema`` to :data:`LATEST_VERSION` in one transaction; safe to run at once.

    ``conn`` must be in autocommit mode with its search_path set to ``schema``. A
    failing migration rolls everything back and raises; the schema stays as it was.
    """
    with conn.transaction():
        conn.execute(_Q["lock_migrations"], {"lock_class": LOCK_CLASS, "lock_id": _lock_id(schema)})
        exists = conn.execute(_Q["schema_exists"], {"schema": schema}).fetchone()
        if not exists or not exists[0]:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        before = schema_version(conn)
        if before > LATEST_VERSION:
            check_version(before, schema, display)
        conn.execute(_Q["create_migrations_table"])
        pending = tuple(migration for migration in MIGRATIONS if migration.version > before)
        for migration in pending:
            conn.execute(migration.sql.encode("utf-8"))
            conn.execute(
                _Q["record_migration"], {"version": migration.version, "name": migration.name}
            )
    return MigrationResult(schema=schema, before=before, after=LATEST_VERSION, applied=pending)


def _lock_id(schema: str) -> int:
    """A signed 32-bit key for ``schema``: the advisory lock's second half."""
    unsigned = zlib.crc32(schema.encode("utf-8"))
    return unsigned - 2**32 if unsigned >= 2**31 else unsigned
