"""Migrations: they produce exactly schema.sql, run once, and are safe to run at once.

Also what a store does with a schema that is not at its version: migrate it when
opening (the default), refuse every call while it is behind (``migrate=false``), and
refuse a schema a newer forerunner migrated.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql

from forerunner.cli import main
from forerunner.errors import ConfigurationError
from forerunner.ids import new_id
from forerunner.model import Job
from forerunner.store import Migrating
from forerunner_postgres_store.schema import (
    LATEST_VERSION,
    MIGRATIONS,
    SCHEMA_SQL,
    MigrationResult,
    load_migrations,
)
from forerunner_postgres_store.store import PostgresStore, migrate

if TYPE_CHECKING:
    from collections.abc import Callable

#: Everything the catalog says about the objects of one schema, in a form that does not
#: depend on the schema's name or on the order objects were made in.
_DESCRIBE: Any = """
SELECT 'relation ' || c.relname || ' ' || c.relkind::text
       || coalesce(' options ' || array_to_string(c.reloptions, ','), '')
FROM pg_class c WHERE c.relnamespace = %(schema)s::regnamespace
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' #' || a.attnum || ' '
       || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || coalesce(' COLLATE ' || co.collname, '')
       || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'r'
  AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' '
       || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = %(schema)s::regnamespace
