"""The forerunner plugin: the ``forerunner`` entry point named ``example`` loads this module."""

from __future__ import annotations

from typing import TYPE_CHECKING

import forerunner
from forerunner_example_queue.queue import ExampleQueue

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from forerunner.queue import Queue


@forerunner.hookimpl
def forerunner_queue_backends() -> Mapping[str, Callable[[str], Queue]]:
    return {"example": ExampleQueue.from_url}
