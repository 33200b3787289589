"""Inside a child of a :class:`~forerunner.worker.processes.ProcessPool`, and what it says.

The parent and a child share one socket pair. Every message is a frame: an 8-byte
big-endian length, then the payload. The parent sends the pickled handler mapping once,
then one pickled :class:`~forerunner.model.Job` per attempt; the child answers with
msgspec JSON messages: :class:`Ready` or :class:`Broken` after loading the handlers,
then any number of :class:`Progress` and one :class:`Done` per attempt. JSON on the way
back because that is what a result must be anyway: encoding it in the child is the
JSON check :func:`forerunner.worker.runner.execute` makes, done where the traceback is.

The child's lifetime belongs to the parent: it ends when the parent closes its end of
the socket (a polite stop), when the parent kills it, or when the parent process dies,
so that a worker killed with SIGKILL leaves no orphan spinning on a CPU-bound job.
"""

from __future__ import annotations

import asyncio
import faulthandler
import inspect
import logging
import multiprocessing
import os
import pickle
import signal
import struct
import threading
import traceback
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import msgspec

from forerunner.context import JobContext, running
from forerunner.wire import ResultReport
from forerunner.worker.runner import failure, not_json

if TYPE_CHECKING:
    import socket
    from collections.abc import Awaitable, Mapping

    from forerunner.handlers import Handler
    from forerunner.model import JSON, Job

__all__ = [
    "HEADER",
    "Broken",
    "Done",
    "FromChild",
    "Progress",
    "Ready",
    "decode",
    "serve",
]

logger = logging.getLogger(__name__)

#: The frame header: the payload's length in bytes.
HEADER: Final = struct.Struct("!Q")
#: The exit code of a child that saw its parent process die.
ORPHANED: Final = 70


class Ready(msgspec.Struct, frozen=True, tag="ready"):
    """The child imported every handler's module and waits for jobs."""


class Broken(msgspec.Struct, frozen=True, tag="broken"):
    """The child could not load the handlers; ``error`` is its traceback."""

    error: str


class Progress(msgspec.Struct, frozen=True, tag="progress"):
    """The running handler called :func:`forerunner.context.report_progress`."""

    value: Any


class Done(msgspec.Struct, frozen=True, tag="done"):
    """The attempt ended; the report is final."""

    report: ResultReport


FromChild: TypeAlias = Ready | Broken | Progress | Done

_encoder: Final = msgspec.json.Encoder()
_decoder: Final[msgspec.json.Decoder[FromChild]] = msgspec.json.Decoder(FromChild)


def decode(payload: bytes) -> FromChild:
    """A child's message, from the payload of one frame."""
    return _decoder.decode(payload)


def serve(connection: socket.socket) -> None:
    """The child's main function: load the handlers, then run attempts until told to stop."""
    # The socket must end with this process: a grandchild holding it open would hide
    # this child's death from the parent.
    os.set_inheritable(connection.fileno(), False)
    # Ctrl-C in a terminal reaches the whole process group; the worker decides whether
    # its running jobs finish, so the children leave SIGINT to it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()
    _exit_with_parent()
    channel = _Channel(connection)
    try:
        _serve(channel)
    except (BrokenPipeError, ConnectionResetError):
        # The parent went away mid-answer; nobody is left to tell.
        pass
    finally:
        connection.close()


def _serve(channel: _Channel) -> None:
    payload = channel.receive()
    if payload is None:
        return
    try:
        handlers: Mapping[str, Handler] = pickle.loads(payload)
    except BaseException:
        # BaseException: a task module may call sys.exit() on import, which must still
        # reach the parent as the reason this child is unusable.
        channel.send(Broken(error=traceback.format_exc()))
        return
    channel.send(Ready())
    while (payload := channel.receive()) is not None:
        job: Job = pickle.loads(payload)
        report = _attempt(handlers[job.type], job, channel)
        channel.send_encoded(_encode_done(job, report))


def _attempt(handler: Handler, job: Job, channel: _Channel) -> ResultReport:
    context = JobContext(job_id=job.id, attempt=job.attempt, report_progress=channel.progress)
    try:
        with running(context):
            result = handler(job.id, job.data)
            if inspect.isawaitable(result):
                # asyncio.run copies the current context, so the handler sees its job.
                result = asyncio.run(_awaited(result))
    except Exception as error:
        return failure(job, error)
    return ResultReport(id=job.id, attempt=job.attempt, outcome="succeeded", result=result)


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _encode_done(job: Job, report: ResultReport) -> bytes:
    """Encode the attempt's final message; a result that is not JSON fails the attempt."""
    try:
        return _encoder.encode(Done(report=report))
    except (TypeError, msgspec.EncodeError) as error:
        return _encoder.encode(Done(report=not_json(job, report.result, error)))


def _exit_with_parent() -> None:
    """End this process as soon as the parent process is gone, whatever it is running.

    A spawned child holds the read end of a pipe whose write end only its parent has
    open, so the pipe reports end-of-file when the parent dies, even by SIGKILL.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(ORPHANED)

    threading.Thread(target=watch, name="forerunner-parent-watch", daemon=True).start()


class _Channel:
    """The child's end of the socket: blocking, framed, safe to send on from any thread.

    A handler may report progress from threads of its own (a composed pipeline runs its
    sync steps in threads), so sends are serialised by a lock.
    """

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._incoming = connection.makefile("rb")
        self._lock = threading.Lock()

    def receive(self) -> bytes | None:
        """The next frame's payload, or ``None`` once the parent closed its end."""
        header = self._incoming.read(HEADER.size)
        if len(header) < HEADER.size:
            return None
        (size,) = HEADER.unpack(header)
        payload = self._incoming.read(size)
        if len(payload) < size:
            return None
        return bytes(payload)

    def send(self, message: FromChild) -> None:
        self.send_encoded(_encoder.encode(message))

    def send_encoded(self, payload: bytes) -> None:
        with self._lock:
            self._connection.sendall(HEADER.pack(len(payload)) + payload)

    def progress(self, value: JSON) -> None:
        """The job context's progress callback: forward ``value`` to the parent."""
        try:
            payload = _encoder.encode(Progress(value=value))
        except (TypeError, msgspec.EncodeError):
            logger.warning(
                "progress %r is not JSON; dropped",
                value,
                extra={"action": "progress_dropped"},
            )
            return
        self.send_encoded(payload)
