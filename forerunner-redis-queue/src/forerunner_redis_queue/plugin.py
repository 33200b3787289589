"""forerunner-redis-queue's plugin module, registered under the ``forerunner`` entry point.

It implements no hook yet: the ``redis://`` queue backend arrives with issue 4, and this
module is where its ``forerunner_queue_backends`` implementation will live.
"""

from __future__ import annotations
