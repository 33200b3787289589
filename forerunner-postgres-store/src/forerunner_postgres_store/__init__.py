"""The PostgreSQL store backend for forerunner (being built: issue 5)."""

from __future__ import annotations

__version__ = "0.1.0"
