"""Store URLs: the store's own options, what goes to libpq, and masked passwords.

These need no server: parsing happens before connecting.
"""

from __future__ import annotations

import psycopg.conninfo
import pytest

from forerunner.errors import ConfigurationError
from forerunner_postgres_store.urls import (
    DEFAULT_POOL_SIZE,
    DEFAULT_POOL_TIMEOUT,
    DEFAULT_SCHEMA,
    display_url,
    parse_url,
)


def test_defaults() -> None:
    url = parse_url("postgresql://root@127.0.0.1:5432/test")
    assert url.schema == DEFAULT_SCHEMA == "public"
    assert url.migrate is True
    assert url.pool_size == DEFAULT_POOL_SIZE
    assert url.pool_timeout == DEFAULT_POOL_TIMEOUT
    params = psycopg.conninfo.conninfo_to_dict(url.conninfo)
    assert params["host"] == "127.0.0.1"
    assert params["port"] == "5432"
    assert params["dbname"] == "test"
    assert params["user"] == "root"
    assert params["options"] == "-c search_path=public -c TimeZone=UTC"
    assert params["application_name"] == "forerunner"


def test_own_options_are_taken_out_and_the_rest_goes_to_libpq() -> None:
    url = parse_url(
        "postgres://u@db.example/jobs?schema=run_7&migrate=false&pool_size=3"
        "&pool_timeout=2.5&sslmode=disable&application_name=mine&options=-c%20work_mem%3D8MB"
    )
    assert (url.schema, url.migrate, url.pool_size, url.pool_timeout) == ("run_7", False, 3, 2.5)
    params = psycopg.conninfo.conninfo_to_dict(url.conninfo)
    assert params["sslmode"] == "disable"
    assert params["application_name"] == "mine"
    assert params["options"] == "-c work_mem=8MB -c search_path=run_7 -c TimeZone=UTC"
    assert not {"schema", "migrate", "pool_size", "pool_timeout"} & set(params)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h/db?password=s3cret&schema=x",
            "postgresql://u@h/db?password=***&schema=x",
        ),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_display_masks_passwords(url: str, shown: str) -> None:
    assert display_url(url) == shown


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("schema=Mixed", "schema='Mixed' is not accepted"),
        ("schema=pg_mine", "schema='pg_mine' is not accepted"),
        ("schema=a;drop", "is not accepted"),
        ("schema=a&schema=b", "gives schema= twice"),
        ("migrate=maybe", "migrate='maybe'; write migrate=true or false"),
        ("pool_size=0", "pool_size='0'; write a positive number"),
        ("pool_timeout=soon", "pool_timeout='soon'; write a positive number"),
        ("no_such_libpq_option=1", "is not a valid PostgreSQL connection URI"),
    ],
)
def test_bad_options_are_configuration_errors(query: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_url(f"postgresql://u:s3cret@h/db?{query}")
    assert complaint in str(raised.value)
    assert "s3cret" not in str(raised.value)
    assert "postgresql://u:***@h/db" in str(raised.value)


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="is not a postgresql:// URL"):
        parse_url("mysql://u@h/db")
