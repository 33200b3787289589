"""forerunner.sqlfiles: named queries in packaged ``.sql`` files.

Covers the ``-- name: ...`` block format (what a block holds, what may precede the
first header), the mistakes that must fail at load time naming file and line (SQL
without a header, a repeated name, a header without SQL, a malformed name), and
loading through importlib.resources, including the SQLite store's own files.
"""

from __future__ import annotations

import pytest

from forerunner.errors import ConfigurationError
from forerunner.sqlfiles import load_queries, load_script, parse_queries


def test_blocks_are_split_by_their_headers() -> None:
    text = """\
-- The file's own description may come before the first header.

-- name: first
SELECT 1;

-- name: second
-- A comment after the header documents the query and stays in it.
SELECT 2
FROM t;
"""
    queries = parse_queries(text, "example.sql")

    assert dict(queries) == {
        "first": "SELECT 1;",
        "second": "-- A comment after the header documents the query and stays in it.\n"
        "SELECT 2\nFROM t;",
    }


def test_header_spacing_is_lenient() -> None:
    queries = parse_queries("--name:tight\nSELECT 1;\n  --   name:   loose  \nSELECT 2;", "x.sql")

    assert list(queries) == ["tight", "loose"]


def test_queries_are_read_only() -> None:
    queries = parse_queries("-- name: q\nSELECT 1;", "x.sql")

    with pytest.raises(TypeError):
        queries["q"] = "DELETE FROM t;"  # type: ignore[index]


def test_sql_before_the_first_header_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match=r"x\.sql, line 2: SQL before the first"):
        parse_queries("-- intro\nSELECT 0;\n-- name: q\nSELECT 1;", "x.sql")


def test_a_repeated_name_is_an_error_naming_both_lines() -> None:
    text = "-- name: q\nSELECT 1;\n-- name: other\nSELECT 2;\n-- name: q\nSELECT 3;"

    with pytest.raises(ConfigurationError, match=r"line 5: query 'q' is already defined on line 1"):
        parse_queries(text, "x.sql")


@pytest.mark.parametrize(
    "text",
    [
        "-- name: empty\n-- name: next\nSELECT 1;",
        "-- name: only_comments\n-- nothing to run\n\n-- name: next\nSELECT 1;",
        "-- name: last\n",
    ],
)
def test_a_header_without_sql_is_an_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match=r"has no SQL after its header"):
        parse_queries(text, "x.sql")


@pytest.mark.parametrize("name", ["", "two words", "dash-ed", "1st"])
def test_a_malformed_name_is_an_error(name: str) -> None:
    with pytest.raises(ConfigurationError, match="is not a query name"):
        parse_queries(f"-- name: {name}\nSELECT 1;", "x.sql")


def test_the_sqlite_store_files_load() -> None:
    queries = load_queries("forerunner.backends", "sql/sqlite/queries.sql")
    schema = load_script("forerunner.backends", "sql/sqlite/schema.sql")

    assert "claim_jobs" in queries
    assert queries["claim_jobs"].rstrip().endswith("RETURNING *;")
    assert "CREATE TABLE IF NOT EXISTS forerunner_jobs" in schema


def test_a_missing_file_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"'sql/nowhere\.sql' of package 'forerunner"):
        load_queries("forerunner.backends", "sql/nowhere.sql")
