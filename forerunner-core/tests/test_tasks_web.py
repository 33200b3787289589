"""The builtin tasks that use the network: ``fetch``, ``get_hrefs``, ``pluck_data``.

Every request goes to a local HTTP server on 127.0.0.1 (``site``), never the internet;
the ``site`` fixture allows exactly that address (``FORERUNNER_FETCH_ALLOW_NETWORKS``),
since the tasks refuse loopback addresses by default (``test_tasks_addresses``), and
``fetch`` writes under the ``root`` fixture, the worker's files root (``tmp_path``;
``test_tasks_paths`` covers paths outside it).
Covers downloads and their safe file names, the size cap (declared and actual), refusal
of non-http schemes before anything is fetched, HTTP errors, robots.txt (a disallowed
page is never requested), link extraction (absolute, deduplicated, in page order) and
CSS plucking from a string or a page.
"""

from __future__ import annotations

import http.server
import threading
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from forerunner.errors import ValidationError
from forerunner.tasks import ALLOW_NETWORKS_ENV, ALLOW_PRIVATE_ENV, fetch, get_hrefs, pluck_data
from forerunner.tasks.files import FILES_ROOT_ENV, safe_filename

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class Site:
    """A local web server whose pages a test sets, and which records what was requested."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, bytes, bool]] = {}
        self.requested: list[str] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requested.append(self.path)
                status, body, declare_length = site.pages.get(self.path, (404, b"not found", True))
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                if declare_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def page(self, path: str, body: str | bytes, *, status: int = 200, length: bool = True) -> str:
        """Serve ``body`` at ``path`` and return its URL; ``length=False`` omits Content-Length."""
        data = body.encode() if isinstance(body, str) else body
        self.pages[path] = (status, data, length)
        return self.base + path


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    # The tasks refuse loopback addresses unless the worker allows them: allow this one.
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    monkeypatch.setenv(ALLOW_NETWORKS_ENV, "127.0.0.1/32")
    served = Site()
    # A short poll interval so that shutdown at teardown is quick.
    thread = threading.Thread(target=served.server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worker's files root: ``tmp_path``, so every destination these tests use is inside."""
    monkeypatch.setenv(FILES_ROOT_ENV, str(tmp_path))
    return tmp_path


def test_fetch_downloads_each_url_into_the_destination(site: Site, root: Path) -> None:
    first = site.page("/files/report.csv", "a,b\n1,2\n")
    second = site.page("/other/report.csv", "different")
    third = site.page("/", "<p>home</p>")

    result = fetch("job", {"origin": [first, second, third], "destination": str(root / "d")})

    assert result == [
        {"url": first, "path": str(root / "d" / "report.csv"), "status": 200, "bytes": 8},
        {"url": second, "path": str(root / "d" / "report-2.csv"), "status": 200, "bytes": 9},
        {"url": third, "path": str(root / "d" / "index.html"), "status": 200, "bytes": 11},
    ]
    assert (root / "d" / "report-2.csv").read_text(encoding="utf-8") == "different"


def test_fetch_accepts_a_single_url(site: Site, root: Path) -> None:
    url = site.page("/one.txt", "1")
    assert fetch("job", {"origin": url, "destination": str(root)})[0]["bytes"] == 1


@pytest.mark.parametrize("declared", [True, False], ids=["declared-length", "no-length"])
def test_fetch_refuses_a_body_over_max_bytes_and_keeps_no_file(
    site: Site, root: Path, declared: bool
) -> None:
    url = site.page("/big.bin", b"x" * 5000, length=declared)
    with pytest.raises(ValidationError, match="max_bytes") as refused:
        fetch("job", {"origin": url, "destination": str(root), "max_bytes": 1000})
    assert refused.value.field == "max_bytes"
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(
    ("origin", "field"),
    [
        ("file:///etc/passwd", "origin"),
        (["{ok}", "ftp://127.0.0.1/x"], "origin.1"),
        ("/relative/path", "origin"),
        ([], "origin"),
        (None, "origin"),
    ],
)
def test_fetch_refuses_non_http_urls_before_fetching_anything(
    site: Site, root: Path, origin: Any, field: str
) -> None:
    ok = site.page("/ok.txt", "ok")
    if isinstance(origin, list):
        origin = [url.format(ok=ok) for url in origin]
    with pytest.raises(ValidationError) as refused:
        fetch("job", {"origin": origin, "destination": str(root)})
    assert refused.value.field == field
    assert site.requested == []


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"destination": None}, "destination"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"timeout": "soon"}, "timeout"),
        ({"max_bytes": 1.5}, "max_bytes"),
    ],
)
def test_fetch_refuses_bad_options_naming_the_field(
    site: Site, root: Path, extra: dict[str, Any], field: str
) -> None:
    data = {"origin": site.page("/ok.txt", "ok"), "destination": str(root), **extra}
    with pytest.raises(ValidationError) as refused:
        fetch("job", data)
    assert refused.value.field == field


