"""Backend URLs: which scheme picks the backend, and how a URL is shown safely."""

from __future__ import annotations

import re
import urllib.parse

from forerunner.errors import ConfigurationError

__all__ = ["mask_password", "scheme_of"]

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
    return bool(_SCHEME.match(scheme))


def mask_password(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, for logs and error messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))
