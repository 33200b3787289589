"""The manager's defences below the app: slow or oversized request heads, and bodies.

uvicorn, as it comes, trusts its clients with time and memory. Its httptools protocol
arms no timer on a fresh connection, and cancels its keep-alive timer as soon as any
byte arrives, so a client that sends a request head a byte at a time (slowloris)
holds a connection, and its memory, for as long as it likes; and httptools sets no
bound on the size of a head, which it buffers whole. Above the protocol, Starlette
reads a whole body into memory, however big, and waits for it however slowly.

:func:`guarded_protocol` makes the HTTP protocol the manager serves with: it closes a
connection whose request head is not complete within ``header_timeout`` seconds of
the connection opening (or of the head's first byte, on a kept-alive connection), and
answers 431 to a head over ``max_header_bytes``. :class:`BodyLimits` is the ASGI
middleware for bodies: 413 ``too_large`` for a body over ``max_body`` (by
Content-Length before reading a byte, and by counting as a chunked body arrives), and
408 ``request_timeout`` for a body not received within ``body_timeout``. Both answers
close the connection, so the rest of a refused body is never read.

Every request pays for these checks, and a busy worker polls thousands of times a
second: the protocol adds one timer per request head and the middleware a scan of the
headers and one timeout scope per body read.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar, Final

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from forerunner.wire import ErrorBody, ErrorDetail

if TYPE_CHECKING:
    from asyncio.events import TimerHandle

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from forerunner.manager.limits import Limits

__all__ = ["BodyLimits", "guarded_protocol"]

#: The bytes a header line adds to its name and value: ": " and CRLF.
_LINE_OVERHEAD: Final = 4
_CLOSE: Final = (b"connection", b"close")
_JSON: Final = (b"content-type", b"application/json")


def _error_bytes(code: str, message: str) -> bytes:
    return msgspec.json.encode(ErrorBody(error=ErrorDetail(code=code, message=message)))


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size bound on each request head."""

    #: Set on the subclass :func:`guarded_protocol` makes, one per manager.
    limits: ClassVar[Limits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: TimerHandle | None = None
        #: Bytes received since the current head began; None when no head is pending.
        self._head_bytes: int | None = None
        #: A head was refused: the connection is closing, and nothing more is parsed.
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms no timer here: a client that connects and says nothing would
        # hold the connection forever.
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        pending = self._head_bytes
        if pending is not None and not self.transport.is_closing():
            # httptools buffers a head until it is complete: bound what it may hold.
            pending += len(data)
            self._head_bytes = pending
            if pending > self.limits.max_header_bytes:
                self._refuse_head()

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._head_bytes = 0
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._cancel_head_timer()
        self._head_bytes = None
        size = len(self.url) + sum(
            len(name) + len(value) + _LINE_OVERHEAD for name, value in self.headers
        )
        if size > self.limits.max_header_bytes:
            self._refuse_head()
            return
        super().on_headers_complete()

    # The parser goes on through the rest of the data it was fed after a refused head:
    # what follows must reach no request.

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        """Close the connection: its request head did not arrive in time (or ever)."""
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        """Answer 431 and close; what else the client sends is never parsed."""
        self._cancel_head_timer()
        self._head_bytes = None
        self._refused = True
        if self.transport.is_closing():
            return
        body = _error_bytes(
            "too_large",
            f"the request line and headers are over {self.limits.max_header_bytes} bytes",
        )
        head = [STATUS_LINE[431]]
        for name, value in (*self.server_state.default_headers, _JSON, _CLOSE):
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-length: ", str(len(body)).encode("ascii"), b"\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self.transport.close()


def guarded_protocol(limits: Limits) -> type[asyncio.Protocol]:
    """The HTTP protocol class to give ``uvicorn.Config(http=...)`` for these limits."""
    return type("GuardedHttpToolsProtocol", (_GuardedProtocol,), {"limits": limits})


class _Refused(BaseException):
    """The body broke a limit; raised out of the app's ``receive``, answered by BodyLimits.

    A BaseException, like a cancellation: the handlers' ``except Exception`` (which log
    a traceback and answer 500) must let it through to the middleware.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = _error_bytes(code, message)


class BodyLimits:
    """ASGI middleware: 413 ``too_large`` for a body over ``max_body``, 408 for a slow one.

    A refusal is raised out of the app's ``receive`` call, so the app stops where it is
    (before it changed anything: a handler reads its whole body first); whatever the
    app then tries to send is dropped and the refusal answered instead.
    """

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.max_body = limits.max_body
        self.body_timeout = limits.body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                # uvicorn's parser has already refused a Content-Length that is not
                # a number.
                if int(value) > self.max_body:
                    await _answer(send, self._too_large())
                    return
                break
        await _LimitedRequest(self, receive, send).run(scope)

    def _too_large(self) -> _Refused:
        return _Refused(
            413, "too_large", f"the request body is over the limit of {self.max_body} bytes"
        )


class _LimitedRequest:
    """One request's body count and deadline."""

    __slots__ = (
        "_deadline",
        "_done",
        "_limits",
        "_receive",
        "_refused",
        "_send",
        "_size",
        "_started",
    )

    def __init__(self, limits: BodyLimits, receive: Receive, send: Send) -> None:
        self._limits = limits
        self._receive = receive
        self._send = send
        self._size = 0
        self._deadline: float | None = None
        self._done = False
        self._refused: _Refused | None = None
        self._started = False

    async def run(self, scope: Scope) -> None:
        try:
            await self._limits.app(scope, self.receive, self.send)
        except _Refused:
            pass
        except Exception:
            # An app that caught the refusal and failed otherwise: the refusal stands.
            if self._refused is None:
                raise
        # An app that answered before it read its whole body cannot be answered again;
        # uvicorn closes its connection, the response being incomplete.
        if self._refused is not None and not self._started:
            await _answer(self._send, self._refused)

    async def send(self, message: Message) -> None:
        if self._refused is None:
            self._started = True
            await self._send(message)

    async def receive(self) -> Message:
        if self._done:
            return await self._receive()
        loop = asyncio.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time() + self._limits.body_timeout
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            self._refused = _Refused(
                408,
                "request_timeout",
                f"the request body did not arrive within {self._limits.body_timeout:g} s",
            )
            raise self._refused from None
        if message["type"] == "http.request":
            self._size += len(message.get("body", b""))
            if self._size > self._limits.max_body:
                self._refused = self._limits._too_large()
                raise self._refused
            self._done = not message.get("more_body", False)
        else:
            self._done = True
        return message


async def _answer(send: Send, refused: _Refused) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": refused.status,
            "headers": [
                _JSON,
                (b"content-length", str(len(refused.body)).encode("ascii")),
                _CLOSE,
            ],
        }
    )
    await send({"type": "http.response.body", "body": refused.body})
