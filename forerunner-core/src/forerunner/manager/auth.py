"""Who may call the manager: bearer tokens, their roles, and the workers they vouch for.

Three roles split what a caller can do. A *client* submits and reads jobs; an *admin*
does that and changes jobs (cancel, retry, purge: the dashboard's actions); a *worker*
only polls. Each role takes several tokens at once, so a token is rotated by adding
the new one, moving callers over, then removing the old one.

A token is compared by its SHA-256 digest against every configured digest, without
stopping at a match, so the time an answer takes says nothing about how much of a
guess was right. Tokens are never logged, shown or echoed; a principal carries a
short fingerprint of its token instead, enough to tell tokens apart in counters.

A worker id is bound, at its first poll, to the token that authenticated it and the
session secret the worker made when it started (:class:`WorkerBindings`): another
caller, even one holding a worker token, cannot then report, renew or take jobs as
that worker.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import os
import threading
import time
from typing import TYPE_CHECKING, Final

import attrs

from forerunner.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "MIN_TOKEN_LENGTH",
    "TOKEN_ENVIRONMENT",
    "Principal",
    "Role",
    "Tokens",
    "WorkerBindings",
    "is_loopback",
]

#: Shortest token accepted: a guessable token is no lock.
MIN_TOKEN_LENGTH: Final = 16


class Role(enum.StrEnum):
    CLIENT = "client"
    WORKER = "worker"
    ADMIN = "admin"


#: The environment variables ``forerunner manager`` reads tokens from, comma-separated.
TOKEN_ENVIRONMENT: Final = {
    Role.CLIENT: "FORERUNNER_CLIENT_TOKENS",
    Role.WORKER: "FORERUNNER_WORKER_TOKENS",
    Role.ADMIN: "FORERUNNER_ADMIN_TOKENS",
}


@attrs.frozen
class Principal:
    """An authenticated caller: its role and which token it showed (by fingerprint)."""

    role: Role
    #: The first hex digits of the token's digest: stable per token, useless to a thief.
    fingerprint: str


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


@attrs.frozen
class Tokens:
    """The tokens a manager accepts, by role; empty means authentication is off."""

    _entries: tuple[tuple[bytes, Principal], ...] = ()

    @classmethod
    def from_mapping(cls, tokens: Mapping[Role | str, Iterable[str]]) -> Tokens:
        """``{"client": ["...", ...], "worker": [...], "admin": [...]}``."""
        return cls.from_pairs(
            (role, token) for role, several in tokens.items() for token in several
        )

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[Role | str, str]], *, source: str = "") -> Tokens:
        entries: list[tuple[bytes, Principal]] = []
        where = f" in {source}" if source else ""
        for raw_role, token in pairs:
            try:
                role = Role(raw_role)
            except ValueError:
                known = ", ".join(r.value for r in Role)
                raise ConfigurationError(
                    f"unknown role {raw_role!r}{where}; the roles are {known}"
                ) from None
            if len(token) < MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
                raise ConfigurationError(
                    f"a {role} token{where} is shorter than {MIN_TOKEN_LENGTH} characters or "
                    "holds characters a header cannot carry; make tokens with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
            if " " in token or "," in token:
                raise ConfigurationError(f"a {role} token{where} holds a space or a comma")
            digest = _digest(token)
            if any(hmac.compare_digest(digest, known) for known, _ in entries):
                raise ConfigurationError(
                    f"the same token is given twice{where}; every token has one role"
                )
            entries.append((digest, Principal(role, digest.hex()[:12])))
        return cls(tuple(entries))

    @classmethod
    def from_file(cls, path: str) -> Tokens:
        """Lines of ``ROLE TOKEN``; blank lines and lines starting with ``#`` are skipped."""
        try:
            with open(path, encoding="utf-8") as file:
                lines = file.read().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigurationError(f"cannot read the tokens file {path!r}: {error}") from error
        pairs: list[tuple[str, str]] = []
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            fields = text.split()
            if len(fields) != 2:
                raise ConfigurationError(
                    f"{path}:{number}: expected `ROLE TOKEN` (role client, worker or admin), "
                    f"found {len(fields)} fields"
                )
            pairs.append((fields[0], fields[1]))
        return cls.from_pairs(pairs, source=path)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Tokens:
        """The tokens in ``FORERUNNER_{CLIENT,WORKER,ADMIN}_TOKENS``, comma-separated."""
        env = os.environ if environ is None else environ
        pairs: list[tuple[Role, str]] = []
        for role, name in TOKEN_ENVIRONMENT.items():
            for token in env.get(name, "").split(","):
                if token.strip():
                    pairs.append((role, token.strip()))
        return cls.from_pairs(pairs, source="the environment")

    def __add__(self, other: Tokens) -> Tokens:
        """Both sets of tokens: a tokens file and the environment together."""
        for digest, _ in other._entries:
            if any(hmac.compare_digest(digest, known) for known, _ in self._entries):
                raise ConfigurationError("the same token is configured twice")
        return Tokens(self._entries + other._entries)

    @property
    def enabled(self) -> bool:
        """Whether the manager asks for tokens at all."""
        return bool(self._entries)

    def count(self, role: Role) -> int:
        return sum(1 for _, principal in self._entries if principal.role is role)

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal an ``Authorization`` header names, or None for no valid token."""
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        digest = _digest(token.strip())
        found: Principal | None = None
        for known, principal in self._entries:
            if hmac.compare_digest(digest, known):
                found = principal
        return found

    def __repr__(self) -> str:
        counts = ", ".join(f"{role}={self.count(role)}" for role in Role)
        return f"Tokens({counts})"


@attrs.frozen
class _Binding:
    fingerprint: str
    session: bytes | None
    seen: float


class WorkerBindings:
    """Worker id -> the token and session that first polled as it.

    A binding is forgotten once its worker has not polled for ``expiry`` seconds: a live
    worker polls at least every third of a lease, so an idle binding is a dead worker,
    and a restarted worker with a fixed id gets its id back after that long.
    """

    def __init__(self, expiry: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.expiry = expiry
        self._clock = clock
        self._bound: dict[str, _Binding] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def admit(self, worker: str, fingerprint: str, session: str | None) -> bool:
        """Whether this poll may speak for ``worker``; binds an unknown or expired id."""
        now = self._clock()
        secret = None if session is None else _digest(session)
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            bound = self._bound.get(worker)
            if bound is not None and now - bound.seen < self.expiry:
                same_token = hmac.compare_digest(bound.fingerprint, fingerprint)
                same_session = (
                    bound.session is None
                    if secret is None
                    else bound.session is not None and hmac.compare_digest(bound.session, secret)
                )
                if not (same_token and same_session):
                    return False
            self._bound[worker] = _Binding(fingerprint, secret, now)
            return True

    def seconds_left(self, worker: str) -> float:
        """How long until ``worker``'s binding expires if it stops polling."""
        bound = self._bound.get(worker)
        return 0.0 if bound is None else max(0.0, self.expiry - (self._clock() - bound.seen))

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.expiry
        for worker, bound in list(self._bound.items()):
            if now - bound.seen >= self.expiry:
                del self._bound[worker]


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the manager to this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
