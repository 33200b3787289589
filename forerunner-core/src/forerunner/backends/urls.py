"""The URLs the embedded backends accept, parsed in one place.

``memory://`` and ``memory+random://`` take nothing after the scheme: each opening is a
new private backend, so a host or path would suggest sharing that does not happen.
``sqlite://`` follows SQLAlchemy: ``sqlite:///relative/path.db`` (three slashes) and
``sqlite:////absolute/path.db`` (four).
"""

from __future__ import annotations

import os

from forerunner.errors import ConfigurationError
from forerunner.urls import mask_password

__all__ = ["check_memory_url", "sqlite_path"]


def check_memory_url(url: str, scheme: str, what: str) -> None:
    """Accept exactly ``{scheme}://`` for a ``what`` ("store", "queue"); raise otherwise."""
    given, sep, rest = url.partition("://")
    if sep and given.lower() == scheme and not rest:
        return
    raise ConfigurationError(
        f"{what} URL {mask_password(url)!r} is not accepted: write exactly {scheme}://, "
        f"since a {scheme} {what} lives in one process and takes no host, path or query"
    )


def sqlite_path(url: str) -> str:
    """Return the absolute file path a ``sqlite://`` URL names.

    A relative path is resolved against the current directory now, so that the store
    keeps using the same file if the process changes directory later.
    """
    given, sep, rest = url.partition("://")
    if not sep or given.lower() != "sqlite":
        raise ConfigurationError(f"store URL {mask_password(url)!r} is not a sqlite:// URL")
    if rest.lstrip("/") in ("", ":memory:"):
        raise ConfigurationError(
            f"store URL {mask_password(url)!r} names no database file. Write "
            "sqlite:///relative/path.db or sqlite:////absolute/path.db; for a store that "
            "lives only in this process, use memory://"
        )
    if not rest.startswith("/") or "?" in rest or "#" in rest:
        raise ConfigurationError(
            f"store URL {mask_password(url)!r} is not accepted: sqlite:// takes a file path "
            "and no host or query, as in sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    path = rest[1:]
    return os.path.abspath(path)
