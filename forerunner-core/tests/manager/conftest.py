"""Managers for the manager's tests: real ones, on port 0, over a sqlite store in tmp_path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from forerunner.manager import Manager

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def start_manager(store_url: str) -> Iterator[Callable[..., Manager]]:
    """Start managers (on the test's sqlite store unless told); stop them after the test."""
    started: list[Manager] = []

    def start(store: str | None = None, **options: Any) -> Manager:
        manager = Manager(store or store_url, port=0, **options)
        started.append(manager.start())
        return manager

    yield start
    for manager in started:
        manager.stop()


@pytest.fixture
def manager(start_manager: Callable[..., Manager]) -> Manager:
    return start_manager()


@pytest.fixture
def http(manager: Manager) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=manager.url, timeout=30.0) as client:
        yield client
