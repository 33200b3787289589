"""A real manager on 127.0.0.1 and workers running in threads of this process."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from forerunner.client import Client
from forerunner.manager import Manager

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from forerunner.worker import Worker


@pytest.fixture
def manager() -> Iterator[Manager]:
    """A manager on a free port with in-memory backends and a one-second lease."""
    running = Manager("memory://", "memory://", port=0, lease=1.0).start()
    yield running
    running.stop()


@pytest.fixture
def client(manager: Manager) -> Iterator[Client]:
    with Client(manager.url) as opened:
        yield opened


@pytest.fixture
def run_worker(manager: Manager) -> Iterator[Callable[[Worker], threading.Thread]]:
    """Start a worker against ``manager`` in a thread; every one is stopped at teardown."""
    started: list[tuple[Worker, threading.Thread]] = []

    def start(worker: Worker) -> threading.Thread:
        thread = threading.Thread(target=worker.start, args=(manager.url,), daemon=True)
        thread.start()
        started.append((worker, thread))
        return thread

    yield start
    for worker, thread in started:
        worker.stop()
        thread.join(15)
        assert not thread.is_alive(), f"worker {worker.worker_id} did not stop"
