"""``postgresql://`` URLs: the options that are the store's, and the rest for libpq.

A store URL is a libpq connection URI with a few options of the store's own in its
query string::

    postgresql://user:password@host:5432/dbname?schema=jobs&sslmode=require

``schema``, ``migrate``, ``pool_size`` and ``pool_timeout`` are taken out; every other
parameter goes to libpq as it is (``sslmode``, ``connect_timeout``, ``host=/run/...``
for a socket directory, ...), and what the URL leaves out libpq takes from the ``PG*``
environment variables. ``postgres://`` is the same scheme under its older name.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

import attrs
import psycopg.conninfo

from forerunner.errors import ConfigurationError
from forerunner.urls import mask_password, mask_secrets

__all__ = [
    "DEFAULT_POOL_SIZE",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_SCHEMA",
    "SCHEMES",
    "StoreURL",
    "display_url",
    "parse_url",
]

#: The URL schemes the store answers to.
SCHEMES: Final = ("postgresql", "postgres")
#: Where the tables go when the URL names no schema.
DEFAULT_SCHEMA: Final = "public"
#: Connections per store at most: enough for the manager's thread pool to overlap
#: calls, few enough that several managers fit in a default ``max_connections``.
DEFAULT_POOL_SIZE: Final = 10
#: Seconds a call waits for a free connection, or for the server to take a new one,
#: before it fails with BackendUnavailable: long enough to ride out a restart, short
#: enough that a manager answers 503 while the server is down instead of hanging.
DEFAULT_POOL_TIMEOUT: Final = 5.0
#: Seconds libpq waits for the server to answer a new connection, unless the URL sets
#: ``connect_timeout``: without it a host that drops packets would hang a call.
DEFAULT_CONNECT_TIMEOUT: Final = 10

#: Unquoted PostgreSQL identifiers: no quoting is ever needed, so a schema name can go
#: into search_path and DDL without escaping. ``pg_`` names belong to the system.
_SCHEMA_NAME: Final = re.compile(r"^(?!pg_)[a-z_][a-z0-9_]{0,62}$")
_TRUE: Final = frozenset({"true", "yes", "on", "1"})
_FALSE: Final = frozenset({"false", "no", "off", "0"})
_OWN_OPTIONS: Final = ("schema", "migrate", "pool_size", "pool_timeout")


@attrs.frozen(kw_only=True)
class StoreURL:
    """A parsed store URL: what the store needs to connect and where its tables live."""

    #: The URL as given, password masked: the only form that goes into messages.
    display: str
    #: The libpq connection string: the URL's, the store's own options taken out, with
    #: search_path, time zone, application name and connect timeout added. It holds the
    #: password, so it stays out of the record's repr.
    conninfo: str = attrs.field(repr=False)
    #: The PostgreSQL schema holding the store's tables.
    schema: str
    #: Whether opening the store applies the migrations it is missing.
    migrate: bool
    pool_size: int
    pool_timeout: float


def display_url(url: str) -> str:
    """``url`` safe to show: the password masked, in the user part and in the query
    (``password=``, ``sslpassword=``), as :func:`forerunner.urls.mask_password` does."""
    return mask_password(url)


def parse_url(url: str) -> StoreURL:
    """Split ``url`` into the store's options and a libpq connection string.

    Raises :class:`~forerunner.errors.ConfigurationError` naming the (masked) URL and
    what to write instead, for anything libpq or the store would refuse later.
    """
    shown = display_url(url)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise ConfigurationError(f"store URL {shown!r} is not a postgresql:// URL")
    if parts.fragment:
        raise ConfigurationError(
            f"store URL {shown!r} has a '#' fragment, which means nothing to PostgreSQL; "
            "percent-encode a '#' inside a password as %23"
        )
    options: dict[str, str] = {}
    passed: list[tuple[str, str]] = []
    for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if name not in _OWN_OPTIONS:
            passed.append((name, value))
        elif name in options:
            raise ConfigurationError(f"store URL {shown!r} gives {name}= twice; give it once")
        else:
            options[name] = value
    conninfo = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, _query(passed), ""))
    try:
        given = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error as error:
        raise ConfigurationError(
            f"store URL {shown!r} is not a valid PostgreSQL connection URI: "
            f"{_first_line(error)}. Write postgresql://user@host:5432/dbname?schema=name"
        ) from error
    schema = _schema(options.get("schema", DEFAULT_SCHEMA), shown)
    settings = f"-c search_path={schema} -c TimeZone=UTC"
    extra = given.get("options")
    full = psycopg.conninfo.make_conninfo(
        conninfo,
        options=f"{extra} {settings}" if extra else settings,
        application_name=given.get("application_name") or "forerunner",
        connect_timeout=given.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT,
    )
    pool_size = _number(options.get("pool_size", str(DEFAULT_POOL_SIZE)), "pool_size", shown)
    return StoreURL(
        display=shown,
        conninfo=full,
        schema=schema,
        migrate=_flag(options.get("migrate", "true"), "migrate", shown),
        pool_size=int(pool_size),
        pool_timeout=_number(
            options.get("pool_timeout", str(DEFAULT_POOL_TIMEOUT)), "pool_timeout", shown
        ),
    )


def _schema(value: str, shown: str) -> str:
    if not _SCHEMA_NAME.match(value):
        raise ConfigurationError(
            f"store URL {shown!r}: schema={value!r} is not accepted; write a lowercase "
            "name of letters, digits and underscores, up to 63 characters, not starting "
            "with a digit or pg_ (e.g. schema=forerunner)"
        )
    return value


def _flag(value: str, name: str, shown: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigurationError(f"store URL {shown!r}: {name}={value!r}; write {name}=true or false")


def _number(value: str, name: str, shown: str) -> float:
    try:
        number = float(value) if name == "pool_timeout" else int(value)
    except ValueError:
        number = 0
    if number <= 0:
        example = "10" if name == "pool_size" else "5.0"
        raise ConfigurationError(
            f"store URL {shown!r}: {name}={value!r}; write a positive number, e.g. {name}={example}"
        )
    return number


def _first_line(error: BaseException) -> str:
    """The first line of libpq's complaint, secrets masked: it may quote the connection string."""
    text = mask_secrets(str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _query(params: list[tuple[str, str]]) -> str:
    """Percent-encode with %20 for a space: libpq decodes no '+'."""
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
