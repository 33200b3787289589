"""The redis-py clients of a queue, and how their errors become forerunner's.

A queue holds two clients on two pools. Commands (the scripts, ``HLEN``...) share a
bounded pool; a pop that blocks holds a connection of the second, unbounded pool for
as long as it waits. Were they one pool, pops blocked on an empty queue could take
every connection, and the push that would wake them would wait for one of them to
time out.

Retries: a command that fails for want of a connection (Redis restarted, a dropped
socket, a timeout) is sent again, twice at most, after a short back-off. Every script
is safe to send again (``pop.lua`` replays its receipt rather than popping twice;
pushing, removing and counting are idempotent), so a retry never loses or duplicates an
entry. A blocked wait is sent again once, and only when its connection was found
closed (as every pooled one is after a Redis restart); a wait that timed out on the
socket is not, since the server did not answer for longer than the wait itself.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import TYPE_CHECKING, Any, Final, cast

import redis
import redis.backoff
import redis.cluster
import redis.exceptions
import redis.retry

from forerunner.errors import BackendError, BackendUnavailable
from forerunner.urls import mask_secrets

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from forerunner_redis_queue.url import RedisQueueConfig

__all__ = ["WAIT_SLICE", "Client", "Clients", "open_clients", "translate_errors"]

#: Longest single blocking wait, in seconds. A pop with a longer timeout waits in
#: slices and looks at the queue between them, which bounds how long a wake-up lost
#: with a crashed process can delay it. A wait's socket allows this plus socket_timeout.
WAIT_SLICE: Final = 5.0
#: Sends of a failed command after the first.
RETRIES: Final = 2

#: The redis-py client type of both a single server and a cluster.
Client = redis.Redis | redis.cluster.RedisCluster

#: Errors that mean "Redis cannot be reached or cannot serve now": worth a later retry.
_UNAVAILABLE: Final = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.RedisClusterException,
)


class Clients:
    """A command client and a waiting client for one queue; :meth:`close` ends both."""

    def __init__(self, commands: Client, waits: Client) -> None:
        #: Scripts and other short commands.
        self.commands = commands
        #: Blocking waits (``BLPOP``), one connection per waiting thread.
        self.waits = waits

    def close(self) -> None:
        """Close every connection, also those in use, which ends any blocked wait."""
        for client in (self.waits, self.commands):
            if isinstance(client, redis.cluster.RedisCluster):
                client.close()
            else:
                client.connection_pool.disconnect(inuse_connections=True)


#: redis-py leaves these two unannotated; typed here once instead of at every call.
_cluster_node = cast("Callable[[str, int], redis.cluster.ClusterNode]", redis.cluster.ClusterNode)
_blocking_pool = cast("Callable[..., redis.BlockingConnectionPool]", redis.BlockingConnectionPool)


def _client_name(prefix: str) -> str:
    """``CLIENT LIST`` shows this; Redis refuses names with spaces or non-ASCII characters."""
    shown = "".join(char if "!" <= char <= "~" else "_" for char in prefix)
    return f"forerunner-queue-{shown}"[:64]


def _retry(retries: int, *, on_timeout: bool = True) -> redis.retry.Retry:
    backoff = redis.backoff.ExponentialWithJitterBackoff(base=0.05, cap=0.5)
    errors: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError,)
    if on_timeout:
        errors += (redis.exceptions.TimeoutError, TimeoutError)
    return redis.retry.Retry(backoff, retries, supported_errors=errors)


def _tls_options(config: RedisQueueConfig) -> dict[str, Any]:
    if not config.tls:
        return {}
    return {
        "ssl_ca_certs": config.ssl_ca_certs,
        "ssl_certfile": config.ssl_certfile,
        "ssl_keyfile": config.ssl_keyfile,
        "ssl_cert_reqs": {
            "none": ssl.CERT_NONE,
            "optional": ssl.CERT_OPTIONAL,
            "required": ssl.CERT_REQUIRED,
        }[config.ssl_cert_reqs],
        "ssl_check_hostname": config.ssl_cert_reqs == "required",
    }


def open_clients(config: RedisQueueConfig) -> Clients:
    """Make the two clients; no connection is opened until the first command."""
    common: dict[str, Any] = {
        "username": config.username,
        "password": config.password,
        "socket_connect_timeout": config.connect_timeout,
        "decode_responses": True,
        "client_name": _client_name(config.prefix),
    }
    wait_timeout = WAIT_SLICE + config.socket_timeout
    if config.cluster:
        nodes = [_cluster_node(host, port) for host, port in config.nodes]
        cluster_options = {**common, "ssl": config.tls, **_tls_options(config)}
        commands = redis.cluster.RedisCluster(
            startup_nodes=nodes,
            retry=_retry(RETRIES),
            socket_timeout=config.socket_timeout,
            max_connections=config.pool_size,
            **cluster_options,
        )
        waits = redis.cluster.RedisCluster(
            startup_nodes=nodes,
            retry=_retry(1, on_timeout=False),
            socket_timeout=wait_timeout,
            **cluster_options,
        )
        return Clients(commands, waits)

    where: dict[str, Any]
    if config.unix_path is not None:
        where = {
            "connection_class": redis.UnixDomainSocketConnection,
            "path": config.unix_path,
        }
    else:
        [(host, port)] = config.nodes
        connection_class = redis.SSLConnection if config.tls else redis.Connection
        where = {"connection_class": connection_class, "host": host, "port": port}
    server = {**common, **where, **_tls_options(config), "db": config.db}
    commands_pool = _blocking_pool(
        max_connections=config.pool_size,
        timeout=config.pool_timeout,
        socket_timeout=config.socket_timeout,
        retry=_retry(RETRIES),
        **server,
    )
    waits_pool = redis.ConnectionPool(
        socket_timeout=wait_timeout, retry=_retry(1, on_timeout=False), **server
    )
    return Clients(
        redis.Redis(connection_pool=commands_pool), redis.Redis(connection_pool=waits_pool)
    )


@contextlib.contextmanager
def translate_errors(display: str, action: str) -> Iterator[None]:
    """Re-raise redis-py's errors as forerunner's, naming the queue (password masked).

    Connection trouble becomes :class:`BackendUnavailable`, which the manager answers
    with 503 and a worker retries; anything else Redis refuses becomes
    :class:`BackendError`. The driver's error stays chained as ``__cause__``; its text
    is masked in the message, which reaches HTTP answers (a server's reply may quote the
    command that failed).
    """
    try:
        yield
    except _UNAVAILABLE as error:
        raise BackendUnavailable(
            f"the Redis queue at {display} is unavailable ({action}): "
            f"{type(error).__name__}: {mask_secrets(str(error))}; check that Redis runs and "
            "answers there"
        ) from error
    except redis.exceptions.RedisError as error:
        raise BackendError(
            f"the Redis queue at {display} failed to {action}: "
            f"{type(error).__name__}: {mask_secrets(str(error))}"
        ) from error
