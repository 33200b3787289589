"""The conformance suite that certifies a forerunner store, ours or a third party's.

Run it against a URL::

    pytest --pyargs forerunner_store_tests --forerunner-store "mything://..."

or subclass :class:`StoreContract` and override the ``forerunner_store_factory``
fixture. :data:`CLAUSES` maps each clause id to its rule; every failure names one.

``StoreContract`` is imported on first use, not with the package: the package's pytest
plugin loads in every pytest run of the environment and must register the contract
modules for assertion rewriting before they are imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forerunner_store_tests.clauses import CLAUSES

if TYPE_CHECKING:
    from forerunner_store_tests.contract import StoreContract

__all__ = ["CLAUSES", "StoreContract"]


def __getattr__(name: str) -> object:
    if name == "StoreContract":
        from forerunner_store_tests.contract import StoreContract

        return StoreContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
