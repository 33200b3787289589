"""ExampleQueue against the queue suite, through a factory fixture instead of a URL.

The suite's own ``pytest --pyargs forerunner_queue_tests --forerunner-queue example://``
certifies the installed plugin; this module shows the other way in, for a backend whose
test set-up is more than a URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from forerunner_example_queue import ExampleQueue

from forerunner_queue_tests import QueueContract

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class TestExampleQueue(QueueContract):
    @pytest.fixture
    def forerunner_queue_factory(self) -> Iterator[Callable[[], ExampleQueue]]:
        opened: list[ExampleQueue] = []

        def factory() -> ExampleQueue:
            opened.append(ExampleQueue())
            return opened[-1]

        yield factory
        for queue in opened:
            queue.close()
