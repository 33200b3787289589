"""Server-side request forgery: what the fetching builtin tasks refuse to reach.

``fetch``, ``get_hrefs`` and ``pluck_data`` run URLs that job submitters chose, from
inside the worker's network. Covers: only http and https, also after a redirect; no
private, loopback, link-local, multicast, reserved or unspecified address (IPv4, IPv6,
IPv4-mapped IPv6, and names resolving to them) unless the worker's environment allows
it, with errors naming the setting; the address checked is the address connected to
(a name that changes its answer between lookups is refused, and a pinned connection
still sends the URL's host); every redirect hop is checked; bodies are capped (pages,
inflated gzip, robots.txt) and each URL has one deadline, so a trickling server cannot
hold a worker. Servers are local, on 127.0.0.1 and 127.0.0.2, and are reachable only
where a test allows their address.
"""

from __future__ import annotations

import gzip
import http.server
import ipaddress
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from forerunner.errors import ConfigurationError, ValidationError
from forerunner.tasks import (
    ALLOW_NETWORKS_ENV,
    ALLOW_PRIVATE_ENV,
    AddressPolicy,
    fetch,
    get_hrefs,
    pluck_data,
)
from forerunner.tasks._web import MAX_ROBOTS_BYTES
from forerunner.tasks.files import FILES_ROOT_ENV

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


class Server:
    """A local HTTP server answering each path with a route; it records every request."""

    def __init__(self, host: str) -> None:
        self.routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]] = {}
        self.requested: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requested.append((self.path, self.headers.get("Host")))
                route = server.routes.get(self.path)
                try:
                    if route is None:
                        send(self, 404, b"not found")
                    else:
                        route(self)
                except OSError:  # the client gave up: what the slow-server tests expect
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.port = self.http.server_address[1]
        self.base = f"http://{host}:{self.port}"

    def page(self, path: str, body: bytes | str, *, length: bool = True, **headers: str) -> str:
        """Serve ``body`` at ``path``; ``length=False`` leaves out Content-Length."""
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = lambda handler: send(handler, 200, data, length=length, **headers)
        return self.base + path

    def redirect(self, path: str, location: str) -> str:
        self.routes[path] = lambda handler: send(handler, 302, b"", Location=location)
        return self.base + path


def send(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    *,
    length: bool = True,
    **headers: str,
) -> None:
    """Answer with ``body``; header names are given with ``_`` for ``-``."""
    handler.send_response(status)
    headers.setdefault("Content_Type", "text/html; charset=utf-8")
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def serving(host: str) -> Iterator[Server]:
    server = Server(host)
    thread = threading.Thread(target=server.http.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.http.shutdown()
    server.http.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from a worker that allows nothing beyond public addresses."""
    monkeypatch.delenv(ALLOW_NETWORKS_ENV, raising=False)
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)


@pytest.fixture(autouse=True)
def files_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's worker keeps its files under ``tmp_path``, where ``fetch`` writes."""
    monkeypatch.setenv(FILES_ROOT_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture
def site() -> Iterator[Server]:
    yield from serving("127.0.0.1")


@pytest.fixture
def other_site() -> Iterator[Server]:
    """A second loopback server, at 127.0.0.2: allowing 127.0.0.1/32 does not reach it."""
    yield from serving("127.0.0.2")


def allow(monkeypatch: pytest.MonkeyPatch, networks: str) -> None:
    monkeypatch.setenv(ALLOW_NETWORKS_ENV, networks)


def run(task: str, url: str, tmp_path: Path, **options: Any) -> Any:
    """Run one of the fetching tasks on ``url``; the field it names a bad URL by."""
    if task == "fetch":
        return fetch("job", {"origin": url, "destination": str(tmp_path / "d"), **options})
    if task == "get_hrefs":
        return get_hrefs("job", {"url": url, **options})
    return pluck_data("job", {"url": url, "selectors": {"p": "p"}, **options})


TASKS = ["fetch", "get_hrefs", "pluck_data"]
FIELD = {"fetch": "origin", "get_hrefs": "url", "pluck_data": "url"}


# Schemes


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/file",
        "gopher://example.org/1",
        "data:text/html,<p>hi</p>",
        "//example.org/no-scheme",
    ],
)
def test_only_http_and_https_urls_are_fetched_even_when_every_address_is_allowed(
    task: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    with pytest.raises(ValidationError, match="only absolute http:// and https://") as refused:
        run(task, url, tmp_path)
    assert refused.value.field == FIELD[task]
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("task", TASKS)
def test_a_redirect_to_another_scheme_is_refused(
    task: str, site: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(monkeypatch, "127.0.0.1/32")
    url = site.redirect("/go", "file:///etc/passwd")
    with pytest.raises(ValidationError, match="redirect leads to 'file:") as refused:
        run(task, url, tmp_path)
    assert refused.value.field == FIELD[task]


# Addresses


NOT_PUBLIC = [
    "127.0.0.1",
    "127.1.2.3",
    "[::1]",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",
    "0.0.0.0",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[::ffff:10.0.0.1]",
    "[fe80::1]",
    "[fc00::1]",
    "224.0.0.1",
    "[ff02::1]",
    "100.64.0.1",
    "240.0.0.1",
    "2130706433",  # 127.0.0.1 as one decimal number, which the resolver accepts
    "localhost",
]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("host", NOT_PUBLIC)
def test_non_public_addresses_are_refused_naming_the_settings(
    task: str, host: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError) as refused:
        run(task, f"http://{host}:9/latest/meta-data/", tmp_path)
    assert refused.value.field == FIELD[task]
    assert ALLOW_NETWORKS_ENV in refused.value.message
    assert f"{ALLOW_PRIVATE_ENV}=1" in refused.value.message
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_server_is_never_contacted_by_default(
    task: str, host: str, site: Server, tmp_path: Path
) -> None:
    site.page("/", "<p>the manager</p>")
    with pytest.raises(ValidationError, match="loopback address"):
        run(task, f"http://{host}:{site.port}/", tmp_path)
    assert site.requested == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.20.0.1", "private"),
        ("192.168.0.1", "private"),
        ("fd00::1", "private"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
    ],
)
def test_the_default_policy_names_what_kind_of_address_it_refuses(
    address: str, kind: str | None
) -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address(address)) == kind


