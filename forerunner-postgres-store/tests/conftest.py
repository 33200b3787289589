"""Fixtures for forerunner-postgres-store's tests: a real server, a schema per test.

The tests talk to the PostgreSQL server at ``FORERUNNER_TEST_POSTGRES``
(default ``postgresql://root@127.0.0.1:5432/test``), which other people use at the
same time: every test works in schemas of its own, named ``fr_test_<random>``, and
drops exactly those when it ends. Without a server the tests skip, except under
``CI``, where a server that does not answer fails them.
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING, Final

import psycopg
import pytest
from psycopg import sql

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SERVER_ENV: Final = "FORERUNNER_TEST_POSTGRES"
DEFAULT_SERVER: Final = "postgresql://root@127.0.0.1:5432/test"


def require_service(why: str) -> None:
    """Skip for a missing service, or fail under CI, where every service must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"{why}, and CI is set: the tests need it", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def server_url() -> str:
    """The server's URL, once it answered; store URLs add ``?schema=...`` to it."""
    url = os.environ.get(SERVER_ENV, DEFAULT_SERVER)
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        require_service(f"PostgreSQL at {url} does not answer ({error})")
    return url


def new_schema_name() -> str:
    return f"fr_test_{secrets.token_hex(6)}"


def drop_schemas(url: str, names: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def new_schema(server_url: str) -> Iterator[Callable[[], str]]:
    """Make fresh schema names (not created); each one is dropped after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(new_schema_name())
        return made[-1]

    yield make
    drop_schemas(server_url, made)


@pytest.fixture
def store_url(server_url: str, new_schema: Callable[[], str]) -> str:
    """A store URL on a schema of this test's own."""
    return f"{server_url}?schema={new_schema()}"
