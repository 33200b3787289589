"""forerunner-example-queue: a third-party queue backend for forerunner, ``example://``."""

from __future__ import annotations

from forerunner_example_queue.queue import ExampleQueue

__all__ = ["ExampleQueue"]
