"""Running one attempt of a job: the handler, its timeout, and what to report.

``async def`` handlers run on the worker's event loop; plain functions run in a thread
pool so that a blocking task never stalls the loop that polls the manager and runs the
other jobs. Either way the attempt ends in exactly one :class:`ResultReport`, handed to
``deliver`` as soon as it is known:

* the handler returned a JSON value: ``succeeded`` with it;
* it raised, or returned something that is not JSON: ``failed`` with the exception's
  class name, message and traceback;
* it ran longer than ``job.timeout``: ``failed`` with error type ``Timeout``.

A thread cannot be killed, so a sync handler that times out is reported at once but
keeps its slot until its thread really returns: the worker never runs more threads than
it promised the manager capacity for.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import traceback
from typing import TYPE_CHECKING, Any, Final

import msgspec

from forerunner.context import JobContext, running
from forerunner.wire import ResultReport, WireError

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor

    from forerunner.handlers import Handler
    from forerunner.model import JSON, Job

__all__ = ["TIMEOUT_ERROR", "execute", "failure", "is_async", "not_json", "success", "timed_out"]

#: The error type of an attempt that ran past its job's ``timeout``.
TIMEOUT_ERROR: Final = "Timeout"


def is_async(handler: Handler) -> bool:
    """True for ``async def`` handlers, including callable objects with ``async __call__``."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - the method itself is inspected
    )


def failure(job: Job, error: BaseException) -> ResultReport:
    """The report of an attempt that raised ``error``."""
    return ResultReport(
        id=job.id,
        attempt=job.attempt,
        outcome="failed",
        error=WireError(
            type=type(error).__name__,
            message=str(error),
            traceback="".join(traceback.format_exception(error)),
        ),
    )


def timed_out(job: Job) -> ResultReport:
    """The report of an attempt that ran past its job's ``timeout``."""
    return ResultReport(
        id=job.id,
        attempt=job.attempt,
        outcome="failed",
        error=WireError(
            type=TIMEOUT_ERROR,
            message=f"job {job.id!r} ran longer than its timeout of {job.timeout} s",
        ),
    )


def not_json(job: Job, result: Any, error: Exception) -> ResultReport:
    """The report of an attempt whose handler returned ``result``, which is not JSON."""
    wrapped = TypeError(
        f"the handler of {job.type!r} returned {type(result).__name__}, which is not JSON: {error}"
    )
    return failure(job, wrapped)


def success(job: Job, result: Any) -> ResultReport:
    """The report of an attempt that returned ``result``, or a failure if it is not JSON."""
    if result is None or result is True or result is False:
        return ResultReport(id=job.id, attempt=job.attempt, outcome="succeeded", result=result)
    try:
        msgspec.json.encode(result)
    except (TypeError, msgspec.EncodeError, RecursionError) as error:
        # RecursionError: nested about a thousand levels deep, more than any JSON
        # decoder on the way (the manager's included) takes.
        return not_json(job, result, error)
    return ResultReport(id=job.id, attempt=job.attempt, outcome="succeeded", result=result)


async def execute(
    handler: Handler,
    job: Job,
    *,
    executor: Executor | None = None,
    report_progress: Callable[[JSON], None],
    deliver: Callable[[ResultReport], None],
) -> None:
    """Run one attempt of ``job`` and ``deliver`` its report; return when its slot is free.

    A sync handler runs on ``executor`` (the loop's default one if None): the worker
    itself runs sync handlers on :mod:`forerunner.worker.threads`, which is cheaper per
    job, and calls this for ``async def`` ones. Cancelling the calling task (the manager
    said to abandon the job) delivers nothing:
    an async handler is cancelled with it, a sync one's thread finishes unobserved.
    """
    context = JobContext(job_id=job.id, attempt=job.attempt, report_progress=report_progress)
    thread: asyncio.Future[Any] | None = None
    try:
        async with asyncio.timeout(job.timeout) as scope:
            if is_async(handler):
                with running(context):
                    result = await handler(job.id, job.data)
            else:
                with running(context):
                    copied = contextvars.copy_context()
                loop = asyncio.get_running_loop()
                thread = loop.run_in_executor(executor, copied.run, handler, job.id, job.data)
                result = await asyncio.shield(thread)
                if inspect.isawaitable(result):
                    with running(context):
                        result = await result
    except Exception as error:
        if isinstance(error, TimeoutError) and scope.expired():
            deliver(timed_out(job))
        else:
            deliver(failure(job, error))
    else:
        deliver(success(job, result))
    if thread is not None and not thread.done():
        await asyncio.wait({thread})
