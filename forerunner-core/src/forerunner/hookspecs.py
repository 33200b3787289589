"""The hooks a forerunner plugin may implement (design §5).

A plugin is a module or object with functions marked ``@forerunner.hookimpl`` and named
like the specs below, registered through the ``forerunner`` entry-point group::

    [project.entry-points.forerunner]
    mything = "forerunner_mything.plugin"

forerunner-core registers its own backends and tasks through these same hooks
(:mod:`forerunner.builtin`), so a third party's plugin is a peer of ours, not a guest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from forerunner.handlers import Handler
    from forerunner.model import Job
    from forerunner.queue import Queue
    from forerunner.store import Store

__all__ = ["hookimpl", "hookspec"]

PROJECT_NAME = "forerunner"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def forerunner_store_backends() -> Mapping[str, Callable[[str], Store]]:
    """Return the store backends this plugin provides, by URL scheme.

    Each factory takes the whole URL (``"mything://host/db?opt=1"``) and returns an
    open :class:`~forerunner.store.Store`. A scheme claimed by two plugins is an error
    that names both, raised when that scheme is used.
    """


@hookspec
def forerunner_queue_backends() -> Mapping[str, Callable[[str], Queue]]:
    """Return the queue backends this plugin provides, by URL scheme.

    As :func:`forerunner_store_backends`, for :class:`~forerunner.queue.Queue`.
    """


@hookspec
def forerunner_tasks() -> Mapping[str, Handler]:
    """Return the tasks this plugin provides, by task name.

    A worker started with ``--tasks NAME`` looks names up here, so a task shipped in a
    package runs without the user importing it. Two plugins giving one name is an error
    that names both.
    """


@hookspec
def forerunner_job_event(event: str, job: Job) -> None:
    """React to a job's lifecycle, on the manager, after the store recorded it.

    ``event`` is one of ``"created"``, ``"staged"`` (handed to a worker),
    ``"progress"``, ``"retrying"`` (an attempt failed or was lost, another will run),
    ``"succeeded"``, ``"failed"`` and ``"cancelled"``. It runs on the manager's hot
    path: hand slow work to a thread or queue of your own. A hook that raises is
    logged and never breaks the manager.
    """
