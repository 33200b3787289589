"""A real manager on 127.0.0.1 for the client's tests; no worker unless a test starts one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from forerunner.client import Client
from forerunner.manager import Manager

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def manager() -> Iterator[Manager]:
    running = Manager("memory://", "memory://", port=0).start()
    yield running
    running.stop()


@pytest.fixture
def client(manager: Manager) -> Iterator[Client]:
    with Client(manager.url) as opened:
        yield opened
