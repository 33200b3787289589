"""The worker's HTTP/1.1 client: one request shape, kept-alive connections, nothing else.

A worker sends one kind of request, ``POST /v1/workers/poll`` with a JSON body, to
managers it was told about, and reads JSON answers. httpx did that at about 300 µs of
Python per request, most of it in machinery a poll never uses (auth and redirect
hooks, cookie jars, async-library detection on every call): profiled, it was four
fifths of a busy worker's time. This client writes the request in one call and parses
the answer with :mod:`asyncio` streams.

Connections are kept alive and reused, one per request in flight (the fetcher and the
flusher each hold one). A request that fails on a reused connection before any byte of
the answer arrived is sent once more on a fresh one: the manager may have closed the
idle connection (uvicorn does after 5 s) just as it was reused, and then it never saw
the request. Every other failure raises :class:`RequestFailed` and the connection is
dropped. Proxies configured in the environment are not used.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.parse
from typing import Final

import attrs

from forerunner.credentials import header_safe

__all__ = ["Answer", "CertificateRejected", "HTTPClient", "RequestFailed"]

#: Longest status line or header line accepted, in bytes.
MAX_LINE: Final = 65_536
#: Most header lines accepted in one answer.
MAX_HEADERS: Final = 100
#: Seconds :meth:`HTTPClient.aclose` waits for its connections to close.
CLOSE_WAIT: Final = 1.0


class RequestFailed(Exception):
    """No usable answer: the connection failed, timed out, or the answer was not HTTP."""


class CertificateRejected(RequestFailed):
    """The manager's TLS certificate did not verify: no retry will change that."""


@attrs.frozen
class Answer:
    status: int
    body: bytes


@attrs.frozen
class _Origin:
    scheme: str
    host: str
    port: int


class _Stale(Exception):
    """A reused connection ended before the answer began: the request may be resent."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class HTTPClient:
    """POSTs JSON to the managers' URLs over kept-alive HTTP/1.1 connections.

    ``token``, when given, is sent as ``Authorization: Bearer <token>``; it must be
    printable ASCII without spaces, which :func:`forerunner.credentials.load_token`
    ensures. ``ssl_context`` verifies ``https://`` managers (default: the system's CAs).
    """

    def __init__(
        self, *, ssl_context: ssl.SSLContext | None = None, token: str | None = None
    ) -> None:
        from forerunner import __version__  # the package imports this module first

        if token is not None and not header_safe(token):
            # A CR or LF in it would let the token write headers of its own.
            raise ValueError("the token holds spaces or characters a header cannot carry")
        self._ssl = ssl_context
        self._fixed = (
            f"User-Agent: forerunner-worker/{__version__}\r\n"
            + ("" if token is None else f"Authorization: Bearer {token}\r\n")
            + "Content-Type: application/json\r\nContent-Length: "
        )
        self._idle: dict[_Origin, list[_Connection]] = {}
        #: URL -> its origin and the request head up to the body's length.
        self._targets: dict[str, tuple[_Origin, bytes]] = {}

    def __repr__(self) -> str:
        return f"<HTTPClient {len(self._targets)} URL(s)>"

    async def post_json(self, url: str, body: bytes, *, timeout: float) -> Answer:
        """POST ``body`` to ``url``; raise :class:`RequestFailed` without an answer."""
        origin, start = self._target(url)
        request = b"%s%d\r\n\r\n%s" % (start, len(body), body)
        try:
            async with asyncio.timeout(timeout):
                connection = self._reuse(origin)
                if connection is not None:
                    try:
                        return await self._exchange(origin, connection, request)
                    except _Stale:
                        pass
                connection = await self._connect(origin)
                try:
                    return await self._exchange(origin, connection, request)
                except _Stale as stale:
                    raise RequestFailed("the manager closed the connection") from stale
        except TimeoutError as error:
            raise RequestFailed(f"no answer within {timeout:g} s") from error

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        closing = [connection for connections in idle.values() for connection in connections]
        for connection in closing:
            connection.close()
        if closing:
            # A TLS connection closes with an exchange of its own, which needs the loop
            # to run: without the wait its socket outlives the loop, unclosed.
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(CLOSE_WAIT):
                    await asyncio.gather(
                        *(connection.writer.wait_closed() for connection in closing),
                        return_exceptions=True,
                    )

    # Internals

    def _target(self, url: str) -> tuple[_Origin, bytes]:
        known = self._targets.get(url)
        if known is not None:
            return known
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RequestFailed(f"{url!r} is not an http:// or https:// URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        origin = _Origin(parts.scheme, parts.hostname, port)
        start = f"POST {path} HTTP/1.1\r\nHost: {origin.host}:{origin.port}\r\n{self._fixed}"
        target = (origin, start.encode("latin-1"))
        self._targets[url] = target
        return target

    def _reuse(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    async def _connect(self, origin: _Origin) -> _Connection:
        context: ssl.SSLContext | None = None
        if origin.scheme == "https":
            context = self._ssl or ssl.create_default_context()
        try:
            reader, writer = await asyncio.open_connection(
                origin.host, origin.port, ssl=context, limit=MAX_LINE
            )
        except ssl.SSLCertVerificationError as error:
            raise CertificateRejected(
                f"the certificate of {origin.host}:{origin.port} did not verify: "
                f"{error.verify_message or error}"
            ) from error
        except OSError as error:
            raise RequestFailed(
                f"cannot connect to {origin.host}:{origin.port}: {error}"
            ) from error
        return _Connection(reader, writer)

    async def _exchange(self, origin: _Origin, connection: _Connection, request: bytes) -> Answer:
        keep = False
        try:
            connection.writer.write(request)
            try:
                status_line = await connection.reader.readuntil(b"\r\n")
            except asyncio.IncompleteReadError as error:
                if not error.partial:
                    raise _Stale from error
                raise
            answer, keep = await self._read_answer(connection.reader, status_line)
            return answer
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            if isinstance(error, ConnectionError) and not isinstance(error, _Stale):
                raise _Stale from error
            raise RequestFailed(f"{type(error).__name__}: {error}") from error
        except ValueError as error:
            raise RequestFailed(f"not an HTTP answer: {error}") from error
        finally:
            if keep:
                self._idle.setdefault(origin, []).append(connection)
            else:
                connection.close()

    @staticmethod
    async def _read_answer(reader: asyncio.StreamReader, status_line: bytes) -> tuple[Answer, bool]:
        version, _, rest = status_line.decode("latin-1").partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"status line {status_line[:80]!r}")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = await reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise ValueError(f"more than {MAX_HEADERS} header lines")
        keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()
            keep = False
        return Answer(status, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
