"""Backend URLs: which scheme picks the backend, and how a URL is shown safely."""

from __future__ import annotations

import re

from forerunner.errors import ConfigurationError

__all__ = ["is_valid_scheme", "mask_password", "scheme_of"]

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")


def scheme_of(url: str) -> str:
    """Return the URL's scheme, lowercased; the scheme picks the backend (design §5)."""
    scheme, sep, _ = url.partition("://")
    if not sep or not _SCHEME.match(scheme.lower()):
        raise ConfigurationError(
            f"backend URL {mask_password(url)!r} has no scheme; write it as SCHEME://..., "
            "for example memory:// or sqlite:///forerunner.db"
        )
    return scheme.lower()


def is_valid_scheme(scheme: str) -> bool:
    """Whether a plugin may register ``scheme``: lowercase, as :func:`scheme_of` returns it."""
    return bool(_SCHEME.match(scheme))


def mask_password(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, for logs and error messages.

    Parsed by hand rather than with :func:`urllib.parse.urlsplit`, which finds no
    password in a URL that lacks ``//`` (``user:secret@host``, a forgotten scheme):
    exactly the mistyped URL that ends up quoted in an error message.
    """
    scheme, sep, rest = url.partition("://")
    prefix = scheme + sep if sep else ""
    if not sep:
        rest = url
    ends = [index for index in (rest.find(mark) for mark in "/?#") if index >= 0]
    authority_end = min(ends, default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    userinfo, at, hostinfo = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{prefix}{user}:***@{hostinfo}{tail}"