UNION ALL
SELECT 'index ' || pg_get_indexdef(indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relnamespace = %(schema)s::regnamespace
UNION ALL
SELECT 'type ' || typname FROM pg_type
WHERE typnamespace = %(schema)s::regnamespace AND typrelid = 0 AND typelem = 0
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p
WHERE p.pronamespace = %(schema)s::regnamespace
UNION ALL
SELECT 'trigger ' || tgname || ' ' || pg_get_triggerdef(t.oid)
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = %(schema)s::regnamespace AND NOT t.tgisinternal
ORDER BY 1
"""


def describe(server_url: str, schema: str) -> list[str]:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute("SET search_path TO pg_catalog")
        rows = conn.execute(_DESCRIBE, {"schema": schema})
        return [row[0].replace(f"{schema}.", "") for row in rows]


def create_from_schema_file(server_url: str, schema: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(SCHEMA_SQL.encode("utf-8"))


def versions_recorded(server_url: str, schema: str) -> list[tuple[int, str]]:
    with psycopg.connect(server_url, autocommit=True) as conn:
        query = sql.SQL("SELECT version, name FROM {}.forerunner_migrations ORDER BY version")
        return [(row[0], row[1]) for row in conn.execute(query.format(sql.Identifier(schema)))]


def test_migrations_produce_the_schema_file(server_url: str, new_schema: Callable[[], str]) -> None:
    # Given one schema made by the migrations and one by schema.sql
    migrated, from_file = new_schema(), new_schema()
    migrate(f"{server_url}?schema={migrated}")
    create_from_schema_file(server_url, from_file)
    # When the catalog describes both
    by_migrations = describe(server_url, migrated)
    by_file = describe(server_url, from_file)
    # Then they hold the same tables, columns, constraints and indexes
    assert any(line.startswith("index CREATE UNIQUE INDEX forerunner_jobs_key") for line in by_file)
    assert by_migrations == by_file


def test_migrate_applies_each_migration_once(
    server_url: str, new_schema: Callable[[], str]
) -> None:
    # Given a schema that does not exist yet
    schema = new_schema()
    url = f"{server_url}?schema={schema}"
    # When it is migrated twice
    first = migrate(url)
    second = migrate(url)
    # Then the first call applies everything and records it, the second nothing
    assert first == MigrationResult(
        schema=schema, before=0, after=LATEST_VERSION, applied=MIGRATIONS
    )
    assert second == MigrationResult(
        schema=schema, before=LATEST_VERSION, after=LATEST_VERSION, applied=()
    )
    assert versions_recorded(server_url, schema) == [(m.version, m.name) for m in MIGRATIONS]
    assert str(first) == f"schema {schema!r} migrated from version 0 to 1 (0001_initial)"
    assert str(second) == f"schema {schema!r} is up to date at version 1"


def test_migrations_are_numbered_without_gaps() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "initial"


def test_concurrent_migrations_apply_once(server_url: str, new_schema: Callable[[], str]) -> None:
    # Given a fresh schema and four processes
    schema = new_schema()
    url = f"{server_url}?schema={schema}"
    context = multiprocessing.get_context("spawn")
    # When they all migrate it at once
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=context) as pool:
        results = list(pool.map(migrate, [url] * 4, timeout=120))
    # Then exactly one applied the migrations, the others found them done, and each
    # migration is recorded once
    applied = [result for result in results if result.applied]
    assert len(applied) == 1, results
    assert applied[0].before == 0
    assert all(r.after == LATEST_VERSION for r in results)
    assert versions_recorded(server_url, schema) == [(m.version, m.name) for m in MIGRATIONS]


def test_store_migrates_itself_on_opening(store_url: str) -> None:
    # When a store opens a schema that does not exist
    store = PostgresStore(store_url)
    try:
        # Then it migrated it, says so, and works
        assert store.opened.before == 0
        assert store.opened.applied == MIGRATIONS
        job = Job(id=new_id(), type="ping")
        assert store.add([job]) == [job]
        # And migrating again reports what opening did
        assert store.migrate().applied == MIGRATIONS
    finally:
        store.close()


def test_store_without_migrate_refuses_calls_until_migrated(store_url: str) -> None:
    # Given a store opened with migrate=false on a schema that does not exist
    store = PostgresStore(store_url + "&migrate=false")
    try:
        assert store.opened.after == 0
        # When it is used, then every call says what to do
        with pytest.raises(ConfigurationError) as raised:
            store.get(new_id())
        message = str(raised.value)
        assert "is at version 0" in message
        assert f"needs version {LATEST_VERSION}" in message
        assert "forerunner migrate --store URL" in message
        # When another process migrates the schema, then the same store works
        migrate(store_url)
        assert store.get(new_id()) is None
    finally:
        store.close()


def test_store_migrate_method_with_migrate_false(store_url: str) -> None:
    # Given a store opened with migrate=false, as `forerunner migrate` opens it
    store = PostgresStore(store_url + "&migrate=false")
    try:
        # When it is told to migrate, then it does, and works
        result = store.migrate()
        assert (result.before, result.after, result.applied) == (0, LATEST_VERSION, MIGRATIONS)
        assert store.counts() == {}
    finally:
        store.close()


def test_store_refuses_a_newer_schema(server_url: str, store_url: str) -> None:
    # Given a schema a newer forerunner migrated
    schema = store_url.rsplit("=", 1)[1]
    migrate(store_url)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.forerunner_migrations (version, name) VALUES (%s, 'future')"
            ).format(sql.Identifier(schema)),
            [LATEST_VERSION + 1],
        )
    # When a store opens it, with or without migrating, then it refuses
    for url in (store_url, store_url + "&migrate=false"):
        with pytest.raises(ConfigurationError, match="Upgrade forerunner-postgres-store"):
            PostgresStore(url)


def test_forerunner_migrate_command(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a store URL that opts out of migrating on opening, as deployments that
    # migrate in a separate step write it
    url = store_url + "&migrate=false"
    schema = store_url.rsplit("=", 1)[1]
    # When `forerunner migrate --store URL` runs twice
    first = main(["migrate", "--store", url])
    first_out = capsys.readouterr().out
    second = main(["migrate", "--store", url])
    second_out = capsys.readouterr().out
    # Then it migrated, said so, and then found nothing to do
    assert (first, second) == (0, 0)
    assert first_out == f"schema {schema!r} migrated from version 0 to 1 (0001_initial)\n"
    assert second_out == f"schema {schema!r} is up to date at version 1\n"
    store = PostgresStore(url)
    try:
        assert isinstance(store, Migrating)
        assert store.counts() == {}
    finally:
        store.close()
