"""forerunner: a distributed job queue with pluggable stores and queues.

Plugins implement the hooks of :mod:`forerunner.hookspecs` with :data:`hookimpl`::

    import forerunner

    @forerunner.hookimpl
    def forerunner_queue_backends():
        return {"mything": MyQueue.from_url}

and declare themselves under ``[project.entry-points.forerunner]``.
"""

from __future__ import annotations

from forerunner.client import AsyncClient, Client
from forerunner.context import report_progress
from forerunner.errors import (
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    ForerunnerError,
    InvalidTransition,
    JobNotFound,
    PluginError,
    UnknownBackendError,
    ValidationError,
)
from forerunner.hookspecs import hookimpl
from forerunner.ids import new_id
from forerunner.manager import Manager
from forerunner.model import Job, JobError, JobState, QueueEntry, Report
from forerunner.plugins import Registry, get_registry, open_queue, open_store
from forerunner.queue import Queue
from forerunner.store import Store
from forerunner.worker import Worker

__all__ = [
    "AsyncClient",
    "BackendError",
    "BackendUnavailable",
    "Client",
    "ConfigurationError",
    "ForerunnerError",
    "InvalidTransition",
    "Job",
    "JobError",
    "JobNotFound",
    "JobState",
    "Manager",
    "PluginError",
    "Queue",
    "QueueEntry",
    "Registry",
    "Report",
    "Store",
    "UnknownBackendError",
    "ValidationError",
    "Worker",
    "__version__",
    "get_registry",
    "hookimpl",
    "new_id",
    "open_queue",
    "open_store",
    "report_progress",
]

__version__ = "0.1.0"
