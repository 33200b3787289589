"""HTTP for the builtin tasks: which URLs and addresses they may reach, robots.txt, caps.

Tasks fetch URLs that anyone allowed to submit a job chose, from inside the worker's
network. Every fetch therefore goes through here:

- only ``http`` and ``https`` (a ``file://`` URL would read the worker's own disk);
- only public addresses, unless the worker's environment allows more (see
  :class:`AddressPolicy`): otherwise a job could make a worker read the cloud metadata
  service (169.254.169.254), the manager, or any service on the worker's private
  network, and hand back the answer as its result (server-side request forgery);
- the address is checked where the connection is made: each host name is resolved
  once, every address it resolves to is checked, and the socket connects to one of
  those checked addresses, with the URL's host still sent as the Host header and TLS
  server name. Checking a first lookup and then letting the HTTP library look the name
  up again would let a name that changes its answer (DNS rebinding) slip through.
  Redirects open their connections the same way, so every hop is checked;
- environment proxies and ``.netrc`` are ignored: a proxy would make the connection
  for us, out of reach of the address check, and ``.netrc`` would send the worker's
  credentials to whatever host a job names;
- bodies are streamed and cut off at a cap (a worker's memory and disk are shared by
  every job it runs), and each URL has one deadline for everything, from connecting to
  the last byte, so a server that trickles a byte at a time cannot hold a worker slot.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import time
import urllib.parse
import urllib.robotparser
from typing import TYPE_CHECKING, Final

import attrs
import httpcore
import httpx

from forerunner.errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "ALLOW_NETWORKS_ENV",
    "ALLOW_PRIVATE_ENV",
    "DEFAULT_TIMEOUT",
    "MAX_REDIRECTS",
    "MAX_ROBOTS_BYTES",
    "SCHEMES",
    "USER_AGENT",
    "AddressPolicy",
    "check_address",
    "check_robots",
    "http_url",
    "new_client",
    "read_capped",
]

#: The name robots.txt rules match (``User-agent: forerunner``).
USER_AGENT: Final = "forerunner"
SCHEMES: Final = frozenset({"http", "https"})
#: Seconds allowed for each URL, connecting to last byte, unless the job's data says otherwise.
DEFAULT_TIMEOUT: Final = 30.0
#: Redirects followed per request; more fail the job.
MAX_REDIRECTS: Final = 10
#: The part of a robots.txt that is read; the rest is ignored, as search engines do.
MAX_ROBOTS_BYTES: Final = 512 * 1024
#: Worker setting: comma-separated networks (CIDR) or addresses the tasks may reach even
#: though they are not public, e.g. ``10.1.0.0/16,127.0.0.1``.
ALLOW_NETWORKS_ENV: Final = "FORERUNNER_FETCH_ALLOW_NETWORKS"
#: Worker setting: ``1`` lets the tasks reach every address, private ones included.
ALLOW_PRIVATE_ENV: Final = "FORERUNNER_FETCH_ALLOW_PRIVATE"

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen
class AddressPolicy:
    """Which addresses the builtin tasks may connect to.

    By default only public (globally routable) unicast addresses. A worker that must
    fetch from its own network says so in its environment, read each time a task runs:
    ``FORERUNNER_FETCH_ALLOW_NETWORKS`` lists the networks allowed besides the public
    ones (the precise choice), ``FORERUNNER_FETCH_ALLOW_PRIVATE=1`` turns the address
    check off altogether (every address, the cloud metadata service's included: only
    for workers whose every job submitter is trusted).
    """

    #: Every address may be reached (``FORERUNNER_FETCH_ALLOW_PRIVATE=1``).
    allow_private: bool = False
    #: Networks that may be reached although they are not public.
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> AddressPolicy:
        """The policy the worker's environment (or ``environ``) sets; refuses unclear values."""
        env = os.environ if environ is None else environ
        flag = env.get(ALLOW_PRIVATE_ENV, "").strip().lower()
        if flag not in _TRUE | _FALSE:
            raise ConfigurationError(
                f"{ALLOW_PRIVATE_ENV}={env[ALLOW_PRIVATE_ENV]!r} is neither 1 (allow every "
                "address) nor 0 (public addresses only)"
            )
        networks = []
        for item in env.get(ALLOW_NETWORKS_ENV, "").split(","):
            if not item.strip():
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip()))
            except ValueError as error:
                raise ConfigurationError(
                    f"{ALLOW_NETWORKS_ENV}: {item.strip()!r} is not a network such as "
                    f"10.0.0.0/8 or an address such as 127.0.0.1 ({error})"
                ) from error
        return cls(allow_private=flag in _TRUE, networks=tuple(networks))

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be reached (``"loopback"`` and so on), or None if it may.

        An IPv6 address that carries an IPv4 one (``::ffff:127.0.0.1``, 6to4, NAT64) is
        judged by the IPv4 address, which is where its packets end up.
        """
        if self.allow_private:
            return None
        effective = _embedded(address)
        if any(
            candidate.version == network.version and candidate in network
            for network in self.networks
            for candidate in (address, effective)
        ):
            return None
        return _kind(effective)

    def resolve(self, host: str, port: int, field: str, task: str) -> list[str]:
        """The addresses ``host`` resolves to, once every one of them is allowed.

        One refused address refuses the host: a name that mixes public and private
        answers is exactly what a rebinding attack looks like.
        """
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {error}") from error
        addresses: dict[str, None] = {}
        for family, _, _, _, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                addresses.setdefault(str(sockaddr[0]), None)
        for text in addresses:
            address = ipaddress.ip_address(text)
            kind = self.refusal(address)
            if kind is not None:
                named = host if host == text else f"{host} (address {text})"
                hint = _embedded(ipaddress.ip_address(text.partition("%")[0]))
                raise ValidationError(
                    f"{task}: {named} is a {kind} address, and the builtin tasks reach only "
                    "public addresses so that a job cannot read the worker's own network or "
                    f"the cloud metadata service; to allow it, set {ALLOW_NETWORKS_ENV} "
                    f"(e.g. {ALLOW_NETWORKS_ENV}={hint}/{hint.max_prefixlen}) or "
                    f"{ALLOW_PRIVATE_ENV}=1 in the worker's environment",
                    field=field,
                )
        if not addresses:
            raise httpcore.ConnectError(f"{host!r} has no IPv4 or IPv6 address")
        return list(addresses)


def _embedded(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries, or ``address`` itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _kind(address: IPAddress) -> str | None:
    """The kind of non-public address this is, or None for a public unicast address."""
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    )
    return next((kind for kind, applies in checks if applies), None)


def http_url(value: object, field: str, task: str) -> str:
    """``value`` if it is an absolute http or https URL."""
    if not isinstance(value, str):
        raise ValidationError(f"{task}: {field!r} must be a URL string, got {value!r}", field=field)
    parts = urllib.parse.urlsplit(value)
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise ValidationError(
            f"{task}: {field!r} is {value!r}; only absolute http:// and https:// URLs are fetched",
            field=field,
        )
    return value


def check_address(url: str, field: str, task: str) -> None:
    """Refuse ``url`` now if its host is not allowed, before the job does anything.

    Only an early, friendlier refusal: the check that counts is made again where each
    connection is opened. A name that does not resolve is left for the request to fail.
    """
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        AddressPolicy.from_environ().resolve(parts.hostname or "", port, field, task)
    except httpcore.ConnectError:
        return


@attrs.frozen
class _Deadline:
    """The moment a URL's whole exchange must be over by."""

    timeout: float
    at: float

    def clamp(self, timeout: float | None, error: type[httpcore.TimeoutException]) -> float:
        """``timeout`` cut to the time left, or ``error`` when none is left."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise error(
                f"the request took longer than timeout={self.timeout:g} s; "
                "raise the job's 'timeout' to allow it"
            )
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        limit = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, limit), self._deadline
        )

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens each connection to an address the policy allows, by the deadline.

    httpcore asks it for a connection to the URL's host and port, and still sends that
    host as Host header and TLS server name over whatever socket it returns.
    """

    def __init__(self, policy: AddressPolicy, deadline: _Deadline, field: str, task: str) -> None:
        self._policy = policy
        self._deadline = deadline
        self._field = field
        self._task = task
        self._system = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._policy.resolve(host, port, self._field, self._task)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            limit = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
            try:
                # A literal address: the system backend connects without another lookup.
                stream = self._system.connect_tcp(
                    address, port, limit, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
                continue
            return _DeadlineStream(stream, self._deadline)
        assert failure is not None  # resolve() returns at least one address
        raise failure

    def sleep(self, seconds: float) -> None:
        self._system.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport, with its connection pool opening connections through a guard.

    httpx does not take a network backend, so the pool it made is replaced by one that
    does; ``test_tasks_addresses`` fails if a new httpx stops using ``_pool``.
    """

    def __init__(self, backend: _GuardedBackend) -> None:
        context = _ssl_context()
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=backend)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, made once: loading the CA bundle takes a while."""
    return httpx.create_ssl_context(trust_env=False)


def new_client(timeout: float, field: str, task: str) -> httpx.Client:
    """A client for one URL: address-checked, redirect-following, done within ``timeout``.

    ``timeout`` covers everything the client does, robots.txt and redirects included;
    make a new client for each URL. The policy is read from the environment now.
    """
    deadline = _Deadline(timeout, time.monotonic() + timeout)
    backend = _GuardedBackend(AddressPolicy.from_environ(), deadline, field, task)

    def only_http(request: httpx.Request) -> None:
        # Redirects included: httpx itself would refuse other schemes, less clearly.
        if request.url.scheme not in SCHEMES:
            raise ValidationError(
                f"{task}: a redirect leads to {str(request.url)!r}; "
                "only http:// and https:// URLs are fetched",
                field=field,
            )

    return httpx.Client(
        transport=_GuardedTransport(backend),
        timeout=timeout,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
        headers={"User-Agent": f"{USER_AGENT}-tasks"},
        event_hooks={"request": [only_http]},
    )


def check_robots(client: httpx.Client, url: str, field: str, task: str) -> None:
    """Refuse ``url`` if its site's robots.txt disallows it for forerunner.

    The statuses mean what :mod:`urllib.robotparser` makes them mean: 401 or 403 forbid
    the whole site, any other 4xx or 5xx means there are no rules. Only the first
    :data:`MAX_ROBOTS_BYTES` are read.
    """
    robots_url = urllib.parse.urljoin(url, "/robots.txt")
    parser = urllib.robotparser.RobotFileParser(robots_url)
    with client.stream("GET", robots_url) as response:
        if response.status_code in (401, 403):
            parser.parse(["User-agent: *", "Disallow: /"])
        elif response.status_code >= 400:
            parser.parse([])
        else:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) >= MAX_ROBOTS_BYTES:
                    break
            text = bytes(body[:MAX_ROBOTS_BYTES]).decode(response.encoding or "utf-8", "replace")
            parser.parse(text.splitlines())
    if not parser.can_fetch(USER_AGENT, url):
        raise ValidationError(
            f"{task}: {robots_url} disallows {url!r} for user agent {USER_AGENT!r}; "
            "forerunner does not fetch it",
            field=field,
        )


def read_capped(response: httpx.Response, max_bytes: int, field: str) -> Iterator[bytes]:
    """The body of a streamed ``response``, refusing it past ``max_bytes``.

    A declared Content-Length over the cap is refused before reading anything; the
    running count catches servers that lie or send no length. The count is of decoded
    bytes, so a small compressed body that inflates past the cap is refused too.
    """
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ValidationError(
            f"{response.url} declares {declared} bytes, more than max_bytes={max_bytes}; "
            "raise max_bytes to allow it",
            field=field,
        )
    total = 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise ValidationError(
                f"{response.url} sent more than max_bytes={max_bytes} bytes; "
                "raise max_bytes to allow it",
                field=field,
            )
        yield chunk
