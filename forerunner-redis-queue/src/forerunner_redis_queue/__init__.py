"""The Redis queue backend for forerunner (being built: issue 4)."""

from __future__ import annotations

__version__ = "0.1.0"
