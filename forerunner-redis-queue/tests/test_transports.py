"""The ways to reach Redis: a Unix socket, TLS (``rediss://``), and a password.

Each test starts a private ``redis-server`` set up for that transport and runs a push
and a pop through it, since a URL that parses but cannot connect is what a user would
find only in production.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from forerunner.errors import BackendUnavailable
from forerunner.model import QueueEntry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import RedisServer

    from forerunner_redis_queue import RedisQueue


def round_trip(queue: RedisQueue) -> None:
    entries = [
        QueueEntry(job_id="j1", type="alpha", priority=1),
        QueueEntry(job_id="j2", type="beta"),
    ]
    queue.push(entries)
    assert queue.size() == 2
    assert queue.pop(["alpha", "beta"], 10, 1.0) == entries


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a Unix socket path may not exceed 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="fr-redis-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate it signed, for localhost and 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed; the TLS test needs it to make certificates")
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "ca-key", "server", "server-key")}
    (tmp_path / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    make_ca = [
        *("req", "-x509", *key, "-days", "1", "-subj", "/CN=forerunner test CA"),
        *("-keyout", files["ca-key"], "-out", files["ca"]),
    ]
    ask = [
        *("req", *key, "-subj", "/CN=localhost"),
        *("-keyout", files["server-key"], "-out", tmp_path / "server.csr"),
    ]
    sign = [
        *("x509", "-req", "-in", tmp_path / "server.csr", "-days", "1"),
        *("-CA", files["ca"], "-CAkey", files["ca-key"], "-CAcreateserial"),
        *("-out", files["server"], "-extfile", tmp_path / "san.ext"),
    ]
    for command in (make_ca, ask, sign):
        subprocess.run([openssl, *map(str, command)], cwd=tmp_path, capture_output=True, check=True)
    return files


def test_a_unix_socket_url_reaches_redis(
    start_redis: Callable[..., RedisServer],
    open_queue: Callable[[str], RedisQueue],
    short_dir: Path,
) -> None:
    socket_path = short_dir / "redis.sock"
    start_redis("--unixsocket", str(socket_path), "--unixsocketperm", "700")

    round_trip(open_queue(f"unix://{socket_path}?db=3&prefix=unix"))


def test_a_rediss_url_reaches_redis_over_tls_trusting_the_given_ca(
    start_redis: Callable[..., RedisServer],
    open_queue: Callable[[str], RedisQueue],
    certificates: dict[str, Path],
    free_port: Callable[[], int],
) -> None:
    tls_port = free_port()
    start_redis(
        "--tls-port",
        str(tls_port),
        "--tls-cert-file",
        str(certificates["server"]),
        "--tls-key-file",
        str(certificates["server-key"]),
        "--tls-ca-cert-file",
        str(certificates["ca"]),
        "--tls-auth-clients",
        "no",
    )
    url = f"rediss://127.0.0.1:{tls_port}/0?prefix=tls"

    round_trip(open_queue(f"{url}&ssl_ca_certs={certificates['ca']}"))

    untrusting = open_queue(url)
    with pytest.raises(BackendUnavailable, match="certificate verify failed"):
        untrusting.size()
    untrusting.close()


def test_a_password_in_the_url_logs_in_and_a_wrong_one_is_refused_unshown(
    start_redis: Callable[..., RedisServer], open_queue: Callable[[str], RedisQueue]
) -> None:
    server = start_redis(password="right horse")
    url = f"redis://:right%20horse@127.0.0.1:{server.port}/0?prefix=auth"

    round_trip(open_queue(url))

    wrong = open_queue(f"redis://:battery@127.0.0.1:{server.port}/0?prefix=auth")
    with pytest.raises(BackendUnavailable) as raised:
        wrong.size()
    wrong.close()
    assert "battery" not in raised.value.message
    assert f"redis://:***@127.0.0.1:{server.port}/0" in raised.value.message