def test_fetch_fails_on_an_http_error_status(site: Site, root: Path) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        fetch("job", {"origin": site.base + "/missing", "destination": str(root)})
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("http://h/a/b/file.tar.gz?x=1#f", "file.tar.gz"),
        ("http://h/dir/", "index.html"),
        ("http://h", "index.html"),
        ("http://h/..%2F..%2Fetc%2Fpasswd", "_.._etc_passwd"),
        ("http://h/..", "index.html"),
        ("http://h/na%C3%AFve%20file.txt", "na_ve_file.txt"),
    ],
)
def test_safe_filename_cannot_leave_the_destination(url: str, name: str) -> None:
    assert safe_filename(url) == name


LINKS_PAGE = """<html><head><title>t</title></head><body>
<a href="/b">B</a>
<a href="c.html#section">C</a>
<a href="http://example.org/x">X</a>
<a href="/b#again">B again</a>
<a href="mailto:someone@example.org">mail</a>
<a href="javascript:void(0)">js</a>
<map><area href="/area"></map>
<a>no href</a>
</body></html>"""


def test_get_hrefs_returns_absolute_unique_links_in_page_order(site: Site) -> None:
    url = site.page("/dir/page.html", LINKS_PAGE)
    assert get_hrefs("job", {"url": url}) == [
        site.base + "/b",
        site.base + "/dir/c.html",
        "http://example.org/x",
        site.base + "/area",
    ]


def test_get_hrefs_resolves_against_the_base_element(site: Site) -> None:
    url = site.page("/p", '<base href="/docs/"><a href="guide">g</a>')
    assert get_hrefs("job", {"url": url}) == [site.base + "/docs/guide"]


def test_get_hrefs_never_requests_a_page_robots_txt_disallows(site: Site) -> None:
    # Given a site whose robots.txt disallows /private for every agent
    site.page("/robots.txt", "User-agent: *\nDisallow: /private\n")
    url = site.page("/private/page.html", LINKS_PAGE)

    # When a job asks for its links
    with pytest.raises(ValidationError, match=r"robots\.txt") as refused:
        get_hrefs("job", {"url": url})

    # Then the job is refused and the page itself was never requested
    assert refused.value.field == "url"
    assert site.requested == ["/robots.txt"]


def test_get_hrefs_honours_rules_for_forerunner_by_name(site: Site) -> None:
    site.page("/robots.txt", "User-agent: forerunner\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    with pytest.raises(ValidationError):
        get_hrefs("job", {"url": site.page("/open", LINKS_PAGE)})


def test_get_hrefs_treats_a_forbidden_robots_txt_as_disallowing_everything(site: Site) -> None:
    site.page("/robots.txt", "no", status=403)
    with pytest.raises(ValidationError):
        get_hrefs("job", {"url": site.page("/open", LINKS_PAGE)})


def test_get_hrefs_fetches_allowed_pages(site: Site) -> None:
    site.page("/robots.txt", "User-agent: *\nDisallow: /private\n")
    assert get_hrefs("job", {"url": site.page("/public", '<a href="/x">x</a>')}) == [
        site.base + "/x"
    ]
    assert site.requested == ["/robots.txt", "/public"]


@pytest.mark.parametrize(
    ("data", "field"), [({"url": "file:///etc"}, "url"), ({}, "url"), ([], "data")]
)
def test_get_hrefs_refuses_bad_data_naming_the_field(data: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        get_hrefs("job", data)
    assert refused.value.field == field


PRODUCTS = """<ul>
<li class="product"><h2>Tea</h2> <span class="price">3
 EUR</span></li>
<li class="product"><h2>Coffee <small>dark</small></h2><span class="price">4 EUR</span></li>
</ul>"""


def test_pluck_data_maps_each_selector_to_the_texts_it_matches() -> None:
    selectors = {"names": "li.product h2", "prices": ".price", "none": "table td"}
    assert pluck_data("job", {"html": PRODUCTS, "selectors": selectors}) == {
        "names": ["Tea", "Coffee dark"],
        "prices": ["3 EUR", "4 EUR"],
        "none": [],
    }


def test_pluck_data_fetches_a_page_when_given_a_url(site: Site) -> None:
    url = site.page("/shop", PRODUCTS)
    assert pluck_data("job", {"url": url, "selectors": {"n": "h2"}}) == {
        "n": ["Tea", "Coffee dark"]
    }


def test_pluck_data_honours_robots_txt(site: Site) -> None:
    site.page("/robots.txt", "User-agent: *\nDisallow: /\n")
    with pytest.raises(ValidationError, match=r"robots\.txt"):
        pluck_data("job", {"url": site.page("/shop", PRODUCTS), "selectors": {"n": "h2"}})
    assert site.requested == ["/robots.txt"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"html": "<p>", "selectors": {"bad": "p[["}}, "selectors.bad"),
        ({"html": "<p>", "selectors": {}}, "selectors"),
        ({"html": "<p>", "selectors": {"a": 1}}, "selectors"),
        ({"html": 3, "selectors": {"a": "p"}}, "html"),
        ({"selectors": {"a": "p"}}, "url"),
        ({"url": "ftp://127.0.0.1/", "selectors": {"a": "p"}}, "url"),
    ],
)
def test_pluck_data_refuses_bad_data_naming_the_field(data: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        pluck_data("job", data)
    assert refused.value.field == field
