"""What a Redis queue URL says: where the server is, how to talk to it, and the options.

Parsed by hand rather than by redis-py's ``from_url``: a cluster URL names several
``host:port`` seeds, which :func:`urllib.parse.urlsplit` refuses, and every option is
checked here, so a misspelt one is a :class:`ConfigurationError` naming the options
that exist instead of an argument silently dropped or a ``TypeError`` from the driver.

URL forms (the README has the table)::

    redis://[[user]:password@]host[:port][/db][?option=value&...]
    rediss://...                                   TLS
    unix://[[user]:password@]/path/to/redis.sock[?db=N&...]
    redis+cluster://[[user]:password@]host:port[,host:port...][?...]
    rediss+cluster://...                           cluster over TLS
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import parse_qsl, unquote

import attrs

from forerunner.errors import ConfigurationError
from forerunner.urls import mask_password, scheme_of
from forerunner_redis_queue.keys import DEFAULT_PREFIX, Keys

if TYPE_CHECKING:
    from collections.abc import Callable

    from forerunner.queue import Ordering

__all__ = ["CLUSTER_SCHEMES", "DEFAULT_PORT", "SCHEMES", "RedisQueueConfig", "parse_url"]

DEFAULT_PORT: Final = 6379
#: The schemes of one server, and of a Redis Cluster.
SERVER_SCHEMES: Final = ("redis", "rediss", "unix")
CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster")
SCHEMES: Final = SERVER_SCHEMES + CLUSTER_SCHEMES

CertReqs = Literal["none", "optional", "required"]


@attrs.frozen(kw_only=True)
class RedisQueueConfig:
    """Everything a URL decides about a Redis queue; the password is kept, never shown."""

    #: The URL as given, password masked: for every message about this queue.
    display: str
    #: True for ``redis+cluster://`` and ``rediss+cluster://``.
    cluster: bool = False
    #: True for ``rediss://`` and ``rediss+cluster://``.
    tls: bool = False
    #: ``(host, port)`` of the server, or the cluster's seed nodes; empty for ``unix://``.
    nodes: tuple[tuple[str, int], ...] = ()
    #: The socket of ``unix://``.
    unix_path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    #: ``?prefix=``: the hash tag of every key; deployments and test runs that share a
    #: Redis pick different prefixes.
    prefix: str = attrs.field(default=DEFAULT_PREFIX, validator=lambda _, __, value: Keys(value))
    #: ``?ordering=``: ``fifo`` (default) or ``random``.
    ordering: Ordering = "fifo"
    #: ``?pool_size=``: connections for commands (blocked pops have their own); on a
    #: cluster, per node.
    pool_size: int = 50
    #: ``?pool_timeout=``: seconds a command waits for a free connection of the pool.
    #: A cluster's per-node pools do not wait: a command beyond ``pool_size`` fails.
    pool_timeout: float = 5.0
    #: ``?socket_timeout=``: seconds a command may wait for its reply.
    socket_timeout: float = 5.0
    #: ``?connect_timeout=``: seconds to open a connection.
    connect_timeout: float = 2.0
    #: ``?ssl_ca_certs=``, ``?ssl_certfile=``, ``?ssl_keyfile=``, ``?ssl_cert_reqs=``: TLS.
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: CertReqs = "required"

    @property
    def keys(self) -> Keys:
        return Keys(self.prefix)


def _positive_int(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a whole number >= 1")
    return value


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds")
    return value


def _choice(*allowed: str) -> Callable[[str, str], str]:
    def parse(name: str, text: str) -> str:
        if text not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        return text

    return parse


def _text(_: str, text: str) -> str:
    return text


def _db(name: str, text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{name} must be a database number such as 0 or 15")
    return int(text)


#: Query option -> its parser; the parsers raise ValueError with what is expected.
_OPTIONS: Final[dict[str, Callable[[str, str], object]]] = {
    "prefix": _text,
    "ordering": _choice("fifo", "random"),
    "pool_size": _positive_int,
    "pool_timeout": _seconds,
    "socket_timeout": _seconds,
    "connect_timeout": _seconds,
    "db": _db,
    "ssl_ca_certs": _text,
    "ssl_certfile": _text,
    "ssl_keyfile": _text,
    "ssl_cert_reqs": _choice("none", "optional", "required"),
}
_TLS_OPTIONS: Final = frozenset(name for name in _OPTIONS if name.startswith("ssl_"))


def parse_url(url: str) -> RedisQueueConfig:
    """Read a queue URL; raise :class:`ConfigurationError` saying what to write instead."""
    display = mask_password(url)
    scheme = scheme_of(url)
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"queue URL {display!r}: the Redis queue serves {', '.join(SCHEMES)}, not {scheme}://"
        )

    def bad(why: str) -> ConfigurationError:
        return ConfigurationError(f"queue URL {display!r}: {why}")

    rest = url.partition("://")[2]
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise bad("a Redis URL has no #fragment; put options in the query, ?name=value")
    rest, _, query = rest.partition("?")
    options = _parse_query(query, bad)
    fields: dict[str, Any] = {"display": display}

    if scheme == "unix":
        userinfo, at, path = rest.rpartition("@") if "@" in rest else ("", "", rest)
        if not path.startswith("/"):
            raise bad("write unix:///absolute/path/to/redis.sock (three slashes)")
        fields["unix_path"] = unquote(path)
    else:
        authority, _, path = rest.partition("/")
        userinfo, at, hosts = authority.rpartition("@")
        if not at:
            hosts = authority
        fields["nodes"] = _parse_nodes(hosts, cluster=scheme in CLUSTER_SCHEMES, bad=bad)
        if path:
            if "db" in options:
                raise bad("name the database once, either as /N or as ?db=N")
            try:
                options["db"] = _db("the path", path)
            except ValueError as error:
                raise bad(f"{error}, as in redis://host:6379/15") from None
    if at:
        user, colon, password = userinfo.partition(":")
        fields["username"] = unquote(user) or None
        fields["password"] = unquote(password) if colon else None

    fields["cluster"] = scheme in CLUSTER_SCHEMES
    fields["tls"] = scheme in ("rediss", "rediss+cluster")
    if fields["cluster"] and options.get("db", 0) != 0:
        raise bad("a Redis Cluster has only database 0; drop the /N or ?db=N")
    if not fields["tls"] and _TLS_OPTIONS & options.keys():
        used = ", ".join(sorted(_TLS_OPTIONS & options.keys()))
        raise bad(f"{used} only apply to TLS: write rediss:// (or rediss+cluster://)")
    fields.update(options)
    try:
        return RedisQueueConfig(**fields)
    except ConfigurationError as error:
        raise bad(error.message) from None


def _parse_query(query: str, bad: Callable[[str], ConfigurationError]) -> dict[str, object]:
    options: dict[str, object] = {}
    for name, text in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        parser = _OPTIONS.get(name)
        if parser is None:
            known = ", ".join(sorted(_OPTIONS))
            hint = (
                " (put the password in the URL: redis://:PASSWORD@host)" if "pass" in name else ""
            )
            raise bad(f"unknown option {name!r}{hint}; the options are {known}")
        if name in options:
            raise bad(f"option {name!r} is given twice")
        try:
            options[name] = parser(name, text)
        except ValueError as error:
            raise bad(f"{error}, not {text!r}") from None
    return options


def _parse_nodes(
    hosts: str, *, cluster: bool, bad: Callable[[str], ConfigurationError]
) -> tuple[tuple[str, int], ...]:
    parts = hosts.split(",") if hosts else [""]
    if len(parts) > 1 and not cluster:
        raise bad("several hosts make a cluster URL: write redis+cluster://host:port,host:port")
    nodes = []
    for part in parts:
        host, port_text = _split_host_port(part, bad)
        if not host:
            if cluster:
                raise bad("name at least one node, as in redis+cluster://127.0.0.1:7000")
            host = "localhost"
        try:
            port = int(port_text) if port_text else DEFAULT_PORT
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise bad(f"port {port_text!r} of {part!r} is not a port number")
        nodes.append((host, port))
    return tuple(nodes)


def _split_host_port(part: str, bad: Callable[[str], ConfigurationError]) -> tuple[str, str]:
    if part.startswith("["):
        host, bracket, after = part[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise bad(f"write an IPv6 address as [address]:port, not {part!r}")
        return host, after[1:]
    host, _, port = part.partition(":")
    return unquote(host), port
