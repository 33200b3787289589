"""HTTP for the builtin tasks: which URLs they may fetch, robots.txt, size caps.

Tasks run arbitrary submitted URLs, so every fetch goes through here: only ``http`` and
``https`` (a ``file://`` URL would read the worker's own disk), bodies are streamed and
cut off at a cap (a worker's memory and disk are shared by every job it runs), and each
request has a timeout.
"""

from __future__ import annotations

import urllib.parse
import urllib.robotparser
from typing import TYPE_CHECKING, Final

import httpx

from forerunner.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "DEFAULT_TIMEOUT",
    "SCHEMES",
    "USER_AGENT",
    "check_robots",
    "http_url",
    "new_client",
    "read_capped",
]

#: The name robots.txt rules match (``User-agent: forerunner``).
USER_AGENT: Final = "forerunner"
SCHEMES: Final = frozenset({"http", "https"})
#: Seconds for each connect, read and write, unless the job's data says otherwise.
DEFAULT_TIMEOUT: Final = 30.0


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


def new_client(timeout: float) -> httpx.Client:
    """A client that follows redirects, names itself, and gives up after ``timeout``."""
    return httpx.Client(
        timeout=timeout, follow_redirects=True, headers={"User-Agent": f"{USER_AGENT}-tasks"}
    )


def check_robots(client: httpx.Client, url: str, field: str, task: str) -> None:
    """Refuse ``url`` if its site's robots.txt disallows it for forerunner.

    The statuses mean what :mod:`urllib.robotparser` makes them mean: 401 or 403 forbid
    the whole site, any other 4xx or 5xx means there are no rules.
    """
    robots_url = urllib.parse.urljoin(url, "/robots.txt")
    response = client.get(robots_url)
    parser = urllib.robotparser.RobotFileParser(robots_url)
    if response.status_code in (401, 403):
        parser.parse(["User-agent: *", "Disallow: /"])
    elif response.status_code >= 400:
        parser.parse([])
    else:
        parser.parse(response.text.splitlines())
    if not parser.can_fetch(USER_AGENT, url):
        raise ValidationError(
            f"{task}: {robots_url} disallows {url!r} for user agent {USER_AGENT!r}; "
            "forerunner does not fetch it",
            field=field,
        )


def read_capped(response: httpx.Response, max_bytes: int, field: str) -> Iterator[bytes]:
    """The body of a streamed ``response``, refusing it past ``max_bytes``.

    A declared Content-Length over the cap is refused before reading anything; the
    running count catches servers that lie or send no length.
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
