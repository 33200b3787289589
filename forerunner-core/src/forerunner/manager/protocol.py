"""The manager's defences below the app: slow or oversized requests, heads and bodies.

uvicorn, as it comes, trusts its clients with time and memory. Its httptools protocol
arms no timer on a fresh connection, and cancels its keep-alive timer as soon as any
byte arrives, so a client that sends a request head a byte at a time (slowloris)
holds a connection, and its memory, for as long as it likes; and httptools sets no
bound on the size of a head, which it buffers whole. Above the protocol, Starlette
reads a whole body into memory, however big, and waits for it however slowly.

:func:`guarded_protocol` makes the HTTP protocol the manager serves with. It closes a
connection whose request head is not complete within ``header_timeout`` seconds (of
the connection opening, or of the head's first byte on a kept-alive connection),
answers 431 to a head over ``max_header_bytes``, 413 ``too_large`` to a body over
``max_body`` (by Content-Length before the app sees the request, and by counting as a
chunked body arrives), and 408 ``request_timeout`` to a body not received within
``body_timeout``. Each refusal closes the connection, so the rest of what the client
sends is never read.

Every request pays for these checks, and a busy worker polls thousands of times a
second, so they are made where they cost least: sizes are counted in the parser's own
callbacks, and the deadlines are not a timer per request but one clock reading per
phase, checked by a timer per connection a few times per timeout. An ASGI middleware
and a timer per request cost a busy manager about 30 µs a poll, a tenth of its time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Final

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from forerunner.wire import ErrorBody, ErrorDetail

if TYPE_CHECKING:
    import asyncio
    from asyncio.events import TimerHandle

    from forerunner.manager.limits import Limits

__all__ = ["guarded_protocol"]

#: The bytes a header line adds to its name and value: ": " and CRLF.
_LINE_OVERHEAD: Final = 4
_CLOSE: Final = (b"connection", b"close")
_JSON: Final = (b"content-type", b"application/json")
#: What the connection waits for: nothing (a request is being answered, or the
#: connection idles between requests, which uvicorn's keep-alive timeout bounds), the
#: rest of a request head, or the rest of a body.
_IDLE: Final = 0
_HEAD: Final = 1
_BODY: Final = 2
#: Checks per timeout: a slow client is cut off within a quarter timeout of its deadline.
_CHECKS: Final = 4


def _error_bytes(code: str, message: str) -> bytes:
    return msgspec.json.encode(ErrorBody(error=ErrorDetail(code=code, message=message)))


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines and size bounds on heads and bodies."""

    #: Set on the subclass :func:`guarded_protocol` makes, one per manager.
    limits: ClassVar[Limits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _IDLE
        #: When the current phase began, on the loop's clock.
        self._since = 0.0
        self._check: TimerHandle | None = None
        limits = self.limits
        #: Seconds between two looks at the deadlines.
        self._every = min(limits.header_timeout, limits.body_timeout) / _CHECKS
        #: Bytes received since the current head began; None when no head is pending.
        self._head_bytes: int | None = None
        #: The size of the chunk being parsed, so a head that came whole in one small
        #: chunk is known small without adding up its headers.
        self._chunk = 0
        self._body_bytes = 0
        #: A request was refused: the connection is closing, and nothing more is parsed.
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms no timer here: a client that connects and says nothing would
        # hold the connection forever.
        self._enter(_HEAD)
        self._head_bytes = 0
        self._check = self.loop.call_later(self._every, self._check_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._check is not None:
            self._check.cancel()
            self._check = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._chunk = len(data)
        super().data_received(data)
        pending = self._head_bytes
        if pending is not None and not self._refused and not self.transport.is_closing():
            # httptools buffers a head until it is complete: bound what it may hold.
            pending += len(data)
            self._head_bytes = pending
            if pending > self.limits.max_header_bytes:
                self._refuse(
                    431,
                    "too_large",
                    f"the request line and headers are over {self.limits.max_header_bytes} bytes",
                )

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._head_bytes = 0
        self._enter(_HEAD)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        began_in_this_chunk = self._head_bytes == 0
        self._head_bytes = None
        limits = self.limits
        declared = 0
        if began_in_this_chunk and self._chunk <= limits.max_header_bytes:
            for name, value in self.headers:
                if name == b"content-length":
                    declared = int(value)
        else:
            size = len(self.url)
            for name, value in self.headers:
                size += len(name) + len(value) + _LINE_OVERHEAD
                if name == b"content-length":
                    declared = int(value)
            if size > limits.max_header_bytes:
                self._refuse(
                    431,
                    "too_large",
                    f"the request line and headers are over {limits.max_header_bytes} bytes",
                )
                return
        if declared > limits.max_body:
            # Before the app starts, so no 100 Continue invites the body.
            self._refuse_body_size()
            return
        self._body_bytes = 0
        self._enter(_BODY)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body:
            self._refuse_body_size()
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._phase = _IDLE
        super().on_message_complete()

    def _enter(self, phase: int) -> None:
        self._phase = phase
        self._since = self.loop.time()

    def _check_deadline(self) -> None:
        """Cut off a client whose head or body is late; else look again a little later."""
        self._check = None
        if self.transport.is_closing():
            return
        late = self.loop.time() - self._since
        if self._phase == _HEAD and late > self.limits.header_timeout:
            self.transport.close()
            return
        if self._phase == _BODY and late > self.limits.body_timeout:
            self._refuse(
                408,
                "request_timeout",
                f"the request body did not arrive within {self.limits.body_timeout:g} s",
            )
            return
        self._check = self.loop.call_later(self._every, self._check_deadline)

    def _refuse_body_size(self) -> None:
        self._refuse(
            413, "too_large", f"the request body is over the limit of {self.limits.max_body} bytes"
        )

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` unless the app already answered, and close the connection.

        The app, if it runs, is waiting for the rest of the body: it sees the client go
        and stops without having changed anything.
        """
        self._head_bytes = None
        self._refused = True
        self._phase = _IDLE
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            body = _error_bytes(code, message)
            head = [STATUS_LINE[status]]
            for name, value in (*self.server_state.default_headers, _JSON, _CLOSE):
                head += [name, b": ", value, b"\r\n"]
            head += [b"content-length: ", str(len(body)).encode("ascii"), b"\r\n\r\n", body]
            self.transport.write(b"".join(head))
        self.transport.close()


def guarded_protocol(limits: Limits) -> type[asyncio.Protocol]:
    """The HTTP protocol class to give ``uvicorn.Config(http=...)`` for these limits."""
    return type("GuardedHttpToolsProtocol", (_GuardedProtocol,), {"limits": limits})
