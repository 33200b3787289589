"""Backend URLs: which scheme picks the backend, and how a URL is shown safely."""

from __future__ import annotations

import re

from forerunner.errors import ConfigurationError

__all__ = [
    "is_valid_scheme",
    "mask_password",
    "mask_secrets",
    "mask_url_passwords",
    "scheme_of",
]

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
#: Query parameters that carry a secret: libpq's ``password`` and ``sslpassword``, and
#: the spellings other drivers accept.
_SECRET_PARAMETER = re.compile(r"(?i)^[a-z_]*(?:password|passwd|secret|token)$")

#: Secrets in free text (a driver's message, a traceback, a log line), each replaced by
#: the text up to its first group and ``***``:
#:
#: * the password of ``scheme://user:password@``: the user part stops at ``/ ? # @ :``, the
#:   password at ``/ ? #`` and before the *last* ``@`` (as :func:`mask_password` reads an
#:   authority), neither crosses a space, a double quote or a backslash, so a JSON or logfmt
#:   line's next field is never taken in;
#: * ``password=...`` (a URL's query, a libpq conninfo string), up to ``&``;
#: * the token of ``Bearer <token>`` (an ``Authorization`` header quoted somewhere), 8
#:   characters or more, so that prose ("send Bearer TOKEN") is left alone.
_SECRETS_IN_TEXT = re.compile(
    r"(?P<url>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:\"\\]*:)[^\s/?#\"\\]*(?=@)"
    r"|(?P<param>\b[A-Za-z_]*(?i:password|passwd)=)(?!\*\*\*)[^\s&#\"\\]+"
    r"|(?P<bearer>\b(?i:bearer)\s+)[^\s\"\\'`,;*]{8,}"
)


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
    if at and ":" in userinfo:
        user = userinfo.partition(":")[0]
        authority = f"{user}:***@{hostinfo}"
    return f"{prefix}{authority}{_mask_query(tail)}"


def _mask_query(tail: str) -> str:
    """``tail`` (path, query, fragment) with the values of secret query parameters masked.

    libpq takes a password as ``?password=`` as readily as in the user part.
    """
    path, sep, query = tail.partition("?")
    if not sep:
        return tail
    query, hash_mark, fragment = query.partition("#")
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        secret = equals and _SECRET_PARAMETER.match(name)
        parts.append(f"{name}=***" if secret else part)
    return f"{path}?{'&'.join(parts)}{hash_mark}{fragment}"


def mask_secrets(text: str) -> str:
    """Return ``text`` with every URL password, ``password=`` value and bearer token masked.

    For text forerunner did not compose: a driver's error message, a traceback, a log
    record. Each message forerunner writes masks the URLs it names (:func:`mask_password`);
    this is the second line of defence. Text without ``@``, ``assw`` or ``earer`` (in
    either case) is returned as it is, without running the pattern.
    """
    if (
        "@" not in text
        and "assw" not in text
        and "ASSW" not in text
        and "earer" not in text
        and "EARER" not in text
    ):
        return text
    return _SECRETS_IN_TEXT.sub(_masked, text)


def mask_url_passwords(text: str) -> str:
    """:func:`mask_secrets` for URL passwords only, at the cost of one ``@`` search.

    For the job log's lines, thousands a second: a task's error message is where a
    connection URL is likely to turn up, a bearer token is not.
    """
    if "@" not in text:
        return text
    return _SECRETS_IN_TEXT.sub(_masked, text)


def _masked(match: re.Match[str]) -> str:
    return f"{match.group(match.lastgroup or 0)}***"
