"""forerunner-postgres-store's plugin module, registered under the ``forerunner`` entry point.

It implements no hook yet: the ``postgresql://`` store backend arrives with issue 5, and
this module is where its ``forerunner_store_backends`` implementation will live.
"""

from __future__ import annotations
