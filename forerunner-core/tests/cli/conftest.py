"""A real manager on 127.0.0.1, a real worker when a test asks, and a way to run the CLI.

The commands run in this process through :func:`forerunner.cli.main`, with stdout and
stderr captured (so neither is a terminal: what a script or a pipe sees) and
``FORERUNNER_MANAGER`` pointing at the test's manager, so a test passes ``--manager``
only where the option is what it checks.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from forerunner import cli
from forerunner.client import Client
from forerunner.console import MANAGER_ENV
from forerunner.manager import Manager
from forerunner.worker import Worker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@attrs.frozen
class Ran:
    """One run of the command line: its exit code and what it wrote."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def rows(self) -> list[list[str]]:
        """stdout split into lines of blank-separated cells, as ``awk`` sees them."""
        return [line.split() for line in self.out.splitlines()]


@pytest.fixture
def manager() -> Iterator[Manager]:
    running = Manager("memory://", "memory://", port=0, lease=5.0).start()
    yield running
    running.stop()


@pytest.fixture
def client(manager: Manager) -> Iterator[Client]:
    with Client(manager.url) as opened:
        yield opened


@pytest.fixture
def forerunner(
    manager: Manager, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Ran]:
    """Run ``forerunner ARGS...`` against the test's manager; give back a :class:`Ran`."""
    monkeypatch.setenv(MANAGER_ENV, manager.url)

    def run(*argv: str) -> Ran:
        capsys.readouterr()
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


@pytest.fixture
def worker(manager: Manager) -> Iterator[Worker]:
    """A worker running ``ping`` (echo) and ``fail`` (raises) against the manager."""
    running = Worker(2)
    running.register_job_handler("ping", lambda job_id, data: data)

    @running.task("fail")
    def fail(job_id: str, data: Any) -> Any:
        raise RuntimeError(f"as asked: {data}")

    thread = threading.Thread(target=running.start, args=(manager.url,), daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(15)