# What the worker's environment allows


def test_allowed_networks_open_exactly_those_addresses() -> None:
    policy = AddressPolicy.from_environ({ALLOW_NETWORKS_ENV: " 10.0.0.0/8 , 127.0.0.1 ,"})
    allowed = ["10.9.8.7", "127.0.0.1", "::ffff:127.0.0.1", "8.8.8.8"]
    refused = ["127.0.0.2", "192.168.0.1", "169.254.169.254", "::1"]
    assert [policy.refusal(ipaddress.ip_address(a)) for a in allowed] == [None] * 4
    assert all(policy.refusal(ipaddress.ip_address(a)) for a in refused)


def test_allow_private_opens_every_address() -> None:
    policy = AddressPolicy.from_environ({ALLOW_PRIVATE_ENV: "1"})
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) is None
    assert AddressPolicy.from_environ({ALLOW_PRIVATE_ENV: "0"}) == AddressPolicy()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (ALLOW_PRIVATE_ENV, "maybe"),
        (ALLOW_NETWORKS_ENV, "10.0.0.0/33"),
        (ALLOW_NETWORKS_ENV, "intranet"),
        (ALLOW_NETWORKS_ENV, "10.0.0.1/8"),
    ],
)
def test_an_unclear_setting_fails_the_task_naming_it(
    name: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        fetch("job", {"origin": "http://127.0.0.1:9/", "destination": str(tmp_path)})


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(
    "setting",
    [
        (ALLOW_NETWORKS_ENV, "127.0.0.1"),
        (ALLOW_NETWORKS_ENV, "127.0.0.0/8"),
        (ALLOW_PRIVATE_ENV, "1"),
    ],
)
def test_the_worker_environment_can_allow_a_local_server(
    task: str,
    setting: tuple[str, str],
    site: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(*setting)
    site.page("/page", '<p>local</p><a href="/x">x</a>')
    result = run(task, site.base + "/page", tmp_path)
    assert result in ([site.base + "/x"], {"p": ["local"]}) or result[0]["status"] == 200
    assert ("/page", f"127.0.0.1:{site.port}") in site.requested


def test_allowing_one_network_does_not_allow_another(
    site: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(monkeypatch, "10.0.0.0/8")
    with pytest.raises(ValidationError, match=r"127\.0\.0\.1/32"):
        run("fetch", site.page("/x", "x"), tmp_path)
    assert site.requested == []


# The address connected to is the address checked


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names under ``.example`` answer from this table, one answer per lookup in turn."""
    answers: dict[str, list[str]] = {}
    system = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".example"):
            queue = answers[host]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
        return system(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.mark.parametrize("task", TASKS)
def test_a_name_that_rebinds_to_loopback_after_its_first_lookup_is_refused(
    task: str, site: Server, resolver: dict[str, list[str]], tmp_path: Path
) -> None:
    # Given a name that first answers a public address, then the worker's loopback
    resolver["rebind.example"] = ["93.184.216.34", "127.0.0.1"]
    site.page("/", "<p>internal</p>")

    # When a job fetches it
    with pytest.raises(ValidationError, match=r"rebind\.example \(address 127\.0\.0\.1\)"):
        run(task, f"http://rebind.example:{site.port}/", tmp_path)

    # Then the connection, checked where it is made, never reached the server
    assert site.requested == []


def test_a_pinned_connection_sends_the_urls_host(
    site: Server, resolver: dict[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name only this test's resolver knows: reaching it proves the checked address is used
    resolver["pinned.example"] = ["127.0.0.1"]
    allow(monkeypatch, "127.0.0.1/32")
    site.page("/file.txt", "pinned")
    url = f"http://pinned.example:{site.port}/file.txt"

    result = fetch("job", {"origin": url, "destination": str(tmp_path)})

    assert result[0]["bytes"] == len("pinned")
    assert site.requested == [("/file.txt", f"pinned.example:{site.port}")]


def test_a_name_with_one_refused_address_among_public_ones_is_refused(
    resolver: dict[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = socket.getaddrinfo

    def mixed(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "mixed.example":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
            ]
        return system(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    with pytest.raises(ValidationError, match=r"10\.0\.0\.5\) is a private address"):
        fetch("job", {"origin": "http://mixed.example/", "destination": str(tmp_path)})


# Redirects


@pytest.mark.parametrize("task", TASKS)
def test_a_redirect_to_a_refused_address_is_refused_before_connecting(
    task: str, site: Server, other_site: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker allowing only the first server, which redirects to a second one
    allow(monkeypatch, "127.0.0.1/32")
    other_site.page("/secret", "<p>secret</p>")
    url = site.redirect("/go", other_site.base + "/secret")

    # When a job fetches the first server's URL
    with pytest.raises(ValidationError, match=r"127\.0\.0\.2 is a loopback address") as refused:
        run(task, url, tmp_path)

    # Then the redirect's target was never contacted
    assert refused.value.field == FIELD[task]
    assert ("/go", f"127.0.0.1:{site.port}") in site.requested
    assert other_site.requested == []


@pytest.mark.parametrize(
    "location",
    ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:10.0.0.1]/", "http://[::1]/"],
)
def test_a_redirect_to_the_metadata_service_or_a_private_network_is_refused(
    location: str, site: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(monkeypatch, "127.0.0.1/32")
    with pytest.raises(ValidationError, match="address"):
        fetch("job", {"origin": site.redirect("/go", location), "destination": str(tmp_path)})
    assert list(tmp_path.iterdir()) == []


def test_a_redirect_between_allowed_addresses_is_followed(
    site: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(monkeypatch, "127.0.0.1/32")
    site.page("/final.txt", "done")
    url = site.redirect("/go", "/final.txt")
    assert fetch("job", {"origin": url, "destination": str(tmp_path)})[0]["bytes"] == 4


# Size caps


@pytest.mark.parametrize("task", ["get_hrefs", "pluck_data"])
@pytest.mark.parametrize("declared", [True, False], ids=["declared-length", "no-length"])
def test_a_page_over_max_bytes_is_refused(
    task: str, declared: bool, site: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(monkeypatch, "127.0.0.1/32")
    url = site.page("/big", b"<p>" + b"x" * 5000, length=declared)
    with pytest.raises(ValidationError, match="max_bytes=1000") as refused:
        run(task, url, tmp_path, max_bytes=1000)
    assert refused.value.field == "max_bytes"


def test_the_cap_counts_inflated_bytes_not_compressed_ones(
    site: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a few kilobytes of gzip that inflate to ten megabytes
    allow(monkeypatch, "127.0.0.1/32")
    bomb = gzip.compress(b"\0" * 10_000_000)
    assert len(bomb) < 20_000
    url = site.page("/bomb.bin", bomb, Content_Encoding="gzip")

    # Then a job allowing 1 MB is refused, and keeps no file
    with pytest.raises(ValidationError, match="sent more than max_bytes"):
        fetch("job", {"origin": url, "destination": str(tmp_path), "max_bytes": 1_000_000})
    assert list(tmp_path.iterdir()) == []


def test_robots_txt_is_read_only_up_to_its_cap(
    site: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a robots.txt whose only rule comes after the part that is read
    allow(monkeypatch, "127.0.0.1/32")
    padding = "# padding\n" * (MAX_ROBOTS_BYTES // 10 + 1)
    site.page("/robots.txt", padding + "User-agent: *\nDisallow: /\n", length=False)
    site.page("/page", '<a href="/x">x</a>')

    # Then the rule is never seen, and the page is read
    assert get_hrefs("job", {"url": site.base + "/page"}) == [site.base + "/x"]


# Time caps


def trickle(handler: http.server.BaseHTTPRequestHandler) -> None:
    """Headers, then a byte every 50 ms: each read is quick, the whole never ends."""
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    for _ in range(200):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.05)


def silence(handler: http.server.BaseHTTPRequestHandler) -> None:
    """Never answers (within the test)."""
    time.sleep(2)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("route", [trickle, silence], ids=["trickling", "silent"])
def test_a_slow_server_fails_the_job_at_its_timeout(
    task: str,
    route: Callable[[http.server.BaseHTTPRequestHandler], None],
    site: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allow(monkeypatch, "127.0.0.1/32")
    site.routes["/robots.txt"] = lambda handler: send(handler, 404, b"")
    site.routes["/slow"] = route
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        run(task, site.base + "/slow", tmp_path, timeout=0.5)
    assert time.monotonic() - started < 1.5
    if task == "fetch":
        assert list((tmp_path / "d").iterdir()) == []
