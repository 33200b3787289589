"""forerunner-queue-tests: the conformance suite for forerunner queue backends.

Run it against a URL::

    pytest --pyargs forerunner_queue_tests --forerunner-queue "mything://..."

or subclass :class:`QueueContract` in your own tests and override the
``forerunner_queue_factory`` fixture. :data:`CLAUSES` maps each clause id to its text.

``QueueContract`` is imported on first access: this package is the parent of the
``pytest11`` plugin, so importing the contract (and Hypothesis) here would slow every
pytest run in the environment and import the contract before the plugin registers
it for assertion rewriting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forerunner_queue_tests.clauses import CLAUSES

if TYPE_CHECKING:
    from forerunner_queue_tests.contract import QueueContract

__all__ = ["CLAUSES", "QueueContract"]


def __getattr__(name: str) -> object:
    if name == "QueueContract":
        from forerunner_queue_tests.contract import QueueContract

        return QueueContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
