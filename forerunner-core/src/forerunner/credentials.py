"""What a client or worker shows a manager: its bearer token and the CAs it trusts.

A token is read from a file or the environment, never from the command line, where
``ps`` would show it to every user of the machine. Certificates are verified by
default against the system's trust store; ``ca_file`` adds a private CA. There is no
switch that turns verification off: a manager with a self-signed certificate is
trusted by giving its certificate as the CA file.
"""

from __future__ import annotations

import os
import ssl
from typing import Final

from forerunner.errors import ConfigurationError

__all__ = ["CA_FILE_ENV", "TOKEN_ENV", "header_safe", "load_token", "ssl_context"]

#: The environment variable a caller's token is read from.
TOKEN_ENV: Final = "FORERUNNER_TOKEN"
#: The environment variable naming a PEM file of CAs to trust beside the system's.
CA_FILE_ENV: Final = "FORERUNNER_CA_FILE"


def load_token(token_file: str | None = None) -> str | None:
    """The caller's token: the content of ``token_file``, else ``$FORERUNNER_TOKEN``.

    Surrounding whitespace is dropped, so a file written by ``echo`` works; an empty
    token is an error rather than no token, since it is surely a mistake.
    """
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as file:
                token = file.read().strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigurationError(
                f"cannot read the token file {token_file!r}: {error}"
            ) from error
        if not token:
            raise ConfigurationError(f"the token file {token_file!r} is empty")
        return _checked(token, f"the token file {token_file!r}")
    raw = os.environ.get(TOKEN_ENV)
    if raw is None:
        return None
    token = raw.strip()
    if not token:
        raise ConfigurationError(f"{TOKEN_ENV} is set but empty; unset it or give the token")
    return _checked(token, TOKEN_ENV)


def header_safe(token: str) -> bool:
    """Whether ``token`` can follow ``Bearer`` in a header: one word of printable ASCII.

    A token with a line break in it would add headers of its own to every request.
    """
    return bool(token) and token.isascii() and token.isprintable() and " " not in token


def _checked(token: str, source: str) -> str:
    if not header_safe(token):
        raise ConfigurationError(
            f"the token in {source} holds spaces or characters a header cannot carry"
        )
    return token


def ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system's CAs, plus ``ca_file`` or ``$FORERUNNER_CA_FILE``."""
    ca_file = ca_file or os.environ.get(CA_FILE_ENV) or None
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(f"cannot load the CA file {ca_file!r}: {error}") from error
    return context
