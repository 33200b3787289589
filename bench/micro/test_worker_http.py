"""The worker's HTTP/1.1 client: one kept-alive ``POST`` per poll.

:class:`~forerunner.worker.http.HTTPClient` on a running event loop, first against a
minimal server in the same loop (the client's own cost, plus the least a server can
do), then against a real manager's ``/v1/workers/poll`` (the fixed cost of a poll
through uvicorn, Starlette and the manager's thread pool, with no job in it).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

import msgspec
import pytest

from forerunner.manager.server import Manager
from forerunner.wire import PollRequest, PollResponse
from forerunner.worker.http import Answer, HTTPClient

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_benchmark.fixture import BenchmarkFixture

pytestmark = pytest.mark.benchmark(group="worker-http")

#: The body of the minimal server's answer: an empty poll answer.
ANSWER_BODY: Final = b'{"jobs":[],"abandon":[],"lease_seconds":30.0}'
ANSWER: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(ANSWER_BODY)).encode() + b"\r\n\r\n" + ANSWER_BODY
)
#: A 4 KB JSON body: about what a poll carrying a few dozen small reports weighs.
BODY: Final = b'{"pad":"' + b"x" * (4096 - 10) + b'"}'


class MinimalServer:
    """Answers every request with :data:`ANSWER` on kept-alive connections; nothing else."""

    def __init__(self) -> None:
        self.handlers: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.requests = 0

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/workers/poll"

    async def stop(self) -> None:
        """Stop listening and wait for every connection's handler to end."""
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        await asyncio.gather(*self.handlers)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                writer.write(ANSWER)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            writer.close()
            await writer.wait_closed()


def test_http_client_post_4kb_minimal_server(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop
) -> None:
    """Worker, on every poll: one 4 KB ``POST`` and its small JSON answer, kept alive.

    Client and server share the benchmark's event loop on 127.0.0.1, so a round is the
    client writing the request, the server reading it and answering, and the client
    parsing the status line, headers and body: the client's cost per poll, plus the
    least any server costs. The first request opens the connection; the others reuse it.
    """
    server = MinimalServer()
    url = loop.run_until_complete(server.start())
    client = HTTPClient()

    def one_post() -> Answer:
        return loop.run_until_complete(client.post_json(url, BODY, timeout=10.0))

    try:
        answer = benchmark(one_post)
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(server.stop())

    assert answer == Answer(200, ANSWER_BODY)


def test_http_client_idle_poll_real_manager(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    """Worker and manager, on every poll: an idle poll (capacity 0) to a real manager.

    ``forerunner.manager.server.Manager`` on a free port (SQLite store, memory queue),
    serving from a thread of this process; the client runs on the benchmark's loop. A
    poll with nothing to report and no capacity touches neither store nor queue, so the
    round is the fixed cost of a poll: the client, uvicorn, Starlette, decoding the
    ``PollRequest``, one trip to the manager's thread pool, encoding the answer.
    """
    manager = Manager(f"sqlite:///{tmp_path / 'manager.db'}", "memory://", port=0).start()
    url = f"{manager.url}/v1/workers/poll"
    body = msgspec.json.encode(
        PollRequest(worker="micro-worker", types=["micro.noop"], capacity=0, wait=0.0)
    )
    client = HTTPClient()

    def one_poll() -> Answer:
        return loop.run_until_complete(client.post_json(url, body, timeout=10.0))

    try:
        answer = benchmark(one_poll)
    finally:
        loop.run_until_complete(client.aclose())
        manager.stop()

    assert answer.status == 200
    assert msgspec.json.decode(answer.body, type=PollResponse).jobs == []
