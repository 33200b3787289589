"""The worker's HTTP/1.1 client against a small asyncio server written here.

The server is raw asyncio streams, not a framework, so that each test can make it do
exactly the thing a real manager (or whatever answers on its port) may do: keep a
connection alive, close it right after an answer, close it under a request that
crossed the close, answer in chunks, answer garbage, or never answer.

Covers: the request line, ``Host`` and body sent, a path prefix and query in the URL
kept; the token in an ``Authorization: Bearer`` header of every request, and a token
that could write headers of its own refused; keep-alive reusing one connection; a server
that closes its idle connection, and a request that crossed such a close resent once on
a fresh connection (never more); a chunked answer decoded and the connection still
usable after it; an answer without a length read to the end; any status being an answer;
a garbage status line, no answer within the timeout, a closed port and a URL that is not
HTTP each raising :class:`RequestFailed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import TYPE_CHECKING

import attrs
import pytest

from forerunner.worker.http import Answer, HTTPClient, RequestFailed

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
    from typing import Any


@attrs.frozen
class Request:
    """One request as the server read it."""

    #: Which connection it came on: 1 for the first one accepted, and so on.
    connection: int
    #: Its place on that connection: 1 for the first request.
    index: int
    line: str
    headers: dict[str, str]
    body: bytes


class Server:
    """An HTTP/1.1 server on 127.0.0.1 that answers as its ``reply`` says.

    ``reply`` gets each request and returns the bytes to write back, or None to close
    the connection without answering.
    """

    def __init__(
        self,
        reply: Callable[[Request], Awaitable[bytes | None]],
        *,
        close_after_answer: bool = False,
    ) -> None:
        self.reply = reply
        self.close_after_answer = close_after_answer
        self.requests: list[Request] = []
        self.connections = 0
        self.port = 0
        self._handlers: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    def url(self, path: str = "/v1/workers/poll") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A task of our own rather than a coroutine for asyncio to wrap: cancelled at
        # teardown, asyncio's own wrapper would log the cancellation as an error.
        self._handlers.add(asyncio.create_task(self._handle(reader, writer)))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = self.connections
        try:
            for index in range(1, 1000):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # the client closed the connection
                line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for header in filter(None, header_lines):
                    name, _, value = header.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(connection, index, line, headers, body)
                self.requests.append(request)
                answer = await self.reply(request)
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:
                    return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def ok(body: bytes, *, status: str = "200 OK") -> bytes:
    """A complete answer with a ``Content-Length``."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return f"{head}\r\n\r\n".encode("latin-1") + body


async def echo(request: Request) -> bytes:
    """Answer with the request's own body."""
    return ok(request.body)


@contextlib.asynccontextmanager
async def serving(
    reply: Callable[[Request], Awaitable[bytes | None]] = echo,
    *,
    close_after_answer: bool = False,
    token: str | None = None,
) -> AsyncIterator[tuple[Server, HTTPClient]]:
    """A started server, and a client that is closed afterwards."""
    server = Server(reply, close_after_answer=close_after_answer)
    await server.start()
    client = HTTPClient(token=token)
    try:
        yield server, client
    finally:
        await client.aclose()
        await server.close()


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def post(client: HTTPClient, url: str, body: bytes, timeout: float = 5.0) -> Answer:
    return await client.post_json(url, body, timeout=timeout)


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("/prefix/v1/x", "/prefix/v1/x"),
        ("/prefix/v1/x?tenant=a", "/prefix/v1/x?tenant=a"),
        ("", "/"),
    ],
)
def test_request_line_headers_and_body_are_sent_as_given(path: str, sent: str) -> None:
    async def scenario() -> None:
        async with serving() as (server, client):
            answer = await post(client, server.url(path), b'{"n":1}')

            assert answer == Answer(200, b'{"n":1}')
            [request] = server.requests
            assert request.line == f"POST {sent} HTTP/1.1"
            assert request.headers["host"] == f"127.0.0.1:{server.port}"
            assert request.headers["content-type"] == "application/json"
            assert request.headers["content-length"] == "7"
            assert request.body == b'{"n":1}'

    run(scenario)


def test_a_token_goes_in_a_bearer_authorization_header_of_every_request() -> None:
    token = "worker-token-" + "w" * 24

    async def scenario() -> None:
        async with serving(token=token) as (server, client):
            for path in ("/a", "/b", "/a"):
                await post(client, server.url(path), b"{}")

            assert [r.headers["authorization"] for r in server.requests] == [f"Bearer {token}"] * 3
            assert all(r.body == b"{}" for r in server.requests)
            assert token not in repr(client)

        async with serving() as (server, client):
            await post(client, server.url(), b"{}")

            assert "authorization" not in server.requests[0].headers

    run(scenario)


@pytest.mark.parametrize("token", ["a token", "t\r\nX-Injected: 1", "tökén", ""])
def test_a_token_a_header_cannot_carry_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="header"):
        HTTPClient(token=token)


def test_keep_alive_reuses_one_connection_for_several_requests() -> None:
    async def scenario() -> None:
        async with serving() as (server, client):
            bodies = [f'{{"n":{n}}}'.encode() for n in range(3)]

            answers = [await post(client, server.url(), body) for body in bodies]

            assert [answer.body for answer in answers] == bodies
            assert server.connections == 1
            assert [(r.connection, r.index) for r in server.requests] == [(1, 1), (1, 2), (1, 3)]

    run(scenario)


