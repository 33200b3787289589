"""The manager: accepts jobs over HTTP and hands them to workers by lease."""

from __future__ import annotations

from forerunner.manager.auth import Role, Tokens
from forerunner.manager.limits import Limits
from forerunner.manager.server import Manager

__all__ = ["Limits", "Manager", "Role", "Tokens"]
