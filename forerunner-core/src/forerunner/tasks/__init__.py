"""The builtin tasks, registered by :mod:`forerunner.builtin` under these names.

Each is an ordinary handler, ``task(job_id, data) -> JSON``, so it can be called
directly in tests and scripts, and composed with :func:`forerunner.compose.compose`.

The tasks that fetch URLs reach only public addresses unless the worker's environment
allows more: :data:`ALLOW_NETWORKS_ENV` and :data:`ALLOW_PRIVATE_ENV`, read into an
:class:`AddressPolicy` each time a task runs.
"""

from __future__ import annotations

from forerunner.tasks._web import ALLOW_NETWORKS_ENV, ALLOW_PRIVATE_ENV, AddressPolicy
from forerunner.tasks.files import fetch, targz
from forerunner.tasks.html import get_hrefs, pluck_data
from forerunner.tasks.ping import ping
from forerunner.tasks.text import key_map, word_count

__all__ = [
    "ALLOW_NETWORKS_ENV",
    "ALLOW_PRIVATE_ENV",
    "AddressPolicy",
    "fetch",
    "get_hrefs",
    "key_map",
    "ping",
    "pluck_data",
    "targz",
    "word_count",
]
