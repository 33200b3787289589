"""``forerunner worker --tasks``: which handlers a comma-separated value registers.

An item is a task name an installed plugin provides, ``MODULE`` (its ``TASKS``
mapping) or ``MODULE:ATTR`` (another mapping); anything else is a one-line
configuration error naming the item.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from forerunner.errors import ConfigurationError, ValidationError
from forerunner.plugins import Registry
from forerunner.tasks import ping
from forerunner.worker import Worker
from forerunner.worker.command import load_tasks

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def registry() -> Registry:
    return Registry.from_plugins([])


@pytest.fixture
def task_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module ``my_tasks`` with a ``TASKS`` and a ``MORE`` mapping."""
    (tmp_path / "my_tasks.py").write_text(
        "def shout(job_id, data):\n"
        "    return data.upper()\n"
        "\n"
        "TASKS = {'shout': shout}\n"
        "MORE = {'whisper': str.lower}\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_tasks"
    sys.modules.pop("my_tasks", None)


def test_plugin_task_names_and_task_modules_are_registered(task_module: str) -> None:
    worker = Worker(registry=registry())

    load_tasks(worker, f"ping, {task_module},{task_module}:MORE", registry())

    assert worker.types == ["ping", "shout", "whisper"]
    assert worker.handler_for("ping") is ping


def test_handler_registered_on_the_worker_wins_over_a_plugin_task() -> None:
    worker = Worker(registry=registry())
    mine = worker.task("ping")(lambda job_id, data: "mine")

    worker.add_plugin_tasks(["ping"])

    assert worker.handler_for("ping") is mine


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_anywhere", "neither an installed task"),
        ("json", "has no mapping 'TASKS'"),
        (" , ", "--tasks is empty"),
    ],
)
def test_bad_tasks_value_is_a_configuration_error(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_tasks(Worker(registry=registry()), spec, registry())


def test_processes_set_the_concurrency() -> None:
    assert Worker(processes=3).concurrency == 3
    assert Worker(3, processes=3).concurrency == 3
    assert Worker().concurrency == 4


@pytest.mark.parametrize(
    ("options", "field"),
    [({"processes": 0}, "processes"), ({"concurrency": 8, "processes": 2}, "concurrency")],
)
def test_processes_that_cannot_work_are_refused(options: dict[str, int], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Worker(**options)
    assert raised.value.field == field
