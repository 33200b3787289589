"""Fixtures for the Redis queue's tests: the shared Redis, private servers, and a cluster.

The shared Redis at 127.0.0.1:6379 is used by other people at the same time: every test
works in database 15 under a prefix of its own, and never flushes anything. Tests that
stop, restart or count the commands of a server start a private ``redis-server`` on a
free loopback port in a temporary directory instead, and the cluster tests start three
of them as a Redis Cluster. All of them are stopped by the fixture that started them.

A service that does not answer skips its tests on a laptop, and fails them when the
``CI`` environment variable is set: CI must never pass by testing nothing.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from typing import TYPE_CHECKING, Final

import pytest
import redis

from forerunner_redis_queue import open_redis_queue

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from forerunner_redis_queue import RedisQueue

SHARED_REDIS: Final = "redis://127.0.0.1:6379/15"
#: Starting a server or forming a cluster on a loaded two-core machine.
START_SECONDS: Final = 30.0


def unavailable(why: str) -> None:
    """Skip the test, or fail it under CI, where a missing service is a broken run."""
    if os.environ.get("CI"):
        pytest.fail(f"{why}, and CI is set: the Redis tests must run", pytrace=False)
    pytest.skip(why)


def new_prefix(kind: str = "test") -> str:
    return f"fr-{kind}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(name="unique_prefix")
def unique_prefix_fixture() -> Callable[[str], str]:
    """Make key prefixes that no other test, run or person uses: ``fr-KIND-<random>``."""
    return new_prefix


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """A free port P whose cluster bus port P + 10000 is free too.

    ``redis-cli --cluster create`` introduces the nodes to each other by their client
    ports only, so each node must listen for the bus on the default P + 10000.
    """
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(20000, 30000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise AssertionError("no free port pair (P, P + 10000) between 20000 and 40000")


@pytest.fixture(scope="session")
def shared_redis() -> str:
    """The shared Redis's database 15, checked to answer once per session."""
    client = redis.Redis.from_url(SHARED_REDIS, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable(f"Redis does not answer at {SHARED_REDIS} ({error})")
    finally:
        client.close()
    return SHARED_REDIS


@pytest.fixture
def queue_url(shared_redis: str) -> str:
    """A URL of the shared Redis under a prefix no other test or person uses."""
    return f"{shared_redis}?prefix={new_prefix()}"


@pytest.fixture
def open_queue() -> Iterator[Callable[[str], RedisQueue]]:
    """Open queues by URL; each is cleared (if it still answers) and closed afterwards."""
    opened: list[RedisQueue] = []

    def open_(url: str) -> RedisQueue:
        queue = open_redis_queue(url)
        opened.append(queue)
        return queue

    yield open_
    for queue in opened:
        try:
            if not queue.closed:
                queue.clear()
        finally:
            queue.close()


@pytest.fixture
def queue(queue_url: str, open_queue: Callable[[str], RedisQueue]) -> RedisQueue:
    return open_queue(queue_url)


@pytest.fixture
def raw(shared_redis: str) -> Iterator[redis.Redis]:
    """A plain client of database 15, to look at the keys a queue wrote."""
    client = redis.Redis.from_url(shared_redis, decode_responses=True)
    yield client
    client.close()


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed")
        raise AssertionError("unreachable")  # pragma: no cover
    return path


class RedisServer:
    """A private ``redis-server`` on a loopback port, without persistence."""

    def __init__(
        self, directory: Path, port: int, *extra: str, password: str | None = None
    ) -> None:
        self.directory = directory
        self.port = port
        self.extra = extra
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it (empty) and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                _binary("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
                *self.extra,
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_until(lambda client: bool(client.ping()), "answer PING")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(
            port=self.port, password=self.password, decode_responses=True, socket_timeout=5
        )

    def wait_until(self, ready: Callable[[redis.Redis], bool], what: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while True:
            client = self.client()
            try:
                if ready(client):
                    return
            except redis.RedisError:
                pass
            finally:
                client.close()
            if self.process is not None and self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"redis-server on port {self.port} exited:\n{log}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server on port {self.port} did not {what}", pytrace=False)
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start private Redis servers (extra arguments go to ``redis-server``); stop them after."""
    started: list[RedisServer] = []

    def start(*extra: str, password: str | None = None) -> RedisServer:
        directory = tmp_path / f"redis-{len(started)}"
        server = RedisServer(directory, free_port(), *extra, password=password)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(name="free_port")
def free_port_fixture() -> Callable[[], int]:
    """Pick a loopback port that nothing listens on."""
    return free_port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-node Redis Cluster on loopback ports; yields its ``redis+cluster://`` URL."""
    directory = tmp_path_factory.mktemp("cluster")
    nodes = [
        RedisServer(
            directory / f"node-{n}",
            free_cluster_port(),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(directory / f"node-{n}" / "nodes.conf"),
            "--cluster-node-timeout",
            "5000",
        )
        for n in range(3)
    ]
    try:
        for node in nodes:
            node.start()
        created = subprocess.run(
            [
                _binary("redis-cli"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=START_SECONDS,
            check=False,
        )
        if created.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed:\n{created.stdout}{created.stderr}")
        for node in nodes:
            node.wait_until(
                lambda client: client.cluster("info").get("cluster_state") == "ok",
                "report cluster_state:ok",
            )
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in nodes[:2])
    finally:
        for node in nodes:
            node.stop()
