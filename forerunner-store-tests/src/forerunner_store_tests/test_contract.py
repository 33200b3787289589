"""The store contract against the store that ``--forerunner-store`` names.

The URL may also come from ``$FORERUNNER_STORE_URL``.

Collected by ``pytest --pyargs forerunner_store_tests``; every test comes from
:class:`~forerunner_store_tests.contract.StoreContract`.
"""

from __future__ import annotations

from forerunner_store_tests.contract import StoreContract


class TestStoreContract(StoreContract):
    pass
