"""What a running task knows about its job, without the handler signature changing.

A handler stays ``handler(job_id, data)``; the worker puts a :class:`JobContext` in a
:class:`contextvars.ContextVar` around the call, and a task deep inside its own helpers
reports progress with :func:`report_progress`. A context variable (not a thread-local)
because handlers run both in worker threads and as asyncio tasks on one event loop,
where many jobs share a thread: each asyncio task, and each ``copy_context().run`` in a
thread, sees only the job it was started for.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from forerunner.model import JSON

__all__ = ["JobContext", "current_job", "report_progress", "running"]

logger = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class JobContext:
    """The job a task is running for, and where its progress goes."""

    #: The id of the running job.
    job_id: str
    #: The attempt being run; the worker fences its reports by it.
    attempt: int
    #: Delivers a progress value for this attempt (the worker batches it to the manager).
    report_progress: Callable[[JSON], None]


_current: Final[contextvars.ContextVar[JobContext | None]] = contextvars.ContextVar(
    "forerunner_job", default=None
)


def current_job() -> JobContext | None:
    """The job the calling code runs for, or ``None`` outside a job."""
    return _current.get()


def report_progress(value: JSON) -> None:
    """Report ``value`` (any JSON) as the running job's latest progress.

    Outside a job this does nothing but log at debug level, rather than raise: a task is
    then an ordinary function that a unit test, a notebook or another program can call
    directly, and progress is a side channel that must never be the reason it fails.
    """
    context = _current.get()
    if context is None:
        logger.debug(
            "progress %r reported outside a job; ignored", value, extra={"action": "progress"}
        )
        return
    context.report_progress(value)


@contextlib.contextmanager
def running(context: JobContext) -> Iterator[JobContext]:
    """Make ``context`` the current job for the code run inside the ``with`` block.

    How the worker uses it, so that each job sees its own context:

    * a coroutine handler: ``with running(ctx): await handler(job_id, data)``, or create
      the asyncio task inside the block (a task copies the context when it is created);
    * a sync handler in a thread pool: inside the block, submit
      ``contextvars.copy_context().run`` with the handler, since pool threads do not
      inherit the submitting thread's context (``asyncio.to_thread`` copies it already).
    """
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
