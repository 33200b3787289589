"""Tasks that read web pages: ``get_hrefs`` and ``pluck_data``.

HTML is parsed with selectolax's Lexbor backend: a maintained binding to a
spec-following HTML5 parser (pages are parsed the way browsers parse them, broken
markup included), with CSS selectors implemented in C, many times faster than
beautifulsoup4 with soupsieve; it ships type stubs and wheels for every platform we
support, and it has no dependencies of its own.

A page is only fetched when its site's robots.txt allows it for ``forerunner``, and,
like ``fetch``, only from public addresses unless the worker's environment allows more
(``FORERUNNER_FETCH_ALLOW_NETWORKS``, ``FORERUNNER_FETCH_ALLOW_PRIVATE``; see
:mod:`forerunner.tasks._web`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from forerunner.errors import ValidationError
from forerunner.tasks._data import mapping, optional_number
from forerunner.tasks._web import (
    DEFAULT_TIMEOUT,
    SCHEMES,
    check_address,
    check_robots,
    http_url,
    new_client,
    read_capped,
)

__all__ = ["DEFAULT_MAX_PAGE_BYTES", "get_hrefs", "pluck_data"]

#: The largest page these tasks read unless the job's ``max_bytes`` says more.
DEFAULT_MAX_PAGE_BYTES: Final = 10 * 1024 * 1024


def get_hrefs(job_id: str, data: Any) -> list[str]:
    """The absolute http(s) links of the page ``{"url": page}``, each once, in page order.

    Links are resolved against the page's final URL (after redirects) or its
    ``<base href>``; fragments are dropped, since ``page#a`` and ``page#b`` are one
    document; ``mailto:``, ``javascript:`` and the like are left out. Optional
    ``timeout`` (seconds for the whole exchange, robots.txt and redirects included,
    default 30) and ``max_bytes`` (default 10 MiB). The page and every redirect hop must
    be at a public address unless the worker's environment allows more, as for ``fetch``.
    """
    given = mapping(data, "get_hrefs")
    url = http_url(given.get("url"), "url", "get_hrefs")
    page, final_url = _download(given, url, "get_hrefs")
    tree = LexborHTMLParser(page)
    base = final_url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        base = urllib.parse.urljoin(final_url, (base_node.attributes.get("href") or "").strip())
    links: dict[str, None] = {}
    for node in tree.css("a[href], area[href]"):
        href = (node.attributes.get("href") or "").strip()
        absolute, _ = urllib.parse.urldefrag(urllib.parse.urljoin(base, href))
        if urllib.parse.urlsplit(absolute).scheme in SCHEMES:
            links.setdefault(absolute, None)
    return list(links)


def pluck_data(job_id: str, data: Any) -> dict[str, list[str]]:
    """The texts matching each CSS selector: ``{"selectors": {name: css}}`` -> ``{name: [text]}``.

    The page is ``html`` (a string) or is fetched from ``url``. Each match gives its text
    with whitespace collapsed to single spaces, in document order; a name whose selector
    matches nothing maps to ``[]``. A ``url`` is fetched as by ``get_hrefs``: robots.txt,
    public addresses only unless the worker allows more, ``timeout`` and ``max_bytes``.
    """
    given = mapping(data, "pluck_data")
    selectors = given.get("selectors")
    if (
        not isinstance(selectors, Mapping)
        or not selectors
        or not all(isinstance(css, str) and css for css in selectors.values())
    ):
        raise ValidationError(
            "pluck_data needs 'selectors': a non-empty object of name to CSS selector, "
            f"got {selectors!r}",
            field="selectors",
        )
    html = given.get("html")
    if html is None:
        url = http_url(given.get("url"), "url", "pluck_data")
        html, _ = _download(given, url, "pluck_data")
    elif not isinstance(html, str):
        raise ValidationError(
            f"pluck_data: 'html' must be a string, got {type(html).__name__}", field="html"
        )
    tree = LexborHTMLParser(html)
    plucked: dict[str, list[str]] = {}
    for name, css in selectors.items():
        try:
            nodes = tree.css(css)
        except SelectolaxError as error:
            raise ValidationError(
                f"pluck_data: selector {name!r} is not valid CSS: {css!r} ({error})",
                field=f"selectors.{name}",
            ) from error
        plucked[name] = [" ".join(node.text(separator=" ").split()) for node in nodes]
    return plucked


def _download(given: Mapping[str, Any], url: str, task: str) -> tuple[str, str]:
    """The page's text and final URL, once robots.txt has allowed it."""
    timeout = optional_number(given, "timeout", DEFAULT_TIMEOUT, task)
    max_bytes = int(optional_number(given, "max_bytes", DEFAULT_MAX_PAGE_BYTES, task, integer=True))
    check_address(url, "url", task)
    with new_client(timeout, "url", task) as client:
        check_robots(client, url, "url", task)
        with client.stream("GET", url) as response:
            response.raise_for_status()
            body = b"".join(read_capped(response, max_bytes, "max_bytes"))
            encoding = response.encoding or "utf-8"
            return body.decode(encoding, errors="replace"), str(response.url)