def test_error_status_is_an_answer_not_a_failure() -> None:
    async def unavailable(request: Request) -> bytes:
        return ok(b'{"error":"down"}', status="503 Service Unavailable")

    async def scenario() -> None:
        async with serving(unavailable) as (server, client):
            assert await post(client, server.url(), b"{}") == Answer(503, b'{"error":"down"}')

    run(scenario)


def test_server_closing_the_idle_connection_after_answering_costs_no_request() -> None:
    # Given a server that closes every connection right after its answer
    async def scenario() -> None:
        async with serving(close_after_answer=True) as (server, client):
            # When requests follow one another at once
            answers = [await post(client, server.url(), b'{"n":%d}' % n) for n in range(3)]
            # Then each succeeds, on a connection of its own
            assert [answer.body for answer in answers] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
            assert server.connections == 3
            assert len(server.requests) == 3

    run(scenario)


def test_request_that_crossed_the_close_of_a_reused_connection_is_resent_on_a_new_one() -> None:
    # Given a server that, on the first connection, reads the second request and closes
    # without a byte of answer: what a manager closing an idle connection does when the
    # request is already on its way
    async def reply(request: Request) -> bytes | None:
        if (request.connection, request.index) == (1, 2):
            return None
        return ok(request.body)

    async def scenario() -> None:
        async with serving(reply) as (server, client):
            assert (await post(client, server.url(), b'"first"')).body == b'"first"'
            # When the client reuses that connection
            answer = await post(client, server.url(), b'"second"')
            # Then the request is sent once more on a fresh connection, and answered
            assert answer == Answer(200, b'"second"')
            assert [(r.connection, r.index, r.body) for r in server.requests] == [
                (1, 1, b'"first"'),
                (1, 2, b'"second"'),
                (2, 1, b'"second"'),
            ]

    run(scenario)


def test_request_is_resent_once_at_most() -> None:
    # Given a server that answers the first request, then closes under every other one
    async def reply(request: Request) -> bytes | None:
        return ok(request.body) if request.connection == 1 and request.index == 1 else None

    async def scenario() -> None:
        async with serving(reply) as (server, client):
            await post(client, server.url(), b'"first"')
            # When the reused connection and the fresh one both close without an answer
            with pytest.raises(RequestFailed, match="closed the connection"):
                await post(client, server.url(), b'"second"')
            # Then the request was sent twice, not more
            assert [(r.connection, r.index, r.body) for r in server.requests] == [
                (1, 1, b'"first"'),
                (1, 2, b'"second"'),
                (2, 1, b'"second"'),
            ]

    run(scenario)


def test_chunked_answer_is_decoded_and_the_connection_stays_usable() -> None:
    # Given an answer in three chunks, one with an extension, and a trailer
    async def chunked(request: Request) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b'6\r\n{"a":[\r\n'
            b"2;note=x\r\n1,\r\n"
            b"9\r\n2,3,4,5]}\r\n"
            b"0\r\nX-Trailer: yes\r\n\r\n"
        )

    async def scenario() -> None:
        async with serving(chunked) as (server, client):
            first = await post(client, server.url(), b"{}")
            second = await post(client, server.url(), b"{}")
            # Then the body is the chunks joined, and the whole answer was consumed: the
            # next request on the same connection reads its own answer
            assert first == second == Answer(200, b'{"a":[1,2,3,4,5]}')
            assert server.connections == 1

    run(scenario)


def test_answer_without_a_length_is_read_to_the_end_of_the_connection() -> None:
    async def unframed(request: Request) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[1,2,3]"

    async def scenario() -> None:
        async with serving(unframed, close_after_answer=True) as (server, client):
            assert await post(client, server.url(), b"{}") == Answer(200, b"[1,2,3]")
            assert await post(client, server.url(), b"{}") == Answer(200, b"[1,2,3]")
            assert server.connections == 2

    run(scenario)


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"RTSP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
        b"no line end at all",
    ],
    ids=["not-http", "another-protocol", "status-not-a-number", "cut-status-line"],
)
def test_garbage_status_line_raises_request_failed(garbage: bytes) -> None:
    async def reply(request: Request) -> bytes:
        return garbage

    async def scenario() -> None:
        async with serving(reply, close_after_answer=True) as (server, client):
            with pytest.raises(RequestFailed):
                await post(client, server.url(), b"{}")

    run(scenario)


def test_server_that_never_answers_raises_request_failed_within_the_timeout() -> None:
    async def never(request: Request) -> bytes:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def scenario() -> None:
        async with serving(never) as (server, client):
            started = time.monotonic()
            # (the outer limit turns a client that waits forever into a failure, not a hang)
            async with asyncio.timeout(10):
                with pytest.raises(RequestFailed, match=r"no answer within 0\.2 s"):
                    await post(client, server.url(), b"{}", timeout=0.2)
            assert time.monotonic() - started < 3
            assert len(server.requests) == 1

    run(scenario)


def test_closed_port_raises_request_failed_naming_host_and_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # nothing listens on the port any more

    async def scenario() -> None:
        client = HTTPClient()
        try:
            with pytest.raises(RequestFailed, match=f"cannot connect to 127.0.0.1:{port}"):
                await post(client, f"http://127.0.0.1:{port}/v1/workers/poll", b"{}")
        finally:
            await client.aclose()

    run(scenario)


def test_url_that_is_not_http_raises_request_failed() -> None:
    async def scenario() -> None:
        client = HTTPClient()
        with pytest.raises(RequestFailed, match="not an http:// or https:// URL"):
            await post(client, "ftp://127.0.0.1/v1/workers/poll", b"{}")

    run(scenario)
