"""Where a run's jobs live: the store and queue URLs, and the servers behind them.

Other people test against the shared PostgreSQL (127.0.0.1:5432, database ``test``) and
Redis (127.0.0.1:6379) at the same time, so a run there works in a schema and a key
prefix of its own, random per run, and removes only those at the end. A fault that
restarts or flushes a server never touches the shared ones: :class:`PrivateRedis` and
:class:`PrivatePostgres` start servers of the run's own on free loopback ports, the way
the Redis queue's and PostgreSQL store's own tests do.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = [
    "SHARED_POSTGRES",
    "SHARED_REDIS",
    "Backends",
    "PrivatePostgres",
    "PrivateRedis",
    "ServiceMissing",
    "free_port",
    "postgres_redis",
    "sqlite_memory",
]

SHARED_POSTGRES: Final = "postgresql://root@127.0.0.1:5432/test"
SHARED_REDIS: Final = "redis://127.0.0.1:6379/15"
#: Seconds a server may take to start or stop on a loaded two-core machine.
START_SECONDS: Final = 60.0
#: Seconds the store waits for a pooled connection: an outage answers 503 this soon.
POOL_TIMEOUT: Final = 2.0


class ServiceMissing(Exception):
    """A service the run needs does not answer, or cannot be started here."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait(ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not ready():
        if time.monotonic() > deadline:
            raise ServiceMissing(f"{what} not within {START_SECONDS} s")
        time.sleep(0.05)


class PrivateRedis:
    """A ``redis-server`` of this run alone, without persistence: a restart empties it."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceMissing("redis-server is not installed")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait(self.answers, f"redis-server on port {self.port} to answer")

    def answers(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def flushdb(self) -> None:
        """Empty the queue's database, as an operator's mistake would."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=5)
        try:
            client.flushdb()
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)
            self.process = None

    def restart(self) -> None:
        """Kill it (the queue's contents go with it) and start it again on the same port."""
        self.kill()
        self.start()


@attrs.define
class PrivatePostgres:
    """A PostgreSQL cluster of this run alone, in a temporary directory.

    ``initdb`` refuses to run as root, so as root the tools run as the ``postgres`` user.
    Tool output goes to a file: the server ``pg_ctl start`` leaves behind inherits it,
    and a pipe would stay open as long as the server runs.
    """

    bin: Path
    root: Path
    port: int
    run_as: list[str]

    @classmethod
    def create(cls) -> PrivatePostgres:
        from pathlib import Path

        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
        found = candidates[0] if candidates else shutil.which("initdb")
        if not found:
            raise ServiceMissing("no PostgreSQL server binaries (initdb, pg_ctl) are installed")
        root = Path(tempfile.mkdtemp(prefix="forerunner-faults-pg-"))
        run_as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(root, user="postgres")
            run_as = ["runuser", "-u", "postgres", "--"]
        server = cls(bin=Path(found).parent, root=root, port=free_port(), run_as=run_as)
        try:
            server._run("initdb", "-D", str(server.data), "-U", "postgres", "-A", "trust",
                        "--no-sync", "-E", "UTF8")  # fmt: skip
            server.start()
        except (OSError, subprocess.CalledProcessError) as error:
            shutil.rmtree(root, ignore_errors=True)
            raise ServiceMissing(f"a private PostgreSQL could not be started: {error}") from error
        return server

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        with tempfile.TemporaryFile() as output:
            done = subprocess.run(
                [*self.run_as, str(self.bin / tool), *args],
                stdout=output,
                stderr=output,
                check=False,
                timeout=START_SECONDS + 30,
            )
            if done.returncode != 0:
                output.seek(0)
                text = output.read().decode(errors="replace")[-1000:]
                raise subprocess.CalledProcessError(done.returncode, tool, text)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", str(int(START_SECONDS)), *args)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        self._pg_ctl("-l", str(self.data / "server.log"), "-o", options, "start")

    def stop(self) -> None:
        """Stop fast: every session ends, as in a restart."""
        self._pg_ctl("-m", "fast", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@attrs.define
class Backends:
    """A run's store and queue, and how to get rid of them afterwards."""

    #: ``sqlite+memory`` or ``postgresql+redis``: the column of the counts table.
    label: str
    store_url: str
    queue_url: str
    redis: PrivateRedis | None = None
    postgres: PrivatePostgres | None = None
    cleanups: list[Callable[[], None]] = attrs.Factory(list)

    def close(self) -> None:
        """Remove what the run made; every step runs even when an earlier one fails."""
        errors: list[BaseException] = []
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as error:
                errors.append(error)
        self.cleanups.clear()
        if errors:
            raise errors[0]


def sqlite_memory(directory: Path) -> Backends:
    """The embedded default: a SQLite file of the run and each manager's in-memory queue."""
    return Backends(
        label="sqlite+memory",
        store_url=f"sqlite:///{directory / 'jobs.db'}",
        queue_url="memory://",
    )


def postgres_redis(
    directory: Path, *, private_redis: bool = False, private_postgres: bool = False
) -> Backends:
    """PostgreSQL store and Redis queue: shared servers under the run's names, or private ones.

    A private server is what a fault may restart or flush; the shared ones never are.
    """
    tag = uuid.uuid4().hex[:12]
    backends = Backends(label="postgresql+redis", store_url="", queue_url="")
    try:
        if private_postgres:
            backends.postgres = PrivatePostgres.create()
            backends.cleanups.append(backends.postgres.destroy)
            database = backends.postgres.url
        else:
            database = _shared_postgres()
            backends.cleanups.append(lambda: _drop_schema(f"faults_{tag}"))
        backends.store_url = (
            f"{database}?schema=faults_{tag}&pool_timeout={POOL_TIMEOUT}&pool_size=4"
        )
        if private_redis:
            backends.redis = PrivateRedis(directory / "redis")
            backends.redis.start()
            backends.cleanups.append(backends.redis.kill)
            backends.queue_url = f"{backends.redis.url}?prefix=faults"
        else:
            _shared_redis()
            prefix = f"fr-faults-{tag}"
            backends.queue_url = f"{SHARED_REDIS}?prefix={prefix}"
            url = backends.queue_url
            backends.cleanups.append(lambda: _clear_queue(url, prefix))
    except BaseException:
        backends.close()
        raise
    return backends


def _shared_postgres() -> str:
    import psycopg

    try:
        psycopg.connect(SHARED_POSTGRES, connect_timeout=3).close()
    except psycopg.Error as error:
        raise ServiceMissing(
            f"PostgreSQL does not answer at {SHARED_POSTGRES} ({error})"
        ) from error
    return SHARED_POSTGRES


def _drop_schema(schema: str) -> None:
    """Drop the run's own schema, and only it: the name is the run's random one."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(SHARED_POSTGRES, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _shared_redis() -> None:
    import redis

    client = redis.Redis.from_url(SHARED_REDIS, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        raise ServiceMissing(f"Redis does not answer at {SHARED_REDIS} ({error})") from error
    finally:
        client.close()


def _clear_queue(url: str, prefix: str) -> None:
    """Clear the run's queue, then delete what ``clear`` keeps (pop receipts) by prefix.

    The prefix is the run's random one, so no key of anyone else matches it.
    """
    import redis

    from forerunner.plugins import get_registry

    queue = get_registry().open_queue(url)
    try:
        queue.clear()
    finally:
        queue.close()
    client = redis.Redis.from_url(SHARED_REDIS, socket_timeout=10)
    try:
        keys = list(client.scan_iter(match=f"{{{prefix}}}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
