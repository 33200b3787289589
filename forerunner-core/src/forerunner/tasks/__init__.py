"""The builtin tasks, registered by :mod:`forerunner.builtin` under these names.

Each is an ordinary handler, ``task(job_id, data) -> JSON``, so it can be called
directly in tests and scripts, and composed with :func:`forerunner.compose.compose`.
"""

from __future__ import annotations

from forerunner.tasks.files import fetch, targz
from forerunner.tasks.html import get_hrefs, pluck_data
from forerunner.tasks.ping import ping
from forerunner.tasks.text import key_map, word_count

__all__ = ["fetch", "get_hrefs", "key_map", "ping", "pluck_data", "targz", "word_count"]
